"""Interleaved I/Q integer and float buffers → complex64 with full scale at magnitude 1.0.

Conversions use vectorised float32 arithmetic (measured faster than a 256-entry lookup table on
the target machine, issue #10): for cu8, 0.50 ms per 2^19 samples against 1.16 ms for a 256-entry
table, 0.76 ms for a 65536-entry table of I/Q pairs, and 0.61 ms for ``astype`` followed by the
scaling (one pass more). Each takes a 1-D array of interleaved I, Q values (I0, Q0, I1, …)
of even length and returns complex64 of half that length.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["cu8_to_complex64", "cs8_to_complex64", "cs16_to_complex64", "cf32_to_complex64", "count_nonfinite",
           "replace_nonfinite"]


def _check_even(raw: np.ndarray, dtype: type) -> None:
    if raw.ndim != 1:
        raise ValueError(f"interleaved I/Q must be 1-D, got shape {raw.shape}")
    if raw.size % 2:
        raise ValueError(f"interleaved I/Q needs an even number of values, got {raw.size}")
    if raw.dtype != dtype:
        raise TypeError(f"expected dtype {np.dtype(dtype)}, got {raw.dtype}")


def cu8_to_complex64(raw: NDArray[np.uint8]) -> NDArray[np.complex64]:
    """RTL-SDR native unsigned 8-bit I/Q (zero level 127.5) → complex64, ``(v − 127.5)/127.5``.

    Parameters
    ----------
    raw : ndarray of uint8, shape (2n,)
        Interleaved I, Q.

    Returns
    -------
    ndarray of complex64, shape (n,)

    References
    ----------
    pyrtlsdr ``packed_bytes_to_iq`` (the same ÷127.5 − 1 mapping); rtl_433 ``-S`` cu8 format.
    """
    _check_even(raw, np.uint8)
    f = np.multiply(raw, np.float32(1.0 / 127.5), dtype=np.float32)  # one pass fewer than astype, then *=
    f -= np.float32(1.0)
    return f.view(np.complex64)


def cs8_to_complex64(raw: NDArray[np.int8]) -> NDArray[np.complex64]:
    """Signed 8-bit I/Q → complex64, ``v/128`` (so −128 maps to −1.0)."""
    _check_even(raw, np.int8)
    f = np.multiply(raw, np.float32(1.0 / 128.0), dtype=np.float32)
    return f.view(np.complex64)


def cs16_to_complex64(raw: NDArray[np.int16]) -> NDArray[np.complex64]:
    """Signed 16-bit I/Q (host order already applied) → complex64, ``v/32768``."""
    _check_even(raw, np.int16)
    f = np.multiply(raw, np.float32(1.0 / 32768.0), dtype=np.float32)
    return f.view(np.complex64)


def cf32_to_complex64(raw: NDArray[np.float32]) -> NDArray[np.complex64]:
    """32-bit float I/Q → complex64 (already full scale 1.0; copied, native byte order)."""
    if raw.ndim != 1 or raw.size % 2:
        raise ValueError(f"interleaved I/Q must be 1-D of even length, got shape {raw.shape}")
    f = np.ascontiguousarray(raw, dtype=np.float32)
    return f.view(np.complex64).copy() if f is raw else f.view(np.complex64)


def _surely_finite(x: NDArray) -> bool:
    """True when every value of ``x`` is finite, decided by one BLAS dot product (a NaN or ±inf
    anywhere makes it non-finite; 0.1 ms for 2^19 complex64 against 0.7 ms for ``isfinite``);
    False means "look closer" (it may also be a finite overflow)."""
    if x.dtype == np.complex64 and x.flags.c_contiguous:
        v = x.view(np.float32)
        return bool(np.isfinite(np.dot(v, v)))
    return False


def count_nonfinite(samples: NDArray[np.complexfloating]) -> int:
    """Complex samples whose I or Q is NaN or ±inf (start-up garbage, a bad driver)."""
    x = np.asarray(samples)
    if x.size and _surely_finite(x):
        return 0
    if x.size == 0 or not np.iscomplexobj(x):
        return 0 if x.size == 0 else int(np.count_nonzero(~np.isfinite(x)))
    bad = ~np.isfinite(x.real)
    bad |= ~np.isfinite(x.imag)
    return int(np.count_nonzero(bad))


def replace_nonfinite(samples: NDArray[np.complex64]) -> tuple[NDArray[np.complex64], NDArray[np.bool_] | None]:
    """``(samples, mask)``: non-finite samples (NaN or ±inf in I or Q) replaced by 0 in a copy, and
    the boolean mask of the replaced ones; the input itself and ``None`` when every sample is finite
    (the common case costs one :func:`numpy.isfinite` pass and no copy)."""
    x = np.asarray(samples)
    if x.size == 0 or _surely_finite(x) or bool(np.isfinite(x).all()):  # complex: False when I or Q is not
        return x, None
    bad = ~np.isfinite(x)
    out = x.copy()
    out[bad] = 0
    return out, bad
