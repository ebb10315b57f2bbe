"""Response models of the HTTP API (pydantic v2), the ``response_model`` of every JSON route.

The models declare the keys the documentation promises and allow more (``extra="allow"``): what a
route adds (a monitor's health counters, a site's fields, the center's ``vehicle_id``) passes
through unchanged. Lists are :class:`Page` ``{"data": [...], "count": N}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from detector.alerts import AlertHistoryEntry, AlertPublic, EvidenceInfo

__all__ = [
    "Alert",
    "AlertPage",
    "BaselineSummary",
    "BatchIngestAnswer",
    "BatchItemResult",
    "Emission",
    "EmissionPage",
    "EvidenceInfo",
    "Health",
    "HeartbeatAnswer",
    "HistoryEntry",
    "HistoryPage",
    "HuntLevel",
    "IncidentModel",
    "IncidentPage",
    "IngestAnswer",
    "Open",
    "Overview",
    "Page",
    "SitePage",
    "SiteSummary",
    "SPECTRUM_STREAM_EVENTS",
    "SpectrumLatest",
    "StreamBaseline",
    "StreamGrid",
    "StreamHello",
    "StreamLevels",
    "StreamRow",
    "StreamTrack",
    "StreamTracks",
    "StatusUpdate",
    "TrackPage",
    "VehiclePage",
    "VehicleSpectrum",
    "VehicleStatus",
]

T = TypeVar("T")


class Open(BaseModel):
    """A model that keeps keys it does not declare."""

    model_config = ConfigDict(extra="allow")


class Page(BaseModel, Generic[T]):
    """A page of a list: ``count`` is the total, ``data`` the page (``limit``, ``offset``)."""

    data: list[T]
    count: int = Field(ge=0, description="number of items in the whole list, not in this page")


# --- requests ------------------------------------------------------------------------------------
class StatusUpdate(BaseModel):
    """Body of ``PATCH /alerts/{id}``."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["acknowledged", "dismissed", "closed"]
    reason: str = Field(default="", max_length=2000)
    add_to_whitelist: bool = Field(default=False, description="On dismiss: whitelist the alert's channel at this site.")


# --- vehicle and center --------------------------------------------------------------------------
class Health(Open):
    """``GET /health``: on a vehicle also the capture loop's state (source, frames processed and
    dropped, last frame time, push)."""

    status: str = Field(description="'ok' or 'degraded'")
    version: str
    role: Literal["vehicle", "center"]


class SiteSummary(Open):
    """A configured site: name, position, timezone, buildings, sessions, whitelist, plan, source."""

    name: str


class BaselineSummary(BaseModel):
    site: str
    bins: int
    f_min_hz: float
    f_max_hz: float
    rbw_hz: float
    unit: str = Field(description="'dBFS' or 'dBm'")
    frames_max: int
    span_s: float
    n_looks: float
    occupied_bins: int
    first_start: str | None
    last_end: str | None
    version: int


class SpectrumLatest(Open):
    """The latest frame. ``unit`` is ``dBm`` with a calibrated power table, else ``dBFS``."""

    freqs_hz: list[float]
    power: list[float | None]
    unit: str
    rbw_hz: float
    center_hz: float
    offset_s: float
    n_looks: float
    noise_floor_dbfs: float | None
    noise_floor_dbm: float | None
    emissions: list[dict[str, Any]]
    baseline: dict[str, Any] | None = Field(description="{median_db, p90_db, p99_db} or null")


class HuntLevel(Open):
    """The level of the hunted channel now (``GET /api/v1/hunt/…/level``)."""

    alert_id: str | None
    center_hz: float
    bandwidth_hz: float
    unit: str = Field(description="'dBm' with a calibrated power table, else 'dBFS': which of the levels the page shows")
    level_dbfs: float | None = Field(description="channel power over center ± bandwidth/2 of the latest frame, dBFS")
    level_dbm: float | None = Field(description="the same in dBm, null without a power calibration")
    noise_floor_dbfs: float | None = Field(description="the frame's noise floor over the same channel, dBFS")
    noise_floor_dbm: float | None
    snr_db: float | None
    at: str | None = Field(description="UTC end of the frame, when the source knows its time")
    offset_s: float
    receiver: str = Field(description="the receiver whose spectrum covers the channel")
    location: dict[str, Any] | None = Field(description="the alert's location (the vehicle's estimate), or null")


class Emission(BaseModel):
    center_hz: float
    bandwidth_hz: float
    peak_dbfs: float
    snr_db: float
    excess_db: float | None = Field(description="null where no baseline covers the emission")


class EmissionPage(Page[Emission]):
    offset_s: float
    center_hz: float


class Track(Open):
    """An open track of the capture loop (as the track events of DESIGN.md)."""


class Alert(AlertPublic):
    """An alert (DESIGN.md). On the command center also ``vehicle_id`` and ``received_at``."""

    model_config = ConfigDict(frozen=True, extra="allow")


class HistoryEntry(AlertHistoryEntry):
    model_config = ConfigDict(frozen=True, extra="allow")


SitePage = Page[SiteSummary]
TrackPage = Page[Track]
AlertPage = Page[Alert]
HistoryPage = Page[HistoryEntry]


# --- command center ------------------------------------------------------------------------------
class IngestAnswer(BaseModel):
    status: Literal["stored", "stale", "duplicate"]
    seq: int | None
    version: int
    need_evidence: list[str] = Field(description="evidence files the center still needs (PUT /ingest/evidence/…)")


class BatchItemResult(BaseModel):
    idempotency_key: str
    status: Literal["stored", "stale", "duplicate", "skipped", "error"]
    seq: int | None = None
    need_evidence: list[str] = Field(default_factory=list)
    error: str | None = None
    code: int | None = Field(default=None, description="the HTTP status the item alone would have had")


class BatchIngestAnswer(BaseModel):
    results: list[BatchItemResult] = Field(description="one per item, in the order sent; unset keys are left out")


class HeartbeatAnswer(BaseModel):
    status: Literal["ok"]


class VehicleStatus(Open):
    vehicle_id: str
    last_contact: str | None
    silent: bool
    transport: str | None
    site: str | None
    alerts: int
    open_alerts: int


VehiclePage = Page[VehicleStatus]


class IncidentMember(Open):
    alert_id: str
    site: str
    vehicle_id: str | None
    center_hz: float
    first_seen: datetime
    status: str | None
    severity: str | None


class IncidentModel(Open):
    """Alerts of several sites linked as one emission (``GET /api/v1/incidents``, issue #22)."""

    id: str = Field(description="'I-' + the id of its earliest alert without 'A-'")
    center_hz: float = Field(description="median of the members' centers, Hz")
    classification: str | None
    first_seen: datetime
    last_seen: datetime
    sites: list[str]
    alerts: list[IncidentMember]
    spread_hz: float = Field(description="max − min of the members' centers, Hz")
    onset_spread_s: float = Field(description="latest − earliest first sighting, s")


IncidentPage = Page[IncidentModel]


class SiteOverview(Open):
    site: str
    alerts: int
    open_alerts: int
    open_by_severity: dict[str, int]
    vehicles: list[str]


class Overview(Open):
    generated_at: str
    silent_after_s: float
    sites: list[SiteOverview]
    open_alerts: int
    vehicles: list[VehicleStatus]
    silent_vehicles: list[str]


class VehicleSpectrum(Open):
    vehicle_id: str
    site: str | None
    at: str | None
    spectrum: dict[str, Any]


# --- GET /api/v1/spectrum/stream: the data of each Server-Sent Event -----------------------------
class StreamHello(BaseModel):
    """``event: hello``, the first: the receiver streamed and the parameters in force."""

    receiver: str
    receivers: list[str]
    rate_hz: float
    bins: int
    encoding: Literal["deflate", "raw"] = Field(description="`q`: base64 of the zlib stream of the bytes, or of the bytes")


class StreamGrid(BaseModel):
    """``event: grid``: row bin ``k`` is centred on ``f0_hz + k·bin_hz`` (``n`` bins, levels in ``unit``)."""

    f0_hz: float
    bin_hz: float
    n: int = Field(ge=1)
    unit: Literal["dBFS", "dBm"]
    decimation: int = Field(ge=1, description="engine bins max-held into one row bin")
    full_f_lo_hz: float = Field(description="the engine grid's first bin centre (pan limit)")
    full_f_hi_hz: float = Field(description="the engine grid's last bin centre (pan limit)")
    rbw_hz: float
    center_hz: float
    key: str = Field(description="names this grid; its baseline is sent once per connection under this key")


class StreamLevels(BaseModel):
    """8-bit levels: ``q`` is base64 of ``n`` bytes (deflated with ``encoding=deflate``), level dB =
    ``offset_db + step_db·byte``; byte 255: no level."""

    offset_db: float
    step_db: float = Field(gt=0)
    q: str


class StreamRow(StreamLevels):
    """``event: row``: the max-hold of the ``frames`` frames since the last row."""

    seq: int = Field(ge=1, description="number of the newest frame in the row")
    t_s: float = Field(description="stream time of the newest frame (s)")
    frames: int = Field(ge=1)
    floor_db: float | None = Field(description="the noise floor in the grid's unit")


class StreamBaseline(BaseModel):
    """``event: baseline``: the site baseline's quantiles on the row grid ``key`` (null without a baseline)."""

    key: str
    p50: StreamLevels | None
    p99: StreamLevels | None


class StreamTrack(BaseModel):
    """A confirmed open track in ``event: tracks``."""

    id: str
    f_lo_hz: float
    f_hi_hz: float
    center_hz: float
    alert: bool
    classification: str | None
    first_seen_s: float | None
    last_seen_s: float | None
    peak_dbfs: float | None


class StreamTracks(BaseModel):
    """``event: tracks``: the open tracks of the receiver's run."""

    data: list[StreamTrack]
    run_id: str | None


#: event name → the JSON schema of its data (the stream route's OpenAPI ``x-events``)
SPECTRUM_STREAM_EVENTS = {name: model.model_json_schema() for name, model in (
    ("hello", StreamHello), ("grid", StreamGrid), ("row", StreamRow), ("baseline", StreamBaseline),
    ("tracks", StreamTracks))}
