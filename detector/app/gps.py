"""The receiver's position for the monitor (``--gps``): a position provider for the pipeline.

:func:`position_provider` turns a parsed ``--gps`` (:func:`detector.sources.gps.parse_gps_spec`: a
fixed position, an NMEA/GPX log, or a gpsd client) into ``provider(block) -> Position | None``,
which the monitor's capture asks for every block that carries no position of its own (a
simulated receiver carries its own). :func:`track_positions` gives the locator
(:func:`detector.localization.tracks.track_locator`) the same log as a function of the engine's
timeline, for its clock-offset check (a live gpsd keeps no track: there is none).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Callable

import numpy as np

from detector.core.types import IQBlock, Position
from detector.sources.gps import GpsTrack

__all__ = ["position_provider", "follow_gpsd", "track_positions", "GPSD_MAX_AGE_S"]

log = logging.getLogger("examwatch.monitor")

#: a live gpsd fix older than this is not used (the vehicle may have moved; no position is better)
GPSD_MAX_AGE_S = 5.0


def position_provider(track, *, gpsd_retry_s: float = 5.0, component=None) -> Callable[[IQBlock], Position | None]:
    """The position of a block from ``track``: a fixed position for every block, the log's
    position at the block's wall-clock time, or the latest live gpsd fix (any other object with
    ``fixes()``; followed in a daemon thread, which reports to ``component``, a supervisor handle)."""
    if isinstance(track, GpsTrack):
        if track.is_fixed:
            fixed = Position(float(track.lat[0]), float(track.lon[0]))
            return lambda block: fixed

        def from_log(block: IQBlock) -> Position | None:
            if block.start is None:
                return None
            at = track.at(block.start.timestamp())
            return None if at is None else Position(*at[:2])

        return from_log
    latest = follow_gpsd(track, retry_s=gpsd_retry_s, component=component)
    return lambda block: latest()


def track_positions(track, wall_start: datetime | None):
    """``positions(t_s) -> (lat, lon)`` (degrees, float64 arrays, NaN without a fix) of a recorded
    GPS log at engine-timeline times ``t_s`` (s from ``wall_start``, the UTC time of timeline second
    0), as :func:`position_provider` pairs blocks with it; None for a fixed position, a live gpsd
    or an unknown start (nothing to check a clock against)."""
    if not isinstance(track, GpsTrack) or track.is_fixed or wall_start is None:
        return None
    t0 = wall_start.timestamp()
    return lambda t_s: track.interpolate(t0 + np.asarray(t_s, dtype=np.float64))


def follow_gpsd(client, *, retry_s: float = 5.0, component=None) -> Callable[[], Position | None]:
    """Follow a gpsd client in a daemon thread; returns ``latest() -> Position | None`` (None while
    no fix is younger than :data:`GPSD_MAX_AGE_S`). A lost gpsd is logged once and retried every
    ``retry_s`` seconds. ``component`` (a :class:`~detector.pipeline.supervisor.Component`) gets a
    ``beat()`` per fix and the error while gpsd is lost (``/health`` → ``components.gps``)."""
    lock = threading.Lock()
    state = {"pos": None, "at": -1e9}

    def run() -> None:
        down = False
        while True:
            try:
                for fix in client.fixes():
                    with lock:
                        state["pos"], state["at"] = Position(fix.lat, fix.lon), time.monotonic()
                    if component is not None:
                        component.beat()
                        component.ok()
                    if down:
                        log.warning("gpsd is back: positions attached again")
                        down = False
            except Exception as exc:  # noqa: BLE001 - a lost gpsd must not stop the monitor
                if not down:
                    log.warning("gpsd lost (%s): readings carry no position until it is back; retrying", exc)
                    down = True
                if component is not None:
                    component.state, component.last_error = "restarting", f"gpsd lost: {type(exc).__name__}: {exc}"
            time.sleep(retry_s)

    threading.Thread(target=run, name="examwatch-gpsd", daemon=True).start()

    def latest() -> Position | None:
        with lock:
            return state["pos"] if time.monotonic() - state["at"] <= GPSD_MAX_AGE_S else None

    return latest
