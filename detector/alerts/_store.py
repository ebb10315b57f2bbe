"""The alert store: SQLite file by default, PostgreSQL by URL (SQLAlchemy 2.0 ORM).

Concurrency
    One ``Session`` per call from a thread-safe ``sessionmaker`` (``expire_on_commit=False``), so the
    capture thread and API request handlers can share one :class:`AlertStore`. Every write is one
    transaction. On PostgreSQL the alert row is locked (``SELECT … FOR UPDATE``) for the
    read-modify-write; a lost race on creating the same track's alert (unique key) is retried. On
    SQLite, writes start with ``BEGIN IMMEDIATE`` (pysqlite's own implicit BEGIN is switched off), so
    writers queue on the database lock (busy timeout 5 s) instead of failing when a read snapshot
    cannot be upgraded; reads use a plain deferred ``BEGIN`` and see one consistent snapshot.

Durability
    SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction is in the WAL file
    (the OS has it) before ``commit`` returns, so it survives the process being killed (SIGKILL) at
    any point; only a power cut or OS crash may lose the last transactions before a checkpoint.
    PostgreSQL gives the server's normal durability.

Evidence
    Stored in the database (``LargeBinary``) in the same transaction as the alert's version bump;
    see :mod:`detector.alerts._models`.

Hooks
    ``store.on_change`` is a list of ``hook(session, alert_public)`` callables, run inside the write
    transaction after the alert row has changed (and been flushed), for every change that bumps
    ``version``: the outbox of issue 7 adds its row with the same ``session`` so that alert and
    outbox commit together. A hook that raises rolls the whole change back, and the error propagates.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, undefer

from detector.alerts._models import AlertRow, Base, EvidenceRow, HistoryRow, to_utc
from detector.alerts._schemas import (
    AUTO_STATUSES,
    FINAL_STATUSES,
    AlertHistoryEntry,
    AlertPublic,
    EvidenceInfo,
)
from detector.alerts.db import Database, list_conditions, open_database
from detector.core.errors import InputError
from detector.core.timefmt import utc_iso
from detector.detection.events import MISSING_PREFIX, DetectionEvent, event_from_json, json_safe

__all__ = ["AlertStore", "InvalidTransition", "open_store", "EVIDENCE_NAME_RE", "MAX_EVIDENCE_BYTES"]

#: allowed evidence file names
EVIDENCE_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,100}/[A-Za-z0-9!#$&^_.+-]{1,100}(\s*;.{0,200})?")
#: largest evidence file accepted (64 MiB: ~30 s of 1 MS/s cu8)
MAX_EVIDENCE_BYTES = 64 * 1024 * 1024

# set_status: which targets each status allows
_TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "dismissed", "closed"}),
    "updated": frozenset({"acknowledged", "dismissed", "closed"}),
    "located": frozenset({"acknowledged", "dismissed", "closed"}),
    "acknowledged": frozenset({"dismissed", "closed"}),
    "dismissed": frozenset({"closed"}),
    "closed": frozenset(),
}
_SETTABLE = ("acknowledged", "dismissed", "closed")
# scalar fields whose old/new values go into a history row's ``changes``
_SCALAR_FIELDS = ("status", "severity", "center_hz", "bandwidth_hz", "classification", "first_seen", "last_seen",
                  "first_seen_s", "last_seen_s", "snr_db", "excess_db", "peak_dbfs", "bursts")
#: a track of a restarted run continues an open alert of the run before within this (or half
#: either bandwidth) of its center
RESUME_TOLERANCE_HZ = 5000.0


class InvalidTransition(InputError):
    """A status change the alert lifecycle does not allow (e.g. ``closed`` → ``acknowledged``)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(v: datetime) -> str:
    return utc_iso(v)


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _is_located(loc: Mapping | None) -> bool:
    return isinstance(loc, Mapping) and loc.get("status") == "located"


def _merge_location(old: dict | None, new: dict | None) -> dict | None:
    """The newer estimate wins, except that a missing one, or an unlocated one after a located one,
    does not replace what is known."""
    if new is None:
        return old
    if _is_located(old) and not _is_located(new):
        return old
    return new


def _public(row: AlertRow) -> AlertPublic:
    return AlertPublic(
        id=row.id, site=row.site, status=row.status, severity=row.severity, center_hz=row.center_hz,
        bandwidth_hz=row.bandwidth_hz, classification=row.classification, first_seen=row.first_seen,
        last_seen=row.last_seen, first_seen_s=row.first_seen_s, last_seen_s=row.last_seen_s, snr_db=row.snr_db,
        excess_db=row.excess_db, peak_dbfs=row.peak_dbfs, bursts=row.bursts, reasons=list(row.reasons or []),
        score_terms=dict(row.score_terms or {}), location=row.location,
        evidence=[{"name": e.name, "media_type": e.media_type, "sha256": e.sha256, "size_bytes": e.size_bytes}
                  for e in sorted(row.evidence_items, key=lambda e: e.name)],
        version=row.version, track_id=row.track_id, run_id=row.run_id, created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _history_public(h: HistoryRow) -> AlertHistoryEntry:
    return AlertHistoryEntry(seq=h.seq, alert_id=h.alert_id, version=h.version, status=h.status, cause=h.cause,
                             fields=list(h.fields or []), changes=dict(h.changes or {}), reason=h.reason or "",
                             actor=h.actor, at=h.at)


def _change_value(v: Any) -> Any:
    return _iso(v) if isinstance(v, datetime) else v


class AlertStore:
    """Alerts with a lifecycle, a version, a history and evidence; see the module docstring.

    Build it with :func:`open_store`. All methods are thread-safe.
    """

    #: whose store this is (the SSE stream's ``ready`` event says it)
    role = "vehicle"

    def __init__(self, engine: Engine, *, data_dir: Path, url: str) -> None:
        #: the engine, its session factories and the write transaction (shared with the center)
        self.db = Database(engine, url=url, what="alert store")
        self.data_dir = Path(data_dir)
        #: hooks run inside each write transaction after an alert changed: ``hook(session, alert)``
        self.on_change: list[Callable[[Session, AlertPublic], None]] = []

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.db.url

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.db.backend

    # --- plumbing --------------------------------------------------------------------------------
    def _notify(self, s: Session, row: AlertRow) -> AlertPublic:
        s.flush()
        pub = _public(row)
        for hook in list(self.on_change):
            hook(s, pub)
        return pub

    @staticmethod
    def _lock(s: Session, alert_id: str) -> AlertRow | None:
        return s.scalars(select(AlertRow).where(AlertRow.id == alert_id).with_for_update()).one_or_none()

    # --- track events ----------------------------------------------------------------------------
    def apply_event(self, event: Mapping, *, site: str, run_id: str, when: datetime | None = None,
                    resume: Collection[str] = ()) -> AlertPublic | None:
        """:meth:`apply` for an event given as its JSON object (a ``replay --jsonl`` line, a test's
        dict): parsed by :func:`~detector.detection.events.event_from_json`; ``None`` for an event
        that does not alert. Raises :class:`InputError` for a malformed one."""
        if not isinstance(event, Mapping):
            raise InputError(f"A track event must be a dict, not {type(event).__name__}.")
        if not (event.get("alert") is True or str(event.get("event") or "update") == "missing"):
            return None
        if not site or not isinstance(site, str) or not run_id or not isinstance(run_id, str):
            raise InputError("apply_event needs a non-empty site and run_id.")
        return self.apply(event_from_json(event), site=site, run_id=run_id, when=when, resume=resume)

    def apply(self, event: DetectionEvent, *, site: str, run_id: str, when: datetime | None = None,
              resume: Collection[str] = ()) -> AlertPublic | None:
        """Create or update the alert of a detection event; ``None`` for an event that does not alert.

        Alerting events are tracks with ``alert`` true and every
        :class:`~detector.detection.events.MissingEvent`. The alert is keyed by ``(site, run_id,
        track_id)``. Returns the alert after the event (unchanged, with no version bump, when the
        event changes nothing). ``when`` (default: now) is the wall-clock time of the event's
        ``last_seen_s``; it dates the alert when the event has no ``first_seen_utc``/``last_seen_utc``.

        ``resume`` holds ids of open alerts left by an earlier run of this site (a restarted
        monitor passes what it reloaded). A track of this run with no alert yet continues the
        nearest of them within ``RESUME_TOLERANCE_HZ`` (or half either bandwidth) instead of
        raising a second alert for the same transmitter: the alert keeps its id and history, is
        re-keyed to this run's track, and the change is recorded with the cause ``event:resumed``.
        """
        kind = event.kind
        if not (event.alert or event.is_missing):
            return None
        if not site or not isinstance(site, str) or not run_id or not isinstance(run_id, str):
            raise InputError("apply needs a non-empty site and run_id.")
        track_id = event.track_id
        when = _utcnow() if when is None else to_utc(when)
        fs_s, ls_s = event.first_seen_s, event.last_seen_s
        fs_utc = None if event.first_seen_utc is None else to_utc(event.first_seen_utc)
        ls_utc = None if event.last_seen_utc is None else to_utc(event.last_seen_utc)
        last_seen = ls_utc or when
        if fs_utc is not None:
            first_seen = fs_utc
        elif fs_s is not None and ls_s is not None:
            first_seen = last_seen - timedelta(seconds=max(0.0, ls_s - fs_s))
        else:
            first_seen = last_seen
        first_seen = min(first_seen, last_seen)
        ev = {
            "center_hz": event.center_hz,
            "bandwidth_hz": event.bandwidth_hz,
            "classification": event.classification or None,
            "severity": event.severity or None,
            "first_seen": first_seen, "last_seen": last_seen, "first_seen_s": fs_s, "last_seen_s": ls_s,
            "snr_db": event.snr_db, "excess_db": event.excess_db, "peak_dbfs": event.peak_dbfs,
            "bursts": int(event.bursts or 0),
            "reasons": list(event.reasons),
            "score_terms": json_safe(dict(event.score_terms)),
            "location": json_safe(event.location) if isinstance(event.location, Mapping) else None,
            "track": json_safe(event.to_json()),
            "has_first_utc": fs_utc is not None,
        }

        def tx(s: Session) -> AlertPublic:
            row = s.scalars(select(AlertRow).where(AlertRow.site == site, AlertRow.run_id == run_id,
                                                   AlertRow.track_id == track_id).with_for_update()).one_or_none()
            now = _utcnow()
            if row is None and resume:
                row = self._resumable(s, ev, site=site, ids=resume, track_id=track_id, missing=kind == "missing")
                if row is not None:
                    old_key = f"run {row.run_id}, track {row.track_id}"
                    row.run_id, row.track_id = run_id, track_id
                    return self._update(s, row, ev, kind="resumed", now=now, force=True,
                                        reason=f"monitor restarted: run {run_id}, track {track_id} continues {old_key}")
            if row is None:
                return self._create(s, ev, site=site, run_id=run_id, track_id=track_id, kind=kind, now=now)
            return self._update(s, row, ev, kind=kind, now=now)

        return self.db.write(tx)

    @staticmethod
    def _resumable(s: Session, ev: dict, *, site: str, ids: Collection[str], track_id: str, missing: bool) -> AlertRow | None:
        """The open alert among ``ids`` of this site that the event continues, locked for update:
        for a ``missing`` event the same surveyed station (same key), else the track alert
        nearest in frequency within tolerance."""
        rows = s.scalars(select(AlertRow).where(AlertRow.id.in_(list(ids)), AlertRow.site == site,
                                                AlertRow.status.not_in(FINAL_STATUSES)).with_for_update()).all()
        if missing:
            return next((r for r in rows if r.track_id == track_id), None)
        best, best_d = None, math.inf
        for r in rows:
            if r.track_id.startswith(MISSING_PREFIX):
                continue
            tol = max(RESUME_TOLERANCE_HZ, (r.bandwidth_hz or 0.0) / 2, (ev["bandwidth_hz"] or 0.0) / 2)
            d = abs(r.center_hz - ev["center_hz"])
            if d <= tol and d < best_d:
                best, best_d = r, d
        return best

    def _create(self, s: Session, ev: dict, *, site: str, run_id: str, track_id: str, kind: str, now: datetime) -> AlertPublic:
        status = "located" if _is_located(ev["location"]) else "new"
        row = AlertRow(
            id="A-" + uuid.uuid4().hex[:12], site=site, run_id=run_id, track_id=track_id, status=status,
            severity=ev["severity"] or "medium", center_hz=ev["center_hz"], bandwidth_hz=ev["bandwidth_hz"],
            classification=ev["classification"] or "unknown", first_seen=ev["first_seen"], last_seen=ev["last_seen"],
            first_seen_s=ev["first_seen_s"], last_seen_s=ev["last_seen_s"], snr_db=ev["snr_db"],
            excess_db=ev["excess_db"], peak_dbfs=ev["peak_dbfs"], bursts=ev["bursts"], reasons=ev["reasons"],
            score_terms=ev["score_terms"], location=ev["location"], track=ev["track"], version=1,
            created_at=now, updated_at=now,
        )
        row.evidence_items = []
        s.add(row)
        s.flush()
        fields = ["status", *[f for f in _SCALAR_FIELDS if f != "status"], "reasons", "score_terms", "location", "track"]
        s.add(HistoryRow(alert_id=row.id, version=1, status=status, cause=f"event:{kind}", fields=fields,
                         changes={"status": [None, status]}, reason="created", actor=None, at=now))
        return self._notify(s, row)

    def _update(self, s: Session, row: AlertRow, ev: dict, *, kind: str, now: datetime, force: bool = False,
                reason: str = "") -> AlertPublic:
        last_seen = max(row.last_seen, ev["last_seen"])
        last_seen_s = ev["last_seen_s"] if row.last_seen_s is None or (ev["last_seen_s"] or -math.inf) >= row.last_seen_s \
            else row.last_seen_s
        if row.status in FINAL_STATUSES:
            # not reopened: only remember that the emitter is still (or again) on the air
            new = {"last_seen": last_seen, "last_seen_s": last_seen_s}
        else:
            location = _merge_location(row.location, ev["location"])
            new = {
                "severity": ev["severity"] or row.severity,
                "center_hz": ev["center_hz"],
                "bandwidth_hz": ev["bandwidth_hz"] if ev["bandwidth_hz"] is not None else row.bandwidth_hz,
                "classification": ev["classification"] or row.classification,
                "first_seen": min(row.first_seen, ev["first_seen"]) if ev["has_first_utc"] else row.first_seen,
                "last_seen": last_seen,
                "first_seen_s": row.first_seen_s if ev["first_seen_s"] is None else ev["first_seen_s"],
                "last_seen_s": last_seen_s,
                "snr_db": _max(row.snr_db, ev["snr_db"]),
                "excess_db": _max(row.excess_db, ev["excess_db"]),
                "peak_dbfs": _max(row.peak_dbfs, ev["peak_dbfs"]),
                "bursts": max(row.bursts or 0, ev["bursts"]),
                "reasons": ev["reasons"] or row.reasons,
                "score_terms": ev["score_terms"] or row.score_terms,
                "location": location,
                "track": ev["track"],
            }
        diff = {k: (getattr(row, k), v) for k, v in new.items() if getattr(row, k) != v}
        if not diff and not force:
            return _public(row)
        if row.status in AUTO_STATUSES:
            status = "located" if _is_located(new.get("location")) else "updated"
            if status != row.status:
                diff["status"] = (row.status, status)
        for k, (_, v) in diff.items():
            setattr(row, k, v)
        return self._bump(s, row, cause=f"event:{kind}", diff=diff, now=now, reason=reason)

    def _bump(self, s: Session, row: AlertRow, *, cause: str, diff: dict, now: datetime, reason: str = "",
              actor: str | None = None) -> AlertPublic:
        row.version += 1
        row.updated_at = now
        fields = sorted(diff, key=lambda k: (k != "status", k))
        changes = {k: [_change_value(o), _change_value(n)] for k, (o, n) in diff.items() if k in _SCALAR_FIELDS}
        s.add(HistoryRow(alert_id=row.id, version=row.version, status=row.status, cause=cause, fields=fields,
                         changes=changes, reason=reason, actor=actor, at=now))
        return self._notify(s, row)

    # --- reads -----------------------------------------------------------------------------------
    def get(self, alert_id: str) -> AlertPublic | None:
        """The alert, or ``None`` for an unknown id."""
        with self.db.reader() as s:
            row = s.get(AlertRow, alert_id)
            return None if row is None else _public(row)

    def find_by_track(self, site: str, run_id: str, track_id: str) -> AlertPublic | None:
        """The alert raised by a track of a run, or ``None``."""
        with self.db.reader() as s:
            row = s.scalars(select(AlertRow).where(AlertRow.site == site, AlertRow.run_id == run_id,
                                                   AlertRow.track_id == track_id)).one_or_none()
            return None if row is None else _public(row)

    def list(
        self,
        *,
        site: str | None = None,
        status: str | Iterable[str] | None = None,
        since: datetime | None = None,
        f_min_hz: float | None = None,
        f_max_hz: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AlertPublic], int]:
        """Alerts, newest ``last_seen`` first, and the number matching the filters (ignoring paging).

        ``status`` is one status or several; ``since`` keeps ``last_seen >= since`` (naive = UTC);
        ``f_min_hz``/``f_max_hz`` bound ``center_hz`` (inclusive). ``limit`` must be 1–1000 and
        ``offset`` ≥ 0, else :class:`~detector.core.errors.InputError` (a ``ValueError``).
        """
        conds = list_conditions(AlertRow, site=site, status=status, since=since, f_min_hz=f_min_hz,
                                f_max_hz=f_max_hz, limit=limit, offset=offset)
        with self.db.reader() as s:
            total = s.scalar(select(func.count()).select_from(AlertRow).where(*conds)) or 0
            rows = s.scalars(select(AlertRow).where(*conds).order_by(AlertRow.last_seen.desc(), AlertRow.id)
                             .limit(limit).offset(offset)).all()
            return [_public(r) for r in rows], int(total)

    def open_alerts(self, site: str | None = None) -> list[AlertPublic]:
        """Alerts not dismissed or closed (oldest first): what a restarted monitor reloads."""
        with self.db.reader() as s:
            q = select(AlertRow).where(AlertRow.status.not_in(FINAL_STATUSES))
            if site is not None:
                q = q.where(AlertRow.site == site)
            return [_public(r) for r in s.scalars(q.order_by(AlertRow.created_at, AlertRow.id)).all()]

    def history(self, alert_id: str) -> list[AlertHistoryEntry]:
        """The changes of an alert, version 1 first (empty for an unknown id)."""
        with self.db.reader() as s:
            rows = s.scalars(select(HistoryRow).where(HistoryRow.alert_id == alert_id).order_by(HistoryRow.version)).all()
            return [_history_public(h) for h in rows]

    def track_summary(self, alert_id: str) -> dict | None:
        """The last track event applied to the alert (the stored ``track`` JSON), or ``None``."""
        with self.db.reader() as s:
            return s.scalar(select(AlertRow.track).where(AlertRow.id == alert_id))

    # --- status ----------------------------------------------------------------------------------
    def set_status(self, alert_id: str, status: Literal["acknowledged", "dismissed", "closed"], reason: str = "",
                   actor: str | None = None) -> AlertPublic:
        """Acknowledge, dismiss or close an alert (bumps ``version``, records reason and actor).

        Raises ``KeyError`` for an unknown id, :class:`InputError` for a status that cannot be set,
        :class:`InvalidTransition` for a change the lifecycle forbids (closed → anything,
        dismissed → acknowledged). Setting the status the alert already has changes nothing.
        """
        if status not in _SETTABLE:
            raise InputError(f"status must be one of {', '.join(_SETTABLE)}, not {status!r}.")
        reason = "" if reason is None else str(reason)

        def tx(s: Session) -> AlertPublic:
            row = self._lock(s, alert_id)
            if row is None:
                raise KeyError(alert_id)
            if row.status == status:
                return _public(row)
            if status not in _TRANSITIONS[row.status]:
                raise InvalidTransition(f"alert {alert_id} is {row.status} and cannot become {status}.")
            diff = {"status": (row.status, status)}
            row.status = status
            return self._bump(s, row, cause="status", diff=diff, now=_utcnow(), reason=reason, actor=actor)

        return self.db.write(tx)

    # --- evidence --------------------------------------------------------------------------------
    def add_evidence(self, alert_id: str, name: str, data: bytes, media_type: str) -> EvidenceInfo:
        """Attach a file to an alert (replacing one of the same name); bumps ``version``.

        ``name`` must match ``[A-Za-z0-9._-]{1,100}`` and not be ``.`` or ``..``; ``media_type`` a
        MIME type; at most :data:`MAX_EVIDENCE_BYTES`. The same bytes and type again change nothing.
        """
        if not isinstance(name, str) or not EVIDENCE_NAME_RE.fullmatch(name) or name in (".", ".."):
            raise InputError(f"evidence name {name!r} is not allowed; use 1-100 characters of A-Z a-z 0-9 . _ -.")
        if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.fullmatch(media_type):
            raise InputError(f"media type {media_type!r} is not a MIME type such as 'audio/wav'.")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError(f"evidence data must be bytes, not {type(data).__name__}.")
        data = bytes(data)
        if len(data) > MAX_EVIDENCE_BYTES:
            raise InputError(f"evidence {name} has {len(data)} bytes, more than the {MAX_EVIDENCE_BYTES} allowed.")
        info = EvidenceInfo(name=name, media_type=media_type, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

        def tx(s: Session) -> EvidenceInfo:
            row = self._lock(s, alert_id)
            if row is None:
                raise KeyError(alert_id)
            now = _utcnow()
            old = next((e for e in row.evidence_items if e.name == name), None)
            if old is not None and old.sha256 == info.sha256 and old.media_type == media_type:
                return info
            if old is None:
                row.evidence_items.append(EvidenceRow(name=name, media_type=media_type, sha256=info.sha256,
                                                      size_bytes=info.size_bytes, created_at=now, data=data))
                why = f"evidence {name} added"
            else:
                old.media_type, old.sha256, old.size_bytes, old.created_at, old.data = (
                    media_type, info.sha256, info.size_bytes, now, data)
                why = f"evidence {name} replaced"
            self._bump(s, row, cause="evidence", diff={"evidence": (None, name)}, now=now, reason=why)
            return info

        return self.db.write(tx)

    def evidence(self, alert_id: str, name: str) -> tuple[bytes, EvidenceInfo] | None:
        """The bytes and description of an evidence file, or ``None``."""
        with self.db.reader() as s:
            e = s.scalars(select(EvidenceRow).options(undefer(EvidenceRow.data))
                          .where(EvidenceRow.alert_id == alert_id, EvidenceRow.name == name)).one_or_none()
            if e is None:
                return None
            return bytes(e.data), EvidenceInfo(name=e.name, media_type=e.media_type, sha256=e.sha256,
                                               size_bytes=e.size_bytes)

    # --- the event stream (SSE) ------------------------------------------------------------------
    def last_event_seq(self) -> int:
        """The last history sequence number (0 when empty): the SSE stream's event id."""
        with self.db.reader() as s:
            return int(s.scalar(select(func.max(HistoryRow.seq))) or 0)

    def events_after(self, after_seq: int, limit: int = 500) -> list[dict]:
        """Alert changes with ``seq > after_seq``, oldest first: ``{"seq", "alert_id", "version",
        "status", "cause", "fields", "at", "alert"}`` (``alert``: the alert as it is now, JSON)."""
        with self.db.reader() as s:
            hist = s.scalars(select(HistoryRow).where(HistoryRow.seq > after_seq).order_by(HistoryRow.seq).limit(limit)).all()
            ids = sorted({h.alert_id for h in hist})
            alerts = ({r.id: _public(r).model_dump(mode="json") for r in s.scalars(select(AlertRow).where(AlertRow.id.in_(ids))).all()}
                      if ids else {})
            return [{"seq": h.seq, "alert_id": h.alert_id, "version": h.version, "status": h.status, "cause": h.cause,
                     "fields": list(h.fields or []), "at": utc_iso(h.at), "alert": alerts.get(h.alert_id)} for h in hist]

    # --- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the connections (SQLite checkpoints its WAL when the last one closes)."""
        self.db.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- opening -------------------------------------------------------------------------------------
def open_store(url: str | None = None, *, data_dir: Path) -> AlertStore:
    """Open (and create the tables of) the alert store.

    ``url`` ``None`` → the SQLite file ``data_dir/examwatch.db`` (directories created); a
    ``sqlite:///PATH`` URL → that file; ``postgresql://…``, ``postgres://…`` or
    ``postgresql+psycopg://…`` → PostgreSQL through psycopg 3. A bad URL or an unreachable
    database raises :class:`~detector.core.errors.InputError`.
    """
    engine, safe = open_database(url, data_dir=data_dir, default_file="examwatch.db", metadata=Base.metadata,
                                 what="alert database")
    return AlertStore(engine, data_dir=Path(data_dir), url=safe)
