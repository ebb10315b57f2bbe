"""Modulation and symbol rate of one data burst from its complex baseband IQ (pure: arrays in,
a frozen dataclass out).

The burst's band is found first (``_band.modulated_band``: the bins whose power changes most over
the slice, so a steady emission beside it and the RTL-SDR's DC spike do not count; a second band
moving against the first is the other tone of a wide 2-FSK), then mixed to 0 Hz and low-passed.

* **OOK or FSK.** Inside the burst's active span, a carrier that drops more than 10 dB below its
  on-level for at least 10 % of the time, in 3 gaps or more, is on-off keyed; a constant envelope
  whose instantaneous frequency has two tones is frequency keyed (2-FSK or GFSK: the two are not
  told apart here).
* **OOK.** As rtl_433 does, the envelope of the whole band (DC removed) is read, smoothed over
  24 µs and then over an eighth of the period found. It is sliced 37.5 % of the way from its off
  to its on level with ±10 % hysteresis: a value fitted on the rtl_433_tests captures, where pulse
  widths then agree with rtl_433's to within ±5 % (at 50 % they read 2-7 % short). The on runs are
  the *pulses*, the off runs the *gaps*. Widths are clustered like rtl_433's pulse analyser does
  (a new cluster when a width is more than 20 % above the running mean, rtl_433
  ``src/histogram.c``), and clusters holding less than 5 % of the runs (and fewer than 2) are
  dropped as noise. The elementary symbol period follows rtl_433's choice of its ``short_width``
  (``src/pulse_analyzer.c``): for pulse-position modulation (one pulse width, several gap widths)
  the short gap, otherwise (PWM, Manchester, NRZ) the short pulse.
* **FSK.** The instantaneous frequency (phase difference × fs / 2π) is split at the midpoint of
  its two tones; the frequency deviation is half the tone spacing. The symbol period is first the
  short run cluster, then refined by the *transition periodogram*: the period T in
  [0.75, 1.5] × that first guess that maximises ``|Σ exp(2πi t_k / T)|`` over the interpolated
  tone-change times ``t_k`` (a symbol clock puts every change on a multiple of T). Its
  coherence ``|Σ exp(2πi t_k / T)| / n`` must reach 0.3 (real bursts here: 0.86-1.0; noise read
  as two tones: under 0.07), else no FSK is reported.
* **A weak burst beside stronger emissions.** When neither gives a plausible answer (at least 4
  samples a symbol), the band whose *log* power varies most (``_band.keyed_band``) is filtered
  narrowly and its envelope read as OOK, runs shorter than the filter resolves dropped.

References: rtl_433 ``src/pulse_analyzer.c`` (pulse/gap histograms, modulation guess);
M. Oerder and H. Meyr, "Digital filter and square timing recovery", IEEE Trans. Comm. 36 (5),
1988 (timing from the symbol-rate line of the transitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from detector.triage._band import channel, keyed_band, mix_filter

__all__ = ["WidthCluster", "SymbolEstimate", "cluster_widths", "estimate_symbols", "elementary_period_s"]

Modulation = Literal["OOK", "FSK", "carrier", "unknown"]

CLUSTER_TOLERANCE = 0.2   # rtl_433 histogram tolerance: ±20 % of the running mean
MIN_CLUSTER_SHARE = 0.05  # clusters with fewer runs are noise
OOK_OFF_SHARE = 0.10      # an OOK burst is off this share of its active span at least
OOK_DEPTH_DB = 10.0       # and its off level this far below its on level
OOK_COARSE_S = 24e-6      # envelope smoothing of the first OOK pass
SPAN_SMOOTH_S = 1e-3      # envelope smoothing that finds the burst's active span
OOK_SLICE = 0.375         # OOK slicer: this far from the off to the on level (fitted, see above)
MIN_RUN_S = 20e-6         # OOK runs shorter than this are glitches
MIN_SAMPLES_PER_SYMBOL = 4.0  # below this an estimate is taken for noise and the keyed band is tried
FSK_MIN_COHERENCE = 0.3       # real FSK bursts here: 0.86-1.0; noise: under 0.07
KEYED_SCORE_DB = 8.0          # the keyed band's log-power spread, at least (noise alone: 5.6 dB)


@dataclass(frozen=True)
class WidthCluster:
    """Runs of similar width: ``width_s`` (median, seconds) and ``count``."""

    width_s: float
    count: int


@dataclass(frozen=True)
class SymbolEstimate:
    """What :func:`estimate_symbols` measured on one burst.

    ``modulation``: "OOK", "FSK" (2-FSK or GFSK), "carrier" (one unmodulated pulse) or
    "unknown" (no burst or no two tones). ``symbol_rate_baud`` = 1 / ``symbol_period_s`` (NaN when
    unknown). ``coding``: for OOK "PPM", "PWM" (also Manchester, whose half-bit is the short
    pulse) or "single pulse"; for FSK "NRZ". ``pulse_widths``/``gap_widths``: the clusters kept
    (OOK: on/off runs; FSK: high/low tone runs). ``deviation_hz``: FSK half tone spacing (NaN
    for OOK). ``tone_offsets_hz``: FSK (low, high) tone, OOK (carrier,), relative to the IQ's
    0 Hz. ``depth_db``: on level over off level (OOK) or envelope spread (FSK).
    ``active_s``: (start, end) of the burst's active span in the slice, seconds.
    """

    modulation: Modulation
    symbol_rate_baud: float
    symbol_period_s: float
    coding: str
    pulse_widths: tuple[WidthCluster, ...]
    gap_widths: tuple[WidthCluster, ...]
    deviation_hz: float
    tone_offsets_hz: tuple[float, ...]
    depth_db: float
    active_s: tuple[float, float]
    n_runs: int

    def to_json(self) -> dict:
        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        return {
            "modulation": self.modulation, "symbol_rate_baud": num(self.symbol_rate_baud),
            "symbol_period_s": num(self.symbol_period_s), "coding": self.coding,
            "pulse_widths_s": [[c.width_s, c.count] for c in self.pulse_widths],
            "gap_widths_s": [[c.width_s, c.count] for c in self.gap_widths],
            "deviation_hz": num(self.deviation_hz), "tone_offsets_hz": [float(f) for f in self.tone_offsets_hz],
            "depth_db": num(self.depth_db), "active_s": list(self.active_s), "n_runs": self.n_runs,
        }


def _unknown(reason: str = "unknown", active: tuple[float, float] = (0.0, 0.0)) -> SymbolEstimate:
    nan = float("nan")
    return SymbolEstimate("unknown", nan, nan, reason, (), (), nan, (), nan, active, 0)


def cluster_widths(widths_s: ArrayLike, *, tolerance: float = CLUSTER_TOLERANCE,
                   min_share: float = MIN_CLUSTER_SHARE) -> tuple[WidthCluster, ...]:
    """Cluster run widths (seconds, 1-D) into groups of similar width, shortest first.

    A sorted width starts a new cluster when it is more than ``tolerance`` above the running
    mean of the current one. Clusters with fewer than ``max(2, min_share × n)`` runs are dropped.
    """
    w = np.sort(np.asarray(widths_s, dtype=float).ravel())
    w = w[np.isfinite(w) & (w > 0)]
    if w.size == 0:
        return ()
    groups: list[list[float]] = [[float(w[0])]]
    for x in w[1:]:
        if x > np.mean(groups[-1]) * (1 + tolerance):
            groups.append([float(x)])
        else:
            groups[-1].append(float(x))
    keep = max(2.0, min_share * w.size)
    return tuple(WidthCluster(float(np.median(g)), len(g)) for g in groups if len(g) >= keep)


def elementary_period_s(pulses: tuple[WidthCluster, ...], gaps: tuple[WidthCluster, ...]) -> tuple[float, str]:
    """The elementary symbol period (seconds) and the coding, from pulse and gap clusters.

    rtl_433's ``short_width`` rule: one pulse width and two or more gap widths is PPM, whose
    period is the short gap; two or more pulse widths is PWM (or Manchester), period the short
    pulse; one pulse width and at most one gap width is a single pulse or an unmodulated
    preamble, period the pulse width. NaN and "none" without pulses.
    """
    if not pulses:
        return float("nan"), "none"
    if len(pulses) == 1 and len(gaps) >= 2:
        return gaps[0].width_s, "PPM"
    if len(pulses) >= 2:
        return pulses[0].width_s, "PWM"
    return pulses[0].width_s, "single pulse"


def _runs(bits: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Run starts, lengths (samples) and values of a boolean array."""
    change = np.flatnonzero(np.diff(bits.astype(np.int8))) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [bits.size])))
    return starts, lengths, bits[starts]


def _smooth(a: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    if n <= 1:
        return a
    return np.convolve(a, np.ones(n) / n, mode="same")


def _deglitch(bits: NDArray[np.bool_], min_run: int) -> NDArray[np.bool_]:
    """``bits`` with gaps and then pulses shorter than ``min_run`` samples removed
    (a morphological closing, then an opening; longer runs keep their widths)."""
    if min_run < 2:
        return bits
    st = np.ones(min_run, dtype=bool)
    out = ndimage.binary_closing(bits, structure=st, border_value=0)
    return ndimage.binary_opening(out, structure=st, border_value=0)


def _hysteresis(v: NDArray[np.float64], low: float, high: float) -> NDArray[np.bool_]:
    """True from each rise above ``high`` until the next fall below ``low``."""
    set_ = v > high
    reset = v < low
    events = np.flatnonzero(set_ | reset)
    if events.size == 0:
        return np.full(v.size, bool(v[0] > 0.5 * (low + high)))
    state = set_[events]
    idx = np.searchsorted(events, np.arange(v.size), side="right") - 1
    out = np.where(idx >= 0, state[np.maximum(idx, 0)], state[0])
    return out.astype(bool)


def _transition_period(times_s: NDArray[np.float64], guess_s: float) -> tuple[float, float]:
    """The period in [0.75, 1.5] × ``guess_s`` maximising ``|Σ exp(2πi t/T)|`` over the
    transition times (a 301-point grid, then ±1 % around its best in 201 points), and the
    coherence ``|Σ exp(2πi t/T)| / n`` there (1: every change on the clock; noise: about 1/√n)."""
    if times_s.size < 4 or not np.isfinite(guess_s):
        return guess_s, 0.0
    t = times_s - times_s[0]
    best = guess_s
    for grid in (guess_s * np.linspace(0.75, 1.5, 301), None):
        if grid is None:
            grid = best * np.linspace(0.99, 1.01, 201)
        power = np.abs(np.exp(2j * np.pi * t[None, :] / grid[:, None]).sum(axis=1))
        best = float(grid[int(np.argmax(power))])
    return best, float(power.max() / t.size)


def estimate_symbols(iq: ArrayLike, sample_rate_hz: float, *, ook_full_band: bool = True) -> SymbolEstimate:
    """Modulation, symbol rate and (FSK) deviation of one burst.

    Parameters
    ----------
    iq : array_like of complex, shape (n,)
        Baseband samples holding one burst (a packet or a few repeats) and a little quiet time
        around it; full scale and DC offset do not matter.
    sample_rate_hz : float
        Sample rate of ``iq``, Hz (> 0).
    ook_full_band : bool
        Read OOK on the whole band's envelope as rtl_433 does (default), or on the burst's
        filtered channel only.

    Returns
    -------
    SymbolEstimate
        ``modulation`` "unknown" when the slice is too short (< 64 samples) or holds no burst.

    Raises
    ------
    ValueError
        ``sample_rate_hz`` not positive or ``iq`` not 1-D.
    """
    if not sample_rate_hz > 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
    x = np.asarray(iq).astype(np.complex128)
    if x.ndim != 1:
        raise ValueError(f"iq must be 1-D, got shape {x.shape}")
    x = x[np.isfinite(x)]
    fs = float(sample_rate_hz)
    if x.size < 64:
        return _unknown("too short")
    x = x - x.mean()
    est = _estimate(x, fs, ook_full_band)
    if est.modulation in ("OOK", "FSK") and est.symbol_period_s * fs >= MIN_SAMPLES_PER_SYMBOL:
        return est
    # a weak keyed burst beside stronger emissions: its keyed band, narrowly filtered
    centre, width, score_db = keyed_band(x, fs)
    if score_db < KEYED_SCORE_DB:
        return est
    cutoff = max(0.75 * width, fs / 128)
    y = mix_filter(x, fs, centre, cutoff)
    slow = _smooth(np.abs(y), max(1, int(round(SPAN_SMOOTH_S * fs))))
    above = np.flatnonzero(slow > 0.5 * slow.max())
    a0, a1 = int(above[0]), int(above[-1]) + 1
    # the filter resolves nothing shorter than about 1 / (2 × cut-off): runs shorter are noise
    alt = _two_pass_ook(y, fs, a0, a1, centre, (a0 / fs, a1 / fs), coarse_s=0.25 / cutoff, min_run_s=0.5 / cutoff)
    if alt is not None and alt.modulation == "OOK" and alt.symbol_period_s * fs >= MIN_SAMPLES_PER_SYMBOL:
        return alt
    return est


def _estimate(x: NDArray[np.complex128], fs: float, ook_full_band: bool) -> SymbolEstimate:
    y, centre, _width = channel(x, fs)
    env = _smooth(np.abs(y), max(1, int(round(4e-6 * fs))))
    hi = float(np.percentile(env, 99))
    if not hi > 0:
        return _unknown("no signal")
    # active span: first to last sample of the 1 ms-smoothed envelope above half its peak
    slow = _smooth(np.abs(y), max(1, int(round(SPAN_SMOOTH_S * fs))))
    above = np.flatnonzero(slow > 0.5 * slow.max())
    a0, a1 = int(above[0]), int(above[-1]) + 1
    active = (a0 / fs, a1 / fs)
    span = env[a0:a1]
    on_level = float(np.median(span[span > 0.5 * hi])) if np.any(span > 0.5 * hi) else hi
    off = span < 0.5 * on_level
    off_level = float(np.median(span[off])) if np.any(off) else on_level
    depth_db = float(20 * np.log10(on_level / max(off_level, 1e-12)))
    # keyed: deep, off often enough, and in several separate gaps (not just a lead-in and -out)
    gaps_inside = int(np.count_nonzero(np.diff(_deglitch(~off, max(2, int(round(MIN_RUN_S * fs)))).astype(np.int8)) == 1))
    ook = off.mean() >= OOK_OFF_SHARE and depth_db >= OOK_DEPTH_DB and gaps_inside >= 3
    if ook and ook_full_band:
        # rtl_433's way: the envelope of the whole band. A coarse pass (24 µs smoothing) finds
        # the period, the fine pass smooths over an eighth of it.
        est = _two_pass_ook(x, fs, a0, a1, centre, active)
        if est is None:  # keyed in the channel, constant over the band: a wide 2-FSK
            return _fsk(x[a0:a1], fs, 0.0, depth_db, active)
        return est
    if ook:
        return _ook(span, on_level, off_level, depth_db, fs, centre, active)
    return _fsk(y[a0:a1], fs, centre, depth_db, active)


def _two_pass_ook(x: NDArray[np.complex128], fs: float, a0: int, a1: int, centre: float,
                  active: tuple[float, float], *, coarse_s: float = OOK_COARSE_S,
                  min_run_s: float = MIN_RUN_S) -> SymbolEstimate | None:
    """OOK on the envelope of ``x``: a coarse pass (24 µs smoothing) finds the period, the fine
    pass smooths over an eighth of it. None when the envelope is not keyed."""
    first = _ook_levels(x, fs, a0, a1, coarse_s)
    if first is None:
        return None
    est = _ook(*first, fs, centre, active, min_run_s)
    if np.isfinite(est.symbol_period_s):
        fine = _ook_levels(x, fs, a0, a1, float(np.clip(est.symbol_period_s / 8, 4e-6, max(100e-6, coarse_s))))
        if fine is not None:
            est = _ook(*fine, fs, centre, active, min_run_s)
    return est


def _ook_levels(x: NDArray[np.complex128], fs: float, a0: int, a1: int, smooth_s: float
                ) -> tuple[NDArray[np.float64], float, float, float] | None:
    """(envelope over the active span, on level, off level, depth dB) of the whole band, or None
    when the band's envelope is not keyed (off under 10 % of the span or less than 10 dB deep)."""
    env = _smooth(np.abs(x), max(1, int(round(smooth_s * fs))))[a0:a1]
    top = float(np.percentile(env, 99))
    on = env > 0.5 * top
    if top <= 0 or not np.any(on):
        return None
    on_level = float(np.median(env[on]))
    off = env < 0.5 * on_level
    if off.mean() < OOK_OFF_SHARE:
        return None
    off_level = float(np.median(env[off]))
    depth_db = float(20 * np.log10(on_level / max(off_level, 1e-12)))
    if depth_db < OOK_DEPTH_DB:
        return None
    return env, on_level, off_level, depth_db


def _ook(span: NDArray[np.float64], on_level: float, off_level: float, depth_db: float, fs: float,
         centre: float, active: tuple[float, float], min_run_s: float = MIN_RUN_S) -> SymbolEstimate:
    # slicer OOK_SLICE of the way from the off to the on level, ±10 % of the on level of hysteresis
    mid, h = off_level + OOK_SLICE * (on_level - off_level), 0.1 * on_level
    bits = _hysteresis(span, mid - h, mid + h)
    _starts, lengths, values = _runs(_deglitch(bits, max(2, int(round(min_run_s * fs)))))
    pulses_n = lengths[values]
    gaps_n = lengths[~values]
    if values.size and not values[-1]:  # the trailing gap is quiet time, not a gap
        gaps_n = gaps_n[:-1]
    pulses = cluster_widths(pulses_n / fs)
    gaps = cluster_widths(gaps_n / fs)
    period, coding = elementary_period_s(pulses, gaps)
    modulation: Modulation = "OOK" if coding in ("PPM", "PWM") else "carrier"
    return SymbolEstimate(modulation, 1.0 / period if np.isfinite(period) else float("nan"), period, coding,
                          pulses, gaps, float("nan"), (centre,), depth_db, active, int(lengths.size))


def _fsk(y: NDArray[np.complex128], fs: float, centre: float, depth_db: float,
         active: tuple[float, float]) -> SymbolEstimate:
    if y.size < 16:
        return _unknown("too short", active)
    inst = np.angle(y[1:] * np.conj(y[:-1])) * fs / (2 * np.pi)
    inst = _smooth(inst, max(1, int(round(fs / 250e3 * 2))))
    mid0 = float(np.median(inst))
    f_lo = float(np.median(inst[inst <= mid0]))
    f_hi = float(np.median(inst[inst > mid0])) if np.any(inst > mid0) else f_lo
    mid = 0.5 * (f_lo + f_hi)
    spread = float(np.std(inst[inst > mid]) + np.std(inst[inst <= mid])) / 2 if np.any(inst > mid) else 0.0
    if f_hi - f_lo < 2 * spread:  # no two separate tones
        return _unknown("no two tones", active)
    # hysteresis slicer at ±20 % of the deviation cuts noise chatter around the midpoint
    h = 0.2 * (f_hi - f_lo) / 2
    bits = _hysteresis(inst, mid - h, mid + h)
    starts, lengths, values = _runs(bits)
    if lengths.size < 4:
        return _unknown("too few tone changes", active)
    inner = lengths[1:-1]  # the first and last runs are cut by the span
    highs = cluster_widths(inner[values[1:-1]] / fs)
    lows = cluster_widths(inner[~values[1:-1]] / fs)
    firsts = [c.width_s for c in (highs[:1] + lows[:1])]
    guess = min(firsts) if firsts else float("nan")
    # tone-change times interpolated at the midpoint crossing next to each slicer change
    idx = starts[1:]
    d = inst - mid
    tk = []
    for i in idx:
        j = i
        while j > 0 and np.sign(d[j - 1]) == np.sign(d[i]):
            j -= 1
        if j == 0:
            continue
        a, b = d[j - 1], d[j]
        tk.append((j - 1 + a / (a - b)) / fs if a != b else j / fs)
    period, coherence = _transition_period(np.asarray(tk), guess)
    if coherence < FSK_MIN_COHERENCE:
        return _unknown(f"no symbol clock (coherence {coherence:.2f})", active)
    return SymbolEstimate("FSK", 1.0 / period if np.isfinite(period) else float("nan"), period, "NRZ", highs, lows,
                          (f_hi - f_lo) / 2, (centre + f_lo, centre + f_hi), depth_db, active, int(lengths.size))
