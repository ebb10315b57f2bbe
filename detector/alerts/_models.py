"""ORM tables of the alert store (SQLAlchemy 2.0 declarative).

Four tables, all declared on :class:`Base` (so that the schema never depends on what has been
imported before). The database's schema is made by the migrations in ``migrations/versions``
(:mod:`detector.alerts.schema`), whose revision 1 is exactly what ``Base.metadata.create_all``
made before; a change here needs a new revision (``tests/alerts/test_migrations.py`` compares the
migrated schema with these models):

``alerts``
    One row per alert: stable ``id``, the track key ``(site, run_id, track_id)`` (unique), the
    lifecycle ``status``, the latest measurements and the JSON columns (``reasons``,
    ``score_terms``, ``location``, ``track`` = the whole last track event).
``alert_history``
    One row per change of an alert (``version`` 1, 2, …), with the changed field names and the
    old/new values of the scalar ones. Its autoincrement ``seq`` is a global, monotonic change
    sequence (usable as an SSE event id).
``alert_evidence``
    Evidence files (SigMF snippets, WAV audio) stored *in the database* as ``LargeBinary``, with
    their SHA-256. Keeping the bytes in the same transaction as the alert makes them as durable as
    the alert itself and works the same on SQLite and PostgreSQL (a file tree would not follow a
    PostgreSQL store to another machine). The ``data`` column is deferred: listing evidence never
    loads the bytes.

``push_outbox``
    One row per alert change waiting to be (or already) delivered to the command center. It is
    written in the *same transaction* as the change it carries (:class:`detector.push.Outbox`
    subscribes to ``AlertStore.on_change``); it is declared here, with the store's other tables,
    so that the schema never depends on which modules were imported first.

Datetimes are stored as UTC: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite (which has
no time zones); :class:`UTCDateTime` converts both ways and always hands back aware UTC values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from detector.core.timefmt import to_utc

__all__ = ["Base", "AlertRow", "HistoryRow", "EvidenceRow", "OutboxRow", "UTCDateTime", "to_utc"]


class UTCDateTime(TypeDecorator):
    """``DateTime(timezone=True)`` that stores UTC and always returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = to_utc(value)
        if dialect.name == "sqlite":
            # SQLite keeps text without an offset: store naive UTC so that text order = time order.
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else to_utc(value)


class Base(DeclarativeBase):
    """Declarative base of every examwatch store table."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("site", "run_id", "track_id", name="uq_alerts_track"),
        Index("ix_alerts_last_seen", "last_seen"),
        Index("ix_alerts_site_status", "site", "status"),
        Index("ix_alerts_center_hz", "center_hz"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str] = mapped_column(String(200))
    track_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str | None] = mapped_column(String(20))
    center_hz: Mapped[float] = mapped_column(Float)
    bandwidth_hz: Mapped[float | None] = mapped_column(Float)
    classification: Mapped[str | None] = mapped_column(String(40))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seen_s: Mapped[float | None] = mapped_column(Float)
    last_seen_s: Mapped[float | None] = mapped_column(Float)
    snr_db: Mapped[float | None] = mapped_column(Float)
    excess_db: Mapped[float | None] = mapped_column(Float)
    peak_dbfs: Mapped[float | None] = mapped_column(Float)
    bursts: Mapped[int] = mapped_column(Integer, default=0)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    score_terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    location: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    track: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    evidence_items: Mapped[list["EvidenceRow"]] = relationship(
        back_populates="alert", lazy="selectin", order_by="EvidenceRow.name", cascade="all, delete-orphan")


class HistoryRow(Base):
    __tablename__ = "alert_history"
    __table_args__ = (UniqueConstraint("alert_id", "version", name="uq_alert_history_version"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(32), ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    cause: Mapped[str] = mapped_column(String(40))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvidenceRow(Base):
    __tablename__ = "alert_evidence"

    alert_id: Mapped[str] = mapped_column(String(32), ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    alert: Mapped[AlertRow] = relationship(back_populates="evidence_items")


class OutboxRow(Base):
    """One alert change waiting to be (or already) delivered to the command center."""

    __tablename__ = "push_outbox"
    __table_args__ = (Index("ix_push_outbox_pending", "delivered_at", "seq"),
                      Index("ix_push_outbox_alert", "alert_id", "seq"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    site: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
