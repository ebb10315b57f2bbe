"""Applying a dongle's calibration profile to its samples (glue between ``calibration`` and the engine).

* Frequency error: a dongle that tunes high by ε ppm shows a signal at true f at f − ε·f_center;
  the block's center is corrected to ``f_center·(1 + ε)`` (no per-sample work). On an RTL-SDR the
  integer part goes to the tuner's ``freq_correction`` instead and only the remainder is applied
  here (``hardware_ppm``).
* DC offset and IQ imbalance: :func:`calibration.correct_iq` on the samples.
* dBFS → dBm is not applied to the detection chain (its thresholds are relative); the profile's
  power table is used by ``calibration`` tools and reports.

The profile in force is recorded in the survey's baseline (``calibration_profile``, its id) and a
mismatch at monitoring time is a warning.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from detector.types import IQBlock

__all__ = ["ProfileCorrection", "load_correction", "profile_warnings"]


class ProfileCorrection:
    """A callable ``block → corrected block`` for one profile."""

    def __init__(self, profile, *, hardware_ppm: float = 0.0) -> None:
        self.profile = profile
        self.ppm = (profile.ppm.ppm if profile.ppm is not None else 0.0) - hardware_ppm
        self.imbalance = profile.iq.imbalance() if profile.iq is not None else None

    @property
    def profile_id(self) -> str:
        return self.profile.profile_id

    def __call__(self, block: IQBlock) -> IQBlock:
        x = block.samples
        if self.imbalance is not None:
            from calibration import correct_iq

            x = correct_iq(x, self.imbalance)
        center = block.center_hz * (1.0 + self.ppm * 1e-6) if self.ppm else block.center_hz
        return replace(block, samples=x, center_hz=center)


def load_correction(profile_path: Path | None, *, serial: str | None = None, profiles_dir: Path | None = None,
                    hardware_ppm: float = 0.0) -> ProfileCorrection | None:
    """The correction of ``--profile PATH`` (checked against ``serial`` when the source knows it), or
    the profile found for ``serial`` in ``profiles_dir``; None when neither applies."""
    from calibration.profiles import find_profile, load_profile

    if profile_path is not None:
        return ProfileCorrection(load_profile(profile_path, serial=serial), hardware_ppm=hardware_ppm)
    if serial and profiles_dir is not None:
        prof = find_profile(serial, profiles_dir)
        if prof is not None:
            return ProfileCorrection(prof, hardware_ppm=hardware_ppm)
    return None


def profile_warnings(baseline, correction: ProfileCorrection | None) -> list[str]:
    """Warnings when the baseline's survey used another profile (or none) than this run."""
    if baseline is None:
        return []
    recorded = getattr(baseline, "calibration_profile", None)
    current = correction.profile_id if correction is not None else None
    if recorded == current:
        return []
    if recorded is None:
        return [f"the survey ran without a calibration profile; this run uses {current}"]
    if current is None:
        return [f"the survey used calibration profile {recorded}; this run has none (frequencies and levels may differ)"]
    return [f"the calibration profile changed since the survey ({recorded} → {current})"]
