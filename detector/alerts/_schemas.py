"""Pydantic v2 models of the alert store's public face (what the HTTP API returns and takes).

Datetimes are aware UTC values (a naive input is taken as UTC) and serialise as ISO 8601 with
``Z`` (``2026-06-07T09:03:30.5Z``-style, pydantic's rendering of UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from detector.alerts._models import to_utc

__all__ = [
    "ALERT_STATUSES",
    "AUTO_STATUSES",
    "FINAL_STATUSES",
    "AlertHistoryEntry",
    "AlertPublic",
    "AlertStatusUpdate",
    "EvidenceInfo",
    "UTCDatetime",
]

#: every status an alert can have, in lifecycle order
ALERT_STATUSES = ("new", "updated", "located", "acknowledged", "dismissed", "closed")
#: statuses set by track events (the others only through ``set_status``)
AUTO_STATUSES = ("new", "updated", "located")
#: statuses of alerts that are no longer open
FINAL_STATUSES = ("dismissed", "closed")

UTCDatetime = Annotated[datetime, AfterValidator(to_utc)]
AlertStatus = Literal["new", "updated", "located", "acknowledged", "dismissed", "closed"]


class EvidenceInfo(BaseModel):
    """One evidence file of an alert (the bytes are fetched separately)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="file name, [A-Za-z0-9._-]{1,100}, e.g. 'iq.sigmf-meta', 'audio.wav'")
    media_type: str = Field(description="MIME type, e.g. 'audio/wav'")
    sha256: str = Field(description="SHA-256 of the bytes, lower-case hex")
    size_bytes: int = Field(ge=0)


class AlertPublic(BaseModel):
    """An alert as the API shows it. ``version`` bumps on every change."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="stable alert id, e.g. 'A-1f3c9a0b7d2e'")
    site: str
    status: AlertStatus
    severity: str | None = Field(description="'low', 'medium' or 'high'")
    center_hz: float
    bandwidth_hz: float | None
    classification: str | None
    first_seen: UTCDatetime
    last_seen: UTCDatetime
    first_seen_s: float | None = Field(description="first seen, seconds on the run's timeline")
    last_seen_s: float | None = Field(description="last seen, seconds on the run's timeline")
    snr_db: float | None = Field(description="highest SNR over the noise floor so far")
    excess_db: float | None = Field(description="highest excess over the site baseline so far")
    peak_dbfs: float | None = Field(description="highest peak level so far")
    bursts: int
    reasons: list[str]
    score_terms: dict[str, Any]
    location: dict[str, Any] | None = Field(description="a LocationEstimate (DESIGN.md) or null")
    evidence: list[dict[str, Any]] = Field(description="[{name, media_type, sha256, size_bytes}]")
    version: int = Field(ge=1)
    track_id: str
    run_id: str
    created_at: UTCDatetime
    updated_at: UTCDatetime


class AlertHistoryEntry(BaseModel):
    """One change of an alert: the version it produced, what changed and why."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="global, increasing change sequence number of the store")
    alert_id: str
    version: int
    status: AlertStatus = Field(description="status after the change")
    cause: str = Field(description="'event:new', 'event:update', 'event:end', 'event:missing', 'status' or 'evidence'")
    fields: list[str] = Field(description="names of the fields that changed")
    changes: dict[str, Any] = Field(description="[old, new] of the scalar fields that changed")
    reason: str = ""
    actor: str | None = None
    at: UTCDatetime


class AlertStatusUpdate(BaseModel):
    """Body of ``PATCH /alerts/{id}``."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["acknowledged", "dismissed", "closed"]
    reason: str = Field(default="", max_length=2000)
