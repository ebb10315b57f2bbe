"""Watch plans: which bands the capture loop visits, how long it dwells and how often it returns.

A plan is TOML::

    [[band]]
    name = "PMR446"     # optional (default: the range)
    start_hz = "446.0M"
    stop_hz = "446.2M"
    priority = 3        # higher: visited more often
    dwell_s = 2.0       # seconds per visit of each hop
    revisit_s = 10.0    # the longest acceptable time between visits
    reason = "licence-free hand-helds"   # optional: why the band is watched

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
    #: why the band is watched (the plan's documentation; shown by ``examwatch plan check``)
    reason: str = ""

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
    """The plan of ``rtlsdr:`` without ``--center``: 30 MHz–1 GHz, where hand-held and hidden
    transmitters work, with priority on the bands of exam-cheating devices and cheap data links
    (each band's ``reason``). Wide coverage bands are swept with short dwells (0.1 s: 73 ms seen
    after the tuner settles, enough for the detector's 30 ms), the licence-free voice and data
    bands dwelt on; ``examwatch plan check default`` prints what it catches."""
    def b(name, lo, hi, priority, dwell_s, revisit_s, reason):
        return Band(name=name, start_hz=lo * 1e6, stop_hz=hi * 1e6, priority=priority, dwell_s=dwell_s,
                    revisit_s=revisit_s, reason=reason)

    return WatchPlan(name="default-exam", band=[
        b("PMR446", 446.0, 446.2, 5, 2.0, 10.0, "licence-free PMR446 walkie-talkies: the commonest voice link of cheating"),
        b("SRD433", 433.05, 434.79, 4, 1.0, 10.0, "433 MHz ISM/SRD: cheap FSK/LoRa data modules and remote controls"),
        b("SRD868", 863.0, 870.0, 4, 0.5, 10.0, "868 MHz SRD: LoRa and FSK data links, alarm and telemetry modules"),
        b("VHF-two-way", 150.0, 174.0, 3, 0.1, 30.0, "VHF land-mobile hand-helds, MURS, marine; the cheap dual-band radios' VHF range"),
        b("VHF-220", 220.0, 240.0, 3, 0.1, 30.0,
          "220–240 MHz: data-transmission radios and the cheap data links of cheating devices (issue #19)"),
        b("UHF-300", 300.0, 400.0, 3, 0.1, 30.0, "315/330 MHz remote links; 300–470 MHz is where cheating devices are found (issue #19)"),
        b("UHF-400", 400.0, 433.05, 3, 0.1, 30.0, "UHF land-mobile and trunked hand-helds (400–430 MHz)"),
        b("UHF-434", 434.79, 446.0, 3, 0.1, 30.0, "70 cm amateur and land-mobile hand-helds"),
        b("UHF-446", 446.2, 470.0, 3, 0.1, 30.0, "UHF land-mobile hand-helds, FRS/GMRS 462/467 MHz"),
        b("ISM915", 902.0, 928.0, 2, 0.1, 60.0, "902–928 MHz ISM (Americas): LoRa and FSK data links"),
        b("VHF-2m", 137.0, 150.0, 2, 0.1, 60.0, "2 m amateur hand-helds (144–148 MHz), the cheap dual-band radios"),
        b("VHF-low", 30.0, 88.0, 1, 0.1, 300.0, "low-band land mobile, 40/49 MHz-class wireless links and radio control"),
        b("FM-broadcast", 88.0, 108.0, 1, 0.1, 300.0, "cheap FM 'bug' and earpiece transmitters beside the broadcast stations"),
        b("Airband", 108.0, 137.0, 1, 0.1, 300.0, "aviation: coverage only"),
        b("Band-III", 174.0, 220.0, 1, 0.1, 300.0, "DAB/TV Band III and wireless microphones: coverage of 174–400 MHz"),
        b("VHF-240", 240.0, 300.0, 1, 0.1, 300.0, "government and military: coverage of 174–400 MHz"),
        b("UHF-TV", 470.0, 790.0, 1, 0.1, 300.0, "DVB-T, with wireless microphones and in-ear monitors between TV channels"),
        b("UHF-790", 790.0, 863.0, 1, 0.1, 300.0, "LTE 800 and the 823–832 MHz wireless microphones: coverage"),
        b("UHF-870", 870.0, 902.0, 1, 0.1, 300.0, "GSM-R and GSM/LTE 900 uplink, 870–876 MHz SRD: coverage"),
        b("UHF-928", 928.0, 1000.0, 1, 0.1, 300.0, "GSM/LTE 900 downlink and aviation DME: coverage to 1 GHz"),
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
