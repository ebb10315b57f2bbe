"""Core value types shared by every layer (``DESIGN.md``, "Core types and units").

* :class:`IQBlock` — a block of complex baseband samples, full scale = magnitude 1.0.
* :class:`Spectrum` — power per RBW bin on an absolute, strictly increasing frequency grid.

Both are frozen dataclasses; arrays inside them must not be modified in place by consumers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

__all__ = ["IQBlock", "Spectrum", "Position"]


@dataclass(frozen=True)
class Position:
    """A WGS84 position in degrees (``lat``, ``lon``), optionally with height in metres."""

    lat: float
    lon: float
    alt_m: float | None = None


@dataclass(frozen=True)
class IQBlock:
    """A block of IQ samples from one tuning of a receiver.

    Attributes
    ----------
    samples : ndarray of complex64, shape (n,)
        Complex baseband; full scale is magnitude 1.0 (0 dBFS).
    center_hz : float
        Tuned center frequency (Hz) of the block.
    sample_rate_hz : float
        Complex sample rate (samples/s).
    start : datetime or None
        UTC time of sample 0 when the source knows wall-clock time.
    offset_s : float
        Time of sample 0 in seconds from the start of the source (recording or run).
    gain_db : float or None
        Receiver gain in dB when known.
    position : Position or None
        Receiver position at sample 0 when known.
    retuned : bool
        True on the first block after a retune (settling samples were discarded before it).
    """

    samples: NDArray[np.complex64]
    center_hz: float
    sample_rate_hz: float
    start: datetime | None = None
    offset_s: float = 0.0
    gain_db: float | None = None
    position: Position | None = None
    retuned: bool = False

    @property
    def duration_s(self) -> float:
        """Length of the block in seconds."""
        return self.samples.size / self.sample_rate_hz


@dataclass(frozen=True)
class Spectrum:
    """Power spectrum of one frame.

    Attributes
    ----------
    freqs_hz : ndarray of float64, shape (m,)
        Absolute bin center frequencies, strictly increasing (Hz).
    power : ndarray of float32, shape (m,)
        Power per RBW bin in ``unit`` ("dBFS" or "dBm"); NaN where a bin has no value.
    rbw_hz : float
        Resolution bandwidth: the equivalent noise bandwidth of one bin (Hz).
    unit : str
        "dBFS" (0 dBFS = full-scale complex tone) or "dBm" after calibration.
    start : datetime or None
        UTC start of the frame, when known.
    offset_s : float
        Start of the frame in seconds from the start of the source.
    duration_s : float
        Time the frame integrates (s).
    n_looks : float
        Number of averaged periodograms (looks) behind each bin; sets the bins' statistics.
    center_hz : float or None
        Tuned center of the capture (for DC-spike and IQ-image rejection), None for sweeps.
    position : Position or None
        Receiver position during the frame, when known.
    """

    freqs_hz: NDArray[np.float64]
    power: NDArray[np.float32]
    rbw_hz: float
    unit: str = "dBFS"
    start: datetime | None = None
    offset_s: float = 0.0
    duration_s: float = 0.0
    n_looks: float = 1.0
    center_hz: float | None = None
    position: Position | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.freqs_hz.shape != self.power.shape or self.freqs_hz.ndim != 1:
            raise ValueError(
                f"Spectrum: freqs_hz {self.freqs_hz.shape} and power {self.power.shape} must be equal 1-D shapes"
            )
