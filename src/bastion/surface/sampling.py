"""Pick a small, representative set of GET requests for site-wide checks (headers, banners, CORS)."""

from __future__ import annotations

from collections.abc import Callable

from bastion.surface.model import EntryPoint, Surface
from bastion.surface.requests import RequestSpec, build_request


def _rank(ep: EntryPoint) -> tuple[int, str]:
    """Plain pages first, then templated paths, then entry points that need inputs we can only guess."""
    required = [i for i in ep.inputs if i.required and i.location != "path"]
    templated = "{" in ep.path
    return (2 if required else 1 if templated else 0, ep.path)


def sample_get_requests(surface: Surface, limit: int = 20, *, include_root: bool = True,
                        prefer: Callable[[EntryPoint], bool] | None = None) -> list[
        tuple[EntryPoint | None, RequestSpec]]:
    """Up to `limit` GET requests: `/` first, then GET entry points at their benign defaults.

    Entry points for which `prefer` is true come before the others (e.g. API routes for CORS).

    The entry point is returned with each request (None for a root that is not in the surface) so a
    finding can be located at the path template rather than at a concrete URL.
    """
    out: list[tuple[EntryPoint | None, RequestSpec]] = []
    seen: set[str] = set()
    root = surface.get("GET", "/")
    if include_root:
        out.append((root, build_request(root) if root else RequestSpec(method="GET", path="/")))
        seen.add("/")
    def order(ep: EntryPoint) -> tuple[bool, tuple[int, str]]:
        return (not prefer(ep) if prefer else False, _rank(ep))

    for ep in sorted((e for e in surface.entry_points if e.method == "GET"), key=order):
        if len(out) >= limit:
            break
        spec = build_request(ep)
        if spec.path in seen:  # one response per concrete path is enough for site-wide checks
            continue
        seen.add(spec.path)
        out.append((ep, spec))
    return out[:limit]
