"""OSV advisories for (package, version) pairs: the batch API with an on-disk cache, or an offline directory.

Online: `POST {url}/v1/querybatch` names the advisories per package version, `GET {url}/v1/vulns/{id}`
fetches each one (both cached under `.bastion/osv-cache/` for a TTL). Offline: a directory in OSV's
export format (one JSON advisory per file, e.g. the unzipped `PyPI/all.zip`). Either way the match is
re-checked here against `affected[].ranges` (type ECOSYSTEM) and `affected[].versions` with
`packaging.version`, so a server that lies about which versions an advisory affects is not believed.

Hostile input: every response is size-capped and validated (JSON shape, advisory ids safe to use in a
URL and a file name); a slow server hits the timeout. Any of these ends in `OsvError` naming the URL
or file; one malformed advisory in an offline directory is skipped with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bastion.errors import BastionError
from bastion.static.files import Skipped

DEFAULT_OSV_URL = "https://api.osv.dev"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_ADVISORY_BYTES = 4 * 1024 * 1024
MAX_OFFLINE_FILES = 400_000
MAX_BATCH = 1000  # OSV's documented limit of queries per querybatch call
MAX_PAGES = 5
MAX_ADVISORIES = 5_000
DEFAULT_TIMEOUT_S = 15.0
DEFAULT_TTL_S = 24 * 3600.0
ECOSYSTEM = "PyPI"
# Advisory ids go into URLs and cache file names: OSV ids look like GHSA-xxxx-..., PYSEC-2021-1, CVE-...
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class OsvError(BastionError):
    """The OSV source (URL, offline directory or cache) is unusable; the message names it."""


@dataclass(frozen=True)
class Match:
    """An advisory that affects one package version, with the versions that fix it."""

    advisory: dict[str, Any]
    fixed: tuple[str, ...]


@dataclass
class OsvStats:
    queried: int = 0
    from_cache: int = 0
    advisories: int = 0
    notes: list[str] = field(default_factory=list)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def _event_key(event: dict[str, Any]) -> tuple[int, Version]:
    """Sort key of a range event; introduced "0" sorts before every version."""
    kind, value = next(iter(event.items()))
    if kind == "introduced" and value == "0":
        return (0, Version("0"))
    parsed = _version(str(value))
    if parsed is None:
        raise ValueError(value)
    return (1, parsed)


def in_range(version: Version, events: list[dict[str, Any]]) -> bool:
    """OSV range evaluation: affected from each `introduced` up to `fixed` / `last_affected` / `limit`."""
    usable = [e for e in events if isinstance(e, dict) and len(e) == 1
              and next(iter(e)) in ("introduced", "fixed", "last_affected", "limit")]
    try:
        ordered = sorted(usable, key=_event_key)
    except ValueError:
        return False  # a version packaging cannot order: cannot decide, do not claim
    affected = False
    for event in ordered:
        kind, value = next(iter(event.items()))
        bound = Version("0") if value == "0" else Version(str(value))
        if kind == "introduced" and version >= bound:
            affected = True
        elif kind == "fixed" and version >= bound:
            affected = False
        elif kind == "last_affected" and version > bound:
            affected = False
        elif kind == "limit" and version >= bound:
            affected = False
    return affected


def match_advisory(advisory: dict[str, Any], name: str, version: str, *,
                   trust_unranged: bool = False) -> Match | None:
    """Whether `advisory` affects PyPI `name` at `version` (ranges and version lists checked here)."""
    if advisory.get("withdrawn"):
        return None
    parsed = _version(version)
    hit = False
    fixed: set[str] = set()
    for affected in advisory.get("affected") or []:
        if not isinstance(affected, dict):
            continue
        pkg = affected.get("package") or {}
        if not isinstance(pkg, dict) or str(pkg.get("ecosystem", "")).split(":")[0] != ECOSYSTEM:
            continue
        if canonicalize_name(str(pkg.get("name", ""))) != name:
            continue
        versions = [str(v) for v in affected.get("versions") or [] if isinstance(v, str | int | float)]
        ranges = [r for r in affected.get("ranges") or []
                  if isinstance(r, dict) and r.get("type") == "ECOSYSTEM" and isinstance(r.get("events"), list)]
        this = version in versions or (parsed is not None and any(_version(v) == parsed for v in versions))
        for rng in ranges:
            if parsed is not None and in_range(parsed, rng["events"]):
                this = True
                fixed |= {str(e["fixed"]) for e in rng["events"] if isinstance(e, dict) and "fixed" in e}
        if not versions and not ranges and trust_unranged:
            this = True  # only GIT ranges: the server's word is all there is
        hit = hit or this
    if not hit:
        return None
    return Match(advisory=advisory, fixed=tuple(sorted(fixed, key=lambda v: _version(v) or Version("0"))))


def check_advisory(doc: Any, origin: str) -> dict[str, Any]:
    """The advisory if it has the shape Bastion reads; OsvError naming `origin` otherwise."""
    if not isinstance(doc, dict):
        raise OsvError(f"{origin}: advisory is not a JSON object")
    if not isinstance(doc.get("id"), str) or not _SAFE_ID.match(doc["id"]):
        raise OsvError(f"{origin}: advisory has no valid 'id'")
    if not isinstance(doc.get("affected", []), list):
        raise OsvError(f"{origin}: 'affected' is not a list")
    for key in ("aliases", "severity"):
        if not isinstance(doc.get(key, []), list):
            raise OsvError(f"{origin}: '{key}' is not a list")
    return doc


def _loads(raw: bytes, origin: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise OsvError(f"{origin}: not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise OsvError(f"{origin}: invalid JSON ({str(exc)[:120]})") from None


# ---------------------------------------------------------------- offline directory


class OfflineOsv:
    """Advisories from a directory of OSV JSON files (read once, only the requested packages kept)."""

    def __init__(self, directory: str | Path, skipped: list[Skipped] | None = None) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise OsvError(f"{directory}: --osv-offline needs a directory of OSV JSON advisories")
        self.skipped = skipped if skipped is not None else []
        self.stats = OsvStats()

    def advisories(self, packages: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Match]]:
        """Matching advisories per (normalised name, version)."""
        wanted: dict[str, set[str]] = {}
        for name, version in packages:
            wanted.setdefault(name, set()).add(version)
        by_name = self._index(set(wanted))
        out: dict[tuple[str, str], list[Match]] = {}
        for name, versions in wanted.items():
            for version in versions:
                matches = [m for adv in by_name.get(name, []) if (m := match_advisory(adv, name, version))]
                out[(name, version)] = sorted(matches, key=lambda m: m.advisory["id"])
        self.stats.queried = sum(len(versions) for versions in wanted.values())
        return out

    def _index(self, names: set[str]) -> dict[str, list[dict[str, Any]]]:
        by_name: dict[str, list[dict[str, Any]]] = {}
        count = 0
        for root, dirs, files in os.walk(self.directory, followlinks=False):
            dirs.sort()
            for fname in sorted(files):
                if not fname.endswith(".json"):
                    continue
                count += 1
                if count > MAX_OFFLINE_FILES:
                    raise OsvError(f"{self.directory}: more than {MAX_OFFLINE_FILES} advisory files")
                path = Path(root) / fname
                doc = self._read(path)
                if doc is None:
                    continue
                for affected in doc.get("affected") or []:
                    pkg = affected.get("package") if isinstance(affected, dict) else None
                    if isinstance(pkg, dict) and canonicalize_name(str(pkg.get("name", ""))) in names:
                        by_name.setdefault(canonicalize_name(str(pkg["name"])), []).append(doc)
                        self.stats.advisories += 1
                        break
        return by_name

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            if path.is_symlink() or path.stat().st_size > MAX_ADVISORY_BYTES:
                self.skipped.append(Skipped(str(path), "advisory file is a symlink or too large"))
                return None
            raw = path.read_bytes()
            return check_advisory(_loads(raw, str(path)), str(path))
        except OsvError as exc:
            self.skipped.append(Skipped(str(path), str(exc).removeprefix(f"{path}: ")))
        except OSError as exc:
            self.skipped.append(Skipped(str(path), f"cannot read: {exc.strerror or exc}"))
        return None


# ---------------------------------------------------------------- online API with cache


class OsvClient:
    """OSV's HTTP API (querybatch + vulns/{id}) behind a TTL cache on disk."""

    def __init__(self, url: str = DEFAULT_OSV_URL, *, cache_dir: str | Path | None = ".bastion/osv-cache",
                 ttl_s: float = DEFAULT_TTL_S, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not re.match(r"^https?://[^\s/]+", url):
            raise OsvError(f"{url}: --osv-url must be an http(s) URL")
        self.url = url.rstrip("/")
        self.cache = Path(cache_dir) if cache_dir else None
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.stats = OsvStats()

    def advisories(self, packages: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Match]]:
        """Matching advisories per (normalised name, version), re-checked locally."""
        import httpx

        keys = sorted(set(packages))
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False, trust_env=False) as http:
            ids = self._query(http, keys)
            wanted = sorted({i for found in ids.values() for i in found})
            if len(wanted) > MAX_ADVISORIES:
                raise OsvError(f"{self.url}: server named {len(wanted)} advisories (limit {MAX_ADVISORIES})")
            details = {i: self._vuln(http, i) for i in wanted}
        out: dict[tuple[str, str], list[Match]] = {}
        for key in keys:
            name, version = key
            matches = [m for i in ids.get(key, []) if (m := match_advisory(details[i], name, version,
                                                                             trust_unranged=True))]
            out[key] = sorted(matches, key=lambda m: m.advisory["id"])
        self.stats.advisories = len(details)
        return out

    # -- querybatch

    def _query(self, http: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        ids: dict[tuple[str, str], list[str]] = {}
        todo = []
        for key in keys:
            cached = self._cache_get("query", _query_key(self.url, key))
            if isinstance(cached, list) and all(isinstance(i, str) and _SAFE_ID.match(i) for i in cached):
                ids[key] = cached
                self.stats.from_cache += 1
            else:
                todo.append(key)
        for start in range(0, len(todo), MAX_BATCH):
            chunk = todo[start:start + MAX_BATCH]
            results = self._batch(http, [_query_body(k) for k in chunk])
            for key, result in zip(chunk, results, strict=True):
                found = self._ids(result)
                token, pages = result.get("next_page_token"), 0
                while token and pages < MAX_PAGES:  # one package with more advisories than a page
                    pages += 1
                    more = self._batch(http, [{**_query_body(key), "page_token": str(token)}])[0]
                    found += self._ids(more)
                    token = more.get("next_page_token")
                ids[key] = sorted(set(found))
                self._cache_put("query", _query_key(self.url, key), ids[key])
        self.stats.queried = len(keys)
        return ids

    def _batch(self, http: Any, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        endpoint = f"{self.url}/v1/querybatch"
        doc = self._request(http, "POST", endpoint, {"queries": queries})
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list) or len(results) != len(queries):
            raise OsvError(f"{endpoint}: answer is not a querybatch result ({len(queries)} results expected)")
        if not all(isinstance(r, dict) for r in results):
            raise OsvError(f"{endpoint}: a querybatch result is not an object")
        return results

    def _ids(self, result: dict[str, Any]) -> list[str]:
        vulns = result.get("vulns", [])
        if not isinstance(vulns, list):
            raise OsvError(f"{self.url}/v1/querybatch: 'vulns' is not a list")
        out = []
        for v in vulns:
            vid = v.get("id") if isinstance(v, dict) else None
            if not isinstance(vid, str) or not _SAFE_ID.match(vid):
                raise OsvError(f"{self.url}/v1/querybatch: advisory id {str(vid)[:40]!r} is not a valid OSV id")
            out.append(vid)
        return out

    # -- vulns/{id}

    def _vuln(self, http: Any, vid: str) -> dict[str, Any]:
        cached = self._cache_get("vulns", vid)
        if isinstance(cached, dict) and cached.get("id") == vid:
            try:
                return check_advisory(cached, "cache")
            except OsvError:
                pass  # a damaged cache entry is fetched again
        endpoint = f"{self.url}/v1/vulns/{vid}"
        doc = check_advisory(self._request(http, "GET", endpoint, None), endpoint)
        if doc["id"] != vid and vid not in (doc.get("aliases") or []):
            raise OsvError(f"{endpoint}: answer is advisory {doc['id']!r}, not {vid!r}")
        self._cache_put("vulns", vid, doc)
        return doc

    def _request(self, http: Any, method: str, endpoint: str, body: Any) -> Any:
        import httpx

        try:
            with http.stream(method, endpoint, json=body) as resp:
                if resp.status_code != 200:
                    raise OsvError(f"{endpoint}: HTTP {resp.status_code}")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                    raise OsvError(f"{endpoint}: answer larger than {MAX_RESPONSE_BYTES} bytes")
                chunks, size = [], 0
                for chunk in resp.iter_raw():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise OsvError(f"{endpoint}: answer larger than {MAX_RESPONSE_BYTES} bytes")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise OsvError(f"{endpoint}: no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise OsvError(f"{endpoint}: request failed ({type(exc).__name__}: {exc})") from None
        return _loads(b"".join(chunks), endpoint)

    # -- cache

    def _cache_path(self, kind: str, key: str) -> Path | None:
        return self.cache / kind / f"{key}.json" if self.cache else None

    def _cache_get(self, kind: str, key: str) -> Any:
        path = self._cache_path(kind, key)
        try:
            if path is None or time.time() - path.stat().st_mtime > self.ttl_s:
                return None
            if path.stat().st_size > MAX_ADVISORY_BYTES:
                return None
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None  # missing, expired or damaged: ask the server

    def _cache_put(self, kind: str, key: str, value: Any) -> None:
        path = self._cache_path(kind, key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(value), encoding="utf-8")
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:
            self.stats.notes.append(f"OSV cache not written ({path}): {exc.strerror or exc}")


def _query_body(key: tuple[str, str]) -> dict[str, Any]:
    return {"package": {"name": key[0], "ecosystem": ECOSYSTEM}, "version": key[1]}


def _query_key(url: str, key: tuple[str, str]) -> str:
    return hashlib.sha256("\x1f".join((url, *key)).encode()).hexdigest()[:32]
