"""Sensors for query languages and loaders that raise no audit event of their own.

- XPath: lxml evaluates XPath in C (`_Element.xpath` cannot be wrapped), but it calls Python
  extension functions registered in the global function namespace. `bastion-sensor('<canary>')`
  is one: an injected call to it proves that request data became XPath syntax and was evaluated.
  It returns false, so an expression carrying it selects what it would have selected without it.
- LDAP: `ldap3.Connection.search` is wrapped; the filter text is recorded before ldap3 parses it.
- marshal: the `marshal.loads` audit event carries the bytes being loaded.

Everything passes straight through when no sensor session is active.
"""

from __future__ import annotations

import functools
from typing import Any

from bastion.sensors import hook

# The XPath function name an XPath injection payload calls (a valid NCName, unlikely in any app).
XPATH_SENSOR_FUNCTION = "bastion-sensor"
_installed = False


def install() -> None:
    """Register the XPath function, wrap ldap3 and watch marshal (once per process; hook.install calls it)."""
    global _installed
    if _installed:
        return
    _installed = True
    hook._HANDLERS.setdefault("marshal.loads", _on_marshal_loads)
    _install_xpath()
    _install_ldap3()


def _record(kind: str, detail: str) -> None:
    session = hook.active_session()
    if session is not None and not getattr(hook._busy, "on", False):
        hook._busy.on = True
        try:
            hook._emit(session, kind, detail)
        finally:
            hook._busy.on = False


def _on_marshal_loads(session: Any, args: tuple[Any, ...]) -> None:
    data = args[0] if args else b""
    if isinstance(data, bytes | bytearray):
        hook._emit(session, "unmarshal", bytes(data[:2000]).decode("latin-1"))


def _xpath_sensor(_context: Any, *args: Any) -> bool:
    """Called by lxml when an evaluated expression contains `bastion-sensor(...)`."""
    _record("xpath", "XPath evaluated bastion-sensor(" + ", ".join(_xpath_text(a) for a in args) + ")")
    return False


def _xpath_text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_xpath_text(v) for v in value)
    return str(value)[:200]


def _install_xpath() -> None:
    try:
        from lxml import etree
    except ImportError:
        return
    namespace = etree.FunctionNamespace(None)
    if XPATH_SENSOR_FUNCTION not in namespace:
        namespace[XPATH_SENSOR_FUNCTION] = _xpath_sensor


def _install_ldap3() -> None:
    try:
        from ldap3 import Connection
    except ImportError:
        return
    original = Connection.search
    if getattr(original, "__bastion_sensor__", False):
        return

    @functools.wraps(original)
    def search(self: Any, search_base: Any, search_filter: Any, *args: Any, **kwargs: Any) -> Any:
        if hook.active_session() is not None:
            _record("ldap", f"search base={search_base} filter={search_filter}")
        return original(self, search_base, search_filter, *args, **kwargs)

    search.__bastion_sensor__ = True  # type: ignore[attr-defined]
    Connection.search = search  # type: ignore[method-assign]
