"""The per-frame detector's knobs and results: :class:`DetectionConfig`, :class:`Emission`,
:class:`FrameResult` (one frame) and :class:`StackResult` (a stack of frames, per-frame arrays)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["DetectionConfig", "Emission", "FrameResult", "StackResult"]


@dataclass(frozen=True)
class DetectionConfig:
    """Knobs of the per-frame detector (defaults documented in README "Detection").

    ``pfa_bin``: per-bin, per-frame false-alarm probability (set from a false-alert target by
    :func:`~detector.detection.pfa_for_alert_rate`); ``cfar_window_bins``: width of the running
    order statistic; ``cfar_quantile``: its order (0.3: robust while ≤ 70 % of the window is
    occupied); ``merge_gap_bins``: flagged runs this close are one emission; ``dc_half_width_hz``:
    the DC spike's half width never reported; ``edge_crop``: fraction of the band at each edge
    ignored (filter roll-off at hop edges); ``image_margin_db``: a peak this much weaker than an
    emission mirrored about the tuned center is its IQ image; ``baseline_margin_db``: extra margin
    over the baseline's high quantile for drift between survey and exam (the SNR wall, THEORY §1.2
    item 7); ``gain_step_db``: a median level shift over all covered bins larger than this is a gain
    change, compensated and reported, not an emitter; ``baseline_tolerance_bins``: a bin is compared
    with the highest baseline level within this many bins (frequency drift between survey and exam).
    """

    pfa_bin: float = 1e-5
    cfar_window_bins: int = 129
    cfar_quantile: float = 0.3
    merge_gap_bins: int = 2
    dc_half_width_hz: float = 2000.0
    edge_crop: float = 0.02
    image_margin_db: float = 15.0
    baseline_quantile: str = "p99"
    baseline_margin_db: float = 1.0
    gain_step_db: float = 1.0
    baseline_tolerance_bins: int = 1


@dataclass
class Emission:
    """An emission in one frame.

    ``center_hz`` power-weighted center; ``bandwidth_hz`` occupied (99 % of the power above the
    floor, ITU-R SM.328);
    ``f_lo_hz``/``f_hi_hz`` the flagged span; ``peak_dbfs`` strongest bin; ``snr_db`` over the
    frame's noise floor; ``excess_db`` over the baseline's high quantile (None without baseline);
    ``bins`` the flagged bin indices; ``n_runs`` contiguous runs joined into it; ``artefact`` and
    ``artefact_of`` mark a by-product of a stronger emission of the same frame (kind and reason,
    :mod:`detector.detection._byproducts`; None for an emission of its own).
    """

    center_hz: float
    bandwidth_hz: float
    f_lo_hz: float
    f_hi_hz: float
    peak_hz: float
    peak_dbfs: float
    snr_db: float
    excess_db: float | None
    power_dbfs: float
    bins: NDArray[np.intp] = field(repr=False)
    n_runs: int = 1
    baseline_occupancy: float | None = None
    artefact: str | None = None
    artefact_of: str | None = None


@dataclass
class FrameResult:
    """Everything one frame gives: emissions, the floor, the gain offset and what was rejected."""

    emissions: list[Emission]
    floor_db: NDArray[np.float32] | None  # computed for frames with emissions and the last of a stack
    noise_floor_dbfs: float
    gain_offset_db: float
    n_flagged_bins: int
    rejected: dict[str, int]
    n_tested_bins: int = 0


@dataclass
class StackResult:
    """Everything a stack of ``n`` frames on one grid gives, as per-frame arrays (no per-frame objects).

    ``emissions`` maps a frame index to its emissions (frames without any are absent);
    ``n_flagged``, ``rejected_*`` (DC, band edge, IQ image, explained by the baseline),
    ``noise_floor_dbfs`` and ``gain_offset_db`` have shape (n,); ``floor_lin`` is the noise mean per
    bin, shape (1, m) when one floor serves the whole stack, else (n, m). :meth:`frame` gives one
    frame as a :class:`FrameResult`.
    """

    emissions: dict[int, list[Emission]]
    n_flagged: NDArray[np.int64]
    rejected_dc: NDArray[np.int64]
    rejected_edge: NDArray[np.int64]
    rejected_image: NDArray[np.int64]
    rejected_baseline: NDArray[np.int64]
    noise_floor_dbfs: NDArray[np.float64]
    gain_offset_db: NDArray[np.float64]
    floor_lin: NDArray
    n_tested_bins: int
    #: the stack's power per bin, linear, (n, m) float32: the framer's output as given, or the
    #: conversion of the dB input (so that the caller need not convert again)
    power_lin: NDArray[np.float32] | None = field(default=None, repr=False)
    #: the stack's mean power per bin, linear, (m,) float32, when detection formed it (stacks of
    #: ≥ 4 frames, whose one floor comes from it); None otherwise (see :meth:`mean_lin`)
    stack_mean_lin: NDArray[np.float32] | None = field(default=None, repr=False)
    _floor_db: NDArray[np.float32] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.n_flagged.size)

    def mean_lin(self) -> NDArray[np.floating]:
        """The stack's mean power per bin, linear, shape (m,): the one detection formed, else
        computed from :attr:`power_lin` (float64)."""
        if self.stack_mean_lin is not None:
            return self.stack_mean_lin
        assert self.power_lin is not None
        return np.atleast_2d(self.power_lin).mean(axis=0, dtype=np.float64)

    def floor_db(self, i: int) -> NDArray[np.float32]:
        """Noise floor of frame ``i`` in dB, shape (m,), float32."""
        if self.floor_lin.shape[0] == 1:
            if self._floor_db is None:
                self._floor_db = (10 * np.log10(np.maximum(self.floor_lin[0], 1e-30))).astype(np.float32)
            return self._floor_db
        return (10 * np.log10(np.maximum(self.floor_lin[i], 1e-30))).astype(np.float32)

    def frame(self, i: int) -> FrameResult:
        """Frame ``i`` (negative counts from the end) as a :class:`FrameResult`; its ``floor_db`` is
        given for frames with flagged bins and for the last frame of the stack."""
        n = len(self)
        i = i + n if i < 0 else i
        return FrameResult(
            emissions=self.emissions.get(i, []),
            floor_db=self.floor_db(i) if (self.n_flagged[i] or i == n - 1) else None,
            noise_floor_dbfs=float(self.noise_floor_dbfs[i]), gain_offset_db=float(self.gain_offset_db[i]),
            n_flagged_bins=int(self.n_flagged[i]),
            rejected={"dc": int(self.rejected_dc[i]), "edge": int(self.rejected_edge[i]),
                      "image": int(self.rejected_image[i]), "baseline": int(self.rejected_baseline[i])},
            n_tested_bins=self.n_tested_bins)
