"""A dongle's calibration profile as values: frequency error, DC/IQ, power table.

Frozen dataclasses with ``to_dict``/``from_dict`` (JSON/TOML-ready, no numpy inside); reading and
writing files is :mod:`calibration.profiles`. Dates are ISO 8601 UTC strings supplied by the
caller (nothing here reads the clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from calibration._errors import CalibrationError, ProfileMismatchError
from calibration._iq import IqImbalance
from calibration._power import PowerTable

__all__ = ["PROFILE_FORMAT", "PROFILE_VERSION", "PpmCalibration", "IqCalibration", "PowerCalibration",
           "CalibrationProfile", "check_profile_serial"]

PROFILE_FORMAT = "examwatch-calibration-profile"
PROFILE_VERSION = 1


def _get(d: dict, key: str, kind, where: str, default=...):
    if key not in d or d[key] is None:
        if default is not ...:
            return default
        raise CalibrationError(f"calibration profile: {where}.{key} is missing")
    try:
        return kind(d[key])
    except (TypeError, ValueError):
        raise CalibrationError(f"calibration profile: {where}.{key} = {d[key]!r} is not a {kind.__name__}") from None


@dataclass(frozen=True)
class PpmCalibration:
    """Frequency error of a dongle (ppm positive when it tunes high: rtl-sdr ``freq_correction``),
    how it was measured and when."""

    ppm: float
    uncertainty_ppm: float
    method: str
    date_utc: str
    reference_hz: float | None = None
    measured_hz: float | None = None
    clock: str = "shared"
    source: str | None = None
    drift: dict | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "PpmCalibration":
        w = "ppm"
        return cls(ppm=_get(d, "ppm", float, w), uncertainty_ppm=_get(d, "uncertainty_ppm", float, w),
                   method=_get(d, "method", str, w), date_utc=_get(d, "date_utc", str, w),
                   reference_hz=_get(d, "reference_hz", float, w, None), measured_hz=_get(d, "measured_hz", float, w, None),
                   clock=_get(d, "clock", str, w, "shared"), source=_get(d, "source", str, w, None),
                   drift=d.get("drift"))


@dataclass(frozen=True)
class IqCalibration:
    """DC offset (full-scale units) and IQ imbalance of a dongle, with the image rejection
    measured before and after correction, the method and the date."""

    dc_i: float
    dc_q: float
    gain_imbalance_db: float
    phase_imbalance_deg: float
    method: str
    date_utc: str
    image_rejection_before_db: float | None = None
    image_rejection_after_db: float | None = None
    source: str | None = None

    @property
    def imbalance(self) -> IqImbalance:
        """The correction to pass to :func:`~calibration.correct_iq`."""
        return IqImbalance(dc_i=self.dc_i, dc_q=self.dc_q, gain_imbalance_db=self.gain_imbalance_db,
                           phase_imbalance_deg=self.phase_imbalance_deg)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "IqCalibration":
        w = "iq"
        return cls(dc_i=_get(d, "dc_i", float, w), dc_q=_get(d, "dc_q", float, w),
                   gain_imbalance_db=_get(d, "gain_imbalance_db", float, w),
                   phase_imbalance_deg=_get(d, "phase_imbalance_deg", float, w), method=_get(d, "method", str, w),
                   date_utc=_get(d, "date_utc", str, w),
                   image_rejection_before_db=_get(d, "image_rejection_before_db", float, w, None),
                   image_rejection_after_db=_get(d, "image_rejection_after_db", float, w, None),
                   source=_get(d, "source", str, w, None))


@dataclass(frozen=True)
class PowerCalibration:
    """A dBFS → dBm table with its method, date and source file."""

    table: PowerTable
    method: str
    date_utc: str
    source: str | None = None

    def to_dict(self) -> dict:
        d = {"method": self.method, "date_utc": self.date_utc, "table": self.table.to_dict()}
        if self.source is not None:
            d["source"] = self.source
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PowerCalibration":
        w = "power"
        if not isinstance(d.get("table"), dict):
            raise CalibrationError("calibration profile: power.table is missing")
        return cls(table=PowerTable.from_dict(d["table"]), method=_get(d, "method", str, w),
                   date_utc=_get(d, "date_utc", str, w), source=_get(d, "source", str, w, None))


@dataclass(frozen=True)
class CalibrationProfile:
    """Everything known about one dongle, keyed by its serial.

    Attributes
    ----------
    serial : str
        The dongle's USB serial (``rtl_eeprom``; set a unique one on each dongle).
    created_utc, updated_utc : str
        ISO 8601 UTC.
    ppm, iq, power : optional
        The sections measured so far.
    """

    serial: str
    created_utc: str
    updated_utc: str
    ppm: PpmCalibration | None = None
    iq: IqCalibration | None = None
    power: PowerCalibration | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str) or not self.serial.strip():
            raise CalibrationError("a calibration profile needs a non-empty dongle serial")

    @property
    def profile_id(self) -> str:
        """``serial@updated_utc``: what a baseline records as the profile in force."""
        return f"{self.serial}@{self.updated_utc}"

    def updated(self, *, date_utc: str, ppm: PpmCalibration | None = None, iq: IqCalibration | None = None,
                power: PowerCalibration | None = None) -> "CalibrationProfile":
        """A copy with the given sections replaced and ``updated_utc`` set."""
        return replace(self, updated_utc=date_utc, ppm=ppm or self.ppm, iq=iq or self.iq, power=power or self.power)

    def to_dict(self) -> dict:
        d = {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "serial": self.serial,
             "created_utc": self.created_utc, "updated_utc": self.updated_utc}
        for name in ("ppm", "iq", "power"):
            sec = getattr(self, name)
            if sec is not None:
                d[name] = sec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CalibrationProfile":
        """Validate and build. Raises :class:`CalibrationError` on another format or version."""
        if not isinstance(d, dict) or d.get("format") != PROFILE_FORMAT:
            raise CalibrationError(f"not an examwatch calibration profile (format {d.get('format') if isinstance(d, dict) else None!r})")
        if d.get("version") != PROFILE_VERSION:
            raise CalibrationError(f"calibration profile version {d.get('version')!r} is not supported (expected {PROFILE_VERSION})")
        return cls(
            serial=_get(d, "serial", str, "profile"),
            created_utc=_get(d, "created_utc", str, "profile"),
            updated_utc=_get(d, "updated_utc", str, "profile"),
            ppm=PpmCalibration.from_dict(d["ppm"]) if d.get("ppm") else None,
            iq=IqCalibration.from_dict(d["iq"]) if d.get("iq") else None,
            power=PowerCalibration.from_dict(d["power"]) if d.get("power") else None,
        )


def check_profile_serial(profile: CalibrationProfile, serial: str | None) -> None:
    """Refuse a profile made for another dongle.

    Raises
    ------
    ProfileMismatchError
        ``serial`` is given and differs from the profile's, or is None (a source that does not
        know its serial cannot be matched to a profile; apply one explicitly by serial).
    """
    if serial is None:
        raise ProfileMismatchError(
            f"the source has no dongle serial, so the profile for serial {profile.serial!r} cannot be matched to it"
        )
    if str(serial) != profile.serial:
        raise ProfileMismatchError(
            f"calibration profile is for dongle serial {profile.serial!r}, not {serial!r}; "
            "calibrate this dongle or pick its own profile"
        )
