"""Several receivers in one monitor (issue #19 item 1): one :class:`~detector.pipeline.Monitor` per
receiver, behind the same façade.

Each receiver has its own source (opened, read and reopened with backoff by its own capture
thread), its own detection engine (its calibration, its track ids) and its own share of the watch
plan (a :class:`~detector.config.plan.Scheduler` over the hops assigned to it). All of them write
into one alert store and feed one API: :class:`ReceiverGroup` presents them to the API and the
commands exactly as one :class:`~detector.pipeline.Monitor` does (``health``, ``latest``,
``waterfall``, ``tracks``, ``engine``, ``on_alert``…), so that nothing above the pipeline needs
to know how many receivers there are.

``/health``: the keys of one monitor come from the *primary* receiver (the first), except
``status`` and ``last_error``, which are degraded when any receiver (or a shared component: GPS,
push) is; ``receivers`` lists every receiver's own figures (state, bands, blocks, reopens, its
calibration and overload) and ``components`` holds every receiver's workers as
``<receiver>.<component>``. A lost dongle degrades its own entry (and ``status``) while the
others keep working; its bands are not watched until it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Callable, Iterator, Sequence

from detector.pipeline.monitor import Monitor
from detector.pipeline.supervisor import Supervisor

__all__ = ["ReceiverGroup", "EngineGroup", "receiver_summary"]

#: keys of a receiver's ``/health`` copied into its ``receivers`` entry
_RECEIVER_KEYS = ("status", "source_state", "source", "last_error", "center_hz", "sample_rate_hz", "blocks_read",
                  "blocks_dropped", "frames_processed", "frames_dropped", "frames_excluded", "reopen_count", "retunes",
                  "alerts_stored", "alerts_raised", "last_frame_time", "gain_offset_db")


def receiver_summary(name: str, monitor: Monitor, bands: Sequence[str] = (), health: dict | None = None) -> dict:
    """One receiver's entry of ``/health`` → ``receivers``: its name, bands and the loop's figures."""
    h = health if health is not None else monitor.health()
    out = {"name": name, "bands": list(bands)}
    out.update({k: h.get(k) for k in _RECEIVER_KEYS})
    cal = h.get("calibration")
    out["calibration"] = cal
    ov = h.get("overload")
    out["overload"] = ov.get("state") if isinstance(ov, dict) else None
    return out  # status and last_error already count its workers (Monitor.health)


class _Tracks(Mapping):
    """The receivers' ``all_tracks`` as one read-only mapping (track ids are unique per receiver)."""

    def __init__(self, engines: Sequence[object]) -> None:
        self._engines = engines

    def __getitem__(self, key):
        for e in self._engines:
            tr = e.all_tracks.get(key)
            if tr is not None:
                return tr
        raise KeyError(key)

    def __iter__(self) -> Iterator:
        for e in self._engines:
            yield from list(e.all_tracks)

    def __len__(self) -> int:
        return sum(len(e.all_tracks) for e in self._engines)

    def values(self):  # type: ignore[override]
        return [tr for e in self._engines for tr in list(e.all_tracks.values())]


class EngineGroup:
    """The receivers' engines where the API expects one: their tracks together, one whitelist (a
    dismissal whitelists the channel in every receiver's engine), the primary's config."""

    def __init__(self, engines: Sequence[object]) -> None:
        self.engines = list(engines)

    @property
    def all_tracks(self) -> _Tracks:
        return _Tracks(self.engines)

    def open_tracks(self) -> list:
        return [ev for e in self.engines for ev in e.open_tracks()]

    @property
    def whitelist(self):
        return self.engines[0].whitelist

    @whitelist.setter
    def whitelist(self, wl) -> None:
        for e in self.engines:
            e.whitelist = wl

    def __getattr__(self, name: str):  # config, correct, _stream, …: the primary receiver's
        return getattr(self.engines[0], name)


class ReceiverGroup:
    """Several receivers' monitors as one (see the module docstring).

    Parameters
    ----------
    monitors : sequence of (name, Monitor, bands)
        The receivers in order (the first is the primary: ``latest``, ``waterfall`` and the
        top-level keys of ``/health`` are its own); ``bands`` are the plan's band names it
        watches. Their ``on_alert``/``on_event`` lists should be the group's (pass
        ``on_alert=group.on_alert``… when building them, or use :meth:`shared_callbacks`).
    supervisor : Supervisor, optional
        The shared components (GPS, push) that are no receiver's own; started and stopped here.
    site, run_id : str
    """

    def __init__(self, monitors: Sequence[tuple[str, Monitor, Sequence[str]]], *, supervisor: Supervisor | None = None,
                 site: str = "site", run_id: str = "run", on_alert: list | None = None,
                 on_event: list | None = None) -> None:
        if not monitors:
            raise ValueError("a receiver group needs at least one receiver")
        names = [n for n, _, _ in monitors]
        if len(set(names)) != len(names):
            raise ValueError(f"receiver names must be unique, got {names}")
        self.receivers: dict[str, Monitor] = {n: m for n, m, _ in monitors}
        self.bands: dict[str, list[str]] = {n: list(b) for n, _, b in monitors}
        self.primary = monitors[0][1]
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self.site = site
        self.run_id = run_id
        self.on_alert: list[Callable] = on_alert if on_alert is not None else self.primary.on_alert
        self.on_event: list[Callable] = on_event if on_event is not None else self.primary.on_event
        #: more sections of :meth:`health` (``push``, ``intercept``, ``declared_jammers``…)
        self.health_sections: dict[str, Callable[[], dict]] = {}
        self.engine = EngineGroup([m.engine for m in self.receivers.values()])
        self.finished = threading.Event()
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "ReceiverGroup":
        for m in self.receivers.values():
            m.start()
        self.supervisor.start()
        self._watcher = threading.Thread(target=self._watch_finished, name="examwatch-receivers", daemon=True)
        self._watcher.start()
        return self

    def _watch_finished(self) -> None:
        """``finished`` once every receiver's finite source has ended."""
        for m in self.receivers.values():
            while not m.finished.wait(0.2):
                if self._stopping.is_set():
                    return
        self.finished.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every receiver (their queues written into the store, open tracks ended), in parallel
        so that the whole stop stays within ``timeout``. Idempotent."""
        self._stopping.set()
        threads = [threading.Thread(target=m.stop, args=(timeout,), name=f"examwatch-stop-{n}", daemon=True)
                   for n, m in self.receivers.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 2.0)
        self.supervisor.stop()

    def threads_alive(self) -> list[str]:
        return [f"{n}:{t}" for n, m in self.receivers.items() for t in m.threads_alive()]

    # ---- views for the API ----------------------------------------------------------------------
    @property
    def status(self):
        return self.primary.status

    @property
    def capture(self):
        return self.primary.capture

    @property
    def latest(self) -> dict | None:
        return self.primary.latest

    def latest_spectrum_json(self) -> bytes | None:
        return self.primary.latest_spectrum_json()

    def latest_spectrum(self) -> dict | None:
        return self.primary.latest_spectrum()

    def waterfall(self, seconds: float | None = None) -> dict | None:
        return self.primary.waterfall(seconds)

    def tracks(self) -> list[dict]:
        """Every receiver's confirmed open tracks, each with its ``receiver``."""
        out = []
        for n, m in self.receivers.items():
            for t in m.tracks():
                out.append({**t, "receiver": n})
        return out

    def health(self) -> dict:
        per = {n: m.health() for n, m in self.receivers.items()}
        d = dict(per[next(iter(per))])
        entries = [receiver_summary(n, self.receivers[n], self.bands[n], h) for n, h in per.items()]
        d["receivers"] = entries
        comps = dict(self.supervisor.health())
        for n, h in per.items():
            for c, v in (h.get("components") or {}).items():
                comps[f"{n}.{c}"] = v
        d["components"] = comps
        bad = [f"{e['name']}: {e['last_error'] or e['status']}" for e in entries if e["status"] != "ok"]
        bad += [f"{c.name}: {c.last_error or c.state}" for c in self.supervisor.unhealthy()]
        stores = [h["store"] for h in per.values() if isinstance(h.get("store"), dict)]
        if stores:
            d["store"] = _merge_store(stores)
        if bad:
            d["status"] = "degraded"
            d["last_error"] = "; ".join(bad)
        else:
            d["status"] = "ok"
            d["last_error"] = None
        d["alerts_stored"] = sum(h.get("alerts_stored") or 0 for h in per.values())
        d["alerts_raised"] = sum(h.get("alerts_raised") or 0 for h in per.values())
        for name, fn in self.health_sections.items():
            try:
                d[name] = fn()
            except Exception as exc:  # noqa: BLE001 - /health must answer
                d[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return d


def _merge_store(stores: list[dict]) -> dict:
    """The receivers' store queues as one ``store`` section: counts summed, ok only if all are."""
    out = dict(stores[0])
    for key, v in stores[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = sum((s.get(key) or 0) for s in stores)
    out["ok"] = all(s.get("ok", True) for s in stores)
    errors = [s.get("last_error") for s in stores if s.get("last_error")]
    out["last_error"] = errors[0] if errors else None
    return out
