"""Template sensor: jinja2 templates compiled from strings at run time (`from_string`, `Template(...)`).

A template built from a string inside a request is where server-side template injection happens:
the event carries the template source (excerpt), so a probe's canary or payload inside it proves
that request data became template code. `Template(source)` and Flask's `render_template_string`
both go through `Environment.from_string`, so one wrapper sees all three.
"""

from __future__ import annotations

import sys
from typing import Any

from bastion.sensors import hook

_installed = False


def install() -> None:
    """Wrap `jinja2.Environment.from_string` (once per process; a pass-through without a session)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        import jinja2
    except ImportError:
        return
    original = jinja2.Environment.from_string
    if getattr(original, "__bastion_sensor__", False):
        return

    def from_string(self: Any, source: Any, globals: Any = None, template_class: Any = None) -> Any:
        session = hook.active_session()
        if session is not None and not hook.busy():
            _record(session, source)
        return original(self, source, globals, template_class)

    from_string.__wrapped__ = original  # type: ignore[attr-defined]
    from_string.__bastion_sensor__ = True  # type: ignore[attr-defined]
    jinja2.Environment.from_string = from_string  # type: ignore[method-assign]


def _record(session: Any, source: Any) -> None:
    text = source if isinstance(source, str) else getattr(source, "source", None)
    if not isinstance(text, str):
        return  # a pre-parsed AST: no request text to look for
    hook.emit_at(session, "template", text, sys._getframe(2))
