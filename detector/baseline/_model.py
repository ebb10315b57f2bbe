"""Per-site baseline: per-bin level histograms of a survey, their statistics, building and merging.

A :class:`SiteBaseline` keeps, for every bin of a fixed, uniform frequency grid, a histogram of the
frame power (dB, 0.1 dB cells from −160 to +20 dB), the count of frames in which the bin was
occupied, the count of frames seen and the sum of linear power. Every statistic (quantiles, median,
MAD, max, mean, occupancy) is computed from these, so a survey can be accumulated frame by frame
(:class:`BaselineBuilder`) and two surveys merged exactly (:func:`merge`).

Statistics of one bin (THEORY.md §1.1, §1.4): a noise bin averaged over L looks is
σ²·Gamma(L, 1)/L, whose dB value has a median of ``10·log10(gamma.ppf(0.5, L)/L)`` (−0.57 dB bias
at L = 4 for the mean) and a spread of ≈ 4.343/√L dB for L ≥ 8. The median and the MAD give the
robust z-score (x − med)/(1.4826·MAD); high quantiles (p90, p99) are per-bin thresholds that absorb
intermittent licensed users.

Occupancy follows ITU-R SM.1880-2 / Report ITU-R SM.2256 (frequency-channel occupancy = share of
time the level exceeds a threshold above the noise floor, THEORY.md §1.5), with the threshold set
statistically rather than as a fixed "noise + X dB": by default X is the noise quantile at a
per-bin false-alarm probability of 1e-3 for the frames' number of looks (Urkowitz 1967, THEORY.md
§1.2 item 1).

No function here reads files, the clock or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import cast

import numpy as np
import scipy.stats
from numpy.typing import NDArray

from detector.baseline._grid import (
    as_freqs,
    fmt_hz,
    grid_positions,
    same_rbw,
    snap,
    uniform_spacing,
)
from detector.core.types import Spectrum

__all__ = [
    "LEVEL_MIN_DB",
    "LEVEL_MAX_DB",
    "LEVEL_STEP_DB",
    "N_LEVELS",
    "FORMAT_VERSION",
    "OCCUPANCY_PFA",
    "LOOKS_TOLERANCE",
    "level_edges_db",
    "occupancy_margin_db",
    "frame_noise_floor_db",
    "SiteBaseline",
    "BaselineBuilder",
    "build_baseline",
    "merge",
]

#: Lower edge of the level histogram (dB); lower values are counted in the first cell.
LEVEL_MIN_DB = -160.0
#: Upper edge of the level histogram (dB); higher values are counted in the last cell.
LEVEL_MAX_DB = 20.0
#: Width of one histogram cell (dB).
LEVEL_STEP_DB = 0.1
#: Number of histogram cells per bin: (LEVEL_MAX_DB − LEVEL_MIN_DB)/LEVEL_STEP_DB = 1800.
N_LEVELS = int(round((LEVEL_MAX_DB - LEVEL_MIN_DB) / LEVEL_STEP_DB))
#: Version of the baseline data model and file format.
FORMAT_VERSION = 1
#: Per-bin false-alarm probability behind the default occupancy margin.
OCCUPANCY_PFA = 1e-3
#: Quantile (over a frame's bins) of the default per-frame noise-floor estimate.
FLOOR_QUANTILE = 0.3
#: Relative difference of looks per frame tolerated between frames of one baseline. The dB spread of
#: a bin scales as 1/√L (THEORY.md §1.4), so 10 % more or fewer looks changes it by < 5 %.
LOOKS_TOLERANCE = 0.10
#: Bisection steps for the MAD (the search interval of 180 dB shrinks to 180/2⁴⁰ dB).
_MAD_ITERATIONS = 40
_UNITS = ("dBFS", "dBm")
_MAX_LIN_DB = 300.0  # dB values are clipped here before 10**(x/10) (no overflow)


def level_edges_db() -> NDArray[np.float64]:
    """Edges (dB) of the level-histogram cells, float64 shape (N_LEVELS + 1,), −160 … +20 in 0.1 dB."""
    return LEVEL_MIN_DB + LEVEL_STEP_DB * np.arange(N_LEVELS + 1, dtype=np.float64)


def _level_index(power_db: NDArray[np.float64]) -> NDArray[np.int64]:
    """Histogram cell of finite dB values; values outside [−160, +20) dB go to the end cells."""
    cell = np.floor((power_db - LEVEL_MIN_DB) / LEVEL_STEP_DB)
    return np.clip(cell, 0, N_LEVELS - 1).astype(np.int64)


def occupancy_margin_db(n_looks: float, pfa: float = OCCUPANCY_PFA) -> float:
    """Margin (dB over the noise mean) that a noise bin of ``n_looks`` looks exceeds with probability ``pfa``.

    ``10·log10(gamma.isf(pfa, L)/L)``: a noise bin averaged over L looks is σ²·Gamma(L, 1)/L
    (THEORY.md §1.1–1.2; Urkowitz 1967). Examples at pfa = 1e-3: L = 1 → 8.39 dB, L = 16 → 3.05 dB.

    Raises
    ------
    ValueError
        ``n_looks`` ≤ 0 or ``pfa`` outside (0, 1).
    """
    looks = float(n_looks)
    if not looks > 0:
        raise ValueError(f"number of looks must be > 0, got {n_looks}")
    if not 0 < pfa < 1:
        raise ValueError(f"false-alarm probability must be in (0, 1), got {pfa}")
    return float(10.0 * np.log10(scipy.stats.gamma.isf(pfa, looks) / looks))


def frame_noise_floor_db(power_db: NDArray, n_looks: float, *, quantile: float = FLOOR_QUANTILE) -> float:
    """Noise floor (mean noise power per bin, dB) of one frame, from a low quantile of its bins.

    The ``quantile`` (default 0.3) of the frame's linear power over its finite bins, divided by
    ``gamma.ppf(quantile, L)/L`` — the same quantile of the noise law σ²·Gamma(L, 1)/L — so that it
    estimates the noise mean σ² when at most ~70 % of the bins hold emissions (THEORY.md §1.1, §1.3).

    Parameters
    ----------
    power_db : array_like, shape (m,)
        Power per bin (dB); NaN bins are ignored.
    n_looks : float
        Looks per bin of the frame, > 0.

    Returns
    -------
    float
        Floor in the frame's unit (dB), NaN when the frame has no finite bin.
    """
    looks = float(n_looks)
    if not looks > 0:
        raise ValueError(f"number of looks must be > 0, got {n_looks}")
    corr = float(scipy.stats.gamma.ppf(quantile, looks) / looks)
    return _floor_db(np.asarray(power_db, dtype=np.float64), quantile, corr)


def _floor_db(p: NDArray[np.float64], quantile: float, corr: float) -> float:
    """``quantile`` of the finite bins' linear power divided by ``corr``, in dB (NaN if none finite)."""
    p = p[np.isfinite(p)]
    if p.size == 0:
        return float("nan")
    lin = np.power(10.0, np.minimum(p, _MAX_LIN_DB) / 10.0)
    q = float(np.quantile(lin, quantile))
    return float(10.0 * np.log10(max(q / corr, 1e-300)))


def _utc(t: datetime | None) -> datetime | None:
    """A datetime as timezone-aware UTC (naive values are taken as UTC, per DESIGN.md)."""
    if t is None:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _min_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class SiteBaseline:
    """Per-bin survey statistics of one site on a fixed, uniform frequency grid.

    All statistics are computed (and cached) from the per-bin level histogram; the arrays are
    read-only views. Build one with :class:`BaselineBuilder` or :func:`build_baseline`, combine
    surveys with :func:`merge`, store with :func:`detector.baseline.save`, and compare a live
    spectrum on another grid through :func:`detector.baseline.align`.

    Parameters
    ----------
    freqs_hz : array_like of float64, shape (m,)
        Bin centers (Hz), strictly increasing, uniform spacing, m ≥ 2.
    hist : array_like of int, shape (m, N_LEVELS)
        Per-bin count of frames whose power fell in each 0.1 dB cell from ``LEVEL_MIN_DB`` (−160)
        to ``LEVEL_MAX_DB`` (+20); outside values are counted in the end cells. Stored as int64.
    occupied : array_like of int, shape (m,)
        Frames in which the bin exceeded that frame's noise floor by ``margin_db``.
    frames : array_like of int, shape (m,)
        Frames seen per bin; must equal ``hist.sum(axis=1)``. 0 where no survey frame covered the bin.
    sum_lin : array_like of float64, shape (m,)
        Sum over frames of the linear power (``10**(dB/10)``, in mW for dBm, in full-scale units
        for dBFS).
    site : str
        Site identifier.
    rbw_hz : float
        Resolution bandwidth of the survey frames (Hz), > 0.
    n_looks : float
        Independent looks per bin of one survey frame, > 0.
    margin_db : float
        Occupancy margin over the per-frame noise floor (dB).
    unit : {"dBFS", "dBm"}
        Unit of the levels.
    first_start, last_end : datetime or None
        UTC start of the first and end of the last frame, when the frames carried times.
    span_s : float
        Seconds of signal integrated: the sum of the frames' ``duration_s``.
    gain_db : float or None
        Receiver gain of the survey, when known.
    calibration_profile : str or None
        Name of the calibration profile that turned dBFS into dBm, when one was used.
    sources : sequence of str
        Where the survey frames came from (file names, source specs).

    Raises
    ------
    ValueError
        Shapes, dtypes or values that do not fit together (see above).

    Attributes
    ----------
    version : int
        Data-model/format version (``FORMAT_VERSION`` = 1).

    Notes
    -----
    Quantiles take the frames of a cell to be spread uniformly across it (linear interpolation of
    the cumulative histogram), so they are accurate to well under the 0.1 dB cell width.
    A histogram costs 1800 × 8 bytes per bin (14 kB): 29 MB for 2048 bins.
    """

    def __init__(
        self,
        freqs_hz: NDArray[np.float64],
        hist: NDArray[np.integer],
        occupied: NDArray[np.integer],
        frames: NDArray[np.integer],
        sum_lin: NDArray[np.float64],
        *,
        site: str,
        rbw_hz: float,
        n_looks: float,
        margin_db: float,
        unit: str = "dBFS",
        first_start: datetime | None = None,
        last_end: datetime | None = None,
        span_s: float = 0.0,
        gain_db: float | None = None,
        calibration_profile: str | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        f = as_freqs(freqs_hz, "baseline grid", min_bins=2)
        self._bin_hz = uniform_spacing(f, "baseline grid")
        m = f.size
        h = np.asarray(hist)
        if h.shape != (m, N_LEVELS) or not np.issubdtype(h.dtype, np.integer):
            raise ValueError(f"baseline histogram must be an integer array of shape ({m}, {N_LEVELS}), "
                             f"got {h.dtype} {h.shape}")
        h = h.astype(np.int64, copy=False)
        occ = np.asarray(occupied)
        fr = np.asarray(frames)
        sl = np.asarray(sum_lin, dtype=np.float64)
        for name, arr in (("occupied", occ), ("frames", fr), ("sum_lin", sl)):
            if arr.shape != (m,):
                raise ValueError(f"baseline {name} must have shape ({m},), got {arr.shape}")
        for name, arr in (("occupied", occ), ("frames", fr)):
            if not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"baseline {name} must be integer counts, got {arr.dtype}")
        occ = occ.astype(np.int64, copy=False)
        fr = fr.astype(np.int64, copy=False)
        if (h < 0).any() or (occ < 0).any() or (occ > fr).any():
            raise ValueError("baseline counts must be ≥ 0 and occupied ≤ frames")
        if not np.array_equal(h.sum(axis=1), fr):
            raise ValueError("baseline frames per bin must equal the histogram's row sums")
        if not np.all(np.isfinite(sl)) or (sl < 0).any():
            raise ValueError("baseline sum_lin must be finite and ≥ 0")
        if unit not in _UNITS:
            raise ValueError(f"baseline unit must be one of {_UNITS}, got {unit!r}")
        if not float(rbw_hz) > 0 or not float(n_looks) > 0:
            raise ValueError(f"baseline RBW and looks must be > 0, got {rbw_hz} Hz and {n_looks}")
        if not np.isfinite(margin_db):
            raise ValueError(f"baseline occupancy margin must be finite, got {margin_db}")
        self.freqs_hz: NDArray[np.float64] = _readonly(f)
        self.hist: NDArray[np.int64] = _readonly(h)
        self.occupied: NDArray[np.int64] = _readonly(occ)
        self.frames: NDArray[np.int64] = _readonly(fr)
        self.sum_lin: NDArray[np.float64] = _readonly(sl)
        self.site = str(site)
        self.rbw_hz = float(rbw_hz)
        self.n_looks = float(n_looks)
        if not self.n_looks > 0:
            raise ValueError(f"number of looks must be > 0, got {n_looks}")
        self.margin_db = float(margin_db)
        self.unit = unit
        self.first_start = _utc(first_start)
        self.last_end = _utc(last_end)
        self.span_s = float(span_s)
        self.gain_db = None if gain_db is None else float(gain_db)
        self.calibration_profile = calibration_profile
        self.sources: list[str] = [str(s) for s in sources]
        self.version = FORMAT_VERSION
        self._cache: dict[object, np.ndarray] = {}

    def __repr__(self) -> str:
        return (
            f"SiteBaseline(site={self.site!r}, bins={self.n_bins}, "
            f"{fmt_hz(self.freqs_hz[0])}–{fmt_hz(self.freqs_hz[-1])} Hz, rbw={fmt_hz(self.rbw_hz)} Hz, "
            f"frames≤{int(self.frames.max())}, unit={self.unit})"
        )

    # -- grid -------------------------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        """Number of grid bins m."""
        return int(self.freqs_hz.size)

    @property
    def bin_hz(self) -> float:
        """Grid spacing (Hz)."""
        return self._bin_hz

    @property
    def covered(self) -> NDArray[np.bool_]:
        """bool (m,): bins seen in at least one survey frame."""
        return self.frames > 0

    # -- statistics -------------------------------------------------------------------------------
    def _cum0(self) -> NDArray[np.int64]:
        """Cumulative histogram with a leading 0 column: frames below each cell edge, (m, N_LEVELS + 1)."""
        c = self._cache.get("cum0")
        if c is None:
            c = np.zeros((self.n_bins, N_LEVELS + 1), dtype=np.int64)
            np.cumsum(self.hist, axis=1, out=c[:, 1:])
            self._cache["cum0"] = c
        return c

    def _quantile64(self, q: float) -> NDArray[np.float64]:
        key = ("q", q)
        out = self._cache.get(key)
        if out is None:
            cum0 = self._cum0()
            n = self.frames.astype(np.float64)
            # Target rank; a tiny floor makes q = 0 the lower edge of the lowest non-empty cell.
            t = np.maximum(q * n, 1e-9)
            j = np.count_nonzero(cum0 < t[:, None], axis=1) - 1
            j = np.clip(j, 0, N_LEVELS - 1)
            rows = np.arange(self.n_bins)
            below = cum0[rows, j]
            cnt = self.hist[rows, j]
            frac = np.clip((t - below) / np.maximum(cnt, 1), 0.0, 1.0)
            val = LEVEL_MIN_DB + LEVEL_STEP_DB * (j + frac)
            out = np.where(self.frames > 0, val, np.nan)
            self._cache[key] = out
        return out

    def quantile(self, q: float) -> NDArray[np.float32]:
        """Per-bin q-quantile of the frame power (dB), from the histogram.

        Parameters
        ----------
        q : float
            Quantile in [0, 1]; 0 gives the lower edge of the lowest non-empty cell, 1 the upper
            edge of the highest.

        Returns
        -------
        ndarray of float32, shape (m,)
            Level in ``unit`` (dB); NaN where ``frames == 0``.

        Raises
        ------
        ValueError
            ``q`` outside [0, 1].
        """
        qf = float(q)
        if not 0.0 <= qf <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        return self._quantile64(qf).astype(np.float32)

    @property
    def median(self) -> NDArray[np.float32]:
        """float32 (m,): per-bin median level (dB); NaN where not covered."""
        return self.quantile(0.5)

    @property
    def p90(self) -> NDArray[np.float32]:
        """float32 (m,): per-bin 90th percentile (dB); NaN where not covered."""
        return self.quantile(0.9)

    @property
    def p99(self) -> NDArray[np.float32]:
        """float32 (m,): per-bin 99th percentile (dB); NaN where not covered."""
        return self.quantile(0.99)

    @property
    def max_db(self) -> NDArray[np.float32]:
        """float32 (m,): per-bin maximum (dB), the upper edge of the highest non-empty cell
        (never below the true maximum, at most 0.1 dB above); NaN where not covered."""
        return self.quantile(1.0)

    @property
    def min_db(self) -> NDArray[np.float32]:
        """float32 (m,): per-bin minimum (dB), lower edge of the lowest non-empty cell; NaN where not covered."""
        return self.quantile(0.0)

    def _cdf_count(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Frames per bin below level x (dB, shape (m,), finite), linear within each cell."""
        u = (x - LEVEL_MIN_DB) / LEVEL_STEP_DB
        j = np.clip(np.floor(u), 0, N_LEVELS - 1).astype(np.int64)
        frac = np.clip(u - j, 0.0, 1.0)
        rows = np.arange(self.n_bins)
        return self._cum0()[rows, j] + frac * self.hist[rows, j]

    @property
    def mad(self) -> NDArray[np.float32]:
        """float32 (m,): per-bin median absolute deviation from the median (dB); NaN where not covered.

        The d solving ``#{|x − median| < d} = frames/2`` on the histogram (frames spread uniformly
        within cells), found by a bisection vectorised over bins — equivalent to the median of the
        histogram of |x − median|, accurate to well under the 0.1 dB cell. Robust z-score:
        (x − median)/(1.4826·MAD) (THEORY.md §1.4).
        """
        out = self._cache.get("mad")
        if out is None:
            cov = self.frames > 0
            med = np.where(cov, self._quantile64(0.5), 0.0)
            half = 0.5 * self.frames.astype(np.float64)
            lo = np.zeros(self.n_bins)
            hi = np.full(self.n_bins, LEVEL_MAX_DB - LEVEL_MIN_DB)
            for _ in range(_MAD_ITERATIONS):  # loop over bisection steps, vectorised over bins
                mid = 0.5 * (lo + hi)
                inside = self._cdf_count(med + mid) - self._cdf_count(med - mid)
                enough = inside >= half
                hi = np.where(enough, mid, hi)
                lo = np.where(enough, lo, mid)
            out = np.where(cov, hi, np.nan)
            self._cache["mad"] = out
        return out.astype(np.float32)

    @property
    def mean_db(self) -> NDArray[np.float32]:
        """float32 (m,): 10·log10 of the per-bin linear mean power (dB); NaN where not covered.

        Averaging in linear power, then taking the log, avoids the dB-averaging bias (THEORY.md §1.4).
        """
        out = np.full(self.n_bins, np.nan)
        cov = self.frames > 0
        out[cov] = 10.0 * np.log10(np.maximum(self.sum_lin[cov] / self.frames[cov], 1e-300))
        return out.astype(np.float32)

    @property
    def occupancy(self) -> NDArray[np.float32]:
        """float32 (m,): share of frames in which the bin was occupied (ITU-R SM.1880 / SM.2256
        frequency-channel occupancy with threshold = noise floor + ``margin_db``); NaN where not covered."""
        out = np.full(self.n_bins, np.nan)
        cov = self.frames > 0
        out[cov] = self.occupied[cov] / self.frames[cov]
        return out.astype(np.float32)


class BaselineBuilder:
    """Accumulates survey frames into a :class:`SiteBaseline` on a fixed grid (streaming).

    Parameters
    ----------
    freqs_hz : array_like of float64, shape (m,)
        The grid: bin centers (Hz), strictly increasing, uniform, m ≥ 2.
    rbw_hz : float
        RBW of the survey frames (Hz); frames whose RBW differs by more than 1 % are rejected.
    site : str
        Site identifier.
    n_looks : float
        Looks per bin of a survey frame; frames differing by more than ``LOOKS_TOLERANCE`` (10 %)
        are rejected.
    margin_db : float, optional
        Occupancy margin over the per-frame noise floor (dB). Default:
        :func:`occupancy_margin_db` (``n_looks``, Pfa = 1e-3 per bin).
    unit : {"dBFS", "dBm"}
        Unit of the frames; frames in another unit are rejected.
    gain_db : float, optional
        Receiver gain during the survey.
    calibration_profile : str, optional
        Calibration profile used to convert dBFS to dBm.
    sources : sequence of str
        Names of the survey sources (recorded in the baseline).

    Raises
    ------
    ValueError
        A grid that is not strictly increasing and uniform, RBW or looks ≤ 0, unknown unit.
    """

    def __init__(
        self,
        freqs_hz: NDArray[np.float64],
        *,
        rbw_hz: float,
        site: str,
        n_looks: float,
        margin_db: float | None = None,
        unit: str = "dBFS",
        gain_db: float | None = None,
        calibration_profile: str | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        f = as_freqs(freqs_hz, "baseline grid", min_bins=2).copy()
        self._bin_hz = uniform_spacing(f, "baseline grid")
        if not float(rbw_hz) > 0:
            raise ValueError(f"RBW must be > 0 Hz, got {rbw_hz}")
        if unit not in _UNITS:
            raise ValueError(f"unit must be one of {_UNITS}, got {unit!r}")
        self.freqs_hz = _readonly(f)
        self.rbw_hz = float(rbw_hz)
        self.site = str(site)
        self.n_looks = float(n_looks)
        if not self.n_looks > 0:
            raise ValueError(f"number of looks must be > 0, got {n_looks}")
        self.margin_db = occupancy_margin_db(self.n_looks) if margin_db is None else float(margin_db)
        self.unit = unit
        self.gain_db = None if gain_db is None else float(gain_db)
        self.calibration_profile = calibration_profile
        self.sources = [str(s) for s in sources]
        self._floor_corr = float(scipy.stats.gamma.ppf(FLOOR_QUANTILE, self.n_looks) / self.n_looks)
        m = f.size
        self._hist = np.zeros((m, N_LEVELS), dtype=np.int64)
        self._occupied = np.zeros(m, dtype=np.int64)
        self._frames = np.zeros(m, dtype=np.int64)
        self._sum_lin = np.zeros(m, dtype=np.float64)
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._span_s = 0.0
        self.n_frames = 0  #: frames added (those with at least one usable bin)

    @property
    def bin_hz(self) -> float:
        """Grid spacing (Hz)."""
        return self._bin_hz

    def add(self, spectrum: Spectrum, noise_floor_db: NDArray | float | None = None, *, crop: bool = False,
            mixed_looks: bool = False) -> int:
        """Add one survey frame.

        Each spectrum bin goes to the nearest grid bin; the spectrum may cover part of the grid
        (one hop of a sweep). NaN (and ±inf) powers are ignored.

        Parameters
        ----------
        spectrum : Spectrum
            Frame with ``freqs_hz`` on the grid (within 1 % of a bin), ``rbw_hz`` within 1 % of
            the builder's, the builder's ``unit``, and ``n_looks`` within 10 %.
        noise_floor_db : float or ndarray of shape (len(spectrum.freqs_hz),), optional
            Noise floor (dB, mean noise power per bin) of this frame, one value or one per
            spectrum bin. Default: :func:`frame_noise_floor_db` (30th percentile of the frame's
            linear power, corrected to the noise mean for the builder's looks).
        crop : bool
            Drop spectrum bins outside the grid instead of raising.
        mixed_looks : bool
            Accept a frame of other looks (sweep files whose rows average different sample
            counts): its noise floor is corrected for its own looks, and the baseline records the
            fewest looks seen (the detector's margins are then on the safe side).

        Returns
        -------
        int
            Number of grid bins updated (0 when the frame had no usable bin; it is then not counted).

        Raises
        ------
        ValueError
            Different unit, RBW (> 1 %) or looks (> 10 %); bins off the grid; bins beyond the grid
            (unless ``crop``); a noise floor of the wrong shape.
        """
        if spectrum.unit != self.unit:
            raise ValueError(f"spectrum is in {spectrum.unit} but the baseline is in {self.unit}")
        if not same_rbw(self.rbw_hz, spectrum.rbw_hz):
            raise ValueError(
                f"spectrum RBW {fmt_hz(spectrum.rbw_hz)} Hz differs from the baseline RBW "
                f"{fmt_hz(self.rbw_hz)} Hz by more than 1 %; survey with one RBW"
            )
        looks = float(spectrum.n_looks)
        other_looks = abs(looks - self.n_looks) > LOOKS_TOLERANCE * self.n_looks
        if other_looks and mixed_looks and looks > 0:
            if looks < self.n_looks:
                self.n_looks = looks
        elif other_looks:
            raise ValueError(
                f"spectrum has {spectrum.n_looks:g} looks per bin but the baseline is built from "
                f"{self.n_looks:g}-look frames; survey with one frame length"
            )
        f = as_freqs(spectrum.freqs_hz, "spectrum")
        p = np.asarray(spectrum.power, dtype=np.float64)
        idx, on_grid = snap(grid_positions(f, float(self.freqs_hz[0]), self._bin_hz))
        if not on_grid.all():
            k = int(np.argmin(on_grid))
            raise ValueError(
                f"spectrum bin at {fmt_hz(f[k])} Hz is not on the baseline grid "
                f"({fmt_hz(self.freqs_hz[0])} Hz + k·{fmt_hz(self._bin_hz)} Hz)"
            )
        inside = (idx >= 0) & (idx < self.freqs_hz.size)
        if not crop and not inside.all():
            raise ValueError(
                f"spectrum covers {fmt_hz(f[0])}–{fmt_hz(f[-1])} Hz, beyond the baseline grid "
                f"{fmt_hz(self.freqs_hz[0])}–{fmt_hz(self.freqs_hz[-1])} Hz"
            )
        if noise_floor_db is None:
            corr = self._floor_corr if not other_looks else float(scipy.stats.gamma.ppf(FLOOR_QUANTILE, looks) / looks)
            floor = np.float64(_floor_db(p, FLOOR_QUANTILE, corr))
        else:
            floor = np.asarray(noise_floor_db, dtype=np.float64)
            if floor.ndim != 0 and floor.shape != p.shape:
                raise ValueError(
                    f"noise floor must be a number or have the spectrum's shape {p.shape}, got {floor.shape}"
                )
        valid = np.isfinite(p) & inside
        if not valid.any():
            return 0
        gi = idx[valid]
        pv = p[valid]
        fv = floor if floor.ndim == 0 else cast(NDArray[np.float64], floor)[valid]
        # Grid indices within one frame are unique (strictly increasing spectrum, on-grid check).
        self._hist[gi, _level_index(pv)] += 1
        self._frames[gi] += 1
        self._sum_lin[gi] += np.power(10.0, np.minimum(pv, _MAX_LIN_DB) / 10.0)
        self._occupied[gi] += pv > fv + self.margin_db  # NaN floor → not occupied
        start = _utc(spectrum.start)
        if start is not None:
            self._first = _min_time(self._first, start)
            self._last = _max_time(self._last, start + timedelta(seconds=float(spectrum.duration_s)))
        self._span_s += float(spectrum.duration_s)
        self.n_frames += 1
        return int(gi.size)

    def add_many(self, spectra: Iterable[Spectrum]) -> int:
        """Add frames with estimated noise floors (see :meth:`add`); returns the number of frames counted."""
        n0 = self.n_frames
        for s in spectra:
            self.add(s)
        return self.n_frames - n0

    def build(self) -> SiteBaseline:
        """The baseline of the frames added so far (a copy: the builder can keep accumulating).

        Raises
        ------
        ValueError
            No frame was added.
        """
        if self.n_frames == 0:
            raise ValueError("no survey frames were added: a baseline needs at least one spectrum")
        return SiteBaseline(
            self.freqs_hz.copy(),
            self._hist.copy(),
            self._occupied.copy(),
            self._frames.copy(),
            self._sum_lin.copy(),
            site=self.site,
            rbw_hz=self.rbw_hz,
            n_looks=self.n_looks,
            margin_db=self.margin_db,
            unit=self.unit,
            first_start=self._first,
            last_end=self._last,
            span_s=self._span_s,
            gain_db=self.gain_db,
            calibration_profile=self.calibration_profile,
            sources=self.sources,
        )


def build_baseline(
    spectra: Iterable[Spectrum],
    *,
    site: str,
    rbw_hz: float | None = None,
    n_looks: float | None = None,
    grid_hz: NDArray[np.float64] | None = None,
    margin_db: float | None = None,
    gain_db: float | None = None,
    calibration_profile: str | None = None,
    sources: Sequence[str] = (),
) -> SiteBaseline:
    """Build a baseline from survey frames in one call.

    Parameters
    ----------
    spectra : iterable of Spectrum
        Survey frames (read into a list when ``grid_hz`` is None, to find their frequency union).
    site : str
        Site identifier.
    rbw_hz, n_looks : float, optional
        Default: those of the first spectrum.
    grid_hz : ndarray of float64, shape (m,), optional
        The grid. Default: the first spectrum's bins when every frame lies within them, else a
        uniform grid at the first spectrum's spacing, anchored on its bins, spanning all frames.
    margin_db, gain_db, calibration_profile, sources
        As for :class:`BaselineBuilder`; the unit is the first spectrum's.

    Raises
    ------
    ValueError
        No spectra; a first spectrum with fewer than two bins or a non-uniform grid (when
        ``grid_hz`` is None); any frame rejected by :meth:`BaselineBuilder.add`.
    """
    frames = list(spectra)
    if not frames:
        raise ValueError("no survey spectra given: a baseline needs at least one spectrum")
    first = frames[0]
    if grid_hz is None:
        f0 = as_freqs(first.freqs_hz, "first spectrum", min_bins=2)
        step = uniform_spacing(f0, "first spectrum")
        lo = min(float(np.asarray(s.freqs_hz)[0]) for s in frames)
        hi = max(float(np.asarray(s.freqs_hz)[-1]) for s in frames)
        k_lo = min(0, int(np.rint((lo - f0[0]) / step)))
        k_hi = max(f0.size - 1, int(np.rint((hi - f0[0]) / step)))
        if k_lo == 0 and k_hi == f0.size - 1:
            grid = f0.copy()
        else:
            grid = f0[0] + step * np.arange(k_lo, k_hi + 1, dtype=np.float64)
            grid[-k_lo : -k_lo + f0.size] = f0
    else:
        grid = np.asarray(grid_hz, dtype=np.float64)
    builder = BaselineBuilder(
        grid,
        rbw_hz=first.rbw_hz if rbw_hz is None else rbw_hz,
        site=site,
        n_looks=first.n_looks if n_looks is None else n_looks,
        margin_db=margin_db,
        unit=first.unit,
        gain_db=gain_db,
        calibration_profile=calibration_profile,
        sources=sources,
    )
    builder.add_many(frames)
    return builder.build()


def merge(a: SiteBaseline, b: SiteBaseline) -> SiteBaseline:
    """Combine two surveys of one site: histograms and counts add, frequency ranges unite.

    Merging two halves of a survey gives the same histograms, counts and hence statistics as one
    survey of all frames (``sum_lin`` up to floating-point rounding of the sum's order).

    Parameters
    ----------
    a, b : SiteBaseline
        Same site, unit, occupancy margin, RBW and grid spacing (within 1 %), looks within 10 %,
        and grids that align (every bin of ``b`` within 1 % of a bin of ``a``'s grid extended).

    Returns
    -------
    SiteBaseline
        On the union grid (``a``'s bins extended at ``a``'s spacing to span both); bins covered
        by neither have ``frames == 0``. Time span from the earliest start to the latest end,
        ``span_s`` summed, sources concatenated (``a``'s first). Metadata (rbw, looks) are ``a``'s.

    Raises
    ------
    ValueError
        Any of the requirements above not met, or (for dBFS levels) different known receiver gains.
    """
    if a.site != b.site:
        raise ValueError(f"cannot merge baselines of different sites ({a.site!r} and {b.site!r})")
    if a.unit != b.unit:
        raise ValueError(f"cannot merge a baseline in {a.unit} with one in {b.unit}")
    if not same_rbw(a.rbw_hz, b.rbw_hz):
        raise ValueError(
            f"cannot merge baselines of different RBW ({fmt_hz(a.rbw_hz)} Hz and {fmt_hz(b.rbw_hz)} Hz); "
            "survey again with one RBW"
        )
    if not same_rbw(a.bin_hz, b.bin_hz):
        raise ValueError(
            f"cannot merge baselines of different grid spacing ({fmt_hz(a.bin_hz)} Hz and {fmt_hz(b.bin_hz)} Hz)"
        )
    if abs(a.n_looks - b.n_looks) > LOOKS_TOLERANCE * a.n_looks:
        raise ValueError(
            f"cannot merge baselines of {a.n_looks:g}- and {b.n_looks:g}-look frames: their per-bin "
            "statistics differ; survey with one frame length"
        )
    if abs(a.margin_db - b.margin_db) > 1e-9:
        raise ValueError(
            f"cannot merge baselines whose occupancy used different margins ({a.margin_db:.3f} dB and "
            f"{b.margin_db:.3f} dB)"
        )
    gain = a.gain_db if b.gain_db is None else b.gain_db if a.gain_db is None else None
    if a.gain_db is not None and b.gain_db is not None:
        if abs(a.gain_db - b.gain_db) <= 1e-6:
            gain = a.gain_db
        elif a.unit == "dBFS":
            raise ValueError(
                f"cannot merge dBFS baselines taken at different receiver gains ({a.gain_db:g} dB and "
                f"{b.gain_db:g} dB): their levels are not comparable; calibrate to dBm first"
            )
    pos = grid_positions(b.freqs_hz, float(a.freqs_hz[0]), a.bin_hz)
    idx, on_grid = snap(pos)
    if not on_grid.all():
        off = float(np.max(np.abs(pos - idx)))
        raise ValueError(
            f"cannot merge baselines whose grids do not align: bins of the second are up to "
            f"{off:.3f} of a bin ({fmt_hz(off * a.bin_hz)} Hz) off the first's grid"
        )
    ma = a.n_bins
    k_lo = min(0, int(idx[0]))
    k_hi = max(ma - 1, int(idx[-1]))
    freqs = float(a.freqs_hz[0]) + a.bin_hz * np.arange(k_lo, k_hi + 1, dtype=np.float64)
    sa = slice(-k_lo, -k_lo + ma)
    freqs[sa] = a.freqs_hz
    ib = idx - k_lo
    mu = freqs.size
    hist = np.zeros((mu, N_LEVELS), dtype=np.int64)
    occupied = np.zeros(mu, dtype=np.int64)
    frames = np.zeros(mu, dtype=np.int64)
    sum_lin = np.zeros(mu, dtype=np.float64)
    for arr, xa, xb in ((hist, a.hist, b.hist), (occupied, a.occupied, b.occupied),
                        (frames, a.frames, b.frames), (sum_lin, a.sum_lin, b.sum_lin)):
        arr[sa] += xa
        arr[ib] += xb
    if a.calibration_profile == b.calibration_profile or b.calibration_profile is None:
        profile = a.calibration_profile
    elif a.calibration_profile is None:
        profile = b.calibration_profile
    else:
        profile = f"{a.calibration_profile}, {b.calibration_profile}"
    return SiteBaseline(
        freqs,
        hist,
        occupied,
        frames,
        sum_lin,
        site=a.site,
        rbw_hz=a.rbw_hz,
        n_looks=a.n_looks,
        margin_db=a.margin_db,
        unit=a.unit,
        first_start=_min_time(a.first_start, b.first_start),
        last_end=_max_time(a.last_end, b.last_end),
        span_s=a.span_s + b.span_s,
        gain_db=gain,
        calibration_profile=profile,
        sources=[*a.sources, *b.sources],
    )
