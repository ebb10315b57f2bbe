"""Per-site baseline: the :class:`SiteBaseline` model — per-bin level histograms of a survey and their statistics.

A :class:`SiteBaseline` keeps, for every bin of a fixed, uniform frequency grid, a histogram of the
frame power (dB, 0.1 dB cells from −160 to +20 dB), the count of frames in which the bin was
occupied, the count of frames seen and the sum of linear power. Every statistic (quantiles, median,
MAD, max, mean, occupancy) is computed from these, so a survey can be accumulated frame by frame
(:class:`~detector.baseline._builder.BaselineBuilder`) and two surveys merged exactly
(:func:`~detector.baseline._merge.merge`). The histogram cells and the per-frame noise statistics
live in :mod:`detector.baseline._levels`.

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

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from detector.baseline._grid import as_freqs, fmt_hz, uniform_spacing
from detector.baseline._levels import (
    _MAD_ITERATIONS,
    _UNITS,
    LEVEL_MAX_DB,
    LEVEL_MIN_DB,
    LEVEL_STEP_DB,
    N_LEVELS,
    _readonly,
    _utc,
)

# LEVEL_MIN_DB, LEVEL_STEP_DB and N_LEVELS are also imported from here by detector.baseline._io.
__all__ = ["FORMAT_VERSION", "SiteBaseline", "LEVEL_MIN_DB", "LEVEL_STEP_DB", "N_LEVELS"]


#: Version of the baseline data model and file format.
FORMAT_VERSION = 1


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
