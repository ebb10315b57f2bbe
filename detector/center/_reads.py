"""The command center's reads, with the signatures of ``AlertStore``'s (``get``, ``list``,
``open_alerts``, ``history``, ``evidence``), the event stream (SSE) and the vehicles' overview: a
mixin :class:`~detector.center.store.CenterStore` inherits, and the helpers it shares with the
store's writes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import undefer

from detector.alerts import FINAL_STATUSES, AlertHistoryEntry, EvidenceInfo
from detector.alerts._models import to_utc
from detector.alerts.db import Database, list_conditions
from detector.center._models import CenterAlertRow, CenterEvidenceRow, IngestRow, VehicleRow
from detector.center.schemas import CenterAlert
from detector.core.timefmt import utc_iso

__all__ = ["CenterReadsMixin"]


_SCALARS = ("status", "severity", "center_hz", "bandwidth_hz", "classification", "first_seen", "last_seen",
            "snr_db", "excess_db", "peak_dbfs", "bursts")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(v: datetime | None) -> str | None:
    return None if v is None else utc_iso(v)


def _scalar_diff(old: dict | None, new: dict) -> tuple[list[str], dict]:
    if old is None:
        return ["status"], {"status": [None, new.get("status")]}
    skip = {"version", "updated_at", "received_at"}
    fields = sorted((k for k in new if k not in skip and old.get(k) != new.get(k)), key=lambda k: (k != "status", k))
    changes = {k: [old.get(k), new.get(k)] for k in fields if k in _SCALARS}
    return fields, changes


class CenterReadsMixin:
    """The reads of :class:`~detector.center.store.CenterStore` (a mixin): uses the store's ``db``
    (its readers) and ``_unflushed`` (versions ingested, not yet on the vehicle row)."""

    db: Database
    _unflushed: dict[str, int]

    @staticmethod
    def _alert(row: CenterAlertRow) -> CenterAlert:
        return CenterAlert.model_validate({**row.payload, "vehicle_id": row.vehicle_id, "received_at": row.received_at})

    def get(self, alert_id: str) -> CenterAlert | None:
        with self.db.reader() as s:
            row = s.get(CenterAlertRow, alert_id)
            return None if row is None else self._alert(row)

    def list(self, *, site: str | None = None, status: str | Iterable[str] | None = None, since: datetime | None = None,
             f_min_hz: float | None = None, f_max_hz: float | None = None, limit: int = 100, offset: int = 0,
             vehicle_id: str | None = None) -> tuple[list[CenterAlert], int]:
        """Alerts, newest ``last_seen`` first, and how many match (as ``AlertStore.list``)."""
        conds = list_conditions(CenterAlertRow, site=site, status=status, since=since, f_min_hz=f_min_hz,
                                f_max_hz=f_max_hz, limit=limit, offset=offset)
        if vehicle_id is not None:
            conds.append(CenterAlertRow.vehicle_id == vehicle_id)
        with self.db.reader() as s:
            total = s.scalar(select(func.count()).select_from(CenterAlertRow).where(*conds)) or 0
            rows = s.scalars(select(CenterAlertRow).where(*conds)
                             .order_by(CenterAlertRow.last_seen.desc(), CenterAlertRow.id).limit(limit).offset(offset)).all()
            return [self._alert(r) for r in rows], int(total)

    def all_alerts(self) -> list[CenterAlert]:
        """Every alert (for tests and exports), by id."""
        with self.db.reader() as s:
            return [self._alert(r) for r in s.scalars(select(CenterAlertRow).order_by(CenterAlertRow.id)).all()]

    def open_alerts(self, site: str | None = None) -> list[CenterAlert]:
        """Alerts not dismissed or closed, oldest first."""
        with self.db.reader() as s:
            q = select(CenterAlertRow).where(CenterAlertRow.status.not_in(FINAL_STATUSES))
            if site is not None:
                q = q.where(CenterAlertRow.site == site)
            return [self._alert(r) for r in s.scalars(q.order_by(CenterAlertRow.created_at, CenterAlertRow.id)).all()]

    def history(self, alert_id: str) -> list[AlertHistoryEntry]:
        """The versions of an alert the center received, oldest version first (``seq`` = ingest sequence)."""
        with self.db.reader() as s:
            rows = s.scalars(select(IngestRow).where(IngestRow.alert_id == alert_id).order_by(IngestRow.version)).all()
            out, prev = [], None
            for r in rows:
                fields, changes = _scalar_diff(prev, r.payload)
                out.append(AlertHistoryEntry(seq=r.seq, alert_id=r.alert_id, version=r.version, status=r.payload["status"],
                                             cause=f"push:{r.transport}", fields=fields, changes=changes,
                                             reason="" if r.applied else "arrived after a newer version",
                                             actor=r.vehicle_id, at=r.received_at))
                prev = r.payload
            return out

    def evidence(self, alert_id: str, name: str) -> tuple[bytes, EvidenceInfo] | None:
        with self.db.reader() as s:
            e = s.scalars(select(CenterEvidenceRow).options(undefer(CenterEvidenceRow.data))
                          .where(CenterEvidenceRow.alert_id == alert_id, CenterEvidenceRow.name == name)).one_or_none()
            if e is None:
                return None
            return bytes(e.data), EvidenceInfo(name=e.name, media_type=e.media_type, sha256=e.sha256, size_bytes=e.size_bytes)

    def ingest_count(self) -> int:
        with self.db.reader() as s:
            return int(s.scalar(select(func.count()).select_from(IngestRow)) or 0)

    def ingest_keys(self) -> list[str]:
        with self.db.reader() as s:
            return list(s.scalars(select(IngestRow.idempotency_key).order_by(IngestRow.seq)).all())

    # --- the event stream (SSE) --------------------------------------------------------------------
    def last_event_seq(self) -> int:
        with self.db.reader() as s:
            return int(s.scalar(select(func.max(IngestRow.seq))) or 0)

    def events_after(self, after_seq: int, limit: int = 500) -> list[dict]:
        """Ingest events with ``seq > after_seq``, oldest first: ``{"seq", "alert_id", "version",
        "vehicle_id", "applied", "alert"}`` (``alert``: the version received)."""
        with self.db.reader() as s:
            rows = s.scalars(select(IngestRow).where(IngestRow.seq > after_seq).order_by(IngestRow.seq).limit(limit)).all()
            return [{"seq": r.seq, "alert_id": r.alert_id, "version": r.version, "vehicle_id": r.vehicle_id,
                     "applied": r.applied, "transport": r.transport, "received_at": _iso(r.received_at),
                     "alert": r.payload} for r in rows]

    # --- overview ----------------------------------------------------------------------------------
    def vehicles(self, known: Iterable[str] = (), silent_after_s: float = 60.0) -> list[dict]:
        now = _now()
        with self.db.reader() as s:
            rows = {v.vehicle_id: v for v in s.scalars(select(VehicleRow)).all()}
            counts: dict[str, dict[str, Any]] = {}
            for vid, site, n, n_open in s.execute(
                    select(CenterAlertRow.vehicle_id, CenterAlertRow.site, func.count(),
                           func.sum(case((CenterAlertRow.status.not_in(FINAL_STATUSES), 1), else_=0)))
                    .group_by(CenterAlertRow.vehicle_id, CenterAlertRow.site)).all():
                c = counts.setdefault(vid, {"alerts": 0, "open_alerts": 0, "sites": []})
                c["alerts"] += int(n)
                c["open_alerts"] += int(n_open or 0)
                c["sites"].append(site)
        out = []
        for vid in sorted(set(known) | set(rows)):
            v = rows.get(vid)
            age = None if v is None else max(0.0, (now - to_utc(v.last_contact)).total_seconds())
            c = counts.get(vid, {"alerts": 0, "open_alerts": 0, "sites": []})
            out.append({"vehicle_id": vid, "last_contact": _iso(v.last_contact) if v else None,
                        "seconds_since_contact": None if age is None else round(age, 3),
                        "silent": age is None or age > silent_after_s, "transport": v.transport if v else None,
                        "site": v.site if v else None, "alert_sites": sorted(c["sites"]), "alerts": c["alerts"],
                        "open_alerts": c["open_alerts"], "versions_received": (v.ingested if v else 0) + self._unflushed.get(vid, 0),
                        "health": v.health if v else None, "spectrum_at": _iso(v.spectrum_at) if v else None})
        return out

    def vehicle_spectrum(self, vehicle_id: str) -> dict | None:
        with self.db.reader() as s:
            v = s.get(VehicleRow, vehicle_id)
            if v is None or v.spectrum is None:
                return None
            return {"vehicle_id": vehicle_id, "site": v.site, "at": _iso(v.spectrum_at), "spectrum": v.spectrum}

    def overview(self, known: Iterable[str] = (), silent_after_s: float = 60.0) -> dict:
        """Sites (alerts, open alerts by severity, vehicles), vehicles (last contact, silent)."""
        vehicles = self.vehicles(known, silent_after_s)
        with self.db.reader() as s:
            open_ = CenterAlertRow.status.not_in(FINAL_STATUSES)
            sites: dict[str, dict] = {}
            for site, n, n_open, last in s.execute(
                    select(CenterAlertRow.site, func.count(), func.sum(case((open_, 1), else_=0)),
                           func.max(CenterAlertRow.last_seen)).group_by(CenterAlertRow.site)).all():
                sites[site] = {"site": site, "alerts": int(n), "open_alerts": int(n_open or 0),
                               "open_by_severity": {}, "last_alert_seen": _iso(last), "vehicles": []}
            for site, sev, n in s.execute(select(CenterAlertRow.site, CenterAlertRow.severity, func.count())
                                          .where(open_).group_by(CenterAlertRow.site, CenterAlertRow.severity)).all():
                sites[site]["open_by_severity"][sev or "unknown"] = int(n)
        for v in vehicles:
            for site in {*(v["alert_sites"]), *([v["site"]] if v["site"] else [])}:
                entry = sites.setdefault(site, {"site": site, "alerts": 0, "open_alerts": 0, "open_by_severity": {},
                                                "last_alert_seen": None, "vehicles": []})
                entry["vehicles"].append(v["vehicle_id"])
        for entry in sites.values():
            entry["vehicles"] = sorted(set(entry["vehicles"]))
        return {"generated_at": _iso(_now()), "silent_after_s": silent_after_s,
                "sites": [sites[k] for k in sorted(sites)],
                "open_alerts": sum(e["open_alerts"] for e in sites.values()),
                "vehicles": vehicles, "silent_vehicles": [v["vehicle_id"] for v in vehicles if v["silent"]]}
