"""Typed detection events: what the engine reports about tracks and surveyed stations.

The engine creates each event once (:class:`TrackEvent` for a track's ``new``/``update``/``end``,
:class:`MissingEvent` for a surveyed station gone silent, :class:`JammingEvent` for a floor risen
while the surveyed carriers kept their levels, :class:`OverloadEvent` for a receiver driven to its
ADC rails, :class:`DeclaredJammerEvent` for a jammer the site declared that is off during its
session or on outside it); the alert store applies it
(``AlertStore.apply``), the monitor's callbacks, the console and the dashboards read its fields.
JSON is made only at the edges, by :meth:`TrackEvent.to_json` (the lines of
``examwatch replay --jsonl``, the store's ``track`` column, ``/tracks``) and parsed back only where
JSON comes in, by :func:`event_from_json`.

Units are in the field names: Hz, seconds of the run's timeline (``*_s``), dBFS (``peak_dbfs``)
or dBm (``peak_dbm``, when a calibration profile has a power table for the tuner's gain), dB for
ratios (``snr_db`` over the noise floor, ``excess_db`` over the baseline). Values are the
reported ones: frequencies rounded to 0.1 Hz, times to 0.1 ms, levels to 0.01 dB (the JSON the
store and the API have always held). ``*_utc`` are aware UTC datetimes, present when the run
knows the wall-clock time of its timeline's second 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union, cast

from detector.core.errors import InputError
from detector.core.timefmt import parse_utc, utc_iso

__all__ = ["TrackEvent", "MissingEvent", "JammingEvent", "OverloadEvent", "DeclaredJammerEvent", "DetectionEvent",
           "event_from_json", "json_safe", "MISSING_PREFIX", "JAMMING_PREFIX", "OVERLOAD_PREFIX", "DECLARED_JAMMER_PREFIX",
           "ARTEFACT_KINDS"]

#: track ids of missing-station events start with this letter
MISSING_PREFIX = "M"
#: track ids of jamming events start with this letter
JAMMING_PREFIX = "J"
#: track ids of receiver-overload events start with this letter
OVERLOAD_PREFIX = "O"
#: track ids of declared-jammer events start with this letter (``D`` + kHz: off during a session;
#: ``DO`` + kHz: on outside its sessions)
DECLARED_JAMMER_PREFIX = "D"
#: the ``artefact`` of a track event: a by-product of a stronger emission in the same capture
#: (:mod:`detector.detection._byproducts`), or None for an emission of its own
ARTEFACT_KINDS = ("intermodulation", "image", "harmonic", "clipping")


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One report about a track (``kind`` ``new``, ``update`` or ``end``); see the module docstring.

    ``location`` is the ``LocationEstimate`` JSON of DESIGN.md (with ``nearest_building`` when the
    site has buildings), or None while the track is not (yet) located. ``reasons`` is empty and
    ``severity`` None unless ``alert``.

    ``artefact`` (one of :data:`ARTEFACT_KINDS`, or None) marks a track that is a by-product of a
    stronger emission present in the same frames (its reason in ``artefact_of``); such a track
    never alerts. ``overload`` is True when the receiver was overloaded (ADC rails or an emission
    near full scale, :mod:`detector.detection._overload`) during the track's last frame.
    """

    kind: Literal["new", "update", "end"]
    track_id: str
    alert: bool
    center_hz: float
    bandwidth_hz: float
    first_seen_s: float
    last_seen_s: float
    peak_dbfs: float | None
    snr_db: float | None
    excess_db: float | None
    classification: str
    bursts: int
    reasons: tuple[str, ...] = ()
    location: Mapping[str, Any] | None = None
    f_lo_hz: float | None = None
    f_hi_hz: float | None = None
    duty_cycle: float | None = None
    severity: str | None = None
    score_terms: Mapping[str, float] = field(default_factory=dict)
    first_seen_utc: datetime | None = None
    last_seen_utc: datetime | None = None
    peak_dbm: float | None = None
    artefact: str | None = None
    artefact_of: str | None = None
    overload: bool = False
    #: seconds of integration that found the track (``detection._integration``); None: the 10 ms frames did
    integration_s: float | None = None

    def to_json(self) -> dict:
        """The event as the JSON object of ``replay --jsonl`` (key order as documented)."""
        d = {
            "event": self.kind, "track_id": self.track_id, "alert": self.alert, "center_hz": self.center_hz,
            "bandwidth_hz": self.bandwidth_hz, "first_seen_s": self.first_seen_s, "last_seen_s": self.last_seen_s,
            "peak_dbfs": self.peak_dbfs, "snr_db": self.snr_db, "excess_db": self.excess_db,
            "classification": self.classification, "bursts": self.bursts, "reasons": list(self.reasons),
            "location": None if self.location is None else dict(self.location),
            "f_lo_hz": self.f_lo_hz, "f_hi_hz": self.f_hi_hz, "duty_cycle": self.duty_cycle,
            "severity": self.severity, "score_terms": dict(self.score_terms),
        }
        if self.first_seen_utc is not None:
            d["first_seen_utc"] = utc_iso(self.first_seen_utc)
        if self.last_seen_utc is not None:
            d["last_seen_utc"] = utc_iso(self.last_seen_utc)
        d["peak_dbm"] = self.peak_dbm
        d["artefact"] = self.artefact
        d["artefact_of"] = self.artefact_of
        d["overload"] = self.overload
        d["integration_s"] = self.integration_s
        return d

    @property
    def is_missing(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class MissingEvent:
    """A surveyed steady emission (occupancy ≥ the engine's ``missing_occupancy``) absent for
    ``missing_after_s``: jamming, tampering or a switched-off station. Always alerting.

    ``track_id`` is ``M`` + the station's center in kHz; ``first_seen_s`` is when it went
    missing, ``last_seen_s`` the frame that made the report."""

    track_id: str
    center_hz: float
    bandwidth_hz: float
    first_seen_s: float
    last_seen_s: float
    reasons: tuple[str, ...]
    kind: Literal["missing"] = "missing"
    alert: bool = True
    classification: str = "unknown"
    bursts: int = 0
    location: Mapping[str, Any] | None = None
    peak_dbfs: float | None = None
    peak_dbm: float | None = None
    snr_db: float | None = None
    excess_db: float | None = None
    severity: str | None = None
    score_terms: Mapping[str, float] = field(default_factory=dict)
    first_seen_utc: datetime | None = None
    last_seen_utc: datetime | None = None

    def to_json(self) -> dict:
        """The event as the JSON object of ``replay --jsonl``."""
        return {
            "event": "missing", "track_id": self.track_id, "alert": True, "center_hz": self.center_hz,
            "bandwidth_hz": self.bandwidth_hz, "first_seen_s": self.first_seen_s, "last_seen_s": self.last_seen_s,
            "peak_dbfs": None, "peak_dbm": None, "snr_db": None, "excess_db": None, "classification": self.classification,
            "bursts": 0, "reasons": list(self.reasons), "location": None,
        }

    @property
    def is_missing(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class JammingEvent:
    """The noise floor risen by ``rise_db`` over a large part of the band while the surveyed strong
    stations changed by only ``carrier_change_db`` (a gain step lifts both): a jammer
    (:mod:`detector.detection._jamming`). Always alerting, once per episode.

    ``track_id`` is ``J`` + the jammed band's center in kHz; ``center_hz``/``bandwidth_hz`` the
    jammed band; ``first_seen_s`` when the rise began, ``last_seen_s`` the frame that made the report."""

    track_id: str
    center_hz: float
    bandwidth_hz: float
    first_seen_s: float | None
    last_seen_s: float | None
    rise_db: float | None
    carrier_change_db: float | None
    reasons: tuple[str, ...]
    kind: Literal["jamming"] = "jamming"
    alert: bool = True
    classification: str = "wideband"
    bursts: int = 0
    location: Mapping[str, Any] | None = None
    peak_dbfs: float | None = None
    peak_dbm: float | None = None
    snr_db: float | None = None
    excess_db: float | None = None
    severity: str | None = "high"
    score_terms: Mapping[str, float] = field(default_factory=dict)
    first_seen_utc: datetime | None = None
    last_seen_utc: datetime | None = None

    def to_json(self) -> dict:
        """The event as the JSON object of ``replay --jsonl``."""
        return {
            "event": "jamming", "track_id": self.track_id, "alert": True, "center_hz": self.center_hz,
            "bandwidth_hz": self.bandwidth_hz, "first_seen_s": self.first_seen_s, "last_seen_s": self.last_seen_s,
            "rise_db": self.rise_db, "carrier_change_db": self.carrier_change_db,
            "peak_dbfs": None, "peak_dbm": None, "snr_db": None, "excess_db": None, "classification": self.classification,
            "bursts": 0, "reasons": list(self.reasons), "location": None, "severity": self.severity,
        }

    @property
    def is_missing(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class OverloadEvent:
    """The receiver overloaded (:mod:`detector.detection._overload`): a share ``rails_share`` of the
    block's I/Q values at the ADC rails, or an emission near full scale. Once per episode; it
    alerts (the crew must lower the gain: while overloaded, by-products of the strong emissions
    fill the band and readings are left out of localization).

    ``track_id`` is ``O`` + the strongest emission's center in kHz; ``center_hz`` that emission's
    center (the tuned center when none was found); ``strongest`` the strong emissions that cause
    it, ``({"center_hz", "peak_dbfs"}, ...)`` strongest first; ``advice`` what to do."""

    track_id: str
    center_hz: float
    bandwidth_hz: float
    first_seen_s: float | None
    last_seen_s: float | None
    rails_share: float | None
    strongest: tuple[Mapping[str, float], ...]
    advice: str
    reasons: tuple[str, ...]
    kind: Literal["overload"] = "overload"
    alert: bool = True
    classification: str = "unknown"
    bursts: int = 0
    location: Mapping[str, Any] | None = None
    peak_dbfs: float | None = None
    peak_dbm: float | None = None
    snr_db: float | None = None
    excess_db: float | None = None
    severity: str | None = "medium"
    score_terms: Mapping[str, float] = field(default_factory=dict)
    first_seen_utc: datetime | None = None
    last_seen_utc: datetime | None = None

    def to_json(self) -> dict:
        """The event as the JSON object of ``replay --jsonl``."""
        return {
            "event": "overload", "track_id": self.track_id, "alert": True, "center_hz": self.center_hz,
            "bandwidth_hz": self.bandwidth_hz, "first_seen_s": self.first_seen_s, "last_seen_s": self.last_seen_s,
            "rails_share": self.rails_share, "strongest": [dict(s) for s in self.strongest], "advice": self.advice,
            "peak_dbfs": self.peak_dbfs, "peak_dbm": None, "snr_db": None, "excess_db": None,
            "classification": self.classification, "bursts": 0, "reasons": list(self.reasons), "location": None,
            "severity": self.severity,
        }

    @property
    def is_missing(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class DeclaredJammerEvent:
    """A jammer the site declared (``[[jammer]]`` of the site TOML) not doing what its sessions say
    (:mod:`detector.detection._declared_jammers`). Always alerting, once per episode, then once
    more with ``ended`` True when the episode ends (the same ``track_id``, so the same alert).

    ``state``: ``"off"`` — the jammer's band back at the quiet level for ``off_after_s`` during one
    of its sessions (the exam's protection failed; severity high); ``"on_outside_session"`` — the
    jammer on for ``off_after_s`` outside its sessions and their grace time (severity low).
    ``track_id`` is ``D`` (off) or ``DO`` (outside) + the band's center in kHz; ``center_hz`` /
    ``bandwidth_hz`` the declared band; ``jammer`` its name, ``room`` its room, ``session`` the
    session's name (None outside); ``first_seen_s`` when the episode began, ``last_seen_s`` the
    frame that made the report (the end, when ``ended``); ``level_db`` the band's level over its
    quiet level (dB) then, ``on_level_db`` its level when on (from the survey or the session's
    first measurement; None when not known)."""

    track_id: str
    center_hz: float
    bandwidth_hz: float
    first_seen_s: float | None
    last_seen_s: float | None
    jammer: str
    state: Literal["off", "on_outside_session"]
    reasons: tuple[str, ...]
    session: str | None = None
    room: str | None = None
    ended: bool = False
    level_db: float | None = None
    on_level_db: float | None = None
    kind: Literal["declared_jammer"] = "declared_jammer"
    alert: bool = True
    classification: str = "wideband"
    bursts: int = 0
    location: Mapping[str, Any] | None = None
    peak_dbfs: float | None = None
    peak_dbm: float | None = None
    snr_db: float | None = None
    excess_db: float | None = None
    severity: str | None = None
    score_terms: Mapping[str, float] = field(default_factory=dict)
    first_seen_utc: datetime | None = None
    last_seen_utc: datetime | None = None

    def to_json(self) -> dict:
        """The event as the JSON object of ``replay --jsonl``."""
        return {
            "event": "declared_jammer", "track_id": self.track_id, "alert": True, "center_hz": self.center_hz,
            "bandwidth_hz": self.bandwidth_hz, "first_seen_s": self.first_seen_s, "last_seen_s": self.last_seen_s,
            "jammer": self.jammer, "room": self.room, "session": self.session, "state": self.state,
            "ended": self.ended, "level_db": self.level_db, "on_level_db": self.on_level_db,
            "peak_dbfs": None, "peak_dbm": None, "snr_db": None, "excess_db": None, "classification": self.classification,
            "bursts": 0, "reasons": list(self.reasons), "location": None, "severity": self.severity,
        }

    @property
    def is_missing(self) -> bool:
        return False


DetectionEvent = Union[TrackEvent, MissingEvent, JammingEvent, OverloadEvent, DeclaredJammerEvent]


def _num(d: Mapping, key: str, *, required: bool = False) -> float | None:
    v = d.get(key)
    if v is None or isinstance(v, bool):
        if required or isinstance(v, bool):
            raise InputError(f"Track event {d.get('track_id')} has no finite {key}." if v is None
                             else f"Track event field {key!r} must be a number, not {v!r}.")
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"Track event field {key!r} must be a number, not {v!r}.") from None
    if not math.isfinite(f):
        if required:
            raise InputError(f"Track event {d.get('track_id')} has no finite {key}.")
        return None
    return f


def _utc(d: Mapping, key: str) -> datetime | None:
    v = d.get(key)
    if v is None:
        return None
    try:
        return parse_utc(v)
    except (TypeError, ValueError):
        raise InputError(f"Track event field {key!r} must be an ISO 8601 time, not {v!r}.") from None


def json_safe(obj: Any) -> Any:
    """Plain-JSON copy of ``obj``: numpy scalars to Python numbers, NaN/inf to None, tuples to lists."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, datetime):
        return utc_iso(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (int, float)):
        return json_safe(obj.tolist())
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return str(obj)


def event_from_json(d: Mapping) -> DetectionEvent:
    """An event from its JSON object (a ``replay --jsonl`` line, a test's dict).

    Missing keys take their defaults (a non-alerting ``update``); NaN/inf numbers read as None.

    Raises
    ------
    InputError
        Not a dict, no string ``track_id``, no finite ``center_hz``, a number or time that is
        not one.
    """
    if not isinstance(d, Mapping):
        raise InputError(f"A track event must be a dict, not {type(d).__name__}.")
    track_id = d.get("track_id")
    if not isinstance(track_id, str) or not track_id:
        raise InputError(f"A track event needs a non-empty string track_id, not {track_id!r}.")
    kind = str(d.get("event") or "update")
    center = _num(d, "center_hz", required=True)
    bw = _num(d, "bandwidth_hz")
    fs, ls = _num(d, "first_seen_s"), _num(d, "last_seen_s")
    reasons = tuple(str(r) for r in (d.get("reasons") or []))
    loc = d.get("location")
    loc = json_safe(loc) if isinstance(loc, Mapping) else None
    b = d.get("bursts")
    bursts = int(b) if isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) else 0
    common = dict(track_id=track_id, center_hz=center, bandwidth_hz=bw, first_seen_s=fs, last_seen_s=ls,
                  reasons=reasons, location=loc, classification=d.get("classification") or None, bursts=bursts,
                  peak_dbfs=_num(d, "peak_dbfs"), snr_db=_num(d, "snr_db"), excess_db=_num(d, "excess_db"),
                  severity=d.get("severity") or None, score_terms=json_safe(dict(d.get("score_terms") or {})),
                  first_seen_utc=_utc(d, "first_seen_utc"), last_seen_utc=_utc(d, "last_seen_utc"),
                  peak_dbm=_num(d, "peak_dbm"))
    if kind == "missing":
        return MissingEvent(**common)
    if kind == "jamming":
        common.pop("classification")
        common["severity"] = common["severity"] or "high"
        return JammingEvent(rise_db=_num(d, "rise_db"), carrier_change_db=_num(d, "carrier_change_db"),
                            classification=str(d.get("classification") or "wideband"), **common)
    if kind == "declared_jammer":
        common.pop("classification")
        state = d.get("state")
        if state not in ("off", "on_outside_session"):
            raise InputError(f"Track event field 'state' must be 'off' or 'on_outside_session', not {state!r}.")
        common["severity"] = common["severity"] or ("high" if state == "off" else "low")
        opt = lambda k: None if d.get(k) in (None, "") else str(d.get(k))  # noqa: E731
        return DeclaredJammerEvent(jammer=str(d.get("jammer") or ""), state=state, session=opt("session"),
                                   room=opt("room"), ended=d.get("ended") is True, level_db=_num(d, "level_db"),
                                   on_level_db=_num(d, "on_level_db"),
                                   classification=str(d.get("classification") or "wideband"), **common)
    if kind == "overload":
        common.pop("classification")
        common["severity"] = common["severity"] or "medium"
        strongest = tuple(json_safe(dict(x)) for x in (d.get("strongest") or []) if isinstance(x, Mapping))
        return OverloadEvent(rails_share=_num(d, "rails_share"), strongest=strongest, advice=str(d.get("advice") or ""),
                             classification=str(d.get("classification") or "unknown"), **common)
    artefact = d.get("artefact")
    track_kind = cast(Literal["new", "update", "end"], kind)  # as given (the store records it in the cause)
    return TrackEvent(kind=track_kind, alert=d.get("alert") is True, f_lo_hz=_num(d, "f_lo_hz"), f_hi_hz=_num(d, "f_hi_hz"),
                      duty_cycle=_num(d, "duty_cycle"), artefact=str(artefact) if artefact else None,
                      artefact_of=str(d["artefact_of"]) if d.get("artefact_of") else None,
                      overload=d.get("overload") is True, integration_s=_num(d, "integration_s"), **common)

