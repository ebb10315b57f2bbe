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

The reads, the event stream and the overview are in :mod:`detector.center._reads` (a mixin
:class:`CenterStore` inherits); the messages (:class:`Heartbeat`, :class:`CenterAlert`, ...) in
:mod:`detector.center.schemas`, re-exported here.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from detector.alerts import AlertPublic, EvidenceInfo
from detector.alerts._store import EVIDENCE_NAME_RE, MAX_EVIDENCE_BYTES
from detector.alerts.db import Database, DatabaseStore, open_database
from detector.core.errors import InputError
from detector.center._models import CenterAlertRow, CenterEvidenceRow, IngestRow, VehicleRow
from detector.center._reads import CenterReadsMixin, _now
from detector.center.schemas import CenterAlert, Heartbeat, IngestError, IngestResult, load_vehicle_tokens

__all__ = ["CenterAlert", "CenterStore", "Heartbeat", "IngestError", "IngestResult", "open_center_store", "load_vehicle_tokens"]


class CenterStore(CenterReadsMixin, DatabaseStore):
    """The center's store (see the module docstring). Thread-safe."""

    #: whose store this is (the SSE stream's ``ready`` event says it)
    role = "center"

    def __init__(self, engine, *, url: str) -> None:
        #: the engine, its session factories and the (serialised) write transaction
        self.db = Database(engine, url=url, what="center store", serialize_writes=True)
        self._touched: dict[str, tuple[float, tuple]] = {}
        self._unflushed: dict[str, int] = {}  # versions ingested, not yet added to the vehicle row

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


def open_center_store(url: str | None = None, *, data_dir: Path, readonly: bool = False) -> CenterStore:
    """Open the center's store: ``None`` → SQLite ``data_dir/center.db``; ``sqlite:///PATH``;
    ``postgresql://USER@HOST:PORT/DB`` (psycopg 3). An empty database gets its schema from the
    center's migrations; an older, newer or foreign schema is refused, one made before migrations
    adopted (see :mod:`detector.alerts.schema`). ``readonly``: nothing is written (as for
    :func:`~detector.alerts.open_store`). Errors are :class:`InputError`
    (:class:`~detector.alerts.schema.SchemaError` for the schema)."""
    from detector.center._schema import CENTER_SCHEMA

    engine, safe = open_database(url, data_dir=data_dir, default_file="center.db", schema=CENTER_SCHEMA,
                                 what="center database", readonly=readonly)
    return CenterStore(engine, url=safe)
