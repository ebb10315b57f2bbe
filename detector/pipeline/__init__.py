"""The monitor's loop: capture → processing (detection, store, callbacks) → evidence and live view,
in threads, with a watchdog (see :mod:`detector.pipeline.monitor`)."""

from detector.pipeline.monitor import Monitor, MonitorState, MonitorStatus

__all__ = ["Monitor", "MonitorStatus", "MonitorState"]
