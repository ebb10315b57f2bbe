"""Calibration of an RTL-SDR: frequency error (ppm), DC offset and IQ imbalance, dBFS → dBm.

Layer: takes reference measurements (IQ of a known signal, a CSV of generator readings) and gives
a per-dongle profile (:mod:`calibration.profiles`) that sources and the DSP chain apply. Functions
here are pure (numpy/scipy on arrays, no files, clock or network), except
:mod:`calibration.profiles`, which reads and writes profile files. It imports
:mod:`detector.dsp`, :mod:`detector.core.types` and :mod:`detector.core.errors` only.

Conventions
-----------
* ``ppm`` is **positive when the dongle tunes high** (its LO above nominal, signals appearing
  below their true frequency): the value rtl-sdr's ``freq_correction`` takes, and the simulator's
  ``receiver.ppm``. See :mod:`calibration._ppm` for the clock models (``shared`` crystal for
  LO and ADC on real dongles, ``lo`` only in the simulator).
* DC offsets are in full-scale units; gain imbalance is Q over I in dB; phase imbalance in degrees
  (``SCENES.md`` §3.6 model ``y = μx + νx*``).
* Power conversion: ``P[dBm] = P[dBFS] + offset_db(f, G)``; dBm exists only through this package.

Errors derive from :class:`CalibrationError` (an :class:`detector.core.errors.InputError`, exit code 2
in the CLI).
"""

from calibration._drift import DriftTrack, track_drift
from calibration._errors import CalibrationError, ProfileMismatchError
from calibration._fm import PILOT_HZ, estimate_ppm_fm
from calibration._iq import (
    ImageRejection,
    IqImbalance,
    correct_iq,
    estimate_iq_imbalance,
    image_rejection,
    model_image_rejection_db,
)
from calibration._power import (
    POWER_CSV_COLUMNS,
    PowerTable,
    build_power_table,
    dbfs_to_dbm,
    noise_floor_dbm,
    parse_power_csv,
    power_offset_db,
    spectrum_to_dbm,
)
from calibration._ppm import (
    PpmEstimate,
    apparent_frequency,
    correct_frequency,
    correct_iq_frequency,
    estimate_ppm_carrier,
    ppm_from_frequency,
)
from calibration._profile import (
    CalibrationProfile,
    IqCalibration,
    PowerCalibration,
    PpmCalibration,
    check_profile_serial,
)
from calibration._raster import EmissionCenter, estimate_ppm_raster, measure_emission_center
from calibration._tone import ToneMeasurement, measure_tone, tone_crlb_hz

__all__ = [
    # errors
    "CalibrationError",
    "ProfileMismatchError",
    # frequency error
    "PpmEstimate",
    "ppm_from_frequency",
    "apparent_frequency",
    "correct_frequency",
    "correct_iq_frequency",
    "estimate_ppm_carrier",
    "estimate_ppm_fm",
    "estimate_ppm_raster",
    "PILOT_HZ",
    "ToneMeasurement",
    "measure_tone",
    "tone_crlb_hz",
    "EmissionCenter",
    "measure_emission_center",
    "DriftTrack",
    "track_drift",
    # DC and IQ
    "IqImbalance",
    "ImageRejection",
    "estimate_iq_imbalance",
    "correct_iq",
    "image_rejection",
    "model_image_rejection_db",
    # power
    "PowerTable",
    "POWER_CSV_COLUMNS",
    "parse_power_csv",
    "build_power_table",
    "power_offset_db",
    "dbfs_to_dbm",
    "spectrum_to_dbm",
    "noise_floor_dbm",
    # profiles
    "CalibrationProfile",
    "PpmCalibration",
    "IqCalibration",
    "PowerCalibration",
    "check_profile_serial",
]
