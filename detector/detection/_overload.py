"""Receiver overload (issue #18 item 1): the share of I/Q values at the ADC rails per block, and a
state with hysteresis, :class:`OverloadMonitor`, that reports one
:class:`~detector.detection.events.OverloadEvent` per episode.

**Rails share** (:func:`rails_share`). The share of the block's I and Q *values* (2n per block of
n samples) whose magnitude is at the rails: ≥ 0.999 of full scale when the block reaches exactly
±1.0 (an 8-bit RTL-SDR's bytes 0 and 255 map to exactly ±1.0 by ``cu8_to_complex64``,
(b − 127.5)/127.5, while bytes 1 and 254 map to ±0.992, so only the rails count), else ≥ 0.99 of
full scale (cs8's +127/128, cs16, cf32). A share of values, not of complex samples: two tones at
0.7 of full scale each put about 19 % of the values (38 % of the samples, I or Q) at the rails. It
runs on every block, so it is cheap: on a quarter of the block's values (one run of 4096
consecutive values in every four), the largest and smallest value first (no temporary): below the
threshold the share is 0 with no further pass, else the values at or beyond each rail are counted.
Measured on a 64k-sample block: about 1 % of the block's framed-PSD time without rails, 3 % with
them (``tests/detection/test_overload.py``).

**State.** ``overload`` when the rails share reaches ``on_share`` (0.1 %: clipping that often puts
its products 20–30 dB under the strong emissions, far over the floor of a 10 ms frame) or the
strongest emission's peak reaches ``strong_dbfs`` (−2 dBFS per bin: a carrier that near full scale
compresses the front end before the ADC clips); ``ok`` again once both have stayed below
``off_share`` (a tenth of ``on_share``) and ``strong_dbfs − 3 dB`` for ``hold_s`` of stream time,
so that a state does not flap with the bursts of an OOK remote. The 8-bit ADC's clipping and the
front end's compression make intermodulation and clipping products (Razavi, *RF
Microelectronics*, 2nd ed., §2.2; the RTL2832U has an 8-bit ADC with no headroom above its rails):
the advice is to lower the gain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from detector.detection.events import OVERLOAD_PREFIX, OverloadEvent

__all__ = ["OverloadConfig", "OverloadMonitor", "rails_share", "ADVICE"]

ADVICE = ("lower the gain (the receiver is overloaded: by-products of the strong emissions appear "
          "across the band and levels are compressed; readings are left out of localization)")


def rails_share(samples: NDArray[np.complex64], *, level: float | None = None, chunk: int = 4096,
                every: int = 4) -> float:
    """Share (0–1) of the I and Q values of ``samples`` (complex, shape (n,)) at the ADC rails.

    ``level``: the |value| that counts as the rails (full scale = 1.0); None: 0.999 when the
    values reach exactly 1.0 (cu8/cs8 rails), else 0.99. A block of at least ``2·chunk·every``
    values is measured on one ``chunk`` of consecutive values in every ``every`` (a quarter of the
    block, spread over all of it: the share of a 64k-sample block to about ±0.05 % of the values
    at a 1 % share, and cheap, see the module docstring); a shorter block on all its values."""
    x = np.asarray(samples)
    if x.size == 0:
        return 0.0
    v = x.view(np.float32) if x.dtype == np.complex64 else x.view(np.float64) if x.dtype == np.complex128 \
        else np.asarray(x, dtype=np.float32)
    if every > 1 and v.size >= 2 * chunk * every:
        v = v[: v.size // chunk * chunk].reshape(-1, chunk)[::every]  # a view: whole chunks, 1 in ``every``
    if v.ndim == 2:  # per-chunk reductions first: faster than one reduction over a strided view
        hi, lo = float(v.max(axis=1).max()), float(v.min(axis=1).min())
    else:
        hi, lo = float(v.max()), float(v.min())
    peak = max(hi, -lo)
    if not np.isfinite(peak):
        v = v[np.isfinite(v)]
        if v.size == 0:
            return 0.0
        hi, lo = float(v.max()), float(v.min())
        peak = max(hi, -lo)
    thr = level if level is not None else (0.999 if peak >= 1.0 else 0.99)
    if peak < thr:
        return 0.0
    n = (np.count_nonzero(v >= thr) if hi >= thr else 0) + (np.count_nonzero(v <= -thr) if -lo >= thr else 0)
    return float(n) / v.size


@dataclass(frozen=True)
class OverloadConfig:
    """Knobs of the overload state (see the module docstring)."""

    on_share: float = 1e-3
    off_share: float = 1e-4
    strong_dbfs: float = -2.0
    off_margin_db: float = 3.0
    hold_s: float = 1.0
    #: the strong emissions named in the event and ``/health``: at most this many, each within
    #: ``named_within_db`` of the strongest
    max_named: int = 3
    named_within_db: float = 20.0


@dataclass
class OverloadMonitor:
    """The overload state of a run: fed once per block (:meth:`update`), read by ``/health``
    (:meth:`status`), the frames' ``meta`` and the tracks' readings (:attr:`on`)."""

    config: OverloadConfig = field(default_factory=OverloadConfig)
    on: bool = False
    rails_share: float = 0.0
    since_s: float | None = None
    strongest: list[dict] = field(default_factory=list)
    overloaded_blocks: int = 0
    blocks: int = 0
    episodes: int = 0
    _clear_since_s: float | None = None

    def update(self, share: float | None, emissions, t_first_s: float, t_last_s: float,
               center_hz: float | None) -> list[OverloadEvent]:
        """One block: its rails share (None for spectra, which have no samples) and its emissions
        (an iterable of :class:`~detector.detection.Emission`); returns the event of an episode
        that begins here (at most one)."""
        c = self.config
        self.blocks += 1
        self.rails_share = 0.0 if share is None else float(share)
        best: dict[int, tuple[float, float]] = {}  # the strongest (peak, frequency) per 10 kHz cell
        for e in emissions:
            key = int(round(e.peak_hz / 1e4))
            if key not in best or e.peak_dbfs > best[key][0]:
                best[key] = (float(e.peak_dbfs), float(e.peak_hz))
        peaks = sorted(best.values(), key=lambda x: -x[0])
        top = peaks[0][0] if peaks else -np.inf
        hot = self.rails_share >= c.on_share or top >= c.strong_dbfs
        cold = self.rails_share < c.off_share and top < c.strong_dbfs - c.off_margin_db
        events: list[OverloadEvent] = []
        if hot:
            self.overloaded_blocks += 1
            self._clear_since_s = None
            named = [{"center_hz": round(float(f), 1), "peak_dbfs": round(float(p), 2)}
                     for p, f in peaks[: c.max_named] if p >= top - c.named_within_db]
            if not self.on:
                self.on = True
                self.since_s = t_first_s
                self.episodes += 1
                self.strongest = named
                events.append(self._event(t_first_s, t_last_s, center_hz))
            elif named and (not self.strongest or named[0]["peak_dbfs"] > self.strongest[0]["peak_dbfs"] - 6.0):
                self.strongest = named
        elif self.on:
            if cold:
                if self._clear_since_s is None:
                    self._clear_since_s = t_first_s
                if t_last_s - self._clear_since_s >= c.hold_s:
                    self.on = False
                    self.since_s = t_last_s
                    self._clear_since_s = None
            else:
                self._clear_since_s = None
                self.overloaded_blocks += 1
        return events

    def _event(self, t0: float, t1: float, center_hz: float | None) -> OverloadEvent:
        s = self.strongest
        c = s[0]["center_hz"] if s else (center_hz or 0.0)
        names = ", ".join(f"{x['center_hz'] / 1e6:.4f} MHz at {x['peak_dbfs']:.1f} dBFS" for x in s) or "none found"
        reasons = (f"receiver overload: {100 * self.rails_share:.2f} % of the I/Q values at the ADC rails",
                   f"strong emissions: {names}", ADVICE)
        return OverloadEvent(track_id=f"{OVERLOAD_PREFIX}{c / 1e3:.0f}", center_hz=round(float(c), 1), bandwidth_hz=0.0,
                             first_seen_s=round(t0, 4), last_seen_s=round(t1, 4), rails_share=round(self.rails_share, 5),
                             strongest=tuple(dict(x) for x in s), advice=ADVICE, reasons=reasons,
                             peak_dbfs=s[0]["peak_dbfs"] if s else None)

    def status(self) -> dict:
        """``/health`` → ``overload``: ``state`` (``ok``/``overload``), ``rails_share`` of the last
        block, ``since_s`` (stream time the state began, None before any), ``strongest`` emissions
        (``center_hz``, ``peak_dbfs``) of the episode, ``advice`` while overloaded, counters."""
        return {"state": "overload" if self.on else "ok", "rails_share": round(self.rails_share, 5),
                "since_s": None if self.since_s is None else round(self.since_s, 3),
                "strongest": [dict(x) for x in self.strongest] if self.on else [],
                "advice": ADVICE if self.on else None, "overloaded_blocks": self.overloaded_blocks,
                "blocks": self.blocks, "episodes": self.episodes}


def overload_stage(monitor: OverloadMonitor, res, *, share: float | None, t_first_s: float, t_last_s: float,
                   center_hz: float | None, sample_rate_hz: float | None, bin_hz: float,
                   byproducts=None) -> list[OverloadEvent]:
    """The engine's overload stage for one stack (a :class:`~detector.detection.StackResult`
    ``res``): the state updated from the block's rails ``share`` and the stack's emissions, then
    the by-products of every frame marked (:func:`~detector.detection._byproducts.mark_byproducts`,
    with ``byproducts`` its config; None: not marked). Returns the overload event of an episode
    that begins here, if any."""
    from detector.detection._byproducts import mark_byproducts

    frames = res.emissions
    events = monitor.update(share, (e for i in frames for e in frames[i]), t_first_s, t_last_s, center_hz)
    if byproducts is not None and frames:
        for i in frames:
            mark_byproducts(frames[i], center_hz=center_hz, sample_rate_hz=sample_rate_hz, bin_hz=bin_hz,
                            overloaded=monitor.on, config=byproducts)
    return events
