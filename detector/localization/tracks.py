"""Glue from tracks to location estimates (the localization package stays pure).

:func:`track_locator` returns ``locate(track) -> dict | None`` for the engine: the track's
readings with positions go to :mod:`detector.localization`; the result is the ``LocationEstimate``
JSON of ``DESIGN.md`` or None while there are too few readings. Readings taken while the receiver
was overloaded (``Reading.overload``, issue #18 item 1: their levels are compressed) are left out.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["track_locator"]


def track_locator(lat0: float | None = None, lon0: float | None = None, *, min_readings: int = 20,
                  every_s: float = 5.0, buildings=(), max_cached: int = 256) -> Callable:
    """A locator that re-estimates a track at most every ``every_s`` seconds of its readings.

    With site ``buildings`` (polygons of (lat, lon)), the result names the nearest one:
    ``"nearest_building": {"index", "distance_m", "inside"}``. The last estimates of at most
    ``max_cached`` tracks are kept (hours of monitoring make thousands of tracks)."""
    cache: dict[str, tuple[float, dict | None]] = {}  # the latest first: bounded (issue #24)

    def locate(track) -> dict | None:
        # readings taken while the receiver was overloaded (``Reading.overload``) have compressed levels: left out
        readings = [r for r in track.readings if r.lat is not None and not getattr(r, "overload", False)]
        if len(readings) < min_readings:
            return None
        last_t = readings[-1].t_s
        prev = cache.get(track.track_id)
        if prev is not None and last_t - prev[0] < every_s:
            return prev[1]
        from detector.localization import locate, nearest_building

        try:
            est = locate([r.lat for r in readings], [r.lon for r in readings], [r.power_db for r in readings])
            result = est.to_dict()
            if buildings:
                nb = nearest_building(est, buildings)
                if nb is not None:
                    result["nearest_building"] = {"index": nb.index, "distance_m": round(nb.distance_m, 1), "inside": nb.inside}
        except ValueError:
            result = None
        cache.pop(track.track_id, None)
        cache[track.track_id] = (last_t, result)
        while len(cache) > max_cached:  # the longest unestimated first; an evicted track is estimated afresh
            del cache[next(iter(cache))]
        return result

    return locate
