"""Frames across block boundaries: the real-time framed Welch PSD of the detection chain.

:class:`FrameStream` cuts a stream of IQ blocks into PSD frames of ``segments_per_frame``
overlapped, windowed segments, equal (tested) to :func:`~detector.dsp.frame_psd_stack` over the
concatenated stream. It is the hot path of examwatch (issue #10), so it differs in how, not what:

* **No copy of the block.** Samples that do not complete a frame are carried to the next
  :meth:`~FrameStream.push`; only the segments that start in that carry are assembled from a small
  concatenation, the others are strided views of the new block.
* **Preallocated buffers.** The windowed segments and the FFT output live in buffers reused from
  block to block (grown when a block is larger).
* **No fftshift pass.** The window is multiplied by (−1)ⁿ, which shifts the DFT by nfft/2 bins,
  so the FFT output is already in ascending frequency order.
* **Scale once per frame.** |X|² is formed as re² + im² on the FFT output, summed over a
  frame's segments and scaled afterwards; with numba installed in one compiled pass
  (:mod:`detector.dsp._kernels`), else in three numpy passes, with the same bits.
* **Cache-sized batches.** Segments are windowed, transformed and squared a frame at a time
  by default (``batch_segments``), so that the working set stays in the CPU cache.
* **Non-finite samples.** NaN or ±inf samples (start-up garbage, a bad driver) are replaced by 0
  before windowing (:func:`~detector.dsp.replace_nonfinite`), counted in ``nonfinite_samples``,
  and every frame one of whose segments held one is flagged in ``last_flagged``: a NaN never
  reaches a frame (it would make the whole frame NaN), and the callers drop the flagged frames
  (their power is low by the share of zeroed samples): the baseline builder, ``spectrum``, and
  the detection engine, which counts them (``frames_excluded``) and treats them as a gap. The
  check is optimistic: a non-finite sample makes every bin of its frame's |X|² non-finite, so one sum
  over one bin of the block's frames (n values instead of the block's samples) shows it; only then is the block
  framed again with its samples checked and replaced (the samples carried to the next block are
  counted in ``nonfinite_samples`` when it is read or the stream is reset).
* **FFT backend.** ``scipy.fft`` (pocketfft, in place), or pyFFTW when installed (``backend="auto"``
  or ``"pyfftw"``): FFTW plans measured once per batch size (``FFTW_MEASURE``), ≈ 2× faster here.

References
----------
.. [1] P. D. Welch, "The use of fast Fourier transform for the estimation of power spectra",
       IEEE Trans. Audio Electroacoust. 15(2), 1967.
.. [2] M. Frigo, S. G. Johnson, "The design and implementation of FFTW3", Proc. IEEE 93(2), 2005.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from detector.dsp._convert import count_nonfinite, replace_nonfinite
from detector.dsp._kernels import power_sums_kernel
from detector.dsp._psd import PsdPlan

__all__ = ["FrameStream", "fft_backends"]


def fft_backends() -> list[str]:
    """The FFT backends usable here: always ``"scipy"``, plus ``"pyfftw"`` when it imports."""
    out = ["scipy"]
    try:
        import pyfftw  # noqa: F401
    except ImportError:
        pass
    else:
        out.append("pyfftw")
    return out


class _BatchFft:
    """A batched forward FFT along the last axis of ``buf[:rows]``, in place or into a second buffer."""

    def __init__(self, nfft: int, backend: str) -> None:
        if backend == "auto":
            backend = "pyfftw" if "pyfftw" in fft_backends() else "scipy"
        if backend not in ("scipy", "pyfftw"):
            raise ValueError(f"FFT backend must be auto, scipy or pyfftw, got {backend!r}")
        if backend == "pyfftw" and "pyfftw" not in fft_backends():
            raise ValueError("FFT backend pyfftw asked for but pyFFTW is not installed (pip install pyfftw)")
        self.nfft = nfft
        self.backend = backend
        self.inbuf = np.empty((0, nfft), dtype=np.complex64)
        self.outbuf = self.inbuf
        self._plans: dict[int, Callable[[], Any]] = {}

    def reserve(self, rows: int) -> NDArray[np.complex64]:
        """The input buffer, with room for at least ``rows`` segments."""
        if rows > self.inbuf.shape[0]:
            cap = max(rows, int(self.inbuf.shape[0] * 1.25))
            if self.backend == "pyfftw":
                import pyfftw

                self.inbuf = pyfftw.empty_aligned((cap, self.nfft), dtype="complex64")
                self.outbuf = pyfftw.empty_aligned((cap, self.nfft), dtype="complex64")
            else:
                self.inbuf = np.empty((cap, self.nfft), dtype=np.complex64)
                self.outbuf = self.inbuf
            self._plans.clear()
        return self.inbuf

    def __call__(self, rows: int) -> NDArray[np.complex64]:
        """FFT of ``inbuf[:rows]``; returns the output rows (the input is overwritten)."""
        if self.backend == "scipy":
            return scipy.fft.fft(self.inbuf[:rows], axis=-1, overwrite_x=True)
        plan = self._plans.get(rows)
        if plan is None:
            import pyfftw

            saved = self.inbuf[:rows].copy()  # FFTW_MEASURE plans by running on the buffers
            plan = pyfftw.FFTW(self.inbuf[:rows], self.outbuf[:rows], axes=(-1,), direction="FFTW_FORWARD",
                               flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=1)
            self.inbuf[:rows] = saved
            if len(self._plans) > 8:
                self._plans.clear()
            self._plans[rows] = plan
        plan()
        return self.outbuf[:rows]


class FrameStream:
    """Cut a stream of IQ blocks into PSD frames of ``segments_per_frame`` segments.

    Frame ``k`` always starts at sample ``k·advance`` of the stream, whatever the block sizes
    were; :meth:`reset` drops the carry (after a retune or a gap in the samples).

    Parameters
    ----------
    plan : PsdPlan
        Sample rate, FFT size, window, overlap.
    segments_per_frame : int
        Segments averaged into one frame (≥ 1).
    backend : {"auto", "scipy", "pyfftw"}
        FFT backend (see the module docstring).
    batch_segments : int
        Segments per FFT batch, rounded down to whole frames (at least one): large blocks are
        transformed in cache-sized batches. The default, 12, is one frame at 2.4 MS/s with
        4096-point segments and 10 ms frames.
    kernel : {"auto", "numpy", "numba"}
        How |X|² is summed over a frame's segments (:mod:`detector.dsp._kernels`; the same bits
        either way): numba, when installed, in one pass instead of three.

    Raises
    ------
    ValueError
        ``segments_per_frame`` < 1, an odd FFT size, or an unknown or missing backend.
    """

    def __init__(self, plan: PsdPlan, segments_per_frame: int, *, backend: str = "auto", batch_segments: int = 12,
                 kernel: str = "auto") -> None:
        if segments_per_frame < 1:
            raise ValueError(f"segments_per_frame must be ≥ 1, got {segments_per_frame}")
        if plan.nfft % 2:
            raise ValueError(f"FrameStream needs an even FFT size, got {plan.nfft}")
        self.plan = plan
        self.segments_per_frame = segments_per_frame
        self.advance = segments_per_frame * plan.step  # samples between frame starts
        self.batch_segments = int(batch_segments)
        self._carry = np.empty(0, dtype=np.complex64)
        self._carry_bad: NDArray[np.bool_] | None = None  # non-finite samples in the carry (None: none)
        self.frames_out = 0
        self._nonfinite = 0  # counted non-finite samples (see nonfinite_samples)
        #: per frame of the last push: True when one of its segments held a non-finite sample
        self.last_flagged: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        # (−1)ⁿ moves bin k to k + nfft/2: the FFT output comes out fft-shifted
        alt = np.where(np.arange(plan.nfft) % 2 == 0, 1.0, -1.0).astype(np.float32)
        self._window = (plan.window * alt).astype(np.float32)
        self._fft = _BatchFft(plan.nfft, backend)
        self.kernel, self._power_sums = power_sums_kernel(kernel)

    @property
    def backend(self) -> str:
        """The FFT backend in use (``scipy`` or ``pyfftw``)."""
        return self._fft.backend

    @property
    def frame_s(self) -> float:
        """Time between frame starts (s)."""
        return self.advance / self.plan.sample_rate_hz

    @property
    def looks(self) -> float:
        """Independent looks behind each frame bin."""
        return self.segments_per_frame * self.plan.looks_per_segment

    @property
    def nonfinite_samples(self) -> int:
        """Non-finite samples pushed since the stream was made (replaced by 0 where they reach a
        frame; not reset by :meth:`reset`), the carry included."""
        unchecked = count_nonfinite(self._carry) if self._carry_bad is None and self._carry.size else 0
        return self._nonfinite + unchecked

    def reset(self) -> None:
        if self._carry_bad is None and self._carry.size:  # the carry may have been taken unchecked
            self._nonfinite += count_nonfinite(self._carry)
        self._carry = np.empty(0, dtype=np.complex64)
        self._carry_bad = None

    def push(self, samples: NDArray[np.complex64]) -> tuple[NDArray[np.float32], int]:
        """Add samples; return ``(frames, first_index)``: linear power per RBW bin, float32 shape
        (n, nfft), frequency ascending, and the index of the first returned frame counted since the
        stream began (or since the last reset). The frames are a new array (the caller may keep it)."""
        s = np.asarray(samples)
        if s.dtype != np.complex64:
            s = s.astype(np.complex64)
        if self._carry_bad is None:
            # optimistic: a NaN/inf sample makes its segments' |X|² non-finite, so one sum over the
            # frames (n × nfft values, far fewer than the samples) tells whether any sample was
            # not finite; only then is the block done again with the samples checked
            with np.errstate(invalid="ignore", over="ignore"):  # inf × window, inf − inf: NaN, seen below
                out = self._frames(s, None, check=True)
            if out is not None:
                return out
            carry, cbad = replace_nonfinite(self._carry)  # the carry was taken unchecked
            if cbad is not None:
                self._nonfinite += int(np.count_nonzero(cbad))
                self._carry, self._carry_bad = carry, cbad
        s, bad = replace_nonfinite(s)
        out = self._frames(s, bad, check=False)
        assert out is not None  # check=False always gives the frames
        return out

    def _frames(self, s: NDArray[np.complex64], bad: NDArray[np.bool_] | None, *,
                check: bool) -> tuple[NDArray[np.float32], int] | None:
        """:meth:`push` of the samples ``s`` (``bad``: their non-finite marks, None when there are
        none or, with ``check``, when they were not looked at). With ``check``, None (and the
        stream unchanged) when a frame came out non-finite."""
        plan, spf = self.plan, self.segments_per_frame
        nfft, step = plan.nfft, plan.step
        c = self._carry.size
        all_bad = None  # non-finite marks over carry + block, only when there are some
        if bad is not None or self._carry_bad is not None:
            self._nonfinite += 0 if bad is None else int(np.count_nonzero(bad))
            all_bad = np.concatenate((self._carry_bad if self._carry_bad is not None else np.zeros(c, dtype=bool),
                                      bad if bad is not None else np.zeros(s.size, dtype=bool)))
        n_frames = plan.segments_in(c + s.size) // spf
        first = self.frames_out
        if n_frames == 0:
            self._carry = np.concatenate((self._carry, s)) if c else s.copy()
            self._carry_bad = all_bad
            self.last_flagged = np.zeros(0, dtype=bool)
            return np.empty((0, nfft), dtype=np.float32), first
        if all_bad is None:
            self.last_flagged = np.zeros(n_frames, dtype=bool)
        else:
            cs = np.concatenate(([0], np.cumsum(all_bad)))
            starts = np.arange(n_frames) * self.advance
            self.last_flagged = cs[starts + (spf - 1) * step + nfft] > cs[starts]
        rows = n_frames * spf
        st = s.strides[0]
        k_head = min(rows, -(-c // step))  # segments that start inside the carry
        hv = bv = None
        if k_head:
            need = (k_head - 1) * step + nfft - c
            head = np.concatenate((self._carry, s[:max(need, 0)]))
            hv = np.lib.stride_tricks.as_strided(head, shape=(k_head, nfft), strides=(head.strides[0] * step, head.strides[0]),
                                                 writeable=False)
        if rows > k_head:
            body = s[k_head * step - c:]
            bv = np.lib.stride_tricks.as_strided(body, shape=(rows - k_head, nfft), strides=(st * step, st), writeable=False)
        frames = np.empty((n_frames, nfft), dtype=np.float32)
        # whole frames per FFT batch of about batch_segments segments: the buffers stay in cache
        # however large the block (measured with pyFFTW, 4096 points, 12 segments a frame: one
        # frame a batch 160–173 MS/s, two 141–150, three 137–138; batches smaller than a frame,
        # summed per frame afterwards, were no faster)
        per = max(1, self.batch_segments // spf)
        seg = self._fft.reserve(min(rows, per * spf))
        for f0 in range(0, n_frames, per):
            f1 = min(n_frames, f0 + per)
            r0, r1 = f0 * spf, f1 * spf
            if r0 < k_head:
                h1 = min(r1, k_head)
                np.multiply(hv[r0:h1], self._window, out=seg[:h1 - r0])  # type: ignore[index]  # hv is set when k_head > 0
            if r1 > k_head:
                b0 = max(r0, k_head)
                np.multiply(bv[b0 - k_head:r1 - k_head], self._window, out=seg[b0 - r0:r1 - r0])  # type: ignore[index]  # bv: rows > k_head
            # |X|² = re² + im² (no sqrt as in np.abs), summed over each frame's segments
            self._power_sums(self._fft(r1 - r0), spf, frames[f0:f1])
        # a non-finite sample makes every bin of its frame non-finite (the FFT spreads it over all
        # outputs, and no arithmetic turns inf or NaN finite again): one column tells
        if check and not np.isfinite(frames[:, 0].sum()):
            return None
        frames *= np.float32(plan.scale / spf)
        used = n_frames * self.advance
        self._carry = s[used - c:].copy() if used >= c else np.concatenate((self._carry[used:], s))
        self._carry_bad = all_bad[used:] if all_bad is not None and all_bad[used:].any() else None
        self.frames_out += n_frames
        return frames, first
