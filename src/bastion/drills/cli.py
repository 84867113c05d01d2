"""`bastion drill breach [--demo | --config FILE] [--narrative ID]`: run the attack narratives, print the timeline."""

from __future__ import annotations

from pathlib import Path

import click

from bastion.errors import BastionError


def _fail(message: str) -> None:
    click.echo(f"bastion: error: {message}", err=True)
    raise SystemExit(2)


@click.command("breach")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="Threat-model file (bastion.yaml).")
@click.option("--demo", is_flag=True, help="Drill the built-in demo service, in-process.")
@click.option("--flaws", default="all", show_default=True, help="Demo flaws to plant (with --demo).")
@click.option("--narrative", "narratives", multiple=True, metavar="ID",
              help="Run only this narrative (repeatable): credential-stuffing, leaked-key, poisoned-message.")
@click.option("--format", "fmt", type=click.Choice(["console", "json", "md"]), default="console", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write the output to FILE instead of stdout.")
@click.option("--seed", type=int, default=0, show_default=True)
def breach_drill_command(config: str | None, demo: bool, flaws: str, narratives: tuple[str, ...], fmt: str,
                         out: str | None, seed: int) -> None:
    """Run scripted breach narratives step by step: blocked, rate-limited, alerted, audited?

    Prints a timeline and an incident-playbook checklist. Exit 1 when a detection expectation fails,
    2 on a usage or configuration error. Only in-process targets, or URL targets whose model says
    `target.allow_destructive: true`; the target is reset after state-changing steps.
    """
    from bastion.drills.narratives import select_narratives
    from bastion.drills.render import as_json, as_markdown, print_console
    from bastion.drills.runner import run_breach_drills
    from bastion.session import plan_scan

    if not demo and config is None:
        _fail("give --config bastion.yaml or --demo")
    try:
        chosen = select_narratives(list(narratives))
        plan = plan_scan(config=config, demo=demo, flaws=flaws, seed=seed, crawl=False)
        try:
            runs = run_breach_drills(plan, chosen)
        finally:
            from bastion.drills.alerts import release_sinks
            from bastion.resilience.wiring import release

            release(plan.target)
            release_sinks(plan.target)
    except (BastionError, ValueError) as exc:
        _fail(str(exc))
        return
    if fmt == "console":
        from rich.console import Console

        if out:
            with Path(out).open("w", encoding="utf-8") as fh:
                print_console(runs, Console(file=fh, width=140, no_color=True))
        else:
            print_console(runs, Console())
    else:
        text = as_json(runs) if fmt == "json" else as_markdown(runs)
        if out:
            Path(out).write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)
    raise SystemExit(1 if any(r.failed for r in runs) else 0)
