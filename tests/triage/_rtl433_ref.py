"""Reference symbol periods from rtl_433 22.11's pulse analyser (``-A``) in each ``FILE.rtl433.txt``.

Per burst ("Detected OOK/FSK package @t"): the pulse and gap width histograms (µs, count), the
modulation guess and rtl_433's own ``short_width``. The reference elementary period applies
``detector.triage.elementary_period_s`` (rtl_433's own short-width rule, bins under 5 % of the
runs dropped as noise) to rtl_433's measured histograms, so estimator and reference share the
definition but not the measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from detector.triage import WidthCluster, elementary_period_s

_BIN = re.compile(r"^\s*\[\s*\d+\]\s*count:\s*(\d+),\s*width:\s*(\d+) us")
NO_GUESS = ("No clue", "Single pulse", "Un-modulated")


@dataclass(frozen=True)
class RefBurst:
    kind: str                  # "OOK" or "FSK"
    time_s: float
    pulses_us: tuple[tuple[float, int], ...]
    gaps_us: tuple[tuple[float, int], ...]
    guess: str
    short_width_us: float | None

    @property
    def n_runs(self) -> int:
        return sum(c for _, c in self.pulses_us) + sum(c for _, c in self.gaps_us)

    def clusters(self, which) -> tuple[WidthCluster, ...]:
        total = sum(c for _, c in which)
        keep = max(2.0, 0.05 * total)
        return tuple(WidthCluster(w * 1e-6, c) for w, c in sorted(which) if c >= keep)

    def reference_period_s(self) -> float:
        return elementary_period_s(self.clusters(self.pulses_us), self.clusters(self.gaps_us))[0]


def pulse_analyser_bursts(path: Path, section: str = "## 2)") -> list[RefBurst]:
    text = path.read_text(errors="replace")
    if section not in text:
        return []
    text = text.split(section, 1)[1].split("\n## 3)", 1)[0]
    out: list[RefBurst] = []
    cur: dict | None = None
    mode = None
    for line in text.splitlines():
        m = re.match(r"Detected (OOK|FSK) package\s+@([\d.]+)s", line)
        if m:
            if cur:
                out.append(RefBurst(**cur))
            cur = {"kind": m.group(1), "time_s": float(m.group(2)), "pulses_us": (), "gaps_us": (), "guess": "",
                   "short_width_us": None}
            mode = None
            continue
        if cur is None:
            continue
        if line.startswith("Pulse width distribution"):
            mode = "pulses_us"
        elif line.startswith("Gap width distribution"):
            mode = "gaps_us"
        elif line.startswith(("Pulse period", "Pulse timing", "Level estimates")):
            mode = None
        elif line.startswith("Guessing modulation:"):
            cur["guess"] = line.split(":", 1)[1].strip()
        elif line.startswith("Attempting demodulation"):
            cur["short_width_us"] = float(re.search(r"short_width: (\d+)", line).group(1))
        elif mode and (b := _BIN.match(line)):
            cur[mode] = cur[mode] + ((float(b.group(2)), int(b.group(1))),)
    if cur:
        out.append(RefBurst(**cur))
    return out


def main_burst(path: Path) -> RefBurst | None:
    """The burst with the most runs among those rtl_433 could guess a modulation for."""
    bursts = [b for b in pulse_analyser_bursts(path) if b.guess and not b.guess.startswith(NO_GUESS)]
    return max(bursts, key=lambda b: b.n_runs) if bursts else None
