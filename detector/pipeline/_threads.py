"""Threads of the pipeline: the end-of-stream marker of the queue, and lower-priority workers."""

from __future__ import annotations

import os
import threading

__all__ = ["END", "lower_priority"]

#: put on the capture → processing queue when capture ends (a finite source, or stop)
END = object()


def lower_priority(nice: int) -> None:
    """Run the calling (worker) thread at ``nice`` above the process's niceness, so that under CPU
    contention the API threads answer first: the bounded queue absorbs the short delay of the
    workers, a command center waiting on a request cannot (Linux: per-thread niceness)."""
    if not nice:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):  # not Linux, or not permitted: run as is
        pass
