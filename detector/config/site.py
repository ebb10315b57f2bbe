"""Site configuration (TOML, validated): name, coordinates, buildings, exam schedule, whitelist,
receiver and watch plan. ``--site`` takes a name (looked up in the sites folder) or a path.

Example ``sites/school-7.toml``::

    name = "school-7"
    lat = 31.2304
    lon = 121.4737
    timezone = "Asia/Shanghai"
    buildings = [[[31.2303, 121.4735], [31.2305, 121.4735], [31.2305, 121.4739], [31.2303, 121.4739]]]
    plan = "plans/school-7.toml"        # optional, relative to this file

    [[session]]
    name = "Chinese"
    start = "2026-06-07T09:00:00+08:00"
    end = "2026-06-07T11:30:00+08:00"

    [[whitelist]]
    center_hz = "460.25M"
    bandwidth_hz = "12.5k"
    name = "school security repeater"

    [receiver]
    serial = "00000001"
    gain_db = 30
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detector.detection import Channel, ExamSession, Whitelist
from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.core.units import parse_hz

__all__ = ["SiteConfig", "Session", "ReceiverConfig", "load_site", "resolve_site", "list_sites"]


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


class ReceiverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serial: Optional[str] = None
    gain_db: Optional[float] = None
    ppm: float = 0.0


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
    plan: Optional[str] = None
    #: sessions in timeline seconds (sim: scenes), used instead of ``sessions`` when set
    session_seconds: list[tuple[float, float]] = Field(default_factory=list)
    source: Optional[str] = Field(default=None, exclude=True)

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
                "whitelist": [w.model_dump() for w in self.whitelist], "plan": self.plan, "source": self.source}


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
        raise InputError(f"{p}: invalid site: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    site.source = str(p)
    if site.plan and not Path(site.plan).is_absolute():
        site.plan = str(p.parent / site.plan)
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
