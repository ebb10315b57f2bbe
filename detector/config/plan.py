"""Watch plans: which bands the capture loop visits, how long it dwells and how often it returns.

A plan is TOML::

    [[band]]
    name = "PMR446"     # optional (default: the range)
    start_hz = "446.0M"
    stop_hz = "446.2M"
    priority = 3        # higher: visited more often
    dwell_s = 2.0       # seconds per visit of each hop
    revisit_s = 10.0    # the longest acceptable time between visits

:func:`default_plan` watches the bands favoured by exam-cheating devices within the RTL-SDR's
24–1766 MHz (PMR446, the 433 MHz SRD band, VHF and UHF two-way radio, 868 MHz SRD); dwelling on
short-burst data bands rather than sweeping them, as THEORY §1.2 item 10 recommends.

:class:`Scheduler` turns a plan into a sequence of hops (center frequencies with a dwell): each
band is cut into hops of the usable width (the central 80 % of the sample rate), hops are
visited in order of how overdue they are relative to their revisit time weighted by priority, and a
hop with an open suspicious track gets its dwell extended (``extend(center_hz, seconds)``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.core.units import parse_hz

__all__ = ["Band", "WatchPlan", "Hop", "Scheduler", "default_plan", "load_plan", "single_band_plan"]

RTL_MIN_HZ, RTL_MAX_HZ = 24e6, 1766e6


class Band(BaseModel):
    """One watched band; ``name`` is optional (default: its range, e.g. ``"446.0–446.2 MHz"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    start_hz: float
    stop_hz: float
    priority: int = Field(default=1, ge=1, le=10)
    dwell_s: float = Field(default=1.0, gt=0, le=3600)
    revisit_s: float = Field(default=30.0, gt=0)

    @field_validator("start_hz", "stop_hz", mode="before")
    @classmethod
    def _hz(cls, v):
        return parse_hz(v, name="band edge") if isinstance(v, str) else float(v)

    @model_validator(mode="after")
    def _range(self):
        if not self.name:
            object.__setattr__(self, "name", f"{self.start_hz / 1e6:g}–{self.stop_hz / 1e6:g} MHz")
        if not self.stop_hz > self.start_hz:
            raise ValueError(f"band {self.name}: stop_hz must be above start_hz")
        if self.start_hz < RTL_MIN_HZ or self.stop_hz > RTL_MAX_HZ:
            raise ValueError(f"band {self.name}: outside the RTL-SDR range 24–1766 MHz")
        return self


class WatchPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "plan"
    bands: list[Band] = Field(default_factory=list, alias="band")

    @model_validator(mode="after")
    def _nonempty(self):
        if not self.bands:
            raise ValueError("a watch plan needs at least one [[band]]")
        return self


def default_plan() -> WatchPlan:
    """Bands favoured by exam-cheating devices within 24–1766 MHz."""
    return WatchPlan(name="default-exam", band=[
        Band(name="PMR446", start_hz=446.0e6, stop_hz=446.2e6, priority=5, dwell_s=2.0, revisit_s=10.0),
        Band(name="SRD433", start_hz=433.05e6, stop_hz=434.79e6, priority=4, dwell_s=2.0, revisit_s=10.0),
        Band(name="UHF-two-way", start_hz=400e6, stop_hz=470e6, priority=2, dwell_s=0.2, revisit_s=60.0),
        Band(name="VHF-two-way", start_hz=150e6, stop_hz=174e6, priority=2, dwell_s=0.2, revisit_s=60.0),
        Band(name="SRD868", start_hz=863e6, stop_hz=870e6, priority=3, dwell_s=1.0, revisit_s=20.0),
    ])


def single_band_plan(center_hz: float, sample_rate_hz: float, name: str = "dwell") -> WatchPlan:
    """A plan that dwells on one hop (recordings, the simulated site's default)."""
    half = 0.4 * sample_rate_hz
    return WatchPlan(name=name, band=[Band(name=name, start_hz=center_hz - half, stop_hz=center_hz + half,
                                           priority=1, dwell_s=3600.0, revisit_s=3600.0)])


def load_plan(path: str | Path) -> WatchPlan:
    """Read a watch plan TOML (format in the module docstring); InputError names the file and the
    first problem."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a watch plan TOML file")
    if not p.is_file():
        raise InputError(f"{p}: watch plan not found")
    try:
        data = tomllib.loads(read_text(p, "watch plan"))
        return WatchPlan.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from None
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(map(str, e["loc"]))
        msg = str(e["msg"]).removeprefix("Value error, ")
        raise InputError(f"{p}: invalid watch plan: {where + ': ' if where else ''}{msg}") from None


@dataclass
class Hop:
    band: str
    center_hz: float
    dwell_s: float
    priority: int
    revisit_s: float
    last_visit_s: float = -math.inf
    extend_until_s: float = -math.inf


@dataclass
class Scheduler:
    """Chooses the next hop (see the module docstring). Times are the loop's clock in seconds."""

    plan: WatchPlan
    sample_rate_hz: float
    usable_fraction: float = 0.8
    hops: list[Hop] = field(default_factory=list)

    def __post_init__(self) -> None:
        width = self.usable_fraction * self.sample_rate_hz
        for b in self.plan.bands:
            n = max(1, math.ceil((b.stop_hz - b.start_hz) / width))
            step = (b.stop_hz - b.start_hz) / n
            for i in range(n):
                c = b.start_hz + step * (i + 0.5)
                c = min(max(c, RTL_MIN_HZ), RTL_MAX_HZ)
                self.hops.append(Hop(b.name, c, b.dwell_s, b.priority, b.revisit_s))

    @property
    def single(self) -> bool:
        return len(self.hops) == 1

    def next_hop(self, now_s: float) -> Hop:
        """The most overdue hop (overdue time ÷ revisit time, weighted by priority)."""
        def urgency(h: Hop) -> float:
            return h.priority * (now_s - h.last_visit_s) / h.revisit_s
        hop = max(self.hops, key=urgency)
        hop.last_visit_s = now_s
        return hop

    def dwell_for(self, hop: Hop, now_s: float, extension_s: float = 10.0) -> float:
        return max(hop.dwell_s, extension_s) if now_s < hop.extend_until_s else hop.dwell_s

    def extend(self, center_hz: float, until_s: float) -> None:
        """Dwell longer on the hop holding ``center_hz`` until ``until_s`` (a suspicious track is open)."""
        for h in self.hops:
            if abs(h.center_hz - center_hz) <= self.usable_fraction * self.sample_rate_hz / 2:
                h.extend_until_s = max(h.extend_until_s, until_s)
