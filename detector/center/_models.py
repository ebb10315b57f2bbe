"""Tables of the command center, on their own declarative base (:class:`CenterBase`).

The database's schema is made by the migrations in ``detector/center/migrations/versions``
(version table ``alembic_version_center``); a change here needs a new revision
(``tests/alerts/test_migrations.py`` compares the migrated schema with these models).

``center_alerts``
    The newest version of every alert pushed to the center, keyed by the vehicle's alert id
    (``A-…``), with the pushing vehicle, a few columns for filtering, and the whole alert as JSON.
``center_ingest``
    One row per received alert version: the idempotency key ``{alert_id}:{version}`` (unique: the
    de-duplication), the payload and ``seq``, the center's own increasing ingest sequence (the SSE
    event id on the center and the source of ``GET /alerts/{id}/history``).
``center_vehicles``
    One row per vehicle heard from: last contact, transport, last site, last health and spectrum
    summary.
``center_evidence``
    Evidence files uploaded by vehicles (``PUT /api/v1/ingest/evidence/{alert_id}/{name}``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from detector.alerts._models import UTCDateTime

__all__ = ["CenterBase", "CenterAlertRow", "IngestRow", "VehicleRow", "CenterEvidenceRow"]


class CenterBase(DeclarativeBase):
    """Declarative base of the command center's tables."""


class CenterAlertRow(CenterBase):
    __tablename__ = "center_alerts"
    __table_args__ = (Index("ix_center_alerts_last_seen", "last_seen"),
                      Index("ix_center_alerts_site_status", "site", "status"),
                      Index("ix_center_alerts_center_hz", "center_hz"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(String(100), index=True)
    site: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str | None] = mapped_column(String(20), nullable=True)
    center_hz: Mapped[float] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ingest_seq: Mapped[int] = mapped_column(Integer)


class IngestRow(CenterBase):
    __tablename__ = "center_ingest"
    __table_args__ = (Index("ix_center_ingest_alert", "alert_id", "version"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    vehicle_id: Mapped[str] = mapped_column(String(100))
    alert_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    applied: Mapped[bool] = mapped_column(Boolean)
    transport: Mapped[str] = mapped_column(String(10))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VehicleRow(CenterBase):
    __tablename__ = "center_vehicles"

    vehicle_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_contact: Mapped[datetime] = mapped_column(UTCDateTime)
    transport: Mapped[str] = mapped_column(String(10))
    site: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ingested: Mapped[int] = mapped_column(Integer, default=0)
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    spectrum: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    spectrum_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CenterEvidenceRow(CenterBase):
    __tablename__ = "center_evidence"

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
