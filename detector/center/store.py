"""The command center's store: pushed alerts from many vehicles (SQLite by default, PostgreSQL by URL).

Choice: the center has its *own* tables (:mod:`detector.push._models`) instead of replaying pushed
versions into an :class:`~detector.alerts.AlertStore`, because the center must keep the vehicle's
alert ids and versions exactly (an ``AlertStore`` makes its own ids and bumps its own versions) and
must de-duplicate by idempotency key. :class:`CenterStore` offers the read methods of
``AlertStore`` with the same signatures (``list``, ``get``, ``history``, ``open_alerts``,
``evidence``), so the vehicle's HTTP routes (``detector.api.app.build_router``) serve it unchanged;
its alerts are :class:`CenterAlert` (an ``AlertPublic`` plus ``vehicle_id`` and ``received_at``).

Ingest (:meth:`CenterStore.ingest`), in one transaction: an idempotency key already seen is a
duplicate (answered, not stored again); otherwise an ``center_ingest`` row is added (its ``seq`` is
the center's ingest sequence and SSE event id) and the alert row is replaced when the pushed
version is newer than the stored one (an older version arriving late is recorded but not applied:
the center keeps the newest). An alert id already held for another vehicle is refused. A batch
(:meth:`CenterStore.ingest_many`, ``POST /ingest/batch``) is one transaction: two reads for the
whole batch, one insert per version, one write per alert. Ingests are serialised by a
process-wide lock so that ingest sequence numbers commit in order (one center process per
database). Contact times are written at most once a second per vehicle during ingest.

The center does not change alerts: acknowledging, dismissing and closing happen on the vehicle,
whose next push brings the new status (``set_status`` answers with an error).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session, undefer

from detector.alerts import FINAL_STATUSES, AlertHistoryEntry, AlertPublic, EvidenceInfo
from detector.alerts._models import to_utc
from detector.alerts._store import EVIDENCE_NAME_RE, MAX_EVIDENCE_BYTES
from detector.alerts.db import Database, list_conditions, open_database
from detector.core.errors import InputError
from detector.push.messages import SpectrumSummary
from detector.center._models import CenterAlertRow, CenterBase, CenterEvidenceRow, IngestRow, VehicleRow
from detector.core.timefmt import utc_iso

__all__ = ["CenterAlert", "CenterStore", "Heartbeat", "IngestError", "IngestResult", "open_center_store", "load_vehicle_tokens"]

_SCALARS = ("status", "severity", "center_hz", "bandwidth_hz", "classification", "first_seen", "last_seen",
            "snr_db", "excess_db", "peak_dbfs", "bursts")


class IngestError(InputError):
    """A pushed alert the center refuses (bad body, key mismatch, id of another vehicle)."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.alert_id: str | None = None


class Heartbeat(BaseModel):
    """A vehicle's heartbeat (HTTP ``POST /ingest/heartbeat`` or MQTT ``…/status``): who, where,
    when (``at``, UNIX seconds) and its ``/health``, push counters and a spectrum summary.
    Anything else is refused (422), so that a stray body never replaces a vehicle's health."""

    model_config = ConfigDict(extra="forbid")
    vehicle_id: str | None = None
    site: str | None = None
    at: float | None = None
    health: dict | None = None
    push: dict | None = None
    spectrum: SpectrumSummary | None = None

    @classmethod
    def parse(cls, body) -> "Heartbeat":
        """Validate ``body``; :class:`IngestError` (422) names the first problem."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise IngestError(f"heartbeat: {'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}") from None

    def status(self) -> dict:
        """What the center keeps as the vehicle's health (everything but the spectrum)."""
        return self.model_dump(exclude={"spectrum"})

    def spectrum_dict(self) -> dict | None:
        return None if self.spectrum is None else self.spectrum.model_dump()


class CenterAlert(AlertPublic):
    """An alert as the center shows it: the vehicle's alert plus who pushed it and when it arrived."""

    vehicle_id: str
    received_at: datetime | None = None


@dataclass
class IngestResult:
    status: str  # stored | stale | duplicate
    seq: int | None
    version: int
    need_evidence: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(v: datetime | None) -> str | None:
    return None if v is None else utc_iso(v)


def load_vehicle_tokens(path: Path) -> dict[str, str]:
    """Parse a vehicle-tokens file: one ``vehicle_id token`` per line; ``#`` starts a comment.

    Returns ``{token: vehicle_id}``. Malformed lines, repeated vehicle ids and repeated tokens are
    an :class:`InputError` naming the line.
    """
    path = Path(path)
    from detector.core.textfile import read_text

    text = read_text(path, "--vehicle-tokens")
    tokens: dict[str, str] = {}
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{path}:{n}: expected 'vehicle_id token', got {len(parts)} field(s).")
        vid, tok = parts
        if vid in seen:
            raise InputError(f"{path}:{n}: vehicle {vid!r} is listed twice.")
        if tok in tokens:
            raise InputError(f"{path}:{n}: the token of {vid!r} is also the token of {tokens[tok]!r}.")
        if len(tok) < 8:
            raise InputError(f"{path}:{n}: the token of {vid!r} is shorter than 8 characters.")
        seen.add(vid)
        tokens[tok] = vid
    return tokens


def _scalar_diff(old: dict | None, new: dict) -> tuple[list[str], dict]:
    if old is None:
        return ["status"], {"status": [None, new.get("status")]}
    skip = {"version", "updated_at", "received_at"}
    fields = sorted((k for k in new if k not in skip and old.get(k) != new.get(k)), key=lambda k: (k != "status", k))
    changes = {k: [old.get(k), new.get(k)] for k in fields if k in _SCALARS}
    return fields, changes


class CenterStore:
    """The center's store (see the module docstring). Thread-safe."""

    #: whose store this is (the SSE stream's ``ready`` event says it)
    role = "center"

    def __init__(self, engine, *, url: str) -> None:
        #: the engine, its session factories and the (serialised) write transaction
        self.db = Database(engine, url=url, what="center store", serialize_writes=True)
        self._touched: dict[str, tuple[float, tuple]] = {}
        self._unflushed: dict[str, int] = {}  # versions ingested, not yet added to the vehicle row

    @property
    def engine(self):
        return self.db.engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.db.url

    @property
    def backend(self) -> str:
        return self.db.backend

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CenterStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _touch(s: Session, vehicle_id: str, transport: str, *, site: str | None = None, ingested: int = 0,
               health: dict | None = None, spectrum: dict | None = None) -> None:
        now = _now()
        v = s.get(VehicleRow, vehicle_id, with_for_update=True)
        if v is None:
            v = VehicleRow(vehicle_id=vehicle_id, last_contact=now, transport=transport, site=site, ingested=0)
            s.add(v)
        v.last_contact = now
        v.transport = transport
        if site:
            v.site = site
        v.ingested = (v.ingested or 0) + ingested
        if health is not None:
            v.health = health
        if spectrum is not None:
            v.spectrum = spectrum
            v.spectrum_at = now

    # --- writes ------------------------------------------------------------------------------------
    def ingest(self, vehicle_id: str, body: dict, idempotency_key: str | None = None, *, transport: str = "http") -> IngestResult:
        """Store one pushed alert version (see the module docstring). Raises :class:`IngestError`."""
        res = self.ingest_many(vehicle_id, [(body, idempotency_key)], transport=transport)[0]
        if isinstance(res, IngestError):
            raise res
        return res

    @staticmethod
    def _validate(vehicle_id: str, body, idempotency_key: str | None) -> tuple[AlertPublic, dict, str]:
        if not isinstance(body, dict):
            raise IngestError("the body must be a JSON object (an alert plus vehicle_id)")
        if body.get("vehicle_id") not in (None, vehicle_id):
            raise IngestError(f"vehicle_id {body.get('vehicle_id')!r} is not the authenticated vehicle {vehicle_id!r}", 403)
        try:
            alert = AlertPublic.model_validate({k: v for k, v in body.items() if k not in ("vehicle_id", "received_at")})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise IngestError(f"not an alert: {where}: {first.get('msg')}") from None
        key = f"{alert.id}:{alert.version}"
        if idempotency_key and idempotency_key != key:
            raise IngestError(f"Idempotency-Key {idempotency_key!r} does not match the alert ({key!r})")
        payload = alert.model_dump(mode="json")
        payload["vehicle_id"] = vehicle_id
        return alert, payload, key

    def ingest_many(self, vehicle_id: str, items: list[tuple[dict, str | None]], *,
                    transport: str = "http") -> list[IngestResult | IngestError]:
        """Store several pushed versions, in order, in one transaction; one result per item: an
        :class:`IngestResult` or the :class:`IngestError` that refused it. After a refused item,
        the later items of the *same alert* are not stored (``IngestResult("skipped", …)``), so
        that an alert's versions are applied in order."""
        checked: list[tuple[AlertPublic, dict, str] | IngestError] = []
        for body, key in items:
            try:
                checked.append(self._validate(vehicle_id, body, key))
            except IngestError as exc:
                exc.alert_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
                checked.append(exc)

        def tx(s: Session) -> list:
            now = _now()
            good = [c for c in checked if not isinstance(c, IngestError)]
            keys = sorted({c[2] for c in good})
            ids = sorted({c[0].id for c in good})
            # two reads for the whole batch: keys already received, and the alerts' current state
            seen: dict[str, int] = {}
            for i in range(0, len(keys), 500):
                seen.update(s.execute(select(IngestRow.idempotency_key, IngestRow.seq)
                                      .where(IngestRow.idempotency_key.in_(keys[i:i + 500]))).all())
            state: dict[str, dict] = {}
            for i in range(0, len(ids), 500):
                for r in s.execute(select(CenterAlertRow.id, CenterAlertRow.vehicle_id, CenterAlertRow.version,
                                          CenterAlertRow.payload).where(CenterAlertRow.id.in_(ids[i:i + 500]))
                                   .order_by(CenterAlertRow.id).with_for_update()).all():
                    state[r.id] = {"vehicle_id": r.vehicle_id, "version": r.version, "payload": r.payload,
                                   "exists": True, "cols": None}
            out: list = []
            failed: set[str] = set()
            for c in checked:
                if isinstance(c, IngestError):
                    out.append(c)
                    if c.alert_id:
                        failed.add(c.alert_id)
                    continue
                alert, payload, key = c
                st = state.get(alert.id)
                if alert.id in failed:
                    out.append(IngestResult("skipped", None, alert.version))
                    continue
                if st is not None and st["vehicle_id"] != vehicle_id:
                    err = IngestError(f"alert {alert.id} belongs to vehicle {st['vehicle_id']!r}", 409)
                    err.alert_id = alert.id
                    failed.add(alert.id)
                    out.append(err)
                    continue
                if key in seen:
                    out.append(IngestResult("duplicate", seen[key], alert.version))
                    continue
                applied = st is None or alert.version > st["version"]
                seq = s.execute(insert(IngestRow).values(
                    idempotency_key=key, vehicle_id=vehicle_id, alert_id=alert.id, version=alert.version,
                    applied=applied, transport=transport, payload=payload, received_at=now).returning(IngestRow.seq)).scalar_one()
                seen[key] = seq
                if applied:
                    cols = dict(site=alert.site, status=alert.status, severity=alert.severity, center_hz=alert.center_hz,
                                last_seen=alert.last_seen, created_at=alert.created_at, version=alert.version,
                                payload=payload, received_at=now, ingest_seq=seq)
                    state[alert.id] = {"vehicle_id": vehicle_id, "version": alert.version, "payload": payload,
                                       "exists": st is not None and st["exists"], "cols": cols}
                out.append(IngestResult("stored" if applied else "stale", seq, alert.version))
            # one write per alert: its newest state
            for aid, st in state.items():
                if st["cols"] is None:
                    continue
                if st["exists"]:
                    s.execute(update(CenterAlertRow).where(CenterAlertRow.id == aid).values(**st["cols"]))
                else:
                    s.execute(insert(CenterAlertRow).values(id=aid, vehicle_id=vehicle_id, first_received_at=now, **st["cols"]))
            # evidence the center lacks, for the alerts as they now stand (one read)
            listed = {aid: {e.get("name"): e.get("sha256") for e in (st["payload"] or {}).get("evidence") or []
                            if isinstance(e, dict)} for aid, st in state.items()}
            with_ev = sorted(aid for aid, files in listed.items() if files)
            have: dict[tuple[str, str], str] = {}
            for i in range(0, len(with_ev), 500):
                for aid, name, sha in s.execute(select(CenterEvidenceRow.alert_id, CenterEvidenceRow.name,
                                                       CenterEvidenceRow.sha256)
                                                .where(CenterEvidenceRow.alert_id.in_(with_ev[i:i + 500]))).all():
                    have[(aid, name)] = sha
            for c, r in zip(checked, out):
                if isinstance(r, IngestResult) and r.status in ("stored", "stale", "duplicate"):
                    aid = c[0].id
                    r.need_evidence = sorted(n for n, sha in listed.get(aid, {}).items() if have.get((aid, n)) != sha)
            if good:
                self._touch_throttled(s, vehicle_id, transport, good[-1][0].site)
            return out

        if not any(not isinstance(c, IngestError) for c in checked):
            return list(checked)
        out = self.db.write(tx)
        n = sum(1 for r in out if isinstance(r, IngestResult) and r.status in ("stored", "stale"))
        if n:
            self._unflushed[vehicle_id] = self._unflushed.get(vehicle_id, 0) + n
        return out

    def _touch_throttled(self, s: Session, vehicle_id: str, transport: str, site: str | None) -> None:
        """Record contact at most once a second per vehicle during ingest (it is a write per alert
        otherwise); heartbeats always record it."""
        now = time.monotonic()
        last = self._touched.get(vehicle_id)
        if last is not None and now - last[0] < 1.0 and last[1] == (transport, site):
            return
        self._touch(s, vehicle_id, transport, site=site, ingested=self._unflushed.pop(vehicle_id, 0))
        self._touched[vehicle_id] = (now, (transport, site))

    def put_evidence(self, vehicle_id: str, alert_id: str, name: str, data: bytes, media_type: str,
                     sha256: str | None = None) -> EvidenceInfo:
        """Store an evidence file of an alert pushed by ``vehicle_id`` (replacing one of that name)."""
        if not isinstance(name, str) or not EVIDENCE_NAME_RE.fullmatch(name) or name in (".", ".."):
            raise IngestError(f"evidence name {name!r} is not allowed")
        if len(data) > MAX_EVIDENCE_BYTES:
            raise IngestError(f"evidence {name} is larger than {MAX_EVIDENCE_BYTES} bytes", 413)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 and sha256.lower() != digest:
            raise IngestError(f"evidence {name}: the body's SHA-256 is {digest}, not {sha256}")
        info = EvidenceInfo(name=name, media_type=media_type or "application/octet-stream", sha256=digest,
                            size_bytes=len(data))

        def tx(s: Session) -> EvidenceInfo:
            row = s.get(CenterAlertRow, alert_id)
            if row is None:
                raise IngestError(f"no alert {alert_id!r} on the center (push the alert first)", 404)
            if row.vehicle_id != vehicle_id:
                raise IngestError(f"alert {alert_id} belongs to vehicle {row.vehicle_id!r}", 409)
            e = s.get(CenterEvidenceRow, (alert_id, name))
            if e is None:
                s.add(CenterEvidenceRow(alert_id=alert_id, name=name, media_type=info.media_type, sha256=digest,
                                        size_bytes=len(data), created_at=_now(), data=data))
            else:
                e.media_type, e.sha256, e.size_bytes, e.created_at, e.data = info.media_type, digest, len(data), _now(), data
            self._touch(s, vehicle_id, "http")
            return info

        return self.db.write(tx)

    def touch(self, vehicle_id: str, *, transport: str = "http", site: str | None = None, health: dict | None = None,
              spectrum: dict | None = None) -> None:
        """Record contact with a vehicle (heartbeat), with its health and spectrum summary if given."""
        self.db.write(lambda s: self._touch(s, vehicle_id, transport, site=site, health=health, spectrum=spectrum,
                                          ingested=self._unflushed.pop(vehicle_id, 0)))

    def set_status(self, alert_id: str, status: str, reason: str = "", actor: str | None = None):
        raise InputError("the command center does not change alerts: acknowledge, dismiss or close them on the "
                         "vehicle that raised them (its next push brings the new status here)")

    # --- reads (same signatures as AlertStore) -----------------------------------------------------
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


def open_center_store(url: str | None = None, *, data_dir: Path) -> CenterStore:
    """Open (and create the tables of) the center's store: ``None`` → SQLite ``data_dir/center.db``;
    ``sqlite:///PATH``; ``postgresql://USER@HOST:PORT/DB`` (psycopg 3). Errors are :class:`InputError`."""
    engine, safe = open_database(url, data_dir=data_dir, default_file="center.db", metadata=CenterBase.metadata,
                                 what="center database")
    return CenterStore(engine, url=safe)
