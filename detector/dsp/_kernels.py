"""The framed PSD's accumulation of |X|² over a frame's segments, in numpy or compiled by numba.

After the FFT, :class:`~detector.dsp.FrameStream` sums the squared magnitude of each frame's
``spf`` segments bin by bin. In numpy that takes three passes over the FFT output (square in
place, sum over the segments, add the re² and im² halves), about as long as the FFT itself here;
the numba kernel does it in one pass while the output is in cache (issue #10).

Both give the same bits: the re² and im² sums are accumulated separately, segment after segment
in order, in float32, and added at the end, which is the order numpy's reduction uses (tested).
numba is optional (the ``fast`` and ``test`` extras); without it the numpy version runs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["power_sums_numpy", "power_sums_kernel", "numba_available"]

PowerSums = Callable[[NDArray[np.complex64], int, NDArray[np.float32]], None]


def power_sums_numpy(spec: NDArray[np.complex64], spf: int, out: NDArray[np.float32]) -> None:
    """``out[f, k] = Σ_s |spec[f·spf + s, k]|²`` for the frames of ``spec``.

    Parameters
    ----------
    spec : ndarray of complex64, shape (n_frames·spf, nfft), C-contiguous
        FFT output, a frame's segments one after another. Overwritten (squared in place).
    spf : int
        Segments per frame.
    out : ndarray of float32, shape (n_frames, nfft)
        Receives the sums (unscaled).
    """
    rows, nfft = spec.shape
    v = spec.view(np.float32)
    np.multiply(v, v, out=v)
    sums = v.reshape(rows // spf, spf, 2 * nfft).sum(axis=1)
    np.add(sums[:, 0::2], sums[:, 1::2], out=out)


_COMPILED: list[PowerSums] = []  # the compiled kernel, once compiled (a cache, not a setting)


def numba_available() -> bool:
    """Whether numba imports here."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _compile() -> PowerSums:
    if _COMPILED:
        return _COMPILED[0]
    import numba

    @numba.njit(cache=True, nogil=True)
    def power_sums_numba(spec, spf, out):  # pragma: no cover - compiled
        rows, nfft = spec.shape
        re = np.empty(nfft, np.float32)
        im = np.empty(nfft, np.float32)
        for f in range(rows // spf):
            r0 = f * spf
            for k in range(nfft):
                x = spec[r0, k]
                re[k] = x.real * x.real
                im[k] = x.imag * x.imag
            for s in range(1, spf):
                for k in range(nfft):
                    x = spec[r0 + s, k]
                    re[k] += x.real * x.real
                    im[k] += x.imag * x.imag
            for k in range(nfft):
                out[f, k] = re[k] + im[k]

    _COMPILED.append(power_sums_numba)
    return power_sums_numba


def power_sums_kernel(kind: str = "auto") -> tuple[str, PowerSums]:
    """The accumulation to use: ``(name, function)`` with the signature of :func:`power_sums_numpy`.

    ``kind``: ``"numpy"``, ``"numba"``, or ``"auto"`` (numba when it imports).

    Raises
    ------
    ValueError
        An unknown ``kind``, or ``"numba"`` where numba is not installed.
    """
    if kind not in ("auto", "numpy", "numba"):
        raise ValueError(f"PSD kernel must be auto, numpy or numba, got {kind!r}")
    if kind == "numpy" or (kind == "auto" and not numba_available()):
        return "numpy", power_sums_numpy
    if not numba_available():
        raise ValueError("PSD kernel numba asked for but numba is not installed (pip install numba)")
    return "numba", _compile()
