"""DC offset and IQ imbalance: blind estimation from the data, correction, image rejection.

Receiver model (``SCENES.md`` §3.6, the simulator's): ``y = μx + νx* + dc`` with
``μ = (1 + g·e^{−jφ})/2``, ``ν = (1 − g·e^{jφ})/2``, i.e. ``I = x_I``,
``Q = g·(x_Q·cos φ − x_I·sin φ)``: the Q branch has gain ``g`` relative to I (reported as
``gain_imbalance_db = 20·log10 g``) and a phase error ``φ`` (``phase_imbalance_deg``). A tone at
offset f leaves an image at −f, ``|ν|²/|μ|²`` below it.

Blind estimation (moment method): for a *proper* (circular) input, as noise and any mix of
signals at distinct offsets are, ``E[x_I²] = E[x_Q²]`` and ``E[x_I·x_Q] = 0``. After removing the
DC offset (the sample mean), the second moments of the received branches give
``g = sqrt(E[Q²]/E[I²])`` and ``sin φ = −E[I·Q]/sqrt(E[I²]·E[Q²])`` [1]_ [2]_. The correction is
the inverse (a Gram–Schmidt orthogonalisation of Q against I [3]_):
``x̂_I = I``, ``x̂_Q = (Q/g + I·sin φ)/cos φ``.

Image rejection is measured, not modelled: the power of the strongest tone (Welch average, DC
region excluded) over the power at its mirror frequency (the highest of the three mirror bins).
When the image is buried in noise the figure is a lower bound (``image_at_floor``).

References
----------
.. [1] N. A. Moseley, C. H. Slump, "A low-complexity feed-forward I/Q imbalance compensation
       algorithm", Proc. 17th ProRISC Workshop, 2006.
.. [2] L. Anttila, M. Valkama, M. Renfors, "Circularity-based I/Q imbalance compensation in
       wideband direct-conversion receivers", IEEE Trans. Veh. Technol. 57(4), 2008.
.. [3] F. E. Churchill, G. W. Ogar, B. J. Thompson, "The correction of I and Q errors in a
       coherent processor", IEEE Trans. Aerosp. Electron. Syst. AES-17(1), 1981.
.. [4] M. Windisch, G. Fettweis, "Performance degradation due to I/Q imbalance in multi-carrier
       direct conversion receivers: a theoretical analysis", Proc. IEEE ICC, 2006 (image
       rejection ratio |μ|²/|ν|²).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration._errors import CalibrationError
from detector.dsp import make_plan, welch_psd

__all__ = ["IqImbalance", "ImageRejection", "estimate_iq_imbalance", "correct_iq", "image_rejection",
           "model_image_rejection_db"]


def model_image_rejection_db(gain_imbalance_db: float, phase_imbalance_deg: float) -> float:
    """Image rejection ratio (dB) of the imbalance model: ``10·log10(|μ|²/|ν|²)`` [4]_.

    Examples
    --------
    >>> round(model_image_rejection_db(1.0, 5.0), 2)
    22.83
    """
    g = 10 ** (gain_imbalance_db / 20)
    phi = np.deg2rad(phase_imbalance_deg)
    mu = (1 + g * np.exp(-1j * phi)) / 2
    nu = (1 - g * np.exp(1j * phi)) / 2
    if abs(nu) == 0:
        return float("inf")
    return float(10 * np.log10(abs(mu) ** 2 / abs(nu) ** 2))


@dataclass(frozen=True)
class IqImbalance:
    """DC offset and IQ imbalance of a receiver.

    Attributes
    ----------
    dc_i, dc_q : float
        DC offset of each branch in full-scale units (1.0 = full scale; 1 LSB of cu8 = 1/127.5).
    gain_imbalance_db : float
        Q-branch gain over I-branch gain, ``20·log10 g`` (dB).
    phase_imbalance_deg : float
        Phase error φ of the Q branch (degrees), model of the module docstring.
    n_samples : int
        Samples the estimate used (0 for a given, not estimated, value).
    """

    dc_i: float
    dc_q: float
    gain_imbalance_db: float
    phase_imbalance_deg: float
    n_samples: int = 0

    @property
    def model_image_rejection_db(self) -> float:
        """Image rejection (dB) this imbalance alone would give."""
        return model_image_rejection_db(self.gain_imbalance_db, self.phase_imbalance_deg)


def estimate_iq_imbalance(samples: NDArray) -> IqImbalance:
    """Blind estimate of DC offset, gain and phase imbalance (moment method, module docstring).

    Parameters
    ----------
    samples : ndarray of complex64, shape (n_samples,)
        IQ, full scale at magnitude 1; ≥ 1024 samples. Works when the content is proper
        (noise, tones or modulated signals at offsets other than 0 Hz); a strong signal exactly
        at 0 Hz or a real-valued (improper) signal biases it.

    Returns
    -------
    IqImbalance

    Raises
    ------
    CalibrationError
        Too few samples, or a branch with no variance (a dead or constant channel).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = (rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)) * 0.1
    >>> g, phi = 10 ** (1.0 / 20), np.deg2rad(5.0)
    >>> y = (x.real + 0.02) + 1j * (g * (x.imag * np.cos(phi) - x.real * np.sin(phi)) - 0.01)
    >>> est = estimate_iq_imbalance(y.astype(np.complex64))
    >>> round(est.gain_imbalance_db, 1), round(est.dc_i, 3), round(est.dc_q, 3)
    (1.0, 0.02, -0.01)
    >>> bool(abs(est.phase_imbalance_deg - 5.0) < 0.3)
    True
    """
    x = np.asarray(samples)
    if x.ndim != 1 or x.size < 1024:
        raise CalibrationError(f"too few samples for an IQ-imbalance estimate: {x.size} (need ≥ 1024)")
    i = x.real.astype(np.float64)
    q = x.imag.astype(np.float64)
    dc_i, dc_q = float(i.mean()), float(q.mean())
    i -= dc_i
    q -= dc_q
    ii = float(np.mean(i * i))
    qq = float(np.mean(q * q))
    iq = float(np.mean(i * q))
    if not (ii > 0 and qq > 0):
        raise CalibrationError("an I or Q branch has no variance (dead channel or constant samples)")
    g = np.sqrt(qq / ii)
    s = float(np.clip(-iq / np.sqrt(ii * qq), -0.999, 0.999))
    return IqImbalance(dc_i=dc_i, dc_q=dc_q, gain_imbalance_db=float(20 * np.log10(g)),
                       phase_imbalance_deg=float(np.rad2deg(np.arcsin(s))), n_samples=int(x.size))


def correct_iq(samples: NDArray, imbalance: IqImbalance) -> NDArray[np.complex64]:
    """Remove the DC offset and invert the IQ imbalance: ``x̂_I = I − dc_I``,
    ``x̂_Q = ((Q − dc_Q)/g + x̂_I·sin φ)/cos φ``.

    Parameters
    ----------
    samples : ndarray of complex64, shape (n,)
    imbalance : IqImbalance

    Returns
    -------
    ndarray of complex64, shape (n,)
    """
    x = np.asarray(samples)
    g = 10 ** (imbalance.gain_imbalance_db / 20)
    phi = np.deg2rad(imbalance.phase_imbalance_deg)
    i = x.real.astype(np.float64) - imbalance.dc_i
    q = (x.imag.astype(np.float64) - imbalance.dc_q) / g
    out = np.empty(x.size, dtype=np.complex64)
    out.real = i
    out.imag = (q + i * np.sin(phi)) / np.cos(phi)
    return out


@dataclass(frozen=True)
class ImageRejection:
    """Strongest tone and its mirror image.

    Attributes
    ----------
    tone_offset_hz : float
        Offset of the strongest tone from the tuned center (Hz).
    tone_dbfs, image_dbfs, floor_dbfs : float
        Power per RBW bin (dBFS) of the tone, of its mirror (max of three bins around −f) and
        the median noise floor per bin.
    rejection_db : float
        ``tone_dbfs − image_dbfs`` (dB).
    image_at_floor : bool
        The image is within 3 dB of the floor: ``rejection_db`` is a lower bound.
    rbw_hz : float
    """

    tone_offset_hz: float
    tone_dbfs: float
    image_dbfs: float
    floor_dbfs: float
    rejection_db: float
    image_at_floor: bool
    rbw_hz: float


def image_rejection(
    samples: NDArray,
    *,
    sample_rate_hz: float,
    tone_offset_hz: float | None = None,
    nfft: int | None = None,
    exclude_dc_hz: float | None = None,
) -> ImageRejection:
    """Power ratio (dB) of the strongest tone to its mirror image about the tuned center.

    Parameters
    ----------
    samples : ndarray of complex64, shape (n_samples,)
        IQ, full scale at magnitude 1.
    sample_rate_hz : float
        Sample rate (Hz).
    tone_offset_hz : float, optional
        Measure this tone (offset from center, Hz) instead of the strongest: use the "before"
        tone when measuring "after".
    nfft : int, optional
        Welch segment (default: up to 16384 with ≥ 8 segments).
    exclude_dc_hz : float, optional
        Offsets closer to 0 Hz than this are not taken as the tone (default: 4 bins or
        0.2 % of the rate, whichever is wider).

    Raises
    ------
    CalibrationError
        Too few samples, or nothing outside the DC region.
    """
    x = np.asarray(samples)
    if x.size < 256:
        raise CalibrationError(f"too few samples to measure image rejection: {x.size} (need ≥ 256)")
    fs = float(sample_rate_hz)
    if nfft is None:
        nfft = int(min(16384, max(256, 1 << int(np.floor(np.log2(max(x.size // 8, 256)))))))
    plan = make_plan(fs, nfft=nfft)
    xc = x - np.asarray(x.mean(dtype=np.complex128)).astype(x.dtype)
    p = welch_psd(xc.astype(np.complex64), plan)
    off = plan.offsets_hz
    k0 = int(np.argmin(np.abs(off)))
    ex = max(4 * plan.bin_hz, 2e-3 * fs) if exclude_dc_hz is None else exclude_dc_hz
    # a bin and its mirror must both exist: drop the unpaired −fs/2 bin
    usable = (np.abs(off) >= ex) & (np.arange(nfft) != 0)
    if tone_offset_hz is None:
        cand = np.flatnonzero(usable)
        if cand.size == 0:
            raise CalibrationError("no bins outside the DC region to find a tone in")
        k = int(cand[np.argmax(p[cand])])
    else:
        k = int(np.argmin(np.abs(off - tone_offset_hz)))
        lo, hi = max(k - 1, 1), min(k + 2, nfft)
        k = lo + int(np.argmax(p[lo:hi]))
    m = 2 * k0 - k  # mirror bin (offset −f)
    mirror = p[max(m - 1, 1) : min(m + 2, nfft)]
    image = float(mirror.max())
    floor = float(np.median(p[usable])) if usable.any() else float(np.median(p))
    tone_db = float(10 * np.log10(max(p[k], 1e-300)))
    image_db = float(10 * np.log10(max(image, 1e-300)))
    floor_db = float(10 * np.log10(max(floor, 1e-300)))
    return ImageRejection(tone_offset_hz=float(off[k]), tone_dbfs=tone_db, image_dbfs=image_db, floor_dbfs=floor_db,
                          rejection_db=tone_db - image_db, image_at_floor=bool(image_db - floor_db < 3.0),
                          rbw_hz=float(plan.rbw_hz))
