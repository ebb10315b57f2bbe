"""``examwatch locate``: transmitter position from a CSV of received-power readings."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import JsonOpt, console_err
from detector.core.errors import InputError
from detector.localization._timing import DEFAULT_GPS_ERROR_M, DEFAULT_MAX_CLOCK_OFFSET_S, MIN_GPS_OVERLAP

POWER_COLUMNS = ("power_dbm", "power_dbfs")
#: Plausible ranges: a dBm reading outside them is another unit (W, mW, linear), not dBm/dBFS.
_DBM_RANGE = (-200.0, 60.0)
_DBFS_RANGE = (-200.0, 6.0)
_NAN_TEXT = {"", "nan", "na", "n/a", "null", "none", "-"}


def _parse_time(text: str, line: int) -> float:
    """POSIX seconds from ISO 8601 with Z or an offset, or from POSIX seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("z", "Z").replace("Z", "+00:00") if t.endswith(("Z", "z")) else t)
    except ValueError:
        raise InputError(f"READINGS line {line}: time {text!r} is neither ISO 8601 (e.g. 2024-05-06T09:00:00Z) nor POSIX seconds") from None
    if dt.tzinfo is None:
        raise InputError(f"READINGS line {line}: time {text!r} has no time zone; add Z (UTC) or an offset such as +02:00")
    return dt.astimezone(timezone.utc).timestamp()


def _number(text: str, line: int, column: str) -> float:
    t = text.strip()
    if t.lower() in _NAN_TEXT:
        return math.nan
    try:
        return float(t)
    except ValueError:
        raise InputError(f"READINGS line {line}: {column} {text!r} is not a number") from None


def read_readings(path: Path) -> dict:
    """Read READINGS.csv: columns ``time``, ``power_dbm`` or ``power_dbfs``, optional ``lat``/``lon``.

    Returns {"t", "power", "unit", "lat", "lon" (None without columns), "n_rows", "n_nan"}; rows with
    an empty or NaN value are skipped and counted. Raises InputError for a missing, empty or
    wrongly shaped file, unknown units or values outside the unit's range.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"READINGS file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"READINGS path is a directory: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"READINGS {path.name} is not a text CSV file") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"READINGS {path.name} is empty")
    reader = csv.reader(lines)
    header = [h.strip().lower() for h in next(reader)]
    if "time" not in header:
        raise InputError(f"READINGS {path.name} needs a 'time' column (found: {', '.join(header) or 'nothing'})")
    units = [c for c in POWER_COLUMNS if c in header]
    if not units:
        other = [h for h in header if "pow" in h or "rss" in h or "db" in h or "level" in h]
        hint = f" ({', '.join(other)} has no unit examwatch knows)" if other else ""
        raise InputError(f"READINGS {path.name} needs a power column named power_dbm or power_dbfs{hint}")
    if len(units) == 2:
        raise InputError(f"READINGS {path.name} has both power_dbm and power_dbfs; keep one")
    unit_col = units[0]
    has_pos = "lat" in header and "lon" in header
    if ("lat" in header) != ("lon" in header):
        raise InputError(f"READINGS {path.name} has only one of lat/lon; give both or neither (then use --gps)")
    it, ip = header.index("time"), header.index(unit_col)
    ila, ilo = (header.index("lat"), header.index("lon")) if has_pos else (None, None)
    t, pw, la, lo = [], [], [], []
    n_rows = n_nan = 0
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        n_rows += 1
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        if row[it].strip().lower() in _NAN_TEXT:
            n_nan += 1
            continue
        ts = _parse_time(row[it], lineno)
        p = _number(row[ip], lineno, unit_col)
        a = _number(row[ila], lineno, "lat") if has_pos else 0.0
        b = _number(row[ilo], lineno, "lon") if has_pos else 0.0
        if not (math.isfinite(ts) and math.isfinite(p) and math.isfinite(a) and math.isfinite(b)):
            n_nan += 1
            continue
        t.append(ts)
        pw.append(p)
        la.append(a)
        lo.append(b)
    if n_rows == 0:
        raise InputError(f"READINGS {path.name} has a header but no rows")
    if not pw:
        raise InputError(f"READINGS {path.name}: all {n_rows} rows have an empty or NaN value")
    lo_r, hi_r = _DBM_RANGE if unit_col == "power_dbm" else _DBFS_RANGE
    pmin, pmax = min(pw), max(pw)
    if pmin < lo_r or pmax > hi_r:
        unit = "dBm" if unit_col == "power_dbm" else "dBFS"
        raise InputError(f"READINGS {path.name}: {unit_col} ranges {pmin:g} to {pmax:g}, outside {lo_r:g}..{hi_r:g} {unit}; "
                         "is the column in another unit (W, mW, linear power)?")
    if pmin >= 0.0:
        raise InputError(f"READINGS {path.name}: every {unit_col} value is ≥ 0 ({pmin:g} to {pmax:g}); received powers are "
                         "negative in dB units — is the column linear power (W, mW) rather than dB?")
    if has_pos and any(not (-90 <= v <= 90) for v in la) or has_pos and any(not (-180 <= v <= 180) for v in lo):
        raise InputError(f"READINGS {path.name}: lat/lon outside -90..90 / -180..180 degrees")
    return {"t": t, "power": pw, "unit": "dBm" if unit_col == "power_dbm" else "dBFS",
            "lat": la if has_pos else None, "lon": lo if has_pos else None, "n_rows": n_rows, "n_nan": n_nan}


def _bearings(path: Path, fmt: str, freq_hz: float | None, frame, heading_sigma: float, bearing_sigma: float):
    """The bearings file as :class:`BearingsEnu` in ``frame`` and its ``input.bearings`` summary."""
    import numpy as np

    from detector.localization import vehicle_bearings
    from detector.sources.bearings import read_bearings

    br = read_bearings(path, fmt)
    freqs = br.frequencies_hz()
    if freq_hz is not None:
        near = np.abs(br.frequency_hz - freq_hz) <= 12.5e3
        if not near.any():
            raise InputError(f"--bearing-freq-hz {freq_hz:g}: no bearing in {path.name} within 12.5 kHz "
                             f"(it has {', '.join(f'{f:g}' for f in freqs) or 'no frequencies'})")
        br = br.select(near)
    elif len(freqs) > 1:
        raise InputError(f"{path.name} holds bearings at {len(freqs)} frequencies ({', '.join(f'{f:g}' for f in freqs[:6])} Hz); "
                         "choose the transmitter's with --bearing-freq-hz")
    b = vehicle_bearings(br.lat, br.lon, br.true_bearing_deg(), br.quality, br.relative,
                         doa_sigma_deg=bearing_sigma, heading_sigma_deg=heading_sigma)
    n_low = int(np.sum(~np.isfinite(np.asarray(b.sigma_deg, float))))
    info = {"file": path.name, "format": br.fmt, "n_lines": br.n + br.n_skipped, "n_without_fix": br.n_skipped,
            "n_low_quality": n_low, "frequency_hz": freq_hz if freq_hz is not None else (freqs[0] if freqs else None),
            "heading_sigma_deg": heading_sigma, "bearing_sigma_deg": bearing_sigma}
    enu = b.to_enu(frame)
    if enu.n == 0:
        raise InputError(f"{path.name}: none of its {br.n} bearings is usable (confidence too low)")
    return enu, info


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def locate(
    readings: Annotated[Path, typer.Argument(help="CSV with columns time (ISO 8601 with Z/offset, or POSIX s), power_dbm or power_dbfs, and lat,lon (or use --gps).")],
    gps: Annotated[Optional[str], typer.Option("--gps", help="GPS track matched to the readings by time: NMEA log (.nmea .log .txt), .gpx, or fixed:LAT,LON.")] = None,
    exponent: Annotated[Optional[float], typer.Option("--path-loss-exponent", help="Path-loss exponent n (default: estimated from the readings, or 3 when they cannot determine it).")] = None,
    shadowing: Annotated[float, typer.Option("--shadowing-db", help="Shadowing standard deviation σ in dB.")] = 6.0,
    decorrelation: Annotated[float, typer.Option("--decorrelation-m", help="Shadowing decorrelation distance in m (0: readings independent).")] = 30.0,
    method: Annotated[str, typer.Option("--method", help="gls (default: GLS under correlated shadowing with the route-spread prior), nls (robust GLS, weak prior), grid, or centroid (baseline).")] = "gls",
    bearings_file: Annotated[Optional[Path], typer.Option("--bearings", help="Direction-finder bearings fused with the received power: KrakenSDR DoA lines (krakensdr_doa's Kraken App format) or a CSV/JSON with time, lat, lon, heading, bearing_deg, confidence, frequency.")] = None,
    bearings_format: Annotated[str, typer.Option("--bearings-format", help="auto (default), kraken or plain.")] = "auto",
    heading_sigma: Annotated[float, typer.Option("--heading-sigma-deg", help="With --bearings: the vehicle heading's error (degrees, 1 sigma), added to every bearing taken relative to the heading.")] = 2.0,
    bearing_sigma: Annotated[float, typer.Option("--bearing-sigma-deg", help="With --bearings: the direction finder's error at full confidence (degrees, 1 sigma); variance / confidence below it.")] = 5.0,
    bearing_freq: Annotated[Optional[float], typer.Option("--bearing-freq-hz", help="With --bearings: use the bearings within 12.5 kHz of this frequency (needed when the file holds several).")] = None,
    max_gps_age: Annotated[float, typer.Option("--max-gps-age-s", help="Use a GPS fix only within this many seconds of a reading.")] = 5.0,
    gps_date: Annotated[Optional[str], typer.Option("--gps-date", help="Date (YYYY-MM-DD, UTC) for NMEA logs whose sentences carry no date (GGA only).")] = None,
    max_clock_offset: Annotated[float, typer.Option("--max-clock-offset-s", help="With --gps: refuse a location (not_localizable) when the readings fit the track best at a clock offset beyond this many seconds.")] = DEFAULT_MAX_CLOCK_OFFSET_S,
    clock_offset: Annotated[float, typer.Option("--clock-offset-s", help="With --gps: the readings' clock minus the GPS clock, in s (a reading stamped t is placed where the track was at t minus this).")] = 0.0,
    clock_search: Annotated[float, typer.Option("--clock-search-s", help="With --gps: clock offsets searched, ± this many seconds around --clock-offset-s.")] = 300.0,
    min_overlap: Annotated[float, typer.Option("--min-gps-overlap", help="With --gps: least share (0-1) of readings with a GPS fix for a location.")] = MIN_GPS_OVERLAP,
    gps_error: Annotated[float, typer.Option("--gps-error-m", help="With --gps: GPS position error (m, 1 sigma per axis), combined with speed × time resolution.")] = DEFAULT_GPS_ERROR_M,
    json_out: JsonOpt = False,
) -> None:
    """Locate a transmitter from received power at GPS-tagged points (log-distance model, P0 unknown).

    Prints the position, its 95 % error ellipse, CEP50 and the Cramér–Rao bound, with the model
    used. Too few readings, one spot, or one straight street give status not_localizable with the
    reason and a coarse answer (the strongest reading and a radius).

    With --bearings, a direction finder's bearings (KrakenSDR DoA lines, or a CSV/JSON with time,
    lat, lon, heading, bearing_deg, confidence, frequency) are fused in the same estimate; each
    bearing's variance is --bearing-sigma-deg² / confidence + --heading-sigma-deg² (the heading
    term for bearings taken relative to the vehicle), and the CRLB is that of the combination.

    With --json, stdout holds one object: {"lat", "lon", "error_ellipse_m": {"semi_major",
    "semi_minor", "angle_deg"}, "cep50_m", "crlb_rmse_m", "status", "method", "n_readings",
    "reason", "path_loss_exponent", "p0_db", "area_m2", "radius_m", "model", "input"}; with
    --bearings, "input" has "bearings": {"file", "format", "n_lines", "n_without_fix",
    "n_low_quality", "n_used", "n_outliers", "frequency_hz", "heading_sigma_deg",
    "bearing_sigma_deg"}.
    """
    if exponent is not None and not (0 < exponent <= 10):
        raise InputError(f"--path-loss-exponent must be in (0, 10], got {exponent:g}")
    if not shadowing > 0:
        raise InputError(f"--shadowing-db must be > 0, got {shadowing:g}")
    if not decorrelation >= 0:
        raise InputError(f"--decorrelation-m must be ≥ 0, got {decorrelation:g}")
    if not max_gps_age > 0:
        raise InputError(f"--max-gps-age-s must be > 0, got {max_gps_age:g}")
    if not max_clock_offset >= 0:
        raise InputError(f"--max-clock-offset-s must be ≥ 0, got {max_clock_offset:g}")
    if not (math.isfinite(clock_offset) and clock_search >= 0):
        raise InputError("--clock-offset-s must be finite and --clock-search-s ≥ 0")
    if not 0 <= min_overlap <= 1:
        raise InputError(f"--min-gps-overlap must be in 0..1, got {min_overlap:g}")
    if not gps_error >= 0:
        raise InputError(f"--gps-error-m must be ≥ 0, got {gps_error:g}")
    if not (math.isfinite(heading_sigma) and heading_sigma >= 0):
        raise InputError(f"--heading-sigma-deg must be ≥ 0, got {heading_sigma:g}")
    if not (math.isfinite(bearing_sigma) and bearing_sigma > 0):
        raise InputError(f"--bearing-sigma-deg must be > 0, got {bearing_sigma:g}")
    if bearings_format not in ("auto", "kraken", "plain"):
        raise InputError(f"--bearings-format must be auto, kraken or plain, got {bearings_format!r}")
    from dataclasses import replace

    from detector.localization import (METHODS, LocalFrame, PathLossModel, estimate_clock_offset, estimate_from_enu,
                                       locate_enu, position_sigma_m, refuse, time_resolution_s)

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    data = read_readings(readings)
    t, power = data["t"], data["power"]
    n_no_fix = 0
    gps_info: dict = {}
    refusals: list[str] = []
    pos_sigma = None
    clock = None
    if gps is not None:
        from detector.sources.gps import GpsTrack, parse_gps_spec

        track = parse_gps_spec(gps, date=gps_date)
        if not isinstance(track, GpsTrack):
            raise InputError("--gps needs a recorded track or fixed:LAT,LON (live gpsd is for monitor)")
        if data["lat"] is not None:
            console_err.print("note: --gps given: the READINGS lat/lon columns are ignored", highlight=False)
        import numpy as np

        t_all, p_all = np.asarray(t, float), np.asarray(power, float)
        t_gps = t_all - clock_offset  # where the track was when each reading was taken
        lat_a, lon_a = track.interpolate(t_gps, max_age_s=max_gps_age)
        ok = np.isfinite(lat_a)
        if not ok.any():
            span = "" if track.is_fixed else f" ({_iso(track.t_s[0])} to {_iso(track.t_s[-1])})"
            raise InputError(f"GPS track {track.name}{span} has no fix within {max_gps_age:g} s of any reading "
                             f"({_iso(min(t))} to {_iso(max(t))}); check the time zones of both files")
        n_no_fix = int((~ok).sum())
        lat = lat_a[ok].tolist()
        lon = lon_a[ok].tolist()
        power = [p for p, k in zip(power, ok) if k]
        gps_info["gps_fix_share"] = round(float(ok.mean()), 4)
        speed = track.speed_mps(t_gps[ok], max_age_s=max_gps_age)
        resolution = time_resolution_s(t_all)
        pos_sigma = position_sigma_m(speed, resolution, gps_error)
        gps_info.update(time_resolution_s=resolution, speed_median_mps=round(float(np.nanmedian(speed)), 2),
                        pos_sigma_m=round(float(np.sqrt(np.mean(pos_sigma ** 2))), 2), clock_offset_applied_s=clock_offset)
        if not track.is_fixed and ok.sum() >= 5:
            frame0 = LocalFrame.around(lat, lon)

            def positions(tg):
                la, lo = track.interpolate(tg, max_age_s=max_gps_age)
                return frame0.to_enu(la, lo)

            model0 = PathLossModel(exponent=exponent, shadowing_db=shadowing, decorrelation_m=decorrelation)
            clock = estimate_clock_offset(t_all, p_all, positions, model=model0, search_s=clock_search,
                                          applied_s=clock_offset, speed_mps=float(np.nanmedian(speed)))
            if clock is not None:
                gps_info["clock_offset"] = {"estimate_s": round(clock.offset_s, 2), "likelihood_ratio": round(clock.lr, 2),
                                            "significant": clock.significant, "fix_share_at_estimate": round(clock.share, 4),
                                            "residual_db": round(clock.resid_db, 2),
                                            "residual_at_applied_db": round(clock.resid_applied_db, 2),
                                            "tolerance_s": max_clock_offset,
                                            "runner_up_s": None if clock.runner_up_s is None else round(clock.runner_up_s, 2),
                                            "ambiguous": clock.ambiguous}
                if clock.significant and abs(clock.offset_s - clock_offset) > max_clock_offset:
                    refusals.append(f"the readings fit the GPS track best with their clock {clock.offset_s:+.1f} s off the GPS clock "
                                    f"(tolerance ±{max_clock_offset:g} s; model residual {clock.resid_applied_db:.1f} dB as paired, "
                                    f"{clock.resid_db:.1f} dB at that offset): positions paired by time are wrong; correct the clock "
                                    f"or pass --clock-offset-s {clock.offset_s:.1f}"
                                    + (f" (an offset of {clock.runner_up_s:+.1f} s fits almost as well: the route repeats itself)"
                                       if clock.ambiguous and clock.runner_up_s is not None else ""))
        if ok.mean() < min_overlap:
            span = "" if track.is_fixed else f" ({_iso(track.t_s[0])} to {_iso(track.t_s[-1])})"
            refusals.insert(0, f"only {int(ok.sum())} of {ok.size} readings ({100 * ok.mean():.0f} %, "
                               f"less than {100 * min_overlap:.0f} %) have a GPS fix within {max_gps_age:g} s: the readings "
                               f"({_iso(min(t))} to {_iso(max(t))}) only partly overlap the GPS track{span}, as with a clock "
                               "or time-zone offset")
        if track.report is not None and track.report.n_skipped:
            console_err.print(f"GPS: {track.report.summary()}", highlight=False)
    elif data["lat"] is not None:
        lat, lon = data["lat"], data["lon"]
    else:
        raise InputError(f"READINGS {readings.name} has no lat/lon columns: pass --gps TRACK to match its times to GPS fixes")
    model = PathLossModel(exponent=exponent, shadowing_db=shadowing, decorrelation_m=decorrelation)
    frame = LocalFrame.around(lat, lon)
    x, y = frame.to_enu(lat, lon)
    b_enu, b_info = (None, None) if bearings_file is None else _bearings(
        bearings_file, bearings_format, bearing_freq, frame, heading_sigma, bearing_sigma)
    sol = locate_enu(x, y, power, model=model, method=method, pos_sigma_m=pos_sigma, bearings=b_enu)
    if refusals:
        sol = refuse(sol, x, y, power, "; ".join(refusals))
    est = estimate_from_enu(sol, frame)
    if clock is not None:  # the estimate when the data show it beyond chance, else the offset applied
        est = replace(est, time_offset_s=clock.offset_s if clock.significant else clock_offset)
    source = sol.exponent_source or "not used"
    model_info = {"path_loss_exponent": est.path_loss_exponent, "exponent_source": source,
                  "shadowing_db": shadowing, "decorrelation_m": decorrelation, "power_unit": data["unit"]}
    input_info = {"n_rows": data["n_rows"], "n_nan_rows": data["n_nan"], "n_without_gps_fix": n_no_fix}
    input_info.update(gps_info)
    if b_info is not None:
        b_info.update(n_used=sol.n_bearings - sol.n_bearing_outliers, n_outliers=sol.n_bearing_outliers)
        input_info["bearings"] = b_info
    if json_out:
        out = est.to_dict()
        out["model"] = model_info
        out["input"] = input_info
        typer.echo(json.dumps(out))
        return
    if data["n_nan"] or n_no_fix:
        console_err.print(f"skipped: {data['n_nan']} rows with NaN/empty values, {n_no_fix} readings without a GPS fix", highlight=False)
    e = est.error_ellipse_m
    n_txt = "n/a" if est.path_loss_exponent is None else f"{est.path_loss_exponent:.2f}"
    typer.echo(f"status {est.status}  method {est.method}  readings {est.n_readings}")
    typer.echo(f"position {est.lat:.6f}, {est.lon:.6f}")
    if est.status == "located":
        crlb = "n/a" if est.crlb_rmse_m is None else f"{est.crlb_rmse_m:.1f} m"
        typer.echo(f"95 % ellipse {e.semi_major:.1f} m × {e.semi_minor:.1f} m, major axis {e.angle_deg:.0f}° from north; "
                   f"CEP50 {est.cep50_m:.1f} m; CRLB {crlb}")
    else:
        typer.echo(f"coarse: within {est.radius_m:.0f} m of the strongest reading")
        typer.echo(f"reason: {est.reason}")
    if clock is not None:
        shown = "shown by the data" if clock.significant else "within chance"
        typer.echo(f"clock: readings vs GPS best fit at {clock.offset_s:+.1f} s ({shown}, likelihood ratio {clock.lr:.1f}); "
                   f"applied {clock_offset:+g} s; position uncertainty {gps_info['pos_sigma_m']:.1f} m RMS "
                   f"(time resolution {gps_info['time_resolution_s']:g} s)")
    if b_info is not None:
        typer.echo(f"bearings: {b_info['n_used']} fused ({b_info['n_outliers']} outliers left out, {b_info['n_low_quality']} of low "
                   f"confidence, {b_info['n_without_fix']} without a fix); heading σ {heading_sigma:g}°, DoA σ {bearing_sigma:g}°")
    p0 = "" if est.p0_db is None else f", P0 {est.p0_db:.1f} {data['unit']} at 1 m"
    typer.echo(f"model: log-distance, n {n_txt} ({source}), shadowing {shadowing:g} dB, decorrelation {decorrelation:g} m{p0}")
