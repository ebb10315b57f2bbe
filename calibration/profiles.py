"""Calibration profiles on disk: one file per dongle, keyed by its serial (JSON or TOML).

* :func:`save_profile` writes ``.json`` (default) or ``.toml`` atomically (temporary file, then
  rename).
* :func:`load_profile` reads either; with ``serial=`` it refuses a profile for another dongle
  (:class:`~calibration.ProfileMismatchError`), so a profile is never applied silently to the
  wrong receiver.
* :func:`find_profile` looks in a directory for the profile of a serial (the newest if several),
  skipping, with a logged warning, files that cannot be read or that are named after the serial
  but hold another one.
* :func:`profile_summary` / :func:`profile_mismatch`: what a baseline records about the profile in
  force during a survey, and the warnings when monitoring runs under a different one.

This module is an edge (file I/O); the values live in :mod:`calibration._profile`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import tomllib
from pathlib import Path

from calibration._errors import CalibrationError
from calibration._profile import CalibrationProfile, check_profile_serial

__all__ = ["save_profile", "load_profile", "find_profile", "profile_summary", "profile_mismatch"]

logger = logging.getLogger(__name__)

_SUFFIXES = (".json", ".toml")


# --- a minimal TOML writer for profile dicts (tables, arrays of tables, scalars, scalar arrays) --------------

def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_table(d: dict, path: list[str], out: list[str], header: str | None) -> None:
    scalars = {k: v for k, v in d.items() if v is not None and not isinstance(v, dict)
               and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))}
    if header is not None:
        out.append("")
        out.append(header)
    for k, v in scalars.items():
        out.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    for k, v in d.items():
        if isinstance(v, dict):
            p = [*path, _toml_key(k)]
            _toml_table(v, p, out, f"[{'.'.join(p)}]")
    for k, v in d.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            p = [*path, _toml_key(k)]
            for item in v:
                _toml_table(item, p, out, f"[[{'.'.join(p)}]]")


def _to_toml(d: dict) -> str:
    out: list[str] = []
    _toml_table(d, [], out, None)
    return "\n".join(out).lstrip("\n") + "\n"


# --- save / load / find ------------------------------------------------------------------------------------

def save_profile(profile: CalibrationProfile, path: str | Path) -> Path:
    """Write ``profile`` to ``path`` (JSON unless the name ends in ``.toml``), atomically.

    Returns the path written.
    """
    p = Path(path)
    d = profile.to_dict()
    text = _to_toml(d) if p.suffix.lower() == ".toml" else json.dumps(d, indent=2) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _read_dict(p: Path) -> dict:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(f"{p}: calibration profile not found") from None
    except OSError as exc:
        raise CalibrationError(f"{p}: cannot read the calibration profile ({exc.strerror})") from None
    if p.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CalibrationError(f"{p}: not valid TOML ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def load_profile(path: str | Path, *, serial: str | None = None) -> CalibrationProfile:
    """Read a profile; with ``serial`` given, refuse one made for another dongle.

    Raises
    ------
    CalibrationError
        Missing or malformed file, another format or version.
    ProfileMismatchError
        ``serial`` given and the profile is for another dongle.
    """
    p = Path(path)
    try:
        prof = CalibrationProfile.from_dict(_read_dict(p))
    except CalibrationError as exc:
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    if serial is not None:
        check_profile_serial(prof, serial)
    return prof


def find_profile(serial: str, directory: str | Path) -> CalibrationProfile | None:
    """The profile of dongle ``serial`` in ``directory`` (``*.json``, ``*.toml``), or None.

    When several files hold that serial the most recently updated wins. Unreadable files and
    files for other serials are skipped; one *named* after the serial but holding another serial
    is logged as a warning and never returned.
    """
    d = Path(directory)
    if not d.is_dir():
        return None
    best: CalibrationProfile | None = None
    for p in sorted(d.iterdir()):
        if p.suffix.lower() not in _SUFFIXES or not p.is_file():
            continue
        try:
            prof = CalibrationProfile.from_dict(_read_dict(p))
        except CalibrationError as exc:
            if p.stem == serial:
                logger.warning("%s: skipped (%s)", p, exc)
            continue
        if prof.serial != serial:
            if p.stem == serial:
                logger.warning("%s is named after dongle %s but holds the profile of %s: not used", p, serial, prof.serial)
            continue
        if best is None or prof.updated_utc > best.updated_utc:
            best = prof
    return best


def profile_summary(profile: CalibrationProfile | None) -> dict | None:
    """What a baseline or a run records about the profile in force (None: uncalibrated)."""
    if profile is None:
        return None
    return {
        "profile_id": profile.profile_id,
        "serial": profile.serial,
        "updated_utc": profile.updated_utc,
        "ppm": None if profile.ppm is None else profile.ppm.ppm,
        "iq": profile.iq is not None,
        "power": profile.power is not None,
    }


def profile_mismatch(recorded: dict | None, current: dict | None, *, ppm_tolerance: float = 1.0) -> list[str]:
    """Warnings when the profile in force now differs from the one recorded (e.g. at the survey).

    Parameters
    ----------
    recorded, current : dict or None
        :func:`profile_summary` of each run (None: no profile).
    ppm_tolerance : float
        Differences of the frequency error above this (ppm) are reported.

    Returns
    -------
    list of str
        Empty when they match.
    """
    if recorded is None and current is None:
        return []
    if recorded is None:
        return [f"the survey ran without a calibration profile; monitoring uses {current['profile_id']}"]
    if current is None:
        return [f"the survey used calibration profile {recorded['profile_id']}; monitoring runs without one"]
    out = []
    if recorded["serial"] != current["serial"]:
        out.append(f"survey dongle {recorded['serial']} differs from monitoring dongle {current['serial']}")
    elif recorded["profile_id"] != current["profile_id"]:
        out.append(f"the calibration profile changed since the survey ({recorded['updated_utc']} → {current['updated_utc']})")
    a, b = recorded.get("ppm"), current.get("ppm")
    if a is not None and b is not None and abs(a - b) > ppm_tolerance:
        out.append(f"frequency error changed from {a:+.2f} to {b:+.2f} ppm between survey and monitoring")
    for key, label in (("power", "dBm power table"), ("iq", "IQ correction")):
        if bool(recorded.get(key)) != bool(current.get(key)):
            out.append(f"the {label} is {'on' if current.get(key) else 'off'} now but was "
                       f"{'on' if recorded.get(key) else 'off'} during the survey")
    return out
