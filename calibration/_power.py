"""Power calibration: dBFS → dBm per gain setting and frequency, from reference measurements.

A reference measurement feeds a signal generator's CW carrier of known level ``gen_dbm`` at
``freq_hz`` into the antenna port with the tuner at ``gain_db`` and reads ``measured_dbfs``, the
carrier's power in dBFS (0 dBFS = full-scale complex tone, :mod:`detector.dsp`). Each row gives a
conversion offset ``offset_db = gen_dbm − measured_dbfs``, so that

    ``P[dBm] = P[dBFS] + offset_db(f, G)``.

Rows at the same (gain, frequency), e.g. several generator levels, are averaged. Between
calibration frequencies the offset is interpolated linearly in frequency; between gains linearly
in gain (``gain_mode="linear"``, default) or taken from the nearest gain (``"nearest"``). Outside
the measured frequencies the end value is held for ``edge_tolerance_hz`` and refused beyond;
gains outside the table are refused (an RTL-SDR's gain steps are not uniform, so extrapolation
is not safe).

Noise floor: an optional column ``noise_dbfs_per_hz`` (the noise PSD read with the generator off,
dBFS/Hz) gives, through the same offset, the noise floor per gain in dBm/Hz (median over the
gain's frequencies); :func:`noise_floor_dbm` returns it per RBW bin.

This is the substitution method of receiver level calibration with a signal generator of
known output (ITU-R, *Handbook on Spectrum Monitoring*, 2011 edition, chapter 4, on receiver and
field-strength measurements); the table is only as good as the generator's level accuracy and
the cable loss entered into ``gen_dbm``.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from calibration._errors import CalibrationError
from detector.core.types import Spectrum

__all__ = [
    "PowerTable",
    "POWER_CSV_COLUMNS",
    "parse_power_csv",
    "build_power_table",
    "power_offset_db",
    "dbfs_to_dbm",
    "spectrum_to_dbm",
    "noise_floor_dbm",
]

logger = logging.getLogger(__name__)

#: Required columns of a reference-measurement CSV.
POWER_CSV_COLUMNS = ("gen_dbm", "freq_hz", "gain_db", "measured_dbfs")
_OPTIONAL = ("noise_dbfs_per_hz",)


@dataclass(frozen=True, eq=False)
class PowerTable:
    """dBFS → dBm offsets per gain and frequency.

    Attributes
    ----------
    gains_db : ndarray of float64, shape (g,)
        Gains (dB) of the table, ascending.
    freqs_hz : tuple of ndarray of float64
        Per gain, its calibration frequencies (Hz), ascending.
    offsets_db : tuple of ndarray of float64
        Per gain, ``dBm − dBFS`` at those frequencies (dB).
    spread_db : tuple of ndarray of float64
        Per gain and frequency, max − min of the rows averaged there (0 for one row).
    noise_dbm_per_hz : ndarray of float64, shape (g,)
        Noise floor per gain (dBm/Hz), NaN where not measured.
    n_rows : int
        Rows the table was built from.
    """

    gains_db: NDArray[np.float64]
    freqs_hz: tuple
    offsets_db: tuple
    spread_db: tuple
    noise_dbm_per_hz: NDArray[np.float64]
    n_rows: int

    def to_dict(self) -> dict:
        """JSON/TOML-ready: ``points`` (gain_db, freq_hz, offset_db, spread_db) and ``noise_floor``."""
        points = []
        for g, fr, of, sp in zip(self.gains_db, self.freqs_hz, self.offsets_db, self.spread_db):
            for f, o, s in zip(fr, of, sp):
                points.append({"gain_db": float(g), "freq_hz": float(f), "offset_db": round(float(o), 4),
                               "spread_db": round(float(s), 4)})
        noise = [{"gain_db": float(g), "noise_dbm_per_hz": round(float(v), 3)}
                 for g, v in zip(self.gains_db, self.noise_dbm_per_hz) if np.isfinite(v)]
        return {"points": points, "noise_floor": noise, "n_rows": int(self.n_rows)}

    @classmethod
    def from_dict(cls, d: dict) -> "PowerTable":
        """Inverse of :meth:`to_dict`. Raises :class:`CalibrationError` on a malformed table."""
        try:
            pts = d["points"]
            gains = sorted({float(p["gain_db"]) for p in pts})
            fr, of, sp = [], [], []
            for g in gains:
                rows = sorted((float(p["freq_hz"]), float(p["offset_db"]), float(p.get("spread_db", 0.0)))
                              for p in pts if float(p["gain_db"]) == g)
                fr.append(np.array([r[0] for r in rows]))
                of.append(np.array([r[1] for r in rows]))
                sp.append(np.array([r[2] for r in rows]))
            noise = {float(n["gain_db"]): float(n["noise_dbm_per_hz"]) for n in d.get("noise_floor", [])}
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"malformed power table in profile: {exc!r}") from None
        if not gains:
            raise CalibrationError("the power table in the profile has no points")
        return cls(gains_db=np.array(gains), freqs_hz=tuple(fr), offsets_db=tuple(of), spread_db=tuple(sp),
                   noise_dbm_per_hz=np.array([noise.get(g, np.nan) for g in gains]),
                   n_rows=int(d.get("n_rows", sum(f.size for f in fr))))


def parse_power_csv(text: str, *, name: str = "table") -> dict[str, NDArray[np.float64]]:
    """Parse a reference-measurement CSV (header row; columns ``gen_dbm, freq_hz, gain_db,
    measured_dbfs`` and optionally ``noise_dbfs_per_hz``; other columns ignored).

    Parameters
    ----------
    text : str
        The CSV's content.
    name : str
        How to call the table in messages (its path).

    Returns
    -------
    dict of str → ndarray of float64, shape (n_rows,)
        One array per known column present (NaN for an empty optional cell).

    Raises
    ------
    CalibrationError
        Missing columns (named), a non-numeric or non-finite required cell (with its line), no
        data rows.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise CalibrationError(f"{name}: empty CSV; expected a header {','.join(POWER_CSV_COLUMNS)}") from None
    cols = [h.strip().lower() for h in header]
    missing = [c for c in POWER_CSV_COLUMNS if c not in cols]
    if missing:
        raise CalibrationError(
            f"{name}: missing column(s) {', '.join(missing)}; found {', '.join(cols) or '(none)'}; "
            f"expected {','.join(POWER_CSV_COLUMNS)}"
        )
    use = [c for c in (*POWER_CSV_COLUMNS, *_OPTIONAL) if c in cols]
    pos = {c: cols.index(c) for c in use}
    data: dict[str, list[float]] = {c: [] for c in use}
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        for c in use:
            cell = row[pos[c]].strip() if pos[c] < len(row) else ""
            if c in _OPTIONAL and cell == "":
                data[c].append(float("nan"))
                continue
            try:
                v = float(cell)
            except ValueError:
                raise CalibrationError(f"{name} line {line_no}: {c} = {cell!r} is not a number") from None
            if c not in _OPTIONAL and not np.isfinite(v):
                raise CalibrationError(f"{name} line {line_no}: {c} = {cell!r} is not finite")
            data[c].append(v)
    if not data[POWER_CSV_COLUMNS[0]]:
        raise CalibrationError(f"{name}: no data rows (too few points)")
    return {c: np.asarray(v, dtype=np.float64) for c, v in data.items()}


def build_power_table(
    gen_dbm,
    freq_hz,
    gain_db,
    measured_dbfs,
    noise_dbfs_per_hz=None,
    *,
    min_freqs_per_gain: int = 2,
    gain_resolution_db: float = 0.05,
    freq_resolution_hz: float = 1.0,
) -> PowerTable:
    """Build a :class:`PowerTable` from reference measurements.

    Parameters
    ----------
    gen_dbm, freq_hz, gain_db, measured_dbfs : array_like of float, shape (n,)
        Generator level (dBm), frequency (Hz, > 0), tuner gain (dB) and the carrier's reading
        (dBFS, ≤ 0) of each measurement.
    noise_dbfs_per_hz : array_like of float, shape (n,), optional
        Noise PSD (dBFS/Hz) read with the generator off; NaN where not measured.
    min_freqs_per_gain : int
        Distinct frequencies each gain needs (≥ 2 to interpolate in frequency).
    gain_resolution_db, freq_resolution_hz : float
        Gains / frequencies closer than this are the same setting.

    Raises
    ------
    CalibrationError
        Mismatched lengths, no rows, a reading above 0 dBFS (clipped), a frequency ≤ 0, or a gain
        with fewer than ``min_freqs_per_gain`` frequencies (too few points).

    Examples
    --------
    >>> t = build_power_table([-60, -60], [430e6, 440e6], [30, 30], [-8.0, -9.0])
    >>> [round(float(v), 2) for v in power_offset_db(t, [430e6, 435e6, 440e6], 30.0)]
    [-52.0, -51.5, -51.0]
    """
    arrs = [np.asarray(a, dtype=np.float64).ravel() for a in (gen_dbm, freq_hz, gain_db, measured_dbfs)]
    n = arrs[0].size
    if any(a.size != n for a in arrs):
        raise CalibrationError(f"columns have different lengths: {[a.size for a in arrs]}")
    if n == 0:
        raise CalibrationError("no reference measurements (too few points)")
    gen, freq, gain, meas = arrs
    noise = (np.full(n, np.nan) if noise_dbfs_per_hz is None
             else np.asarray(noise_dbfs_per_hz, dtype=np.float64).ravel())
    if noise.size != n:
        raise CalibrationError(f"noise column has {noise.size} values for {n} rows")
    for label, a in (("gen_dbm", gen), ("freq_hz", freq), ("gain_db", gain), ("measured_dbfs", meas)):
        if not np.all(np.isfinite(a)):
            raise CalibrationError(f"{label} holds non-finite values")
    if np.any(freq <= 0):
        raise CalibrationError(f"freq_hz must be > 0; row {int(np.argmax(freq <= 0)) + 1} has {freq[freq <= 0][0]:g}")
    if np.any(meas > 0):
        i = int(np.argmax(meas > 0))
        raise CalibrationError(
            f"row {i + 1}: measured_dbfs {meas[i]:g} is above full scale (0 dBFS): the ADC clipped; "
            "lower the generator level or the gain"
        )
    offset = gen - meas
    gkey = np.round(gain / gain_resolution_db) * gain_resolution_db
    gains = np.unique(gkey)
    fr_l, of_l, sp_l, nz = [], [], [], []
    for g in gains:
        sel = gkey == g
        fkey = np.round(freq[sel] / freq_resolution_hz) * freq_resolution_hz
        fu = np.unique(fkey)
        if fu.size < min_freqs_per_gain:
            raise CalibrationError(
                f"too few points at gain {g:g} dB: {fu.size} frequency(ies), need ≥ {min_freqs_per_gain} "
                "to interpolate in frequency"
            )
        o = np.array([offset[sel][fkey == f].mean() for f in fu])
        s = np.array([np.ptp(offset[sel][fkey == f]) for f in fu])
        if np.any(s > 1.0):
            logger.warning("gain %g dB: readings at one frequency disagree by up to %.1f dB (compression or noise?)",
                           g, float(s.max()))
        fr_l.append(fu.astype(np.float64))
        of_l.append(o)
        sp_l.append(s)
        nsel = noise[sel]
        ok = np.isfinite(nsel)
        if ok.any():
            nz.append(float(np.median(nsel[ok] + offset[sel][ok])))
        else:
            nz.append(np.nan)
    return PowerTable(gains_db=gains.astype(np.float64), freqs_hz=tuple(fr_l), offsets_db=tuple(of_l),
                      spread_db=tuple(sp_l), noise_dbm_per_hz=np.asarray(nz), n_rows=int(n))


def _offset_at_gain_index(table: PowerTable, i: int, f: NDArray[np.float64], edge_tolerance_hz: float) -> NDArray:
    fr = table.freqs_hz[i]
    lo, hi = fr[0] - edge_tolerance_hz, fr[-1] + edge_tolerance_hz
    if np.any(f < lo) or np.any(f > hi):
        bad = f[(f < lo) | (f > hi)]
        raise CalibrationError(
            f"frequency {bad[0] / 1e6:.6f} MHz is outside the calibrated range {fr[0] / 1e6:.3f}–"
            f"{fr[-1] / 1e6:.3f} MHz at gain {table.gains_db[i]:g} dB (± {edge_tolerance_hz / 1e6:g} MHz)"
        )
    return np.interp(f, fr, table.offsets_db[i])


def power_offset_db(
    table: PowerTable,
    freq_hz,
    gain_db: float,
    *,
    gain_mode: str = "linear",
    edge_tolerance_hz: float = 2.5e6,
    gain_tolerance_db: float = 0.5,
):
    """Offset ``dBm − dBFS`` (dB) at frequencies ``freq_hz`` (Hz, scalar or array) and one gain.

    Raises
    ------
    CalibrationError
        A gain more than ``gain_tolerance_db`` outside the table's gains, or a frequency more
        than ``edge_tolerance_hz`` outside a gain's calibrated range.
    """
    if gain_mode not in ("linear", "nearest"):
        raise ValueError(f"gain_mode must be 'linear' or 'nearest', got {gain_mode!r}")
    f = np.asarray(freq_hz, dtype=np.float64)
    gains = table.gains_db
    if gain_db < gains[0] - gain_tolerance_db or gain_db > gains[-1] + gain_tolerance_db:
        raise CalibrationError(
            f"gain {gain_db:g} dB is outside the calibrated gains {gains[0]:g}–{gains[-1]:g} dB; "
            "measure at that gain"
        )
    if gain_mode == "nearest" or gains.size == 1 or gain_db <= gains[0] or gain_db >= gains[-1]:
        i = int(np.argmin(np.abs(gains - gain_db)))
        out = _offset_at_gain_index(table, i, f, edge_tolerance_hz)
    else:
        j = int(np.searchsorted(gains, gain_db))
        g0, g1 = gains[j - 1], gains[j]
        a = (gain_db - g0) / (g1 - g0)
        out = (1 - a) * _offset_at_gain_index(table, j - 1, f, edge_tolerance_hz) + a * _offset_at_gain_index(
            table, j, f, edge_tolerance_hz)
    return float(out) if np.ndim(out) == 0 else out


def dbfs_to_dbm(power_dbfs, freq_hz, gain_db: float, table: PowerTable, **kw):
    """Convert powers (dBFS, scalar or array) read at ``freq_hz`` and ``gain_db`` to dBm."""
    out = np.asarray(power_dbfs, dtype=np.float64) + power_offset_db(table, freq_hz, gain_db, **kw)
    return float(out) if np.ndim(out) == 0 else out


def spectrum_to_dbm(spectrum: Spectrum, table: PowerTable, *, gain_db: float, **kw) -> Spectrum:
    """A copy of a dBFS :class:`~detector.core.types.Spectrum` in dBm per RBW bin (``unit="dBm"``).

    ``meta["power_calibration"]`` records the gain and the offset range applied.

    Raises
    ------
    CalibrationError
        The spectrum is not in dBFS, or the table does not cover its gain or frequencies.
    """
    if spectrum.unit != "dBFS":
        raise CalibrationError(f"spectrum is in {spectrum.unit!r}, not dBFS: calibrate a raw spectrum only once")
    off = np.asarray(power_offset_db(table, spectrum.freqs_hz, gain_db, **kw), dtype=np.float64)
    power = (spectrum.power.astype(np.float64) + off).astype(np.float32)
    meta = {**spectrum.meta, "power_calibration": {"gain_db": float(gain_db), "offset_db_min": float(off.min()),
                                                   "offset_db_max": float(off.max())}}
    return replace(spectrum, power=power, unit="dBm", meta=meta)


def noise_floor_dbm(table: PowerTable, gain_db: float, *, rbw_hz: float | None = None) -> float:
    """Noise floor at ``gain_db`` (dBm/Hz, or dBm per RBW bin when ``rbw_hz`` is given),
    interpolated linearly in gain between measured gains.

    Raises
    ------
    CalibrationError
        No noise measurements in the table, or a gain outside the measured ones.
    """
    ok = np.isfinite(table.noise_dbm_per_hz)
    if not ok.any():
        raise CalibrationError("the power table has no noise-floor measurements (column noise_dbfs_per_hz)")
    g, v = table.gains_db[ok], table.noise_dbm_per_hz[ok]
    if gain_db < g[0] - 0.5 or gain_db > g[-1] + 0.5:
        raise CalibrationError(f"gain {gain_db:g} dB is outside the gains with a noise floor ({g[0]:g}–{g[-1]:g} dB)")
    n = float(np.interp(gain_db, g, v))
    if rbw_hz is not None:
        if not rbw_hz > 0:
            raise ValueError(f"rbw_hz must be > 0, got {rbw_hz}")
        n += 10 * np.log10(rbw_hz)
    return n
