"""The device library (#23 item 4): known cheating and benign transmitters, and how well an
observed emission matches each.

The library is TOML (``detector/config/devices.toml`` ships with the package; a team's own file
adds entries and replaces entries of the same ``name``), validated by :class:`DeviceEntry`. An
:class:`Observation` (what an alert or a recording shows: frequency, bandwidth, modulation,
symbol rate, burst pattern, decoded models) is compared field by field with every entry
(:func:`compare`); the best-matching entry gives the alert a score term, positive for a cheating
device and negative for a benign one, with its reason (:func:`library_term`). A decoded model
named by a benign entry with ``whitelist = true`` whitelists the alert.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.core.units import parse_hz

__all__ = ["DeviceEntry", "DeviceLibrary", "Observation", "FieldCheck", "EntryComparison", "LibraryTerm",
           "load_library", "compare", "library_term", "DEFAULT_LIBRARY"]

DEFAULT_LIBRARY = "devices.toml"
Verdict = Literal["cheating", "benign"]
FieldState = Literal["match", "mismatch", "unknown"]


def _range(v, name: str, hz: bool) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"{name} must be [low, high], not {v!r}")
    lo, hi = (parse_hz(x, name=name) if hz else float(x) for x in v)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi < lo:
        raise ValueError(f"{name} must be [low, high] with 0 <= low <= high, not {v!r}")
    return (lo, hi)


class DeviceEntry(BaseModel):
    """One known device. Ranges are [low, high], inclusive; a field left out is not compared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    verdict: Verdict
    band_hz: tuple[tuple[float, float], ...] = Field(description="[low, high] Hz, or a list of them")
    bandwidth_hz: tuple[float, float] | None = None
    modulation: Literal["OOK", "FSK", "NFM", "any"] = "any"
    symbol_rate_baud: tuple[float, float] | None = None
    burst: Literal["continuous", "bursts", "periodic"] | None = None
    burst_period_s: tuple[float, float] | None = None
    models: tuple[str, ...] = ()
    whitelist: bool = False
    weight: float = Field(default=2.0, gt=0, le=10)
    notes: str = ""

    @field_validator("band_hz", mode="before")
    @classmethod
    def _bands(cls, v):
        if isinstance(v, (list, tuple)) and v and all(isinstance(b, (list, tuple)) for b in v):
            return tuple(_range(b, "band_hz", True) for b in v)
        return (_range(v, "band_hz", True),)

    @field_validator("bandwidth_hz", mode="before")
    @classmethod
    def _bw(cls, v):
        return None if v is None else _range(v, "bandwidth_hz", True)

    @field_validator("symbol_rate_baud", "burst_period_s", mode="before")
    @classmethod
    def _num(cls, v, info):
        return None if v is None else _range(v, info.field_name, False)

    @model_validator(mode="after")
    def _whitelist_benign(self):
        if self.whitelist and self.verdict != "benign":
            raise ValueError(f"{self.name}: only a benign device can whitelist")
        return self


@dataclass(frozen=True)
class DeviceLibrary:
    entries: tuple[DeviceEntry, ...]
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observation:
    """What is known of an emission. ``modulation``: "OOK", "FSK", "NFM" or None; ``burst``:
    "continuous", "bursts", "periodic" or None; ``models``: decoder model names."""

    center_hz: float
    bandwidth_hz: float | None = None
    modulation: str | None = None
    symbol_rate_baud: float | None = None
    burst: str | None = None
    burst_period_s: float | None = None
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldCheck:
    field: str
    state: FieldState
    observed: str
    expected: str


@dataclass(frozen=True)
class EntryComparison:
    """One entry against the observation: per-field checks, ``matched`` (in band, no mismatch, and
    decoded as one of its models or matching at least two other fields) and ``strength`` (0-1)."""

    entry: DeviceEntry
    checks: tuple[FieldCheck, ...]
    matched: bool
    strength: float
    decoded: bool

    def to_json(self) -> dict:
        return {"name": self.entry.name, "verdict": self.entry.verdict, "matched": self.matched,
                "strength": round(self.strength, 3), "decoded_model": self.decoded,
                "checks": [vars(c) for c in self.checks]}


@dataclass(frozen=True)
class LibraryTerm:
    """The score term of the best match: ``value`` (+weight × strength for cheating, − for benign),
    ``reason`` in words, ``whitelisted`` (a decoded model of a whitelisting benign entry)."""

    value: float
    reason: str
    best: EntryComparison | None
    whitelisted: bool = False
    comparisons: tuple[EntryComparison, ...] = field(default_factory=tuple)


def _load_file(text: str, where: str) -> list[DeviceEntry]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from None
    rows = doc.get("device", [])
    if not isinstance(rows, list):
        raise InputError(f"{where}: [[device]] entries expected")
    out = []
    for i, row in enumerate(rows, 1):
        try:
            out.append(DeviceEntry.model_validate(row))
        except (ValidationError, InputError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else {"msg": str(exc), "loc": ()}
            loc = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{where}: device #{i} ({row.get('name', '?') if isinstance(row, dict) else '?'}): "
                             f"{loc + ': ' if loc else ''}{first['msg']}") from None
    return out


def load_library(extra: str | Path | None = None, *, builtin: bool = True) -> DeviceLibrary:
    """The shipped library, plus ``extra`` (a TOML file of [[device]]) whose entries replace
    shipped ones of the same name. InputError for a missing or invalid file."""
    entries: dict[str, DeviceEntry] = {}
    sources = []
    if builtin:
        text = resources.files("detector.config").joinpath(DEFAULT_LIBRARY).read_text(encoding="utf-8")
        for e in _load_file(text, DEFAULT_LIBRARY):
            entries[e.name] = e
        sources.append(DEFAULT_LIBRARY)
    if extra is not None:
        path = Path(extra)
        if not path.is_file():
            raise InputError(f"--library {extra}: no such file")
        for e in _load_file(read_text(path), str(path)):
            entries[e.name] = e
        sources.append(str(path))
    return DeviceLibrary(tuple(entries.values()), tuple(sources))


def _fmt_range(r: tuple[float, float], unit: str) -> str:
    def one(v: float) -> str:
        if unit == "Hz":
            for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
                if v >= div:
                    return f"{v / div:g} {suf}Hz"
            return f"{v:g} Hz"
        return f"{v:g} {unit}"
    return f"{one(r[0])}–{one(r[1])}"


def _in(v: float, r: tuple[float, float], slack: float = 0.0) -> bool:
    return r[0] * (1 - slack) <= v <= r[1] * (1 + slack)


def compare(obs: Observation, entry: DeviceEntry) -> EntryComparison:
    """Field-by-field comparison of an observation with one library entry."""
    checks: list[FieldCheck] = []

    def add(name: str, ok: bool | None, observed: str, expected: str) -> None:
        checks.append(FieldCheck(name, "unknown" if ok is None else ("match" if ok else "mismatch"), observed, expected))

    in_band = any(_in(obs.center_hz, b) for b in entry.band_hz)
    add("band", in_band, f"{obs.center_hz / 1e6:.4f} MHz", ", ".join(_fmt_range(b, "Hz") for b in entry.band_hz))
    if entry.bandwidth_hz is not None:
        bw = obs.bandwidth_hz
        add("bandwidth", None if bw is None else _in(bw, entry.bandwidth_hz, 0.1),
            "?" if bw is None else f"{bw / 1e3:.1f} kHz", _fmt_range(entry.bandwidth_hz, "Hz"))
    if entry.modulation != "any":
        add("modulation", None if obs.modulation is None else obs.modulation == entry.modulation,
            obs.modulation or "?", entry.modulation)
    if entry.symbol_rate_baud is not None:
        r = obs.symbol_rate_baud
        add("symbol rate", None if r is None or not math.isfinite(r) else _in(r, entry.symbol_rate_baud, 0.05),
            "?" if r is None or not math.isfinite(r) else f"{r:.0f} Bd", _fmt_range(entry.symbol_rate_baud, "Bd"))
    if entry.burst is not None:
        add("burst pattern", None if obs.burst is None else obs.burst == entry.burst, obs.burst or "?", entry.burst)
    if entry.burst_period_s is not None:
        p = obs.burst_period_s
        add("burst period", None if p is None else _in(p, entry.burst_period_s, 0.1),
            "?" if p is None else f"{p:.1f} s", _fmt_range(entry.burst_period_s, "s"))
    decoded = bool(entry.models) and any(m in entry.models for m in obs.models)
    if entry.models:
        add("decoded model", decoded if obs.models else None, ", ".join(obs.models) or "none decoded",
            ", ".join(entry.models[:4]) + (" …" if len(entry.models) > 4 else ""))
    n_match = sum(c.state == "match" for c in checks if c.field not in ("band", "decoded model"))
    mismatch = any(c.state == "mismatch" for c in checks if c.field != "decoded model")
    decoded_mismatch = bool(obs.models) and bool(entry.models) and not decoded
    matched = in_band and (decoded or (not mismatch and not decoded_mismatch and n_match >= 2))
    known = [c for c in checks if c.state != "unknown"]
    strength = 1.0 if decoded else (sum(c.state == "match" for c in known) / len(checks) if matched else 0.0)
    return EntryComparison(entry, tuple(checks), matched, strength, decoded)


def library_term(obs: Observation, library: DeviceLibrary) -> LibraryTerm:
    """The score term of the strongest matching entry (decoded matches first, then strength ×
    weight), with its reason; 0 and "no library entry matches" when none does."""
    comps = tuple(compare(obs, e) for e in library.entries)
    matched = [c for c in comps if c.matched]
    if not matched:
        return LibraryTerm(0.0, "no library entry matches", None, False, comps)
    best = max(matched, key=lambda c: (c.decoded, c.strength * c.entry.weight))
    sign = 1.0 if best.entry.verdict == "cheating" else -1.0
    value = round(sign * best.entry.weight * best.strength, 2)
    fields = ", ".join(c.field for c in best.checks if c.state == "match")
    how = f"decoded as {', '.join(m for m in obs.models if m in best.entry.models)}" if best.decoded else f"matches {fields}"
    white = best.decoded and best.entry.whitelist
    reason = (f"{best.entry.verdict} device in the library: {best.entry.name} ({how}); score {value:+.2f}"
              + ("; whitelisted by model" if white else ""))
    return LibraryTerm(value, reason, best, white, comps)
