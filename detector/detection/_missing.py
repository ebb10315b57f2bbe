"""Surveyed stations gone silent: :class:`MissingStations`, the engine's ``missing`` check.

A baseline emission with occupancy ≥ ``EngineConfig.missing_occupancy`` (outside the DC spike) that
stays absent for ``missing_after_s`` gives one :class:`~detector.detection.events.MissingEvent`
(jamming, tampering or a switched-off station). :class:`MissingStations` holds what the check keeps
between stacks: each station's absence state and, per aligned baseline, its strong-station runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from detector.detection._results import StackResult
from detector.detection._thresholds import threshold_ratio
from detector.detection.events import MISSING_PREFIX, DetectionEvent, MissingEvent

if TYPE_CHECKING:
    from detector.detection.engine import EngineConfig

__all__ = ["MissingStations"]


class MissingStations:
    """The ``missing`` check of a :class:`~detector.detection.engine.DetectionEngine` (one per engine,
    so per run): :meth:`check` after each stack gives the ``missing`` events."""

    def __init__(self) -> None:
        #: station key (center kHz) → {"since": time s absent from, or None; "reported": bool}
        self._state: dict[int, dict] = {}
        #: ("strong_runs", id(aligned), occupancy, center Hz) → inclusive (lo, hi) bin runs of the strong stations
        self._runs: dict = {}

    def check(self, config: EngineConfig, freqs_hz, looks: float, frame_s: float, aligned, power_lin, res: StackResult,
              t: float, *, center_hz: float | None = None) -> list[DetectionEvent]:
        """Baseline emissions with occupancy ≥ 0.9 that stay absent for ``missing_after_s`` → ``missing``.

        The DC spike's bins (``DetectionConfig.dc_half_width_hz`` about ``center_hz``, plus a bin)
        are not stations: a survey holds the receiver's own DC spike as a steady "emission", and a
        receiver with a smaller DC offset (another dongle, DC correction on) must not report it
        missing."""
        key = ("strong_runs", id(aligned), config.missing_occupancy, center_hz)
        runs = self._runs.get(key)
        if runs is None:  # per aligned baseline (kept alive by the engine's _aligned, so its id is not reused)
            occ = np.nan_to_num(np.asarray(aligned.occupancy, dtype=np.float64), nan=0.0)
            strong = (occ >= config.missing_occupancy) & np.asarray(aligned.covered, bool)
            if center_hz is not None:
                dc = config.detection.dc_half_width_hz + abs(float(freqs_hz[1] - freqs_hz[0]))
                strong &= np.abs(freqs_hz - center_hz) > dc
            d = np.diff(np.concatenate(([0], strong.view(np.int8), [0])))
            runs = self._runs[key] = list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))
        if not runs:
            return []
        floor = res.floor_lin[-1]
        thr = threshold_ratio(looks, 1e-6)  # a noise spike must not count as the station coming back
        present = power_lin > floor * thr
        out: list[DetectionEvent] = []
        for lo, hi in runs:
            key = int(round(freqs_hz[(lo + hi) // 2] / 1000.0))
            st = self._state.setdefault(key, {"since": None, "reported": False})
            if present[lo:hi + 1].any():
                st["since"], st["reported"] = None, False
                continue
            if st["since"] is None:
                st["since"] = t
            if not st["reported"] and t - st["since"] >= config.missing_after_s:
                st["reported"] = True
                f_lo, f_hi = float(freqs_hz[lo]), float(freqs_hz[hi])
                out.append(MissingEvent(
                    track_id=f"{MISSING_PREFIX}{key}", center_hz=round((f_lo + f_hi) / 2, 1),
                    bandwidth_hz=round(f_hi - f_lo + float(freqs_hz[1] - freqs_hz[0]), 1),
                    first_seen_s=round(st["since"], 4), last_seen_s=round(t + frame_s, 4),
                    reasons=(f"survey emission (occupancy ≥ {config.missing_occupancy:.0%}) absent for "
                             f"{t - st['since']:.0f} s: jamming, tampering or a switched-off station",),
                ))
        return out
