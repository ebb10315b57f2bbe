"""The composition root: the detection engine and the monitor application, built in one place.

* :func:`build_engine` composes a :class:`~detector.detection.engine.DetectionEngine` from the
  baseline, whitelist, site, exam sessions, localization and calibration: ``survey``, ``replay``,
  ``monitor``, ``demo`` and the bench all build their engine here.
* :meth:`MonitorApp.build` composes a running vehicle: the data folder (its lock, the API token,
  the alert store and the channels whitelisted by dismissals), the engine, the
  :class:`~detector.pipeline.Monitor` (with the receiver's position from ``gps``), the API (with
  the SSE stream) and the push sender. Push, SSE, GPS and calibration are its arguments;
  :meth:`MonitorApp.start` and :meth:`MonitorApp.stop` are the start and the explicit shutdown
  sequence (monitor → the run record → push sender, drained → store → lock).

Nothing here prints: lines for the operator go to ``say``.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pydantic_settings import BaseSettings, SettingsConfigDict

from detector.core.errors import InputError

__all__ = ["build_engine", "MonitorApp", "AppSettings", "MonitorSettings", "ReceiverSpec", "lock_data_dir",
           "with_added_whitelist", "attach_intercept"]

log = logging.getLogger("examwatch.monitor")


class MonitorSettings(BaseSettings):
    """Settings of ``monitor`` from the environment (``EXAMWATCH_*``) or a TOML file (``--config``);
    command-line options win."""

    model_config = SettingsConfigDict(env_prefix="EXAMWATCH_", extra="ignore")
    db: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8750
    token: Optional[str] = None
    token_file: Optional[Path] = None
    data_dir: Path = Path("examwatch-data")
    sites_dir: Path = Path("sites")
    watchdog_s: float = 5.0
    push_url: Optional[str] = None
    vehicle_id: Optional[str] = None
    push_token_file: Optional[Path] = None


@dataclass(frozen=True)
class AppSettings:
    """Where a monitor application keeps its state: the data folder (store, token, evidence, the
    channels whitelisted by dismissals), the store URL and the API token."""

    data_dir: Path
    db: str | None = None
    token: str | None = None
    token_file: Path | None = None
    sites_dir: Path | None = None
    #: one monitor per data folder (``DATA_DIR/monitor.lock``)
    lock: bool = True
    #: open alerts an earlier run of the site left in the store are continued by this run
    resume: bool = True
    #: channels whitelisted by dismissals are kept in ``DATA_DIR/whitelist-added.csv`` and reloaded
    dismissals: bool = True


def build_engine(config=None, *, baseline=None, whitelist=None, site: str = "site", sessions=(), wall_start=None,
                 locate=None, calibration=None, jammers=(), track_prefix: str = "T"):
    """The detection engine of a run (``config``: an ``EngineConfig``, default settings when None;
    ``jammers``: the site's declared jammers, ``SiteConfig.jammers_obj()``; ``track_prefix``: of
    its track ids, one per receiver of a monitor)."""
    from detector.detection.engine import DetectionEngine, EngineConfig

    return DetectionEngine(config if config is not None else EngineConfig(), baseline=baseline, whitelist=whitelist,
                           site=site, sessions=sessions, wall_start=wall_start, locate=locate, correct=calibration,
                           jammers=tuple(jammers), track_prefix=track_prefix)


def lock_data_dir(data_dir: Path):
    """One monitor per data folder (its token, added whitelist and default store): an exclusive
    ``flock`` on ``DATA_DIR/monitor.lock`` holding the pid, released when the process ends, even
    on SIGKILL. Returns the open lock file; InputError names the other monitor's pid."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    path = data_dir / "monitor.lock"
    try:
        fh = open(path, "a+")
    except OSError as exc:
        raise InputError(f"--data-dir {data_dir}: cannot write {path.name} ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        other = fh.read().strip() or "?"
        fh.close()
        raise InputError(f"another examwatch monitor (pid {other}) uses --data-dir {data_dir}; give each monitor "
                         f"its own --data-dir") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def with_added_whitelist(whitelist, path: Path, site: str):
    """``whitelist`` plus the channels of ``site`` whitelisted by dismissals (``path``, a CSV kept
    by the API); returns (whitelist, number added)."""
    if not path.is_file():
        return whitelist, 0
    from detector.detection import Whitelist, load_whitelist

    added = [c for c in load_whitelist(path).channels if c.site in (None, site)]
    if not added:
        return whitelist, 0
    base = whitelist if whitelist is not None else Whitelist(())
    return Whitelist(base.channels + tuple(added), base.far_above_db), len(added)


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class ReceiverSpec:
    """One receiver of a monitor with several (issue #19): its name, a fresh source per call, its
    share of the watch plan, its calibration and the plan's bands it watches. ``wall_clock``: its
    dwell windows are timed by the monotonic clock (dongles, whose sample clocks start at each
    open), not by its blocks' ``offset_s`` (simulated receivers share the scene's time)."""

    name: str
    source_factory: Callable[[], object]
    scheduler: object | None = None
    calibration: object | None = None
    bands: tuple[str, ...] = ()
    wall_clock: bool = False


@dataclass
class MonitorApp:
    """A composed vehicle: engine, store, monitor, API app and push sender (see the module docstring)."""

    engine: object
    monitor: object
    store: object | None = None
    api: object | None = None
    ctx: object | None = None
    sender: object | None = None
    token: str | None = None
    token_path: Path | None = None
    run_id: str = "run"
    reopened: list = field(default_factory=list)
    #: ``DATA_DIR/runs/<run_id>.json``: what the run watched, for the report (:mod:`detector.app.run_record`)
    recorder: object | None = None
    #: the direction-finder bearings of this run (:class:`~detector.app.bearings.BearingStore`)
    bearings: object | None = None
    _bearings_input: tuple | None = None
    _bearings_worker: object | None = None
    _supervisor: object | None = None
    _lock_file: object | None = None
    _stopped: bool = False
    _released: bool = False

    @classmethod
    def build(cls, settings: AppSettings | None, *, source_factory: Callable[[], object], site: str,
              site_config=None, engine_config=None, baseline=None, whitelist=None, sessions=(), wall_start=None,
              locate=None, calibration=None, gps=None, push=None, stream: bool = True, scheduler=None,
              realtime: bool = False, watchdog_s: float = 5.0, run_id: str | None = None,
              monitor_options: dict | None = None, say: Callable[[str], None] = _quiet,
              receivers=None, plan=None, bearings: str | None = None, bearings_poll_s: float = 1.0,
              bearing_store=None) -> "MonitorApp":
        """Compose the vehicle.

        Parameters
        ----------
        settings : AppSettings or None
            The data folder, store and token; None: no store and no API (detection only).
        source_factory : callable
            A fresh source per call (the monitor reopens through it).
        site : str
            The site name (alerts, whitelist dismissals); ``site_config`` the :class:`~detector.config.site.Site`.
        engine_config, baseline, whitelist, sessions, wall_start, locate
            Of the engine (:func:`build_engine`); the whitelist is extended by the channels
            whitelisted by dismissals in the data folder.
        calibration : callable, optional
            The dongle's correction (:mod:`detector.app.correction`).
        gps : GpsTrack or gpsd client, optional
            The receiver's position for blocks without one (:func:`detector.app.gps.position_provider`).
        push : PushSettings, optional
            Push alert changes to a command center.
        stream : bool
            Serve the SSE stream of alert changes.
        scheduler, realtime, watchdog_s, monitor_options
            Of the :class:`~detector.pipeline.Monitor` (``monitor_options``: its other keywords).
        receivers : sequence of ReceiverSpec, optional
            Several receivers (two or more): each gets its own engine (its calibration, track ids
            ``T<k>-…``) and its own monitor loop, all writing into one store behind one API
            (:class:`~detector.pipeline.receivers.ReceiverGroup`); ``source_factory``,
            ``calibration`` and ``scheduler`` are then ignored. ``plan`` is the whole watch plan
            (``/health`` → ``intercept`` for all receivers together).
        bearings, bearings_poll_s, bearing_store
            Direction-finder bearings (issue #22 item 1): ``bearings`` is ``--bearings SPEC`` (a
            file that is tailed, or an http(s) URL polled every ``bearings_poll_s`` seconds;
            :mod:`detector.app.bearings`), read from :meth:`start` on as the component
            ``bearings``; ``bearing_store`` the store the locator reads (give the same to
            ``track_locator(bearings=store.timeline(wall_start))``; a new one when None).
            ``POST /api/v1/bearings`` adds to it; ``/health`` → ``bearings``.
        """
        from detector.pipeline import Monitor
        from detector.pipeline.supervisor import Supervisor

        run_id = run_id or uuid.uuid4().hex[:12]
        app = cls(engine=None, monitor=None, run_id=run_id)
        try:
            added_wl = None
            if settings is not None:
                app._open_data(settings, site, say)
            if settings is not None and settings.dismissals:
                added_wl = settings.data_dir / "whitelist-added.csv"
                whitelist, n = with_added_whitelist(whitelist, added_wl, site)
                if n:
                    say(f"{n} channel(s) whitelisted by dismissals reloaded from {added_wl}")
            jammers = site_config.jammers_obj() if hasattr(site_config, "jammers_obj") else ()
            positions = None
            supervisor = Supervisor()  # the monitor's threads, GPS and push report to it (/health → components)
            app._attach_bearings_store(bearing_store, bearings, bearings_poll_s, supervisor)
            if gps is not None:
                from detector.app.gps import position_provider

                positions = position_provider(gps, component=supervisor.component("gps"))
            engine_kw = dict(baseline=baseline, whitelist=whitelist, site=site, sessions=sessions, wall_start=wall_start,
                             locate=locate, jammers=jammers)
            if receivers is not None and len(receivers) > 1:
                app._compose_receivers(receivers, engine_config, engine_kw, supervisor, positions, site=site,
                                       run_id=run_id, realtime=realtime, watchdog_s=watchdog_s, plan=plan,
                                       monitor_options=monitor_options)
            else:
                if receivers:
                    r = receivers[0]
                    source_factory, calibration, scheduler = r.source_factory, r.calibration, r.scheduler
                app.engine = build_engine(engine_config, calibration=calibration, **engine_kw)
                app.monitor = Monitor(source_factory, app.engine, store=app.store, site=site, run_id=run_id,
                                      scheduler=scheduler, realtime=realtime, watchdog_s=watchdog_s,
                                      resume=[a.id for a in app.reopened], positions=positions, supervisor=supervisor,
                                      **(monitor_options or {}))
                declared = getattr(app.engine, "declared_jammers", None)
                if declared is not None:  # /health → declared_jammers: name, band, state, level, since
                    app.monitor.health_sections["declared_jammers"] = declared.status
                if scheduler is not None and not scheduler.single:
                    attach_intercept(app.monitor, scheduler)
            app.monitor.health_sections["bearings"] = app.bearings.health
            if settings is not None:
                app._compose_api(settings, site_config, baseline, site, added_wl, push, stream, say)
                from detector.app.run_record import RUNS_DIR, RunRecorder

                plan_name = plan.name if plan is not None else (scheduler.plan.name if scheduler is not None else None)
                app.recorder = RunRecorder(settings.data_dir / RUNS_DIR, run_id, site, app.monitor.health, plan=plan_name)
            sender = app.sender
            if sender is not None and hasattr(sender, "delivered"):
                sender.component = supervisor.component("push", progress=lambda: sender.delivered)
        except BaseException:
            app._release()
            raise
        return app

    def _compose_receivers(self, receivers, engine_config, engine_kw: dict, supervisor, positions, *, site: str,
                           run_id: str, realtime: bool, watchdog_s: float, plan, monitor_options) -> None:
        """One engine and one monitor loop per receiver, grouped (:class:`~detector.pipeline.receivers.ReceiverGroup`)."""
        import time

        from detector.pipeline import Monitor
        from detector.pipeline.receivers import ReceiverGroup
        from detector.pipeline.supervisor import Supervisor

        on_alert: list = []
        on_event: list = []
        loops = []
        for k, r in enumerate(receivers):
            engine = build_engine(engine_config, calibration=r.calibration, track_prefix="T" if k == 0 else f"T{k}-",
                                  **engine_kw)
            mon = Monitor(r.source_factory, engine, store=self.store, site=site, run_id=run_id, scheduler=r.scheduler,
                          realtime=realtime, watchdog_s=watchdog_s, resume=[a.id for a in self.reopened],
                          positions=positions, supervisor=Supervisor(), receiver=r.name, receiver_index=k,
                          on_alert=on_alert, on_event=on_event, **(monitor_options or {}))
            if r.wall_clock:
                mon.capture.dwell_time = lambda b: time.monotonic() - b.samples.size / b.sample_rate_hz
            loops.append((r.name, mon, r.bands))
        group = ReceiverGroup(loops, supervisor=supervisor, site=site, run_id=run_id, on_alert=on_alert,
                              on_event=on_event)
        self.monitor, self.engine = group, group.engine
        if any(getattr(m.engine, "declared_jammers", None) is not None for _, m, _ in loops):
            group.health_sections["declared_jammers"] = lambda: _declared_status(loops)
        if plan is not None:
            attach_intercept(group, receivers[0].scheduler, plan=plan, receivers=len(loops),
                             captures=[m.capture for _, m, _ in loops])

    def _open_data(self, settings: AppSettings, site: str, say) -> None:
        from detector.alerts import open_store
        from detector.api.auth import load_or_create_token, token_file_note

        data_dir = settings.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--data-dir {data_dir}: cannot create it ({exc.strerror or exc})") from None
        if settings.lock:
            self._lock_file = lock_data_dir(data_dir)  # held for the life of the app
        self.token, self.token_path = load_or_create_token(data_dir, token=settings.token, token_file=settings.token_file)
        self.store = open_store(settings.db, data_dir=data_dir)
        if self.token_path is not None:
            say(token_file_note(self.token_path))
        self.reopened = list(self.store.open_alerts(site)) if settings.resume else []
        if self.reopened:
            say(f"{len(self.reopened)} open alert(s) of site {site!r} reloaded from the store; "
                f"a track on the same frequency continues its alert")

    def _compose_api(self, settings, site_config, baseline, site, added_wl, push, stream, say) -> None:
        from detector.api import ApiContext, create_app
        from detector.app.push import attach_push

        self.ctx = ApiContext(store=self.store, token=self.token, monitor=self.monitor, site=site_config,
                              sites_dir=settings.sites_dir, whitelist_file=added_wl,
                              baselines={site: baseline} if baseline is not None else {}, bearings=self.bearings)
        if stream or push is not None:
            self.sender = attach_push(self.ctx, self.monitor, push, say=say)  # the SSE route, and push with --push
        self.api = create_app(self.ctx)

    # ---- lifecycle --------------------------------------------------------------------------------
    def _attach_bearings_store(self, store, spec, poll_s, supervisor) -> None:
        from detector.app.bearings import BearingStore, parse_bearings_spec

        self.bearings = store if store is not None else BearingStore()
        self._supervisor = supervisor
        if spec is not None:
            parse_bearings_spec(spec)  # a bad spec is an InputError before anything starts
            if not poll_s > 0:
                raise InputError(f"--bearings-poll-s must be > 0, got {poll_s:g}")
            self._bearings_input = (spec, float(poll_s))

    def start(self) -> "MonitorApp":
        self.monitor.start()
        if self.recorder is not None:
            self.recorder.start()
        if self._bearings_input is not None and self._bearings_worker is None:
            from detector.app.bearings import start_bearings_input

            spec, poll_s = self._bearings_input
            self._bearings_worker = start_bearings_input(spec, self.bearings, self._supervisor, poll_s=poll_s)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """The shutdown sequence: the monitor (its queue drained into the store, open tracks ended),
        then the push sender (draining for up to 2 s; what is left stays in the outbox), then the
        store, then the data folder's lock. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._bearings_worker is not None:
            self._bearings_worker.stop()
        try:
            if self.monitor is not None:
                self.monitor.stop(timeout)
            if self.recorder is not None:
                self.recorder.stop()  # the run's end, with what it watched until now
        finally:
            self._release()

    def _release(self) -> None:
        from detector.app.push import PUSH_DRAIN_S

        if self._released:
            return
        self._released = True
        try:
            if self.sender is not None:
                self.sender.stop(timeout=5.0, drain_s=PUSH_DRAIN_S)
        finally:
            try:
                if self.store is not None:
                    self.store.close()
            finally:
                if self._lock_file is not None:
                    self._lock_file.close()
                    self._lock_file = None

    def threads_alive(self) -> list[str]:
        return self.monitor.threads_alive() if self.monitor is not None else []



def attach_intercept(monitor, scheduler, *, plan=None, receivers: int = 1, captures=None) -> None:
    """Keep the capture's dwell log and report the plan's catch rate in ``/health`` → ``intercept``
    (issue #19: nominal from the plan, achieved from the windows actually observed). Several
    receivers (``captures``) write into one log, each under its index; ``plan`` is then the whole
    plan (the scheduler holds one receiver's share)."""
    import time

    from detector.config.dwell_log import DwellLog, InterceptHealth
    from detector.config.intercept import ReceiverModel

    log = DwellLog()
    for cap in (captures if captures is not None else [monitor.capture]):
        cap.dwell_log = log
    model = ReceiverModel(sample_rate_hz=scheduler.sample_rate_hz, usable_fraction=scheduler.usable_fraction)
    monitor.health_sections["intercept"] = InterceptHealth(plan if plan is not None else scheduler.plan, log, model,
                                                           receivers=receivers, clock=time.monotonic)


def _declared_status(loops) -> list[dict]:
    """``/health`` → ``declared_jammers`` of several receivers: per jammer, the entry of the receiver
    that measured it last (with its ``receiver``)."""
    best: dict[str, dict] = {}
    for name, mon, _ in loops:
        dj = getattr(mon.engine, "declared_jammers", None)
        if dj is None:
            continue
        for e in dj.status():
            cur = best.get(e["name"])
            if cur is None or (e.get("measured_s") is not None and (cur.get("measured_s") is None
                                                                   or e["measured_s"] > cur["measured_s"])):
                best[e["name"]] = {**e, "receiver": name}
    return list(best.values())
