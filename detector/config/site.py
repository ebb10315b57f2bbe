"""Site configuration (TOML, validated): name, coordinates, buildings, exam schedule, whitelist,
receiver and watch plan. ``--site`` takes a name (looked up in the sites folder) or a path.

Example ``sites/school-7.toml``::

    name = "school-7"
    lat = 31.2304
    lon = 121.4737
    timezone = "Asia/Shanghai"
    buildings = [[[31.2303, 121.4735], [31.2305, 121.4735], [31.2305, 121.4739], [31.2303, 121.4739]]]
    plan = "plans/school-7.toml"        # optional, relative to this file
    device_library = "devices.toml"     # optional: the team's [[device]] entries (examwatch library)

    [[session]]
    name = "Chinese"
    start = "2026-06-07T09:00:00+08:00"
    end = "2026-06-07T11:30:00+08:00"

    [[whitelist]]
    center_hz = "460.25M"
    bandwidth_hz = "12.5k"
    name = "school security repeater"

    [[jammer]]                          # the exam rooms' own jammers (optional)
    name = "building A jammer"
    room = "A-101"
    f_lo_hz = "430M"                    # or center_hz + bandwidth_hz, as a whitelist channel
    f_hi_hz = "440M"
    sessions = ["Chinese"]              # names of [[session]]; default: every session
    off_after_s = 10                    # off this long in a session (or on outside) → alert
    grace_s = 900                       # before a session's start / after its end: on or off

    [receiver]
    serial = "00000001"
    gain_db = 30

    # or several receivers (one monitor, one store, one API; issue #19):
    # [[receiver]]
    # name = "stare"
    # spec = "rtlsdr:serial=00000001"   # or serial = "00000001"
    # gain_db = 30
    # profile = "profiles/00000001.json"
    # bands = ["PMR446"]                # the plan's band names; default: assigned by the planner
    # [[receiver]]
    # name = "sweep"
    # serial = "00000002"

A declared jammer's band is expected to be jammed in its sessions: no alert and no ``jamming``
event comes from it; off during a session is an alert (the exam's protection failed), on outside its
sessions and grace time a low-severity one (``detector.detection._declared_jammers``).
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.config.receivers import ReceiverConfig
from detector.detection import Channel, DeclaredJammer, ExamSession, Whitelist
from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.core.units import parse_hz

__all__ = ["SiteConfig", "Session", "ReceiverConfig", "JammerEntry", "load_site", "resolve_site", "list_sites"]


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "exam"
    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("session times need a zone (e.g. +08:00 or Z)")
        return v.astimezone(timezone.utc)


class WhitelistEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    center_hz: float
    bandwidth_hz: float = 12500.0
    name: str = "licensed"

    @field_validator("center_hz", "bandwidth_hz", mode="before")
    @classmethod
    def _hz(cls, v):
        return parse_hz(v, name="frequency") if isinstance(v, str) else float(v)


class JammerEntry(BaseModel):
    """A declared exam-room jammer (``[[jammer]]``): its band as ``f_lo_hz``/``f_hi_hz`` or as
    ``center_hz``/``bandwidth_hz`` (Hz; strings such as ``"430M"`` accepted), ``name``, ``room``,
    ``sessions`` (names of the site's sessions; None: all), ``off_after_s`` and ``grace_s`` (s)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    room: Optional[str] = None
    f_lo_hz: Optional[float] = None
    f_hi_hz: Optional[float] = None
    center_hz: Optional[float] = None
    bandwidth_hz: Optional[float] = None
    sessions: Optional[list[str]] = None
    off_after_s: float = Field(default=10.0, gt=0, le=3600)
    grace_s: float = Field(default=900.0, ge=0, le=86400)

    @field_validator("f_lo_hz", "f_hi_hz", "center_hz", "bandwidth_hz", mode="before")
    @classmethod
    def _hz(cls, v):
        return parse_hz(v, name="frequency") if isinstance(v, str) else v

    @model_validator(mode="after")
    def _band(self) -> "JammerEntry":
        edges = self.f_lo_hz is not None or self.f_hi_hz is not None
        center = self.center_hz is not None or self.bandwidth_hz is not None
        if edges and center:
            raise ValueError(f"jammer {self.name!r}: give its band as f_lo_hz and f_hi_hz or as center_hz and "
                             f"bandwidth_hz, not both")
        if edges and (self.f_lo_hz is None or self.f_hi_hz is None):
            raise ValueError(f"jammer {self.name!r}: f_lo_hz and f_hi_hz go together")
        if center and (self.center_hz is None or self.bandwidth_hz is None):
            raise ValueError(f"jammer {self.name!r}: center_hz and bandwidth_hz go together")
        if not (edges or center):
            raise ValueError(f"jammer {self.name!r}: needs its band (f_lo_hz and f_hi_hz, or center_hz and bandwidth_hz)")
        lo, hi = self.band_hz
        if not (0 < lo < hi <= 10e9):
            raise ValueError(f"jammer {self.name!r}: its band {lo:g}–{hi:g} Hz must have 0 < f_lo_hz < f_hi_hz ≤ 10 GHz")
        if self.sessions is not None and not self.sessions:
            raise ValueError(f"jammer {self.name!r}: sessions is empty (leave it out for every session)")
        return self

    @property
    def band_hz(self) -> tuple[float, float]:
        """(f_lo_hz, f_hi_hz) of the band, Hz."""
        if self.f_lo_hz is not None and self.f_hi_hz is not None:
            return float(self.f_lo_hz), float(self.f_hi_hz)
        c, bw = float(self.center_hz or 0.0), float(self.bandwidth_hz or 0.0)
        return c - bw / 2, c + bw / 2

    def declared(self) -> DeclaredJammer:
        lo, hi = self.band_hz
        return DeclaredJammer(name=self.name, f_lo_hz=lo, f_hi_hz=hi, room=self.room,
                              sessions=None if self.sessions is None else tuple(self.sessions),
                              off_after_s=self.off_after_s, grace_s=self.grace_s)


class SiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    lat: Optional[float] = Field(default=None, ge=-90, le=90)
    lon: Optional[float] = Field(default=None, ge=-180, le=180)
    timezone: str = "UTC"
    buildings: list[list[tuple[float, float]]] = Field(default_factory=list)
    sessions: list[Session] = Field(default_factory=list, alias="session")
    whitelist: list[WhitelistEntry] = Field(default_factory=list)
    receiver: ReceiverConfig = Field(default_factory=ReceiverConfig)
    #: several receivers (``[[receiver]]``, issue #19): each with its source, gain, profile, bands
    receivers: list[ReceiverConfig] = Field(default_factory=list)
    plan: Optional[str] = None
    #: the team's own device library (TOML of [[device]], relative to this file), added to the shipped one
    device_library: Optional[str] = None
    #: sessions in timeline seconds (sim: scenes), used instead of ``sessions`` when set
    session_seconds: list[tuple[float, float]] = Field(default_factory=list)
    source: Optional[str] = Field(default=None, exclude=True)
    #: the exam rooms' own jammers (``[[jammer]]``, also ``[[jammers]]``)
    jammers: list[JammerEntry] = Field(default_factory=list, validation_alias=AliasChoices("jammer", "jammers"))

    def session_names(self) -> list[str]:
        """The names of the exam sessions (``exam session N`` for scene seconds)."""
        if self.session_seconds:
            return [f"exam session {i + 1}" for i in range(len(self.session_seconds))]
        return [s.name for s in self.sessions]

    @model_validator(mode="before")
    @classmethod
    def _receiver_tables(cls, data):
        """``[[receiver]]`` (a list) fills ``receivers``; ``[receiver]`` (one table) stays ``receiver``."""
        if isinstance(data, dict) and isinstance(data.get("receiver"), list):
            data = dict(data)
            if data.get("receivers"):
                raise ValueError("give the receivers as [[receiver]] or as receivers = [...], not both")
            data["receivers"] = data.pop("receiver")
        return data

    @model_validator(mode="after")
    def _jammer_sessions(self) -> "SiteConfig":
        names = self.session_names()
        seen: set[str] = set()
        for j in self.jammers:
            if j.name in seen:
                raise ValueError(f"two jammers are named {j.name!r}: give each its own name")
            seen.add(j.name)
            for s in j.sessions or ():
                if s not in names:
                    known = ", ".join(repr(n) for n in names) if names else "none declared"
                    raise ValueError(f"jammer {j.name!r}: unknown session {s!r} (the site's sessions: {known})")
        return self

    def jammers_obj(self) -> tuple[DeclaredJammer, ...]:
        """The declared jammers, for the engine (``DetectionEngine(jammers=...)``)."""
        return tuple(j.declared() for j in self.jammers)

    def whitelist_obj(self) -> Whitelist:
        return Whitelist(tuple(Channel(w.center_hz, w.bandwidth_hz, w.name, self.name) for w in self.whitelist))

    def exam_sessions(self, wall_start: datetime | None) -> tuple[ExamSession, ...]:
        """Sessions in timeline seconds: scene seconds as given, or wall-clock sessions relative to ``wall_start``."""
        if self.session_seconds:
            return tuple(ExamSession(a, b, f"exam session {i + 1}") for i, (a, b) in enumerate(self.session_seconds))
        if wall_start is None:
            return ()
        return tuple(ExamSession((s.start - wall_start).total_seconds(), (s.end - wall_start).total_seconds(), s.name)
                     for s in self.sessions)

    def summary(self) -> dict:
        return {"name": self.name, "lat": self.lat, "lon": self.lon, "timezone": self.timezone,
                "buildings": len(self.buildings), "sessions": [s.model_dump(mode="json") for s in self.sessions],
                "whitelist": [w.model_dump() for w in self.whitelist], "plan": self.plan, "source": self.source,
                "jammers": [{"name": j.name, "room": j.room, "f_lo_hz": j.band_hz[0], "f_hi_hz": j.band_hz[1],
                             "sessions": j.sessions, "off_after_s": j.off_after_s, "grace_s": j.grace_s}
                            for j in self.jammers]}


def load_site(path: str | Path) -> SiteConfig:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: site file not found")
    try:
        data = tomllib.loads(read_text(p, "site file"))
        site = SiteConfig.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from None
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(map(str, e["loc"]))
        msg = str(e["msg"]).removeprefix("Value error, ")
        raise InputError(f"{p}: invalid site: {where + ': ' if where else ''}{msg}") from None
    site.source = str(p)
    if site.plan and not Path(site.plan).is_absolute():
        site.plan = str(p.parent / site.plan)
    if site.device_library and not Path(site.device_library).is_absolute():
        site.device_library = str(p.parent / site.device_library)
    return site


def list_sites(sites_dir: Path | None) -> list[SiteConfig]:
    if sites_dir is None or not sites_dir.is_dir():
        return []
    out = []
    for p in sorted(sites_dir.glob("*.toml")):
        try:
            out.append(load_site(p))
        except InputError:
            continue
    return out


def resolve_site(spec: str, sites_dir: Path | None = None, *, fallback: SiteConfig | None = None) -> SiteConfig:
    """A site from a path, a name in ``sites_dir``, else ``fallback`` (e.g. the site of a sim:
    source's scene, :func:`detector.sim.site_from_scene`), else a bare name."""
    p = Path(spec)
    if p.suffix == ".toml" or p.is_file():
        return load_site(p)
    if sites_dir is not None and (sites_dir / f"{spec}.toml").is_file():
        return load_site(sites_dir / f"{spec}.toml")
    if fallback is not None:
        return fallback
    return SiteConfig(name=spec)
