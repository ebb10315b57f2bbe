"""Whitelist of licensed channels (CSV or TOML): alerts on them are suppressed unless the channel
is far above its baseline level."""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from pathlib import Path

from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.core.units import parse_hz

__all__ = ["Channel", "Whitelist", "load_whitelist", "append_channel"]


@dataclass(frozen=True)
class Channel:
    """A licensed channel: ``center_hz``, ``bandwidth_hz``, ``name``, optional ``site`` (None = every site).

    ``level_dbfs`` (optional): the level the channel is known at. A channel whitelisted by an
    operator's dismissal carries the dismissed alert's peak, and alerts again only when it is far
    above that level; without it, "far above" is measured against the site baseline.
    """

    center_hz: float
    bandwidth_hz: float
    name: str
    site: str | None = None
    level_dbfs: float | None = None

    def holds(self, f_hz: float, tolerance_hz: float = 0.0) -> bool:
        return abs(f_hz - self.center_hz) <= self.bandwidth_hz / 2 + tolerance_hz


@dataclass(frozen=True)
class Whitelist:
    channels: tuple[Channel, ...] = ()
    far_above_db: float = 10.0

    def match(self, f_hz: float, *, site: str | None = None, tolerance_hz: float = 1000.0) -> Channel | None:
        """The whitelisted channel holding ``f_hz`` at ``site``, or None."""
        for ch in self.channels:
            if (ch.site is None or site is None or ch.site == site) and ch.holds(f_hz, tolerance_hz):
                return ch
        return None

    def with_channel(self, ch: Channel) -> "Whitelist":
        return Whitelist(self.channels + (ch,), self.far_above_db)


def _opt_float(v, what: str) -> float | None:
    if v in (None, ""):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, not {v!r}") from None
    if f != f or f in (float("inf"), float("-inf")):
        raise InputError(f"{what} must be finite, not {v!r}")
    return f


def _channel(row: dict, where: str) -> Channel:
    if not isinstance(row, dict) or "center_hz" not in row:
        raise InputError(f"{where}: each whitelist entry needs center_hz")
    try:
        ch = Channel(
            center_hz=parse_hz(row["center_hz"], name="center_hz"),
            bandwidth_hz=parse_hz(row.get("bandwidth_hz") or 12500, name="bandwidth_hz"),
            name=str(row.get("name") or "licensed"),
            site=(str(row["site"]) if row.get("site") not in (None, "") else None),
            level_dbfs=_opt_float(row.get("level_dbfs"), f"{where}: level_dbfs"),
        )
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    if not 0 < ch.center_hz <= 10e9 or not 0 < ch.bandwidth_hz <= 100e6:
        raise InputError(f"{where}: center_hz and bandwidth_hz must be positive frequencies")
    return ch


def load_whitelist(path: str | Path) -> Whitelist:
    """Read a whitelist: CSV with a header ``center_hz,bandwidth_hz,name[,site]`` or TOML with
    ``[[channel]]`` tables of the same keys. Frequencies accept ``446.00625M`` etc."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: whitelist not found")
    if p.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(read_text(p, "whitelist"))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{p}: not valid TOML ({exc})") from None
        unknown = set(data) - {"channel", "far_above_db"}
        if unknown:
            raise InputError(f"{p}: unknown whitelist keys {sorted(unknown)} (use [[channel]] tables and far_above_db)")
        rows = data.get("channel", [])
        if not rows:
            raise InputError(f"{p}: the whitelist holds no [[channel]]")
        return Whitelist(tuple(_channel(r, f"{p} channel {i + 1}") for i, r in enumerate(rows)), float(data.get("far_above_db", 10.0)))
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            fields = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{p}: not a CSV text file ({exc})") from None
    if "center_hz" not in fields:
        raise InputError(f"{p}: a whitelist CSV needs a header with center_hz (center_hz,bandwidth_hz,name,site)")
    if not rows:
        raise InputError(f"{p}: the whitelist holds no channel")
    return Whitelist(tuple(_channel(r, f"{p} line {i + 2}") for i, r in enumerate(rows)))


def append_channel(path: str | Path, ch: Channel) -> None:
    """Append ``ch`` to a whitelist CSV (written with its header when new), readable again by
    :func:`load_whitelist`. The monitor keeps the channels operators whitelist when they dismiss
    an alert in ``DATA_DIR/whitelist-added.csv``, so that they survive a restart."""
    p = Path(path)
    new = not p.exists() or p.stat().st_size == 0
    try:
        with p.open("a", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["center_hz", "bandwidth_hz", "name", "site", "level_dbfs"])
            w.writerow([f"{ch.center_hz:.1f}", f"{ch.bandwidth_hz:.1f}", ch.name, ch.site or "",
                        "" if ch.level_dbfs is None else f"{ch.level_dbfs:.2f}"])
    except OSError as exc:
        raise InputError(f"{p}: cannot add the whitelisted channel ({exc.strerror or exc})") from None
