"""Building a baseline: :class:`BaselineBuilder` accumulates survey frames (streaming) and :func:`build_baseline` does it in one call.

Each frame is snapped onto the builder's fixed grid, its bins counted in the level histogram, and
counted as occupied where they exceed the per-frame noise floor by the occupancy margin (see
:mod:`detector.baseline._levels`). The result is a :class:`~detector.baseline._model.SiteBaseline`.

No function here reads files, the clock or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
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
from detector.baseline._levels import (
    _MAX_LIN_DB,
    _UNITS,
    FLOOR_QUANTILE,
    LOOKS_TOLERANCE,
    N_LEVELS,
    _floor_db,
    _level_index,
    _max_time,
    _min_time,
    _readonly,
    _utc,
    occupancy_margin_db,
)
from detector.baseline._model import SiteBaseline
from detector.core.types import Spectrum

__all__ = ["BaselineBuilder", "build_baseline"]


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
        self.nonfinite_frames = 0  #: frames refused because they were cut from NaN/inf samples

    @property
    def bin_hz(self) -> float:
        """Grid spacing (Hz)."""
        return self._bin_hz

    def add(self, spectrum: Spectrum, noise_floor_db: NDArray | float | None = None, *, crop: bool = False,
            mixed_looks: bool = False) -> int:
        """Add one survey frame.

        Each spectrum bin goes to the nearest grid bin; the spectrum may cover part of the grid
        (one hop of a sweep). NaN (and ±inf) powers are ignored, and a frame marked
        ``meta["nonfinite"]`` (cut from NaN/inf samples, :meth:`DetectionEngine.frames_of_block`) is
        not added (counted in ``nonfinite_frames``).

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
        if spectrum.meta.get("nonfinite"):
            # a frame cut from NaN/inf samples (zeroed by the FrameStream) would pull the levels down
            self.nonfinite_frames += 1
            return 0
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
