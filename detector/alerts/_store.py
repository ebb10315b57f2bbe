"""The alert store: SQLite file by default, PostgreSQL by URL (SQLAlchemy 2.0 ORM).

Reads, status changes and evidence are here; alerts from track events in :mod:`detector.alerts._apply`.

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
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, undefer

from detector.alerts._apply import RESUME_TOLERANCE_HZ as RESUME_TOLERANCE_HZ
from detector.alerts._apply import TrackEventMixin, _public, _utcnow
from detector.alerts._models import AlertRow, EvidenceRow, HistoryRow
from detector.alerts._schemas import (
    FINAL_STATUSES,
    AlertHistoryEntry,
    AlertPublic,
    EvidenceInfo,
)
from detector.alerts.db import Database, DatabaseStore, list_conditions, open_database
from detector.core.errors import InputError
from detector.core.timefmt import utc_iso

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


class InvalidTransition(InputError):
    """A status change the alert lifecycle does not allow (e.g. ``closed`` → ``acknowledged``)."""


def _history_public(h: HistoryRow) -> AlertHistoryEntry:
    return AlertHistoryEntry(seq=h.seq, alert_id=h.alert_id, version=h.version, status=h.status, cause=h.cause,
                             fields=list(h.fields or []), changes=dict(h.changes or {}), reason=h.reason or "",
                             actor=h.actor, at=h.at)


class AlertStore(TrackEventMixin, DatabaseStore):
    """Alerts with a lifecycle, a version, a history and evidence; see the module docstring.

    Build it with :func:`open_store`. All methods are thread-safe. The track events
    (:meth:`apply`, :meth:`apply_event`) come from :class:`~detector.alerts._apply.TrackEventMixin`.
    """

    #: whose store this is (the SSE stream's ``ready`` event says it)
    role = "vehicle"

    def __init__(self, engine: Engine, *, data_dir: Path, url: str) -> None:
        #: the engine, its session factories and the write transaction (shared with the center)
        self.db = Database(engine, url=url, what="alert store")
        self.data_dir = Path(data_dir)
        #: hooks run inside each write transaction after an alert changed: ``hook(session, alert)``
        self.on_change: list[Callable[[Session, AlertPublic], None]] = []

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


# --- opening -------------------------------------------------------------------------------------
def open_store(url: str | None = None, *, data_dir: Path, readonly: bool = False) -> AlertStore:
    """Open the alert store; an empty database gets its schema from the migrations.

    ``url`` ``None`` → the SQLite file ``data_dir/examwatch.db`` (directories created); a
    ``sqlite:///PATH`` URL → that file; ``postgresql://…``, ``postgres://…`` or
    ``postgresql+psycopg://…`` → PostgreSQL through psycopg 3. A bad URL or an unreachable
    database raises :class:`~detector.core.errors.InputError`; a schema that is older (run
    ``examwatch db upgrade``), newer (made by a newer release) or another store's raises
    :class:`~detector.alerts.schema.SchemaError`. A database made before migrations is adopted as
    revision 1 (see :mod:`detector.alerts.schema`).

    ``readonly`` (``report`` and other commands that only read): nothing is written, no table
    created; a missing file or a database without this store's schema is refused with
    :class:`~detector.core.errors.InputError`; writes through the store fail.
    """
    from detector.alerts.schema import VEHICLE_SCHEMA

    engine, safe = open_database(url, data_dir=data_dir, default_file="examwatch.db", schema=VEHICLE_SCHEMA,
                                 what="alert database", readonly=readonly)
    return AlertStore(engine, data_dir=Path(data_dir), url=safe)
