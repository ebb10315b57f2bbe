"""Sensitivity by integration (issue #18 item 5): the frames' linear power accumulated over several
time scales, and a channel energy detector on each completed window.

The 10 ms frames catch bursts; an emission that persists is found far weaker by integrating for
seconds (THEORY §1.2: the required SNR falls as 5·log10(N), N ≈ η·T·B looks). The stage:

* :class:`Integrator` — per grid (reset on a retune or a grid change) it adds every frame stack's
  power per bin (NaN-flagged frames left out) into a base block of ``base_s``; each scale of
  ``scales_s`` sums its whole number of base blocks into non-overlapping windows and hands the
  completed window on (mean power per bin and its number of looks = frames × looks per frame).
* :func:`detect_integrated` — on one window: the order-statistic CFAR floor of the integrated
  spectrum itself (:func:`~detector.detection._cfar.batch_floor` with the window's looks), then a
  *matched-bandwidth* test: the sum of the power over every run of K = ``width_hz``/bin bins
  against the sum of the floor there. Under noise that ratio is Gamma(N, 1)/N with
  N = frames·looks·K / v_K (v_K: the variance growth from the correlation of adjacent bins, 1.944
  for Hann-windowed bins, 1 for independent ones) and the floor's own estimation spread folded in
  (1/N_eff = 1/N + σ_F²), so the threshold is ``gamma.isf(Pfa, N_eff)/N_eff`` as everywhere else
  (:func:`~detector.detection._thresholds.threshold_ratio`). This is the ideal energy detector of
  THEORY §1.2 for B = ``width_hz``, except for the CFAR loss and the look-elsewhere over the band.
* Per-window Pfa: the alert needs the same channel (centers within half the matched width) in 2
  consecutive windows of a scale (2-of-2), so
  :func:`~detector.detection._thresholds.pfa_for_alert_rate` with k = m = 2 over
  ``3600/window_s`` windows per hour; the tests are the sliding sums' excursions over the
  threshold (``CROSSINGS``/√K per position, Rice) and, for the second window, those within the
  K positions of the first hit;
  ``fa_per_hour`` is split evenly over the scales and widths, so that their sum stays within it.
* Baseline: a surveyed station must not alert because it is seen better now. The survey's mean
  level per bin is taken from its median (÷ the median/mean ratio of a noise bin of the frames'
  looks); bins the survey saw on the air (occupancy > 1 %, or a channel of them over the survey's
  own floor by ``survey_excess_db``) are *surveyed*: a window over them must exceed the survey's
  level there (times the gain offset measured on the covered bins) by ``baseline_margin_db``,
  for intermittent ones their p99. A channel the survey saw as noise must exceed the survey's level
  by ``survey_margin_db`` (0.1 dB: a spur or a station too weak for the survey to resolve, now
  resolved by a long window, stays explained); that margin is an SNR wall of −16.3 dB in-channel
  (THEORY §1.2 item 7), below which only the bands the survey does not cover (CFAR alone) see.
  A *known* station (survey occupancy ≥ ``known_occupancy``, 0.5) is explained up to
  ``known_excess_db`` (10 dB) over its level: the fading and shadowing range of a moving receiver,
  the range the frames' decision allows it (``DecisionConfig.known_channel_excess_db``); a
  long window sees that station better, never differently.
* Skirts and images (why the stage was off by default: in the simulated demo it alerted twice,
  once on what looked like the skirt of the wideband LINK). Traced window by window, the finds were
  (a) the IQ image of the hidden transmitter (446.08 MHz mirrored about the tuned 446.0 MHz to
  445.92 MHz, 30–32 dB down), which opened a track that then took in a whitelisted repeater's
  calls, and noted its hits on a 380 kHz-wide frames' track over BEACON, LINK and the repeater;
  (b) the skirts of the surveyed BEACON and repeater (the channels 12–20 kHz beside them) while
  the vehicle saw those stations far over their survey median, which is the level the survey has
  for the skirt bins (their occupancy is < 1 %). Two rules, each a statement about what is
  expected at a bin:

  - *image*: the window's excess over its floor at the mirror bin (2·center − f), times
    10^(−``image_rejection_db``/10), is subtracted from the channel sum before both tests. An
    RTL-SDR's I/Q gain and phase errors leave images 24–40 dB down (SCENES §3.6; the demo's
    receiver: 32 dB); 20 dB keeps a margin. Cost: a newcomer on the mirror of an emission more
    than 20 dB over it (at its excess) is not found by integration (the frames still see it).
  - *flank*: a run of windows over both thresholds is a find only if its best window is the
    largest within half a channel (k/2 bins) on either side. Every other window of the run is no
    higher (it is the run's maximum), and a window under the threshold is lower: what is higher is
    a window the survey or the image explains, i.e. a stronger emission right beside it. A skirt
    rises monotonically toward its emission, so its best window is on the emission's side and
    has such a neighbour; a newcomer is a separate maximum. On noise alone the rule never bites
    (it only removes runs), so the false-alert budget is unchanged; a newcomer loses only where
    the stronger neighbour is within half a channel of its best window, i.e. a newcomer in the
    adjacent channel of a stronger surveyed station, whose skirt is then not separable from it by
    level alone. Rejected runs are counted (``IntegrationStage.left_out``).

  Considered and not taken: a guard band around surveyed bins (25 or 50 kHz: it hides a newcomer
  37.5 kHz from a station, and the skirts that alerted were of stations, not only of LINK); a
  "skirt-ratio" test against the neighbouring station's own rise, or the station's surveyed mask
  scaled by its current level (the survey's per-bin quantiles do not hold the skirt's level at
  the time the station was strong: its skirt bins' median is mostly noise, and an intermittent
  station's skirt is not in the median at all; in the demo's survey the mask 16 kHz beside
  BEACON is a 0.03 dB excess known to about ±40 %, and scaled by the 15–17 dB between a
  station's survey median and p99 (BEACON, LINK), that error alone is of the order of the
  threshold: it would blind the channels around every station that rises). The demo's finds
  after the rules: the hidden transmitter and NB1 only.
* The window's floor is scaled to the median of power/floor over the bins no emission holds
  (≤ 5 σ of a noise bin over the floor): with a strong station, its skirt and its image holding
  half the band the median of all bins sat 8 % high and hid a −11 dB newcomer beside it.

Emissions found here join the engine's tracker like the frames' (a transmitter seen in both is one
track); :func:`integration_decide` alerts a track found in 2 consecutive windows of one scale,
unless a whitelisted channel holds it. Pure code: arrays in, :class:`Emission` lists out.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from detector.detection._cfar import DetectionCache, batch_floor
from detector.detection._decision import DecisionConfig
from detector.detection._emissions import _valid_mask
from detector.detection._results import DetectionConfig, Emission
from detector.detection._thresholds import noise_quantile_ratio, pfa_for_alert_rate, threshold_ratio

__all__ = ["IntegrationConfig", "Integrator", "IntegratedWindow", "IntegrationStage", "SurveyLevelCache", "detect_integrated",
           "integration_decide", "integration_pfa", "channel_looks"]

#: excursions of a k-bin sliding sum over a high threshold: about z/√(πk) per position and per
#: exceedance probability (Rice's up-crossing rate for the sum's lag-1 correlation 1 − 1/k), with
#: z ≈ 3 … 5.5 here; ``CROSSINGS`` = 3 is the conservative middle
CROSSINGS = 3.0
#: the share of the CFAR floor's own spread that is not common to the channel sum (see detect_integrated)
FLOOR_SHARE = 0.5


@dataclass(frozen=True)
class IntegrationConfig:
    """Knobs of the integration stage (see the module docstring).

    ``scales_s``: window lengths (s), each a whole number of ``base_s`` blocks; ``widths_hz``:
    bandwidths of the channel energy detector (12.5 kHz: an NFM channel); ``fa_per_hour``: false
    alerts per hour from noise for all scales and widths together; ``baseline_margin_db``: over a
    surveyed station's integrated level, ``survey_margin_db`` over the level of a channel the survey saw as
    noise; ``survey_excess_db``: a channel of the survey's mean this far over the survey's own floor is a
    surveyed station; ``persist``: consecutive windows to alert."""

    scales_s: tuple[float, ...] = (4.0, 12.0, 36.0)
    base_s: float = 1.0
    widths_hz: tuple[float, ...] = (12500.0,)
    fa_per_hour: float = 0.2
    baseline_margin_db: float = 0.5
    survey_margin_db: float = 0.1
    survey_excess_db: float = 0.15
    persist: int = 2
    #: the worst image rejection of the receiver's I/Q paths (dB): a window's excess over its floor,
    #: mirrored about the tuned center and this far down, is expected at the mirror (SCENES §3.6:
    #: 24–40 dB for an uncalibrated RTL-SDR; 20 dB keeps a margin); None: no image expected
    image_rejection_db: float | None = 20.0
    #: a channel the survey saw on the air this often (a known station) is explained up to
    #: ``known_excess_db`` over its survey level: the fading and shadowing range of a moving
    #: receiver, as the frames' decision allows (:class:`~detector.detection.DecisionConfig`
    #: ``known_channel_occupancy`` / ``known_channel_excess_db``)
    known_occupancy: float = DecisionConfig.known_channel_occupancy
    known_excess_db: float = DecisionConfig.known_channel_excess_db


@dataclass(frozen=True)
class IntegratedWindow:
    """A completed window of one scale: mean linear power per bin, looks behind each bin, span."""

    scale_s: float
    t_start_s: float
    t_end_s: float
    mean_lin: NDArray[np.float64]
    looks: float
    n_frames: int
    #: the mean of the frames' own CFAR floors over the window (None: the window's floor is computed from it)
    floor_lin: NDArray[np.float64] | None = None


class Integrator:
    """Running sums of the frames' power over the scales of an :class:`IntegrationConfig`.

    :meth:`push` takes a stack's power summed over its usable frames; blocks of about ``base_s``
    are closed at stack boundaries (no frame is split), and each scale emits a window every
    ``round(scale_s / base_s)`` blocks. :meth:`reset` (also on a new grid key) drops everything."""

    def __init__(self, config: IntegrationConfig) -> None:
        self.config = config
        self._n_blocks = tuple(max(1, int(round(s / config.base_s))) for s in config.scales_s)
        self.key: tuple | None = None
        self.reset()

    def reset(self) -> None:
        self._base: NDArray[np.float64] | None = None
        self._base_frames = 0
        self._base_t0 = 0.0
        self._acc: list[NDArray[np.float64] | None] = [None] * len(self._n_blocks)
        self._acc_frames = [0] * len(self._n_blocks)
        self._acc_blocks = [0] * len(self._n_blocks)
        self._acc_t0 = [0.0] * len(self._n_blocks)
        self._t_end = -math.inf
        self.resets = getattr(self, "resets", -1) + 1

    def push(self, key: tuple, sum_lin: NDArray | None, n_frames: int, t_start_s: float, t_end_s: float,
             looks: float) -> list[IntegratedWindow]:
        """Add a stack (``sum_lin``: its power summed over its ``n_frames`` usable frames, shape
        (m,), or (2, m) with the sum of their CFAR floors as the second row; None when no frame was
        usable) spanning [``t_start_s``, ``t_end_s``); returns the windows it completed."""
        if key != self.key or t_start_s < self._t_end - 1e-6 or t_start_s > self._t_end + self.config.base_s:
            # another grid or tuning, a timeline that went back, or a gap longer than a block
            if self.key is not None or self._base is not None:
                self.reset()
            self.key = key
            self._base_t0 = t_start_s
        self._t_end = t_end_s
        if sum_lin is not None and n_frames > 0:
            if self._base is None:
                # float32 within a block (a few stacks: ≤ 1e-6 relative), float64 over the windows
                self._base = np.array(sum_lin, dtype=np.float32)
            else:
                np.add(self._base, sum_lin, out=self._base)
            self._base_frames += n_frames
        # a block closes at the stack boundary nearest its nominal end (its start + base_s), and
        # the next one starts at that nominal end: window lengths do not creep by a stack each
        if t_end_s - self._base_t0 < self.config.base_s - 0.5 * (t_end_s - t_start_s) - 1e-9:
            return []
        base, frames, t0 = self._base, self._base_frames, self._base_t0
        self._base, self._base_frames, self._base_t0 = None, 0, t0 + self.config.base_s
        out: list[IntegratedWindow] = []
        for i, nb in enumerate(self._n_blocks):
            if self._acc_blocks[i] == 0:
                self._acc_t0[i] = t0
            if base is not None:
                acc = self._acc[i]
                if acc is None:
                    self._acc[i] = base.astype(np.float64)
                else:
                    acc += base
            self._acc_frames[i] += frames
            self._acc_blocks[i] += 1
            if self._acc_blocks[i] >= nb:
                acc, f = self._acc[i], self._acc_frames[i]
                if acc is not None and f > 0:
                    mean = acc / f
                    out.append(IntegratedWindow(self.config.scales_s[i], self._acc_t0[i], t_end_s,
                                                mean[0] if mean.ndim == 2 else mean, float(looks) * f, f,
                                                mean[1] if mean.ndim == 2 else None))
                self._acc[i], self._acc_frames[i], self._acc_blocks[i] = None, 0, 0
        return out


class IntegrationStage:
    """What the engine owns: the :class:`Integrator`, the per-scale Pfa and counters.

    :meth:`process` adds a stack (its NaN-flagged frames left out) and returns each completed
    window with its emissions; :meth:`record_hits` notes on the tracks those emissions joined which
    window found them (for :func:`integration_decide`)."""

    def __init__(self, config: IntegrationConfig, *, survey_cache: SurveyLevelCache | None = None) -> None:
        self.config = config
        self.integrator = Integrator(config)
        #: the survey's levels per aligned baseline (give engines over the same survey one instance to share)
        self.survey_cache = SurveyLevelCache() if survey_cache is None else survey_cache
        self.windows = 0  #: windows tested
        self.found: dict[float, int] = {}  #: emissions found, per scale (s)
        #: runs over the threshold left out, per rule ("flank": the skirt of a stronger emission)
        self.left_out: dict[str, int] = {}
        self._pfa: dict[tuple[float, int, int], float] = {}
        self._scratch: NDArray[np.float32] | None = None

    def pfa(self, scale_s: float, n_positions: int, k_bins: int) -> float:
        key = (scale_s, n_positions, k_bins)
        if key not in self._pfa:
            c = self.config
            self._pfa[key] = integration_pfa(c.fa_per_hour, window_s=scale_s, n_positions=n_positions, k_bins=k_bins,
                                             n_tests=len(c.scales_s) * len(c.widths_hz), persist=c.persist)
        return self._pfa[key]

    def process(self, freqs_hz, res, flagged, t_start_s: float, t_end_s: float, looks: float, center_hz, rbw_hz: float,
                baseline, detection: DetectionConfig, cache: DetectionCache) -> list[tuple[IntegratedWindow, list[Emission]]]:
        """The stack of ``res`` (a :class:`StackResult`, its linear power and stack mean) into the
        integrator; the windows it completed, each with what :func:`detect_integrated` found."""
        p = res.power_lin
        n, m = p.shape
        fl = res.floor_lin  # (1, m): one floor for the stack (from its mean), or (n, m): per frame
        good = None
        if flagged is not None and len(flagged) == n and bool(np.any(flagged)):
            good = ~np.asarray(flagged, dtype=bool)
        n_used = n if good is None else int(good.sum())
        if self._scratch is None or self._scratch.shape != (2, m):
            self._scratch = np.empty((2, m), dtype=np.float32)
        total: NDArray | None = self._scratch
        mean = res.stack_mean_lin
        if n_used == 0:
            total = None
        elif good is None and mean is not None:  # the stack's mean and floor, which detection computed already
            np.multiply(mean, np.float32(n), out=self._scratch[0])
        else:
            np.add.reduce(p if good is None else p[good], axis=0, dtype=np.float32, out=self._scratch[0])
        if total is not None:
            if fl.shape[0] == 1:
                # a stack floor from its mean, flagged frames (zeroed) in it: n × it is the floor of the usable ones
                np.multiply(fl[0], float(n), out=self._scratch[1], casting="same_kind")
            else:
                np.add.reduce(fl if good is None else fl[good], axis=0, dtype=np.float32, out=self._scratch[1])
        m = freqs_hz.size
        bin_hz = float(freqs_hz[1] - freqs_hz[0]) if m > 1 else 1.0
        # a retune, another grid or a frequency correction of more than 1/8 bin starts afresh
        key = (m, round(bin_hz, 3), round(float(freqs_hz[0]) / bin_hz * 4), round(float(looks), 2))
        out = []
        for w in self.integrator.push(key, total, n_used, t_start_s, t_end_s, looks):
            found = detect_integrated(freqs_hz, w, looks_per_frame=looks, center_hz=center_hz, rbw_hz=rbw_hz,
                                      pfa_of=functools.partial(self.pfa, w.scale_s), config=self.config,
                                      detection=detection, baseline=baseline, cache=cache,
                                      survey_cache=self.survey_cache, counts=self.left_out)
            self.windows += 1
            if found:
                self.found[w.scale_s] = self.found.get(w.scale_s, 0) + len(found)
                out.append((w, found))
        return out

    @staticmethod
    def unheld(tracks, found: list[Emission], gate_hz: float) -> list[Emission]:
        """The emissions that no open track of the frames holds (those go to the tracker; the
        others are only noted on the frames' track by :meth:`record_hits`)."""
        return [e for e in found if not any(not tr.by_integration and _holds(tr, e, gate_hz) for tr in tracks)]

    @staticmethod
    def record_hits(tracks, window: IntegratedWindow, found: list[Emission], gate_hz: float) -> list:
        """On the open track holding each emission: (window end, center, matched width) under its
        scale; a track opened by one of these windows is marked ``by_integration``. Returns the
        tracks noted."""
        noted = []
        for e in found:
            for tr in tracks:
                if _holds(tr, e, gate_hz):
                    noted.append(tr)
                    if not tr.integration_hits and tr.frames_active <= 1:
                        tr.by_integration = True
                    hits = tr.integration_hits.setdefault(window.scale_s, [])
                    if not hits or hits[-1][0] != window.t_end_s:
                        hits.append((window.t_end_s, e.center_hz, e.bandwidth_hz))
                        del hits[:-4]
                    break
        return noted


def _holds(tr, e: Emission, gate_hz: float) -> bool:
    return tr.f_lo_hz - gate_hz <= e.center_hz <= tr.f_hi_hz + gate_hz


# --- the statistics of a channel sum -------------------------------------------------------------------

def _bin_correlations(enbw_bins: float) -> tuple[float, ...]:
    """|ρ_d|² of the power of bins d = 1, 2 apart for white noise: Hann-windowed bins (ENBW 1.5
    bins: ρ₁ = −2/3, ρ₂ = 1/6) or independent ones (a rectangular window, or spectra whose RBW
    is the bin width)."""
    return (4.0 / 9.0, 1.0 / 36.0) if enbw_bins > 1.25 else ()


def _variance_factor(k: int, enbw_bins: float) -> float:
    """Var(Σ of k adjacent bins) ÷ (k · Var(one bin)) for white noise."""
    rho2 = _bin_correlations(enbw_bins)
    return 1.0 + 2.0 * sum((1.0 - d / k) * r for d, r in enumerate(rho2, start=1) if d < k)


def channel_looks(looks: float, k: int, enbw_bins: float) -> float:
    """Independent looks behind the sum of ``k`` adjacent bins of ``looks`` looks each."""
    return float(looks) * k / _variance_factor(k, enbw_bins)


@functools.lru_cache(maxsize=64)
def _floor_spread(m: int, window_bins: int, quantile: float) -> float:
    """Relative standard deviation of :func:`batch_floor` on unit-mean noise of 10⁴ independent
    looks per bin (a seeded draw; it scales as 1/√looks in this Gaussian regime)."""
    looks0 = 1.0e4
    rng = np.random.default_rng(4321)
    noise = rng.gamma(looks0, 1.0 / looks0, size=(48, m))
    fl = batch_floor(noise, looks0, window_bins=window_bins, quantile=quantile)
    inner = fl[:, m // 8: m - m // 8] if m >= 16 else fl
    return float(np.std(inner / np.mean(inner)))


def integration_pfa(fa_per_hour: float, *, window_s: float, n_positions: int, k_bins: int, n_tests: int,
                    persist: int = 2) -> float:
    """Per-window, per-position false-alarm probability of one scale and width.

    ``fa_per_hour`` is this stage's whole budget, shared by its ``n_tests`` scale × width pairs;
    the ``n_positions`` sliding sums of ``k_bins`` bins cross a threshold of exceedance probability
    p about ``CROSSINGS``/√k·p times per position; ``persist`` consecutive windows make an alert,
    each later one within the k positions of the first hit."""
    k = max(int(k_bins), 1)
    rate = min(1.0, CROSSINGS / math.sqrt(k))  # excursions per position, per unit exceedance probability
    tests = max(1.0, n_positions * rate) * max(1.0, k * rate) ** (persist - 1)
    return pfa_for_alert_rate(fa_per_hour / n_tests, n_bins=max(1, int(round(tests))),
                              frames_per_hour=3600.0 / window_s, k=persist, m=persist)


# --- detection on one window ---------------------------------------------------------------------------

def _survey_levels(baseline, looks: float, k: int, floor_fn, config: IntegrationConfig):
    """Per bin: the survey's integrated level (linear; the median over the median/mean ratio of a
    noise bin; the p99 where the survey saw the bin on the air), whether it is a surveyed
    station (occupied, or a k-bin channel of it over the survey's own floor by ``survey_excess_db``),
    whether the survey covers it, and whether it is a known station (occupancy ≥
    ``known_occupancy``); each shape (m,), the level and the two station masks taken over a bin
    each side (drift)."""
    cov = np.asarray(baseline.covered, dtype=bool)
    med = np.asarray(baseline.median_db, dtype=np.float64)
    med_lin = np.where(cov, 10.0 ** (np.nan_to_num(med, nan=-300.0) / 10.0), 0.0) / noise_quantile_ratio(looks, 0.5)
    occ = np.nan_to_num(np.asarray(baseline.occupancy, dtype=np.float64), nan=0.0)
    p99 = np.where(cov, 10.0 ** (np.nan_to_num(np.asarray(baseline.p99_db, np.float64), nan=-300.0) / 10.0), 0.0)
    level = np.where(occ > 0.01, np.fmax(med_lin, p99), med_lin)
    # a channel of the survey's mean over its own floor: the survey integrated it already
    surveyed = occ > 0.01
    if cov.sum() >= 16:
        fill = np.where(cov, med_lin, np.median(med_lin[cov]))
        fl = floor_fn(fill, 1.0e5)  # the survey's mean: many looks
        s, f = _sliding(fill, k), _sliding(fl, k)
        hit = (s > f * 10.0 ** (config.survey_excess_db / 10.0)) & (_sliding(cov.astype(np.float64), k) >= k - 0.5)
        surveyed |= _spread(hit, k, fill.size)
    # a little drift between survey and exam: the neighbours' levels count too
    size = 3
    level = np.where(cov, _maxfilter(level, size), 0.0)
    surveyed = _maxfilter(surveyed.astype(np.float64), size) > 0
    known = _maxfilter((occ >= config.known_occupancy).astype(np.float64), size) > 0
    return level, surveyed & cov, cov, known & cov


class SurveyLevelCache:
    """:func:`_survey_levels` memoised on the aligned statistics' bytes, owned by an
    :class:`IntegrationStage` (one per engine; engines that should share it, e.g. one per replayed
    file or benchmark pass over the same survey, are given the same instance). Hashing the arrays
    costs a tenth of deriving the levels again; a pure function, so memoising changes no result.
    At most ``size`` entries (then it starts afresh)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._memo: dict = {}
        self.misses = 0  #: levels derived (the rest were memoised)

    def levels(self, baseline, looks: float, k: int, floor_fn, config: IntegrationConfig):
        key = (hash(b"".join(np.ascontiguousarray(a).tobytes() for a in (
            baseline.median_db, baseline.p99_db, baseline.occupancy, baseline.covered))), round(float(looks), 2), k,
            config.survey_excess_db, config.known_occupancy)
        if key not in self._memo:
            if len(self._memo) >= self.size:
                self._memo.clear()
            self.misses += 1
            self._memo[key] = _survey_levels(baseline, looks, k, floor_fn, config)
        return self._memo[key]


def _maxfilter(x: NDArray, size: int) -> NDArray:
    import scipy.ndimage

    return scipy.ndimage.maximum_filter1d(x, size)


def _sliding(x: NDArray, k: int) -> NDArray[np.float64]:
    """Sums of ``k`` adjacent values: out[j] = x[j] + … + x[j+k−1], shape (m − k + 1,)."""
    c = np.concatenate(([0.0], np.cumsum(x, dtype=np.float64)))
    return c[k:] - c[:-k]


def _spread(hit: NDArray[np.bool_], k: int, m: int) -> NDArray[np.bool_]:
    """The bins covered by the flagged k-bin windows (window j covers bins j … j+k−1)."""
    d = np.zeros(m + 1, dtype=np.int64)
    idx = np.flatnonzero(hit)
    np.add.at(d, idx, 1)
    np.add.at(d, idx + k, -1)
    return np.cumsum(d[:m]) > 0


def detect_integrated(
    freqs_hz: NDArray[np.float64],
    window: IntegratedWindow,
    *,
    looks_per_frame: float,
    center_hz: float | None,
    rbw_hz: float,
    pfa_of: Callable[[int, int], float],
    config: IntegrationConfig = IntegrationConfig(),
    detection: DetectionConfig = DetectionConfig(),
    baseline=None,
    cache: DetectionCache | None = None,
    survey_cache: SurveyLevelCache | None = None,
    counts: dict[str, int] | None = None,
) -> list[Emission]:
    """Emissions of one integrated window (see the module docstring).

    ``pfa_of(n_positions, k_bins)`` gives the per-window Pfa for this window's scale (the engine's
    :func:`integration_pfa` with its budget); ``baseline`` an aligned baseline on this grid, or None;
    ``survey_cache`` the stage's :class:`SurveyLevelCache` (None: the levels are derived for this call);
    ``counts``: incremented per find left out by the flank rule (``"flank"``)."""
    cache = DetectionCache() if cache is None else cache
    p = window.mean_lin
    m = p.size
    if m < 8:
        return []
    bin_hz = float(freqs_hz[1] - freqs_hz[0])
    enbw = float(rbw_hz) / bin_hz if bin_hz > 0 else 1.0
    looks = float(window.looks)
    looks_q = float(f"{looks:.2g}")  # the floor's normalisation is memoised per looks: 2 digits suffice
    valid, _, _ = cache.get(("valid", m, float(freqs_hz[0]), bin_hz, center_hz, detection.dc_half_width_hz,
                             detection.edge_crop), lambda: _valid_mask(freqs_hz, center_hz, detection, bin_hz))

    def floor_fn(x, lk=looks_q):
        return batch_floor(np.asarray(x, dtype=np.float32)[None, :], lk, window_bins=detection.cfar_window_bins,
                           quantile=detection.cfar_quantile, cache=cache)[0]

    # the frames' own floors averaged over the window, or, for a window without them, the order
    # statistic of the integrated spectrum; then scaled to the window's median power over it. The
    # frames' floors are normalised for independent bins of their claimed looks: on Hann-windowed
    # bins they sit ~0.3 % low, nothing in a 10 ms frame but 0.6 σ of a 4 s window's channel sum.
    # The median (robust while emissions hold < half the band) removes any such common bias.
    floor = window.floor_lin if window.floor_lin is not None else floor_fn(p)
    vidx = cache.get(("integration_vidx", m, float(freqs_hz[0]), bin_hz, center_hz, detection.dc_half_width_hz,
                      detection.edge_crop), lambda: np.flatnonzero(valid))
    if vidx.size >= 16:
        # over the bins that no emission holds (≤ 5 σ of a noise bin over the floor: their share of
        # noise is 3e-7): a strong station, its skirt and its image can hold half the band and more
        # (the median of all bins then sat 8 % high, and a −11 dB newcomer beside it went under)
        r = p[vidx] / floor[vidx]
        quiet = r[r <= 1.0 + 5.0 / math.sqrt(looks_q)]
        floor = floor * (float(np.median(quiet if quiet.size >= 16 else r)) / noise_quantile_ratio(looks_q, 0.5))
    corr = _variance_factor(3, enbw) if enbw > 1.25 else 1.0  # correlated bins: fewer independent values
    # the floor's local error, halved: its window holds the channel's own bins, so part of its error
    # is the channel sum's and cancels in their ratio (on 400 s of noise through the impaired
    # receiver the ratio's spread was 1.01× the channel sum's alone; this keeps a margin over that)
    spread_f = FLOOR_SHARE * _floor_spread(m, detection.cfar_window_bins, detection.cfar_quantile) \
        * math.sqrt(corr * 1.0e4 / looks_q)
    # and the median's own spread (≈ 1.2533 σ/√n of n independent values)
    spread_f = math.hypot(spread_f, 1.2533 * math.sqrt(corr / max(vidx.size, 1) / looks_q))
    if baseline is not None:
        memo = SurveyLevelCache(1) if survey_cache is None else survey_cache
        level, surveyed, covered, known = cache.for_object(
            baseline, ("integration", round(looks_per_frame, 2), config.survey_excess_db, config.known_occupancy,
                       tuple(config.widths_hz)),
            lambda: memo.levels(baseline, looks_per_frame, max(1, int(round(max(config.widths_hz) / bin_hz))),
                                floor_fn, config))
    gains: list[float] = []

    def gain() -> float:
        """The level step between survey and now: the median over (a subsample of) the covered
        bins that the survey saw as noise; measured only for a window that found something."""
        if not gains:
            probe = cache.for_object(baseline, ("integration_probe", m), lambda: _probe(covered & valid & ~surveyed & (level > 0)))
            gains.append(float(np.median(p[probe] / level[probe])) if probe.size >= 8 else 1.0)
        return gains[0]

    img = None
    if center_hz is not None and config.image_rejection_db is not None:
        # the IQ image of the window's excess: bin j holds up to 10^(−rejection/10) of the excess
        # of its mirror bin about the tuned center (expected, like the survey's level)
        mirror = cache.get(("integration_mirror", m, float(freqs_hz[0]), bin_hz, center_hz),
                           lambda: _mirror_index(freqs_hz, float(center_hz), bin_hz))
        x = np.maximum(p - floor, 0.0)
        img = np.where(mirror >= 0, x[np.maximum(mirror, 0)], 0.0) * 10.0 ** (-config.image_rejection_db / 10.0)
    out: list[Emission] = []
    taken = np.zeros(m, dtype=bool)
    for width in sorted(config.widths_hz, reverse=True):
        k = max(1, min(m // 4, int(round(width / bin_hz))))
        s = _sliding(p, k)
        if img is not None:
            s = s - _sliding(img, k)  # what the mirror's image does not explain
        # the floor is piecewise linear between groups of bins: its k-bin sum is k times its value
        # at the window's middle (exact but at the few kinks, where it differs by < 0.1 %)
        f = floor[k // 2: k // 2 + s.size] * float(k) if k % 2 else \
            0.5 * (floor[k // 2 - 1: k // 2 - 1 + s.size] + floor[k // 2: k // 2 + s.size]) * float(k)
        ok_win, n_pos = cache.get(("integration_ok", m, float(freqs_hz[0]), bin_hz, center_hz, k,
                                   detection.dc_half_width_hz, detection.edge_crop),
                                  lambda k=k: _ok_windows(valid, k))
        if n_pos == 0:
            continue
        n_eff = 1.0 / (1.0 / channel_looks(looks, k, enbw) + spread_f ** 2)
        thr = threshold_ratio(n_eff, pfa_of(n_pos, k))
        ratio = s / np.maximum(f, 1e-300)
        hit = ok_win & (ratio > thr)
        if not hit.any():
            continue
        if baseline is not None:
            # over the survey's level: a known station by known_excess_db, another surveyed one by
            # baseline_margin_db, a channel the survey saw as noise by survey_margin_db (the wall
            # that margin implies: THEORY §1.2 item 7)
            expl = cache.for_object(baseline, ("integration_expl", config.baseline_margin_db, config.survey_margin_db,
                                               config.known_occupancy, config.known_excess_db),
                                    lambda: np.where(known, level * 10.0 ** (config.known_excess_db / 10.0),
                                                     np.where(surveyed, level * 10.0 ** (config.baseline_margin_db / 10.0),
                                                              np.where(covered, level * 10.0 ** (config.survey_margin_db / 10.0),
                                                                       0.0))))
            hit &= s > _sliding(expl, k) * gain()
        for j0, j1 in _runs(hit, gap=max(1, k // 2)):
            lo, hi = j0, j1 + k - 1  # bins of the flagged windows
            if taken[lo:hi + 1].any():
                continue  # a wider channel (or a find just beside it) already holds it
            jj = j0 + int(np.argmax(np.where(hit[j0:j1 + 1], ratio[j0:j1 + 1], -np.inf)))
            # the flank rule: a window within half a channel of the peak holding more (one the
            # survey or the image explains, as every other one is a hit of this run and no higher):
            # the find is the skirt of a stronger emission, rising toward it, not a separate maximum
            a, b = max(0, jj - k // 2), min(ratio.size, jj + k // 2 + 1)
            if float(np.max(np.where(ok_win[a:b], ratio[a:b], -np.inf))) > float(ratio[jj]):
                if counts is not None:
                    counts["flank"] = counts.get("flank", 0) + 1
                continue
            taken[lo:hi + 1] = True
            seg = slice(lo, hi + 1)
            # the matched window's excess over the floor places the center; at the low SNR
            # integration works at, the occupied bandwidth is not measurable: the matched width
            # (or the flagged span, when wider) is reported
            win = slice(jj, jj + k)
            exc = np.maximum(p[win] - floor[win], 0.0)
            tot = float(exc.sum())
            fr = freqs_hz[seg]
            center = float((exc * freqs_hz[win]).sum() / tot) if tot > 0 else float(freqs_hz[jj] + (k - 1) * bin_hz / 2)
            bw = max(k, j1 - j0 + 1) * bin_hz
            excess = None
            occ = None
            if baseline is not None and covered[seg].all():
                ref = float(level[jj:jj + k].sum()) * gain()
                excess = round(10.0 * math.log10(max(float(s[jj]), 1e-300) / max(ref, 1e-300)), 2)
                occ = float(np.max(np.nan_to_num(np.asarray(baseline.occupancy[seg], dtype=np.float64))))
            out.append(Emission(
                center_hz=center, bandwidth_hz=bw, f_lo_hz=center - bw / 2, f_hi_hz=center + bw / 2,
                peak_hz=float(fr[int(np.argmax(p[seg]))]), peak_dbfs=float(10.0 * np.log10(max(float(p[seg].max()), 1e-30))),
                snr_db=float(10.0 * math.log10(max(float(ratio[jj]) - 1.0, 1e-9))),
                excess_db=excess, power_dbfs=float(10.0 * math.log10(max(float(s[jj]), 1e-30))),
                bins=np.arange(lo, hi + 1), n_runs=1, baseline_occupancy=occ))
    return out


def _mirror_index(freqs_hz: NDArray[np.float64], center_hz: float, bin_hz: float) -> NDArray[np.intp]:
    """Per bin: the bin at its mirror frequency about the tuned center (2·center − f), or −1 where
    that lies off the grid."""
    j = np.rint((2.0 * center_hz - freqs_hz - float(freqs_hz[0])) / bin_hz).astype(np.intp)
    return np.where((j >= 0) & (j < freqs_hz.size), j, -1)


def _probe(ok: NDArray[np.bool_]) -> NDArray[np.intp]:
    """At most ~256 of the bins ``ok``, evenly spread (the gain's median needs no more)."""
    idx = np.flatnonzero(ok)
    return idx[:: max(1, idx.size // 256)]


def _ok_windows(valid: NDArray[np.bool_], k: int) -> tuple[NDArray[np.bool_], int]:
    """The k-bin windows all of whose bins are valid (no DC, no band edge), and their count."""
    ok = _sliding((~valid).astype(np.float64), k) < 0.5
    return ok, int(ok.sum())


def _runs(hit: NDArray[np.bool_], gap: int) -> list[tuple[int, int]]:
    """(first, last) indices of the runs of ``hit``, runs fewer than ``gap`` apart joined."""
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate(([idx[0]], idx[cut + 1]))
    ends = np.concatenate((idx[cut], [idx[-1]]))
    return list(zip(starts.tolist(), ends.tolist()))


# --- decision ------------------------------------------------------------------------------------------

def integration_decide(tr, *, persist: int = 2, whitelist=None, site: str | None = None) -> bool:
    """Alert a track found by integration in ``persist`` consecutive windows of one scale, at
    centers within half the matched width of each other (``tr.integration_hits``: scale → list of
    (window end s, center Hz, width Hz)), unless a whitelisted channel holds it.
    Sets ``tr.alert``, ``tr.integration_s`` and the first reason; returns whether it newly alerted."""
    if tr.alert or not tr.integration_hits:
        return False
    for scale, hits in sorted(tr.integration_hits.items()):
        if len(hits) < persist:
            continue
        last = hits[-persist:]
        if all(abs((b[0] - a[0]) - scale) <= 0.5 * scale and abs(b[1] - a[1]) <= 0.5 * min(a[2], b[2])
               for a, b in zip(last, last[1:])):
            if whitelist is not None and whitelist.match(tr.center_hz, site=site) is not None:
                return False
            tr.alert = True
            tr.integration_s = scale
            tr.alert_reasons = [f"persistent: integrated over {scale:g} s, found in {persist} consecutive windows"]
            return True
    return False
