"""Frames across block boundaries: an explicit carry buffer around :func:`frame_psd_stack`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detector.dsp._psd import PsdPlan, frame_psd_stack

__all__ = ["FrameStream"]


class FrameStream:
    """Cut a stream of IQ blocks into PSD frames of ``segments_per_frame`` segments.

    Samples that do not complete a frame are carried to the next :meth:`push`, so frame ``k``
    always starts at sample ``k·advance`` of the stream, whatever the block sizes were.
    :meth:`reset` drops the carry (after a retune or a gap in the samples).
    """

    def __init__(self, plan: PsdPlan, segments_per_frame: int) -> None:
        if segments_per_frame < 1:
            raise ValueError(f"segments_per_frame must be ≥ 1, got {segments_per_frame}")
        self.plan = plan
        self.segments_per_frame = segments_per_frame
        self.advance = segments_per_frame * plan.step  # samples between frame starts
        self._carry = np.empty(0, dtype=np.complex64)
        self.frames_out = 0

    @property
    def frame_s(self) -> float:
        """Time between frame starts (s)."""
        return self.advance / self.plan.sample_rate_hz

    @property
    def looks(self) -> float:
        """Independent looks behind each frame bin."""
        return self.segments_per_frame * self.plan.looks_per_segment

    def reset(self) -> None:
        self._carry = np.empty(0, dtype=np.complex64)

    def push(self, samples: NDArray[np.complex64]) -> tuple[NDArray[np.float32], int]:
        """Add samples; return ``(frames, first_index)``: linear power (n, nfft) and the index of
        the first returned frame counted since the stream began (or since the last reset)."""
        x = np.concatenate((self._carry, samples)) if self._carry.size else np.asarray(samples, dtype=np.complex64)
        frames = frame_psd_stack(x, self.plan, self.segments_per_frame)
        used = frames.shape[0] * self.advance
        self._carry = x[used:].copy()
        first = self.frames_out
        self.frames_out += frames.shape[0]
        return frames, first
