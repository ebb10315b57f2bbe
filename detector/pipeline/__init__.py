"""The monitor's capture loop: capture → detection → store → callbacks, in threads, with a watchdog."""

from detector.pipeline.monitor import Monitor, MonitorStatus

__all__ = ["Monitor", "MonitorStatus"]
