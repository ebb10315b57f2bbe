"""The spill file of alert changes still queued at stop (:mod:`detector.pipeline.pending`): where
it goes (:func:`spill_paths`), its line format (:func:`spill_line`, :func:`parse_spill_line`), its
progress marker and whole-file writes."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

from detector.core.errors import InputError
from detector.detection.events import event_from_json, json_safe

__all__ = ["SPILL_SUFFIX", "SPILL_FORMAT", "default_state_dir", "spill_paths", "spill_line", "parse_spill_line"]

log = logging.getLogger("examwatch.store")

#: name ending of a spill file next to a SQLite store (``examwatch.db`` → ``examwatch.db.pending.jsonl``)
SPILL_SUFFIX = ".pending.jsonl"
#: version of the spill file's format (its header's ``examwatch_pending``)
SPILL_FORMAT = 1
# event fields some ``to_json`` leave out (MissingEvent, JammingEvent) that ``event_from_json`` reads
_EXTRA_FIELDS = ("severity", "score_terms", "location", "first_seen_utc", "last_seen_utc", "peak_dbm")


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder for state outside the data folder: ``$XDG_STATE_HOME/examwatch``, else
    ``~/.local/state/examwatch`` (not created here)."""
    base = environ.get("XDG_STATE_HOME")
    return (Path(base) if base else Path.home() / ".local" / "state") / "examwatch"


def spill_paths(store, state_dir: Path, tag: str | None = None) -> tuple[Path, ...]:
    """Where the changes queued for ``store`` are spilled at stop, in order of preference: next to a
    SQLite file, then ``state_dir/pending-<sha256 of the store's path or URL, 12 hex>.jsonl`` (the
    only place for PostgreSQL). Empty for a store without a file or URL (SQLite in memory: it does
    not outlive the process either). ``tag`` (a receiver's name, when a monitor has several) is
    added to the file names (``<store>.pending-<tag>.jsonl``): each receiver spills and restores
    its own queue."""
    engine = getattr(store, "engine", None)
    url = getattr(engine, "url", None)
    if url is None:
        return ()
    if url.get_backend_name() == "sqlite":
        db = url.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:") or "mode=memory" in db:
            return ()
        f = Path(db).expanduser().absolute()
        key = str(f)
        suffix = SPILL_SUFFIX if tag is None else SPILL_SUFFIX.replace(".jsonl", f"-{tag}.jsonl")
        first: tuple[Path, ...] = (f.with_name(f.name + suffix),)
    else:
        key = url.render_as_string(hide_password=True)
        first = ()
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return first + (Path(state_dir) / (f"pending-{digest}.jsonl" if tag is None else f"pending-{digest}-{tag}.jsonl"),)


def _encode(v: Any) -> Any:
    """A keyword argument of ``store.apply`` as JSON: datetimes (full precision, with their
    offset), bytes, paths and sets tagged so that :func:`_decode` gives them back. Raises
    ``TypeError`` for a value of another type."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else {"$float": repr(v)}
    if isinstance(v, datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, bytes):
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if isinstance(v, PurePath):
        return {"$path": str(v)}
    if isinstance(v, (set, frozenset)):
        return {"$set": sorted((_encode(x) for x in v), key=repr)}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _encode(x) for k, x in v.items()}
    raise TypeError(f"a {type(v).__name__} cannot be written as JSON")


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            (tag, x), = v.items()
            if tag == "$datetime":
                return datetime.fromisoformat(x)
            if tag == "$bytes":
                return base64.b64decode(x)
            if tag == "$path":
                return Path(x)
            if tag == "$set":
                return {_decode(y) for y in x}
            if tag == "$float":
                return float(x)
        return {k: _decode(x) for k, x in v.items()}
    return v


def spill_line(event, kw: Mapping[str, Any]) -> tuple[str, list[str]]:
    """One line of a spill file for a queued ``store.apply(event, **kw)``, and the keywords that
    could not be written (left out of the line; the caller logs them).

    The line is ``{"event": <event.to_json(), with the fields it leaves out>, "kw": {...}}``; in
    ``kw``, ``when`` (a datetime) is ``{"$datetime": ISO 8601}`` with its microseconds, ``resume``
    (a set of alert ids) ``{"$set": [...]}``; bytes, paths and non-finite floats are tagged alike.
    Raises ``TypeError`` when the event itself has no JSON (no ``to_json``)."""
    to_json = getattr(event, "to_json", None)
    if to_json is None:
        raise TypeError(f"a {type(event).__name__} has no JSON (no to_json)")
    d = dict(to_json())
    for name in _EXTRA_FIELDS:
        v = getattr(event, name, None)
        if name not in d and v is not None and v != {}:
            d[name] = v
    out: dict[str, Any] = {}
    left_out = []
    for k, v in kw.items():
        try:
            out[k] = _encode(v)
        except TypeError as exc:
            left_out.append(f"{k} ({exc})")
    return json.dumps({"event": json_safe(d), "kw": out}, allow_nan=False, separators=(",", ":")), left_out


def parse_spill_line(line: str) -> tuple[object, dict[str, Any]]:
    """``(event, kw)`` from a line made by :func:`spill_line`. Raises :class:`InputError` for a line
    that is not one."""
    try:
        d = json.loads(line)
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}") from None
    if not isinstance(d, dict) or not isinstance(d.get("event"), dict) or not isinstance(d.get("kw", {}), dict):
        raise InputError("not a spilled alert change (no \"event\" object)")
    kw = _decode(d.get("kw", {}))
    return event_from_json(d["event"]), kw


@dataclass
class _Restored:
    """A spill file loaded at start: its changes are at the head of the queue until written."""

    path: Path
    id: str
    #: lines of changes in the file
    total: int
    #: the last line (1-based, after the header) whose change is in the store (or refused, logged)
    done: int
    #: changes of the file loaded and not yet in the store
    left: int = 0

    @property
    def marker(self) -> Path:
        return self.path.with_name(self.path.name + ".done")


def _write_whole(path: Path, body: str, *, sync: bool = True) -> None:
    """``body`` into ``path``, whole or not at all (a temporary file beside it, replacing it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(body)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc.strerror or exc)


def _read_marker(path: Path, fid: str) -> int:
    """How many changes of the spill file ``path`` (id ``fid``) are already in the store."""
    marker = path.with_name(path.name + ".done")
    try:
        got_id, _, n = marker.read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        return 0
    return int(n) if got_id == fid and n.isdigit() else 0
