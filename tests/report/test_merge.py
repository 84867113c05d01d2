"""`bastion report --merge`: the shards of a run give the unsharded run's reports (timings aside)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.cli import cli
from bastion.engine.runner import ScanResult, run_scan
from bastion.engine.shard import Shard
from bastion.report.json_report import findings_json
from bastion.report.merge import merge_files
from bastion.report.writer import FILE_FORMATS
from bastion.session import plan_scan

# Every unit scope, per-entry memos (open-redirect baselines), a per-check page cache (BOLA/BFLA), writes
# with resets and the authorization matrix (policy drift), header checks on the target.
CHECKS = ["headers", "cors", "config.stack-trace", "injection.xss-reflected", "injection.open-redirect",
          "authz.bola", "authz.bfla", "authz.policy-drift"]
SEED = 5
# Cookie lifetimes the demo computes from the wall clock ("Expires=Sat, 22 Nov 2036 22:54:59 GMT").
_HTTP_DATE = re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT")


def _scan(shard: Shard | None = None) -> ScanResult:
    plan = plan_scan(demo=True, checks=CHECKS, seed=SEED)
    plan.options.shard = shard
    return run_scan(plan.target, plan.surface, plan.options)


def _without_timings(result: ScanResult) -> ScanResult:
    result.started_at, result.duration_s = "2026-01-01T00:00:00+00:00", 0.0
    for stats in result.checks:
        stats.duration_s = 0.0
    return result


def _rendered(result: ScanResult) -> dict[str, str]:
    return {fmt: _HTTP_DATE.sub("<date>", render(result)) for fmt, (_, render) in FILE_FORMATS.items()}


@pytest.fixture(scope="module")
def unsharded() -> dict[str, str]:
    return _rendered(_without_timings(_scan()))


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory) -> dict[int, list[Path]]:
    out: dict[int, list[Path]] = {}
    for count in (2, 3):
        folder = tmp_path_factory.mktemp(f"shards{count}")
        out[count] = []
        for index in range(1, count + 1):
            path = folder / f"shard{index}.json"
            path.write_text(findings_json(_scan(Shard(index, count))), encoding="utf-8")
            out[count].append(path)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 3])
def test_merged_shards_equal_the_unsharded_run(unsharded, shard_files, count: int) -> None:
    docs = [json.loads(p.read_text()) for p in shard_files[count]]
    assert [d["run"]["shard"]["index"] for d in docs] == list(range(1, count + 1))
    assert all(d["findings"] or d["run"]["requests"] for d in docs)  # each shard did real work
    merged = _rendered(_without_timings(merge_files(list(reversed(shard_files[count])))))
    for fmt in FILE_FORMATS:
        assert merged[fmt] == unsharded[fmt], f"{fmt} differs after merging {count} shards"
    assert '"shard"' not in merged["json"]


def test_cli_merge_writes_reports_and_records_one_run(shard_files, tmp_path: Path) -> None:
    db = tmp_path / "hist.db"
    files = [str(p) for p in shard_files[2]]
    res = CliRunner().invoke(cli, ["report", "--merge", *files, "--out", str(tmp_path / "out"),
                                   "--format", "json,sarif,html", "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"findings.json", "bastion.sarif", "report.html"}
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    shards = [json.loads(Path(f).read_text()) for f in files]
    assert doc["run"]["requests"] == sum(s["run"]["requests"] for s in shards)
    assert {f["fingerprint"] for f in doc["findings"]} == {f["fingerprint"] for s in shards for f in s["findings"]}
    history = CliRunner().invoke(cli, ["history", "--db", str(db), "--format", "json"])
    runs = json.loads(history.output)["runs"]
    assert len(runs) == 1 and runs[0]["requests"] == doc["run"]["requests"]
    assert any(f["severity"] in ("high", "critical") for f in doc["findings"])
    gate = ["report", "--merge", *files, "--out", str(tmp_path / "gate"), "--no-history"]
    assert CliRunner().invoke(cli, [*gate, "--fail-on", "high"]).exit_code == 1
    assert CliRunner().invoke(cli, [*gate, "--fail-on", "bogus"]).exit_code == 2


def _shard_doc(shard_files, count: int, index: int) -> dict:
    return json.loads(shard_files[count][index - 1].read_text())


@pytest.mark.parametrize("case,message", [
    ("missing", "missing 3/3"),
    ("twice", "given twice"),
    ("mixed", "shard count differs"),
    ("not_a_shard", "no shard section"),
    ("garbage", "not valid JSON"),
    ("lost_unit", "ran in no shard"),
])
def test_bad_shard_sets_exit_2_and_leave_history_alone(shard_files, tmp_path: Path, case: str,
                                                       message: str) -> None:
    three = [str(p) for p in shard_files[3]]
    files = {"missing": three[:2], "twice": [three[0], three[0], three[1], three[2]],
             "mixed": [three[0], str(shard_files[2][1]), three[2]]}.get(case, three)
    if case == "not_a_shard":
        doc = _shard_doc(shard_files, 3, 2)
        del doc["shard"]
        files = [three[0], _write(tmp_path / "plain.json", doc), three[2]]
    elif case == "garbage":
        files = [three[0], _write(tmp_path / "bad.json", None, text="{not json"), three[2]]
    elif case == "lost_unit":
        doc = _shard_doc(shard_files, 3, 2)
        check = next(c for c in doc["shard"]["checks"] if c["indices"])
        for key in ("indices", "units", "records"):
            check[key] = check[key][1:]
        files = [three[0], _write(tmp_path / "lost.json", doc), three[2]]
    db = tmp_path / "hist.db"
    res = CliRunner().invoke(cli, ["report", "--merge", *files, "--out", str(tmp_path / "out"), "--db", str(db)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not db.exists() and not (tmp_path / "out").exists()


def _write(path: Path, doc: dict | None, text: str | None = None) -> str:
    path.write_text(text if text is not None else json.dumps(doc), encoding="utf-8")
    return str(path)
