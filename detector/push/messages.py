"""What a vehicle sends the command center besides alerts: the spectrum summary of its heartbeat.

One type, :class:`SpectrumSummary`, built on the vehicle by :func:`summarize_spectrum` and
validated with the same class at the center (``detector.center.store.Heartbeat``), so that the
two ends cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SpectrumSummary", "summarize_spectrum"]


class SpectrumSummary(BaseModel):
    """A small summary of a vehicle's latest spectrum: its grid (Hz), noise floor (dBFS), the power
    max-decimated by ``decimation`` bins (dB in ``unit``; None where not finite, at most 4096
    values) and the open emissions (at most 100: ``center_hz``, ``bandwidth_hz``, ``snr_db``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    center_hz: float
    f_min_hz: float
    f_max_hz: float
    rbw_hz: float = Field(gt=0)
    unit: Literal["dBFS", "dBm"] = "dBFS"
    offset_s: float | None = None
    noise_floor_dbfs: float | None = None
    power_max: list[float | None] = Field(default_factory=list, max_length=4096)
    decimation: int = Field(default=1, ge=1)
    emissions: list[dict[str, float]] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _span(self):
        if not self.f_max_hz >= self.f_min_hz:
            raise ValueError("f_max_hz must be ≥ f_min_hz")
        return self


def summarize_spectrum(spectrum, result=None, *, max_points: int = 256) -> SpectrumSummary:
    """The :class:`SpectrumSummary` of a :class:`~detector.core.types.Spectrum` and its detection
    result (a ``FrameResult`` with ``noise_floor_dbfs`` and ``emissions``, or None).

    The power is max-decimated to at most ``max_points`` values (a narrow emission keeps its
    level); the first 20 emissions with finite values are listed; nothing non-finite is sent."""
    p = np.asarray(spectrum.power, dtype=np.float64)
    f = np.asarray(spectrum.freqs_hz, dtype=np.float64)
    step = max(1, int(np.ceil(p.size / max_points)))
    n = (p.size // step) * step
    dec = p[:n].reshape(-1, step).max(axis=1) if n else p
    floor = None if result is None else result.noise_floor_dbfs
    return SpectrumSummary(
        center_hz=float(spectrum.center_hz) if spectrum.center_hz is not None else float(f.mean()),
        f_min_hz=float(f[0]), f_max_hz=float(f[-1]), rbw_hz=float(spectrum.rbw_hz), unit=spectrum.unit,
        offset_s=float(spectrum.offset_s) if getattr(spectrum, "offset_s", None) is not None else None,
        noise_floor_dbfs=None if floor is None or not np.isfinite(floor) else float(floor),
        power_max=[round(float(v), 1) if np.isfinite(v) else None for v in dec], decimation=step,
        emissions=[] if result is None else [
            {"center_hz": float(e.center_hz), "bandwidth_hz": float(e.bandwidth_hz), "snr_db": float(e.snr_db)}
            for e in list(result.emissions)[:20] if np.isfinite([e.center_hz, e.bandwidth_hz, e.snr_db]).all()])
