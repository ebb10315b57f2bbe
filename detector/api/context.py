"""What the routes read: :class:`ApiContext` (store, monitor, site, tokens) and the alert-list cache."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ApiContext", "ListCache"]


class ListCache:
    """Answers of ``GET /alerts`` kept until the store changes (its ``on_change`` hook) and for at
    most ``ttl_s``: the crew's screens poll the same lists many times a second. Without a change
    hook on the store nothing is cached."""

    def __init__(self, ttl_s: float = 1.0, size: int = 256) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self.generation = 0
        self.enabled = False
        self._entries: dict = {}

    def bump(self, *_args) -> None:
        self.generation += 1
        self._entries.clear()

    def get(self, key):
        if not self.enabled:
            return None
        hit = self._entries.get(key)
        if hit is None or hit[0] != self.generation or time.monotonic() - hit[1] > self.ttl_s:
            return None
        return hit[2]

    def put(self, key, body: bytes, generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return  # the store changed while we read: do not keep what may be stale
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (generation, time.monotonic(), body)

    def attach(self, store) -> None:
        """Follow ``store``'s changes (its ``on_change`` hook list); without one nothing is cached."""
        hooks = getattr(store, "on_change", None)
        if isinstance(hooks, list):
            hooks.append(self.bump)
            self.enabled = True


@dataclass
class ApiContext:
    """What the routes read: the alert store, the monitor (None on a command center), the site."""

    store: object
    token: str
    monitor: object | None = None
    site: object | None = None
    sites_dir: Path | None = None
    baselines: dict = field(default_factory=dict)  # site name → SiteBaseline
    read_token: str | None = None
    extra_routers: list = field(default_factory=list)
    list_cache: ListCache = field(default_factory=ListCache)
    #: where channels whitelisted by a dismissal (``add_to_whitelist``) are kept across restarts
    whitelist_file: Path | None = None
    #: the monitor's direction-finder bearings (:class:`~detector.app.bearings.BearingStore`; ``POST /bearings``)
    bearings: object | None = None

    @property
    def role(self) -> str:
        """``vehicle`` where a capture loop runs, else ``center``."""
        return "vehicle" if self.monitor is not None else "center"
