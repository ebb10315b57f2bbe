"""What the monitor reports about its loop (``GET /health``): :class:`MonitorStatus` and the
states of its source, :class:`MonitorState` (a ``str`` enum whose values are the strings of the
``source_state`` key)."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from detector.core.timefmt import utc_now_iso

__all__ = ["MonitorState", "MonitorStatus"]

log = logging.getLogger("examwatch.monitor")


class MonitorState(str, enum.Enum):
    """``source_state`` of ``/health``: where the monitor's source is."""

    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    REOPENING = "reopening"
    FINISHED = "finished"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


@dataclass
class MonitorStatus:
    """What ``GET /health`` reports about the loop."""

    status: str = "ok"  # ok | degraded
    source_state: MonitorState = MonitorState.STARTING
    source: str = ""
    frames_processed: int = 0
    frames_dropped: int = 0
    blocks_dropped: int = 0
    blocks_read: int = 0
    repeated_blocks: int = 0
    blocks_coalesced: int = 0
    reopen_count: int = 0
    last_frame_time: str | None = None
    last_block_monotonic: float | None = None
    last_error: str | None = None
    started_at: str = field(default_factory=utc_now_iso)
    #: alerting track events written to the store this run (also those that changed nothing;
    #: evidence files are not counted)
    alerts_stored: int = 0
    #: distinct alerts raised this run
    alerts_raised: int = 0
    center_hz: float | None = None
    sample_rate_hz: float | None = None
    scene_time_s: float | None = None
    #: samples read with a NaN or ±inf I or Q (zeroed before the FFT; their frames never reach a floor)
    nonfinite_samples: int = 0
    #: frames left out of detection because their samples held a NaN or ±inf (a gap for the
    #: tracker, never a floor, a ``missing`` station or a jamming estimate)
    frames_excluded: int = 0
    #: retunes of a tunable source by the watch plan's hops this run
    retunes: int = 0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("last_block_monotonic", None)
        d["source_state"] = MonitorState(self.source_state).value  # the plain string on the wire
        return d

    def degrade(self, why: str) -> None:
        """Mark the loop degraded for ``why`` (logged once per reason)."""
        if self.last_error != why or self.status != "degraded":
            log.warning("source degraded: %s", why)
        self.status = "degraded"
        self.source_state = MonitorState.DEGRADED
        self.last_error = why

    def recovered(self) -> None:
        """Blocks flow again."""
        if self.status == "degraded":
            log.info("source recovered")
            self.status = "ok"
            self.last_error = None
        self.source_state = MonitorState.RUNNING
