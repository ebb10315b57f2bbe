"""Glue from tracks to location estimates (the localization package stays pure).

:func:`track_locator` returns ``locate(track) -> dict | None`` for the engine: the track's
readings (:class:`~detector.detection.Reading`) with positions go to :mod:`detector.localization`;
the result is the ``LocationEstimate`` JSON of ``DESIGN.md`` or None while there are too few
readings. As ``examwatch locate --gps`` does for recorded readings (issue #24 item 5):

* **Position uncertainty.** Each reading's position stands for a span of time (the IQ block it
  came from, ``Reading.time_res_s``; else the readings' time resolution,
  :func:`~detector.localization.time_resolution_s`), during which the vehicle moved at
  ``Reading.speed_mps`` (else the speed between the readings' own successive positions). Its
  σ (m, per axis) = sqrt(gps_error_m² + (speed × time resolution)²)
  (:func:`~detector.localization.position_sigma_m`) is passed to the estimator as ``pos_sigma_m``
  and so enters the 95 % error ellipse.
* **Partial overlap.** When fewer than ``min_gps_overlap`` of a track's readings have a position
  (the default of ``examwatch locate --min-gps-overlap``), the estimate is refused
  (``not_localizable``, :func:`~detector.localization.refuse`) with the share in ``reason``.
* **Clock offset.** Given ``positions(t)`` (the GPS track the readings were paired with, on the
  engine's timeline), the offset between the readings' clock and the GPS clock is estimated
  (:func:`~detector.localization.estimate_clock_offset`, reported as ``time_offset_s``); one shown
  by the data beyond ``max_clock_offset_s`` refuses the estimate. The scan (≈ 1–2 s for a track of
  a few thousand readings) runs inside a re-estimate only, and again only once the track's
  readings have grown by half since the last scan; the GPS track is converted to ENU once per scan.
  A live gpsd gives no ``positions(t)``: there only the overlap is checked.
* **Overload.** Readings taken while the receiver was overloaded (``Reading.overload``, issue #18
  item 1: their levels are compressed) are left out, before the overlap share is taken.
* **Bearings** (issue #22 item 1). Given ``bearings(t0_s, t1_s, f_lo_hz, f_hi_hz)`` (a direction
  finder's bearings taken between two engine-timeline times at a frequency in a band; the monitor's
  :class:`~detector.app.bearings.BearingStore`), the bearings taken during the track's readings
  (± ``bearing_margin_s``) within ``bandwidth_hz / 2 + bearing_tolerance_hz`` of its centre are
  fused with its received power (:func:`~detector.localization.locate_enu` with ``bearings=``):
  each bearing's σ from its confidence and, for a bearing relative to the vehicle, the heading's
  error (:func:`~detector.localization.vehicle_bearings`); the CRLB is the combination's. The
  result says ``method`` "gls+bearings" and ``n_bearings`` (fused, outliers left out) and
  ``n_bearing_outliers``. New bearings for a track re-estimate it at its next call.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from detector.localization._timing import DEFAULT_GPS_ERROR_M, DEFAULT_MAX_CLOCK_OFFSET_S, MIN_GPS_OVERLAP, ClockOffset

__all__ = ["track_locator", "reading_speeds"]

#: ``positions(t_s) -> (lat, lon)``: degrees (NaN without a fix) at engine-timeline times (s)
Positions = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]]


def reading_speeds(t_s: NDArray, x: NDArray, y: NDArray) -> NDArray[np.float64]:
    """The vehicle's speed (m/s) at each reading, from the readings' own times ``t_s`` (s) and ENU
    positions ``x``, ``y`` (m), all shape (n,): positions come one per IQ block or GPS fix, so they
    are piecewise constant; the speed of a position is the central difference over the positions
    before and after it (one-sided at the ends), 0 when the readings hold one position."""
    t_s, x, y = (np.asarray(a, dtype=np.float64) for a in (t_s, x, y))
    starts = np.concatenate(([0], np.flatnonzero((np.diff(x) != 0) | (np.diff(y) != 0)) + 1))
    if starts.size < 2:
        return np.zeros(t_s.size)
    seg = np.hypot(np.diff(x[starts]), np.diff(y[starts])) / np.maximum(np.diff(t_s[starts]), 1e-3)
    v = np.concatenate(([seg[0]], 0.5 * (seg[:-1] + seg[1:]), [seg[-1]]))
    return v[np.searchsorted(starts, np.arange(t_s.size), side="right") - 1]


def _gridded(positions: Positions, frame, t0_s: float, t1_s: float, dt_s: float = 0.1):
    """``positions`` on ``frame``'s ENU metres, sampled once every ``dt_s`` from ``t0_s`` to ``t1_s``
    and linearly interpolated (NaN where a neighbouring sample has no fix, and outside): the
    clock-offset scan asks for the positions of every reading at hundreds of offsets, and one
    geodetic conversion per offset would cost far more than the fit."""
    grid = np.arange(t0_s, t1_s + dt_s, dt_s)
    la, lo = positions(grid)
    gx, gy = frame.to_enu(np.asarray(la, dtype=np.float64), np.asarray(lo, dtype=np.float64))

    def enu(t_s):
        t_s = np.asarray(t_s, dtype=np.float64)
        return (np.interp(t_s, grid, gx, left=np.nan, right=np.nan),
                np.interp(t_s, grid, gy, left=np.nan, right=np.nan))

    return enu


def track_locator(lat0: float | None = None, lon0: float | None = None, *, min_readings: int = 20,
                  every_s: float = 5.0, buildings=(), max_cached: int = 256,
                  gps_error_m: float = DEFAULT_GPS_ERROR_M, min_gps_overlap: float = MIN_GPS_OVERLAP,
                  positions: Positions | None = None, max_clock_offset_s: float = DEFAULT_MAX_CLOCK_OFFSET_S,
                  clock_search_s: float = 300.0, bearings: Callable | None = None,
                  bearing_tolerance_hz: float = 12.5e3, bearing_margin_s: float = 5.0,
                  doa_sigma_deg: float | None = None, heading_sigma_deg: float | None = None) -> Callable:
    """A locator that re-estimates a track at most every ``every_s`` seconds of its readings.

    With site ``buildings`` (polygons of (lat, lon)), the result names the nearest one:
    ``"nearest_building": {"index", "distance_m", "inside"}``. The last estimates of at most
    ``max_cached`` tracks are kept (hours of monitoring make thousands of tracks).

    ``gps_error_m``: the GPS error (m, 1 σ per axis) in each reading's position uncertainty;
    ``min_gps_overlap``: the least share (0–1) of a track's readings with a position for a
    location; ``positions``: the GPS track as ``positions(t_s) -> (lat, lon)`` (degrees, NaN without
    a fix) at engine-timeline times, for the clock-offset check (None: not checked);
    ``max_clock_offset_s``, ``clock_search_s``: the offset tolerated and the range scanned (s). See
    the module docstring.

    ``bearings``: ``bearings(t0_s, t1_s, f_lo_hz, f_hi_hz) -> readings | None`` at engine-timeline
    times (s) and frequencies (Hz); the readings have ``lat``, ``lon`` (degrees), ``quality`` (0–1),
    ``relative`` (bool: taken relative to the heading), ``true_bearing_deg()`` (degrees from true
    north), arrays of shape (N,) (:class:`~detector.sources.bearings.BearingReadings`).
    ``bearing_tolerance_hz`` (Hz) and ``bearing_margin_s`` (s) widen the track's band and span;
    ``doa_sigma_deg`` / ``heading_sigma_deg``: the direction finder's error at full confidence and
    the heading's (degrees, 1σ; default :data:`~detector.localization.DEFAULT_DOA_SIGMA_DEG`,
    :data:`~detector.localization.DEFAULT_HEADING_SIGMA_DEG`).
    """
    from detector.localization._bearings import DEFAULT_DOA_SIGMA_DEG, DEFAULT_HEADING_SIGMA_DEG

    doa_sigma = DEFAULT_DOA_SIGMA_DEG if doa_sigma_deg is None else float(doa_sigma_deg)
    heading_sigma = DEFAULT_HEADING_SIGMA_DEG if heading_sigma_deg is None else float(heading_sigma_deg)
    if not (math.isfinite(bearing_tolerance_hz) and bearing_tolerance_hz >= 0):
        raise ValueError(f"bearing_tolerance_hz must be ≥ 0, got {bearing_tolerance_hz}")
    if not (math.isfinite(bearing_margin_s) and bearing_margin_s >= 0):
        raise ValueError(f"bearing_margin_s must be ≥ 0, got {bearing_margin_s}")
    cache: dict[str, tuple[float, int, dict | None]] = {}  # the latest first: bounded (issue #24)
    #: track id → (readings at the last clock-offset scan, its result): scanned again once the
    #: readings have grown by half (the offset is the clocks', it does not change with every reading)
    clocks: dict[str, tuple[int, ClockOffset | None]] = {}

    def locate(track) -> dict | None:
        # readings taken while the receiver was overloaded (``Reading.overload``) have compressed levels: left out
        everything = [r for r in track.readings if not getattr(r, "overload", False)]
        readings = [r for r in everything if r.lat is not None]
        if len(readings) < min_readings:
            return None
        last_t = readings[-1].t_s
        found = _bearings_of(track, everything)
        n_found = 0 if found is None else int(found.lat.size)
        prev = cache.get(track.track_id)
        if prev is not None and last_t - prev[0] < every_s and n_found == prev[1]:
            return prev[2]
        try:
            result = _estimate(track.track_id, everything, readings, found)
        except ValueError:
            result = None
        cache.pop(track.track_id, None)
        cache[track.track_id] = (last_t, n_found, result)
        while len(cache) > max_cached:  # the longest unestimated first; an evicted track is estimated afresh
            tid = next(iter(cache))
            del cache[tid]
            clocks.pop(tid, None)
        return result

    def _bearings_of(track, everything):
        """The bearings of the track's band and span (None: no source, or none)."""
        if bearings is None:
            return None
        half = 0.5 * float(getattr(track, "bandwidth_hz", 0.0) or 0.0) + bearing_tolerance_hz
        f0 = float(getattr(track, "center_hz", 0.0) or 0.0)
        t0 = min(r.t_s for r in everything) - bearing_margin_s
        t1 = max(r.t_s for r in everything) + bearing_margin_s
        found = bearings(t0, t1, f0 - half, f0 + half)
        return found if found is not None and np.asarray(found.lat).size else None

    def _estimate(track_id: str, everything, readings, found=None) -> dict | None:
        from detector.localization import (LocalFrame, estimate_clock_offset, estimate_from_enu, locate_enu,
                                           nearest_building, refuse, time_resolution_s, vehicle_bearings)

        t = np.array([r.t_s for r in readings], dtype=np.float64)
        lat = np.array([r.lat for r in readings], dtype=np.float64)
        lon = np.array([r.lon for r in readings], dtype=np.float64)
        p = np.array([r.power_db for r in readings], dtype=np.float64)
        frame = LocalFrame.around(lat, lon)
        x, y = frame.to_enu(lat, lon)
        own = reading_speeds(t, x, y)
        speed = np.array([own[i] if r.speed_mps is None else r.speed_mps for i, r in enumerate(readings)], dtype=np.float64)
        default_res = time_resolution_s(t)
        res = np.array([default_res if r.time_res_s is None else r.time_res_s for r in readings], dtype=np.float64)
        # position_sigma_m with a resolution per reading
        sigma = np.sqrt((np.nan_to_num(speed) * res) ** 2 + gps_error_m ** 2)
        b_enu = None
        if found is not None:
            b_enu = vehicle_bearings(found.lat, found.lon, found.true_bearing_deg(), found.quality, found.relative,
                                     doa_sigma_deg=doa_sigma, heading_sigma_deg=heading_sigma).to_enu(frame)
            if b_enu.n == 0:
                b_enu = None
        sol = locate_enu(x, y, p, pos_sigma_m=sigma, bearings=b_enu)
        refusals = []
        share = len(readings) / len(everything)
        if share < min_gps_overlap:
            refusals.append(f"only {len(readings)} of {len(everything)} readings ({100 * share:.0f} %, less than "
                            f"{100 * min_gps_overlap:.0f} %) have a position: the track only partly overlaps the "
                            "GPS fixes (a GPS outage, or a clock or time-zone offset)")
        clock = None
        scanned = clocks.get(track_id)
        if scanned is not None and len(everything) < 1.5 * scanned[0]:
            clock = scanned[1]
        elif positions is not None:
            t_all = np.array([r.t_s for r in everything], dtype=np.float64)
            p_all = np.array([r.power_db for r in everything], dtype=np.float64)
            enu = _gridded(positions, frame, float(t_all.min()) - clock_search_s - 10.0,
                           float(t_all.max()) + clock_search_s + 10.0)
            med = float(np.median(speed)) if speed.size else None
            clock = estimate_clock_offset(t_all, p_all, enu, search_s=clock_search_s, applied_s=0.0,
                                          speed_mps=med if med and math.isfinite(med) else None)
            clocks[track_id] = (len(everything), clock)
        if clock is not None:
            if clock.significant and abs(clock.offset_s) > max_clock_offset_s:
                refusals.append(f"the readings fit the GPS track best with their clock {clock.offset_s:+.1f} s off the "
                                f"GPS clock (tolerance ±{max_clock_offset_s:g} s; model residual "
                                f"{clock.resid_applied_db:.1f} dB as paired, {clock.resid_db:.1f} dB at that offset): "
                                "positions paired by time are wrong; check the receiver's clock")
        if refusals:
            sol = refuse(sol, x, y, p, "; ".join(refusals))
        est = estimate_from_enu(sol, frame)
        if clock is not None:  # the estimate when the data show it beyond chance, else the offset applied (0)
            est = replace(est, time_offset_s=clock.offset_s if clock.significant else 0.0)
        result = est.to_dict()
        if bearings is not None:
            result["n_bearings"] = int(sol.n_bearings - sol.n_bearing_outliers)
            result["n_bearing_outliers"] = int(sol.n_bearing_outliers)
        if buildings:
            nb = nearest_building(est, buildings)
            if nb is not None:
                result["nearest_building"] = {"index": nb.index, "distance_m": round(nb.distance_m, 1), "inside": nb.inside}
        return result

    return locate
