"""Track events into alerts: the half of :class:`~detector.alerts._store.AlertStore` that creates and
updates alerts from detection events (:meth:`~TrackEventMixin.apply`,
:meth:`~TrackEventMixin.apply_event`; a restarted run resuming the open alerts of the run before;
version bumps with their history rows), as a mixin the store inherits, and the row helpers it
shares with the store (:func:`_public`, the location merge, the history's scalar fields).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.alerts._models import AlertRow, HistoryRow, to_utc
from detector.alerts._schemas import AUTO_STATUSES, FINAL_STATUSES, AlertPublic
from detector.alerts.db import Database
from detector.core.errors import InputError
from detector.core.timefmt import utc_iso
from detector.detection.events import (
    DECLARED_JAMMER_PREFIX,
    JAMMING_PREFIX,
    MISSING_PREFIX,
    OVERLOAD_PREFIX,
    DetectionEvent,
    event_from_json,
    json_safe,
)

__all__ = ["TrackEventMixin", "RESUME_TOLERANCE_HZ"]


# scalar fields whose old/new values go into a history row's ``changes``
_SCALAR_FIELDS = ("status", "severity", "center_hz", "bandwidth_hz", "classification", "first_seen", "last_seen",
                  "first_seen_s", "last_seen_s", "snr_db", "excess_db", "peak_dbfs", "bursts")
#: a track of a restarted run continues an open alert of the run before within this (or half
#: either bandwidth) of its center
RESUME_TOLERANCE_HZ = 5000.0


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


def _change_value(v: Any) -> Any:
    return _iso(v) if isinstance(v, datetime) else v


class TrackEventMixin:
    """Alerts from track events, mixed into :class:`~detector.alerts._store.AlertStore`: uses the
    store's ``db`` (its write transaction) and ``_notify`` (the ``on_change`` hooks)."""

    db: Database

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
        :class:`~detector.detection.events.MissingEvent`,
        :class:`~detector.detection.events.JammingEvent`,
        :class:`~detector.detection.events.OverloadEvent` and
        :class:`~detector.detection.events.DeclaredJammerEvent` (its ``ended`` event updates the
        same alert: ``last_seen`` and the reasons say when the jammer came back). The alert is keyed by ``(site, run_id,
        track_id)``. Returns the alert after the event (unchanged, with no version bump, when the
        event changes nothing). ``when`` (default: now) is the wall-clock time of the event's
        ``last_seen_s``; it dates the alert when the event has no ``first_seen_utc``/``last_seen_utc``,
        and it dates the change (the history row's ``at``, the alert's ``updated_at``).

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
            # the change is dated when it happened (``when``), not when it is written: a change that
            # waited for a store that was down keeps its own time in the history
            now = when
            if row is None and resume:
                row = self._resumable(s, ev, site=site, ids=resume, track_id=track_id,
                                      missing=kind in ("missing", "jamming", "overload", "declared_jammer"))
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
        for a ``missing`` event the same surveyed station (same key), for a ``jamming`` event the
        same band (same key), for a ``declared_jammer`` event the same jammer (same key), else the
        track alert nearest in frequency within tolerance."""
        rows = s.scalars(select(AlertRow).where(AlertRow.id.in_(list(ids)), AlertRow.site == site,
                                                AlertRow.status.not_in(FINAL_STATUSES)).with_for_update()).all()
        if missing:
            return next((r for r in rows if r.track_id == track_id), None)
        best, best_d = None, math.inf
        for r in rows:
            if r.track_id.startswith((MISSING_PREFIX, JAMMING_PREFIX, OVERLOAD_PREFIX, DECLARED_JAMMER_PREFIX)):
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
