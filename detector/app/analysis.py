"""Whole-recording spectrum summary: average and max-hold PSD, noise floor and peaks.

Glue between a source (I/O edge) and the pure DSP: reads blocks, frames them at a chosen rate,
keeps the running average and max-hold (so short bursts in long files are not averaged away) and
finds the peaks of both. Used by ``examwatch spectrum``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from detector.dsp import FrameStream, Peak, dc_bins, find_peaks, interpolate_dc, make_plan, mark_images, power_to_db
from detector.core.errors import InputError
from detector.sources import DEFAULT_BLOCK_SAMPLES

__all__ = ["SpectrumSummary", "summarize_source", "DEFAULT_FRAME_S"]

#: Default frame length for max-hold (s): short enough that a 1 ms burst stays visible.
DEFAULT_FRAME_S = 0.01


@dataclass
class SpectrumSummary:
    """Average and max-hold spectra of a recording and their peaks.

    ``freqs_hz`` (m,) absolute; ``avg_dbfs``, ``maxhold_dbfs``, ``floor_dbfs`` (m,) in dBFS per RBW
    bin; ``peaks`` sorted by SNR (strongest first).
    """

    center_hz: float
    sample_rate_hz: float
    duration_s: float
    rbw_hz: float
    n_frames: int
    freqs_hz: NDArray[np.float64]
    avg_dbfs: NDArray[np.float32]
    maxhold_dbfs: NDArray[np.float32]
    floor_dbfs: NDArray[np.float32]
    noise_floor_dbfs: float
    peaks: list[Peak] = field(default_factory=list)
    #: samples with a NaN or ±inf I or Q (replaced by 0 before the FFT)
    nonfinite_samples: int = 0
    #: frames left out of the average and the max-hold because one of their segments held such a sample
    frames_excluded: int = 0

    def peak_dicts(self, limit: int | None = None) -> list[dict]:
        """Peaks as the JSON objects of ``spectrum --json``: ``freq_hz`` absolute; ``image`` True for
        the IQ mirror image of a much stronger emission."""
        bin_hz = self.sample_rate_hz / self.freqs_hz.size
        out = [
            {
                "freq_hz": float(self.freqs_hz[p.index]),
                "peak_dbfs": round(p.peak_db, 2),
                "snr_db": round(p.snr_db, 2),
                "bandwidth_hz": float(p.bandwidth_bins * bin_hz),
                "image": p.image,
            }
            for p in self.peaks
        ]
        return out if limit is None else out[:limit]

    def to_json(self, max_peaks: int | None = 10) -> dict:
        return {
            "center_hz": self.center_hz,
            "sample_rate_hz": self.sample_rate_hz,
            "duration_s": round(self.duration_s, 6),
            "rbw_hz": round(self.rbw_hz, 3),
            "noise_floor_dbfs": round(self.noise_floor_dbfs, 2),
            "peaks": self.peak_dicts(max_peaks),
            "nonfinite_samples": int(self.nonfinite_samples),
            "frames_excluded": int(self.frames_excluded),
        }


def summarize_source(
    source,
    *,
    rbw_hz: float | None = None,
    nfft: int | None = None,
    frame_s: float = DEFAULT_FRAME_S,
    max_duration_s: float | None = None,
    pfa: float = 1e-3,
    keep_dc: bool = False,
    block_samples: int = DEFAULT_BLOCK_SAMPLES,
    progress: Callable[[float], None] | None = None,
    image_margin_db: float = 15.0,
) -> SpectrumSummary:
    """Read ``source`` to its end (or ``max_duration_s``) and summarize its spectrum.

    ``progress`` is called with the seconds read so far. A peak at least ``image_margin_db``
    below the max-hold at its mirrored frequency (about the tuned center) is flagged as an IQ
    image (:func:`detector.dsp.mark_images`). Non-finite samples (NaN, ±inf) are counted
    (``nonfinite_samples``); the frames whose segments held one are left out of the average and the
    max-hold (``frames_excluded``), unless every frame held one (they are then kept, zero-filled,
    so that a spectrum is still shown). Raises :class:`InputError` when the
    recording is shorter than one FFT segment or holds no finite sample at all.
    """
    info = source.info
    fs = info.sample_rate_hz
    if rbw_hz is not None and rbw_hz > fs / 8:
        raise InputError(f"--rbw {rbw_hz:g} Hz is too wide for a sample rate of {fs:g} Hz (at most fs/8 = {fs / 8:g} Hz)")
    try:
        plan = make_plan(fs, nfft=nfft, rbw_hz=rbw_hz)
    except ValueError as exc:
        raise InputError(f"--rbw: {exc}") from None
    spf = max(1, int(round(frame_s * fs / plan.step)))
    stream = FrameStream(plan, spf)
    total = np.zeros(plan.nfft, dtype=np.float64)
    maxhold = np.zeros(plan.nfft, dtype=np.float32)
    n_frames = 0
    n_samples = 0
    excluded = 0
    fallback_total = np.zeros(plan.nfft, dtype=np.float64)  # the flagged frames, used only if no frame is clean
    fallback_max = np.zeros(plan.nfft, dtype=np.float32)
    fallback_n = 0
    center = info.center_hz
    for block in source.blocks(block_samples):
        if max_duration_s is not None and n_samples / fs >= max_duration_s:
            break
        center = block.center_hz
        frames, _ = stream.push(block.samples)
        n_samples += block.samples.size
        if frames.shape[0]:
            flagged = stream.last_flagged
            if flagged.any():
                bad = frames[flagged]
                fallback_total += bad.sum(axis=0, dtype=np.float64)
                np.maximum(fallback_max, bad.max(axis=0), out=fallback_max)
                fallback_n += bad.shape[0]
                excluded += bad.shape[0]
                frames = frames[~flagged]
        if frames.shape[0]:
            total += frames.sum(axis=0, dtype=np.float64)
            np.maximum(maxhold, frames.max(axis=0), out=maxhold)
            n_frames += frames.shape[0]
        if progress:
            progress(n_samples / fs)
    if n_frames == 0 and fallback_n:  # every frame held a non-finite sample: show them, zero-filled
        if stream.nonfinite_samples >= n_samples:
            raise InputError(f"{info.name}: every one of its {n_samples} samples is NaN or infinite: there is no "
                             "spectrum to measure (a bad recording or driver)")
        total, maxhold, n_frames, excluded = fallback_total, fallback_max, fallback_n, 0
    # A tail shorter than one frame still counts when it holds at least one segment.
    if n_frames == 0:
        tail = stream._carry  # noqa: SLF001 - the summary owns its stream
        if plan.segments_in(tail.size) == 0:
            raise InputError(
                f"{info.name}: {n_samples} samples is shorter than one FFT segment ({plan.nfft}); use a smaller --rbw or a longer recording"
            )
        from detector.dsp import framed_psd

        p = framed_psd(tail, plan)
        total += p.sum(axis=0)
        maxhold = p.max(axis=0)
        n_frames = p.shape[0]
        spf = 1
    avg = total / n_frames
    # the DC spike and its 1/f skirt: ±2 kHz (as detection), at least ±2 bins
    dc_half = max(2, int(np.ceil(2000.0 / plan.bin_hz)))
    exclude = None if keep_dc else dc_bins(plan.offsets_hz, half_width_bins=dc_half)
    if not keep_dc:
        avg = interpolate_dc(avg, plan.offsets_hz, half_width_bins=dc_half)
        maxhold = interpolate_dc(maxhold, plan.offsets_hz, half_width_bins=dc_half)
    looks_frame = spf * plan.looks_per_segment
    floor, peaks = find_peaks(avg, maxhold, looks_avg=n_frames * looks_frame, looks_frame=looks_frame,
                              n_frames=n_frames, pfa=pfa, exclude=exclude)
    # IQ images of much stronger emissions stay listed (a spectrum shows what the receiver saw) but
    # are flagged, as detection rejects them; the mirror is about the tuned center (offset 0)
    peaks = mark_images(peaks, maxhold, int(np.argmin(np.abs(plan.offsets_hz))), margin_db=image_margin_db)
    return SpectrumSummary(
        center_hz=center,
        sample_rate_hz=fs,
        duration_s=n_samples / fs,
        rbw_hz=plan.rbw_hz,
        n_frames=n_frames,
        freqs_hz=center + plan.offsets_hz,
        avg_dbfs=power_to_db(avg),
        maxhold_dbfs=power_to_db(maxhold),
        floor_dbfs=power_to_db(floor),
        noise_floor_dbfs=float(10 * np.log10(max(float(np.median(avg)), 1e-30))),
        peaks=peaks,
        nonfinite_samples=int(stream.nonfinite_samples),
        frames_excluded=excluded,
    )
