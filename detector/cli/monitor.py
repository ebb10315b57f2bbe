"""``examwatch monitor``: the live capture loop and the HTTP API, together, until stopped."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.app.monitor_app import MonitorSettings
from detector.cli._common import (CenterOpt, DriftIntervalOpt, FormatOpt, IntegrationOpt, PpmRefOpt, RateOpt, console_err,
                                  integration_config, live_drift, opt_hz, positive_hz, utf8_path)
from detector.cli._server import Server, check_listen, stop_on_signals
from detector.core.errors import InputError
from detector.core.textfile import read_text

log = logging.getLogger("examwatch.monitor")


def _settings(config: Path | None) -> MonitorSettings:
    if config is None:
        return MonitorSettings()
    import tomllib

    if not config.is_file():
        raise InputError(f"{config}: config file not found")
    try:
        data = tomllib.loads(read_text(config, "--config"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{config}: not valid TOML ({exc})") from None
    return MonitorSettings(**data.get("monitor", data))


def monitor(
    site: Annotated[str, typer.Option("--site", help="Site name (looked up in --sites-dir) or a site TOML path: sessions, whitelist, declared exam-room jammers (\\[\\[jammer]]), receivers (\\[\\[receiver]]).")],
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Site baseline from `examwatch survey`.")] = None,
    plan: Annotated[Optional[Path], typer.Option("--plan", help="Watch plan TOML (bands, priority, dwell, revisit). Default: the site's plan, else dwell on --center (or the default exam-band plan for rtlsdr: without --center).")] = None,
    gps: Annotated[Optional[str], typer.Option("--gps", help="Receiver position: fixed:LAT,LON, an NMEA/GPX log, or gpsd: (sim: sources carry their own).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Alert store URL (default: SQLite in the data directory; postgresql://... for PostgreSQL).")] = None,
    host: Annotated[Optional[str], typer.Option("--host", help="API address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="API port (default 8750).")] = None,
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help="File holding the API write token (created, mode 0600, when missing).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where the store, token and evidence live (default ./examwatch-data).")] = None,
    sites_dir: Annotated[Optional[Path], typer.Option("--sites-dir", help="Folder of site TOML files (default ./sites).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file with monitor settings (also EXAMWATCH_* variables).")] = None,
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Pace sim: sources to the wall clock (default: as fast as the CPU allows).")] = False,
    exit_when_done: Annotated[bool, typer.Option("--exit-when-done", help="Stop when a finite source (recording, scene) ends instead of serving on.")] = False,
    watchdog_s: Annotated[Optional[float], typer.Option("--watchdog-s", help="A source silent this long is degraded and reopened (default 5 s).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of sim: sources.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Logging level on stderr.")] = "info",
    profile: Annotated[Optional[Path], typer.Option("--profile", help="Calibration profile of the dongle (examwatch calibrate).")] = None,
    profiles_dir: Annotated[Path, typer.Option("--profiles-dir", help="Folder of calibration profiles, looked up by the dongle's serial.")] = Path("profiles"),
    ppm_reference: PpmRefOpt = None,
    drift_interval_s: DriftIntervalOpt = 10.0,
    fft_backend: Annotated[str, typer.Option("--fft-backend", help="FFT of the spectra: auto (pyFFTW when installed, else scipy), scipy or pyfftw.")] = "auto",
    push: Annotated[Optional[str], typer.Option("--push", help="Push alert changes to a command center: http(s)://CENTER:PORT (webhook) or mqtt://BROKER:PORT.")] = None,
    vehicle_id: Annotated[Optional[str], typer.Option("--vehicle-id", help="This vehicle's id at the center (default: the host name).")] = None,
    push_token_file: Annotated[Optional[Path], typer.Option("--push-token-file", help="File holding this vehicle's token for the center (http(s) push).")] = None,
    integration: IntegrationOpt = True,
    bearings: Annotated[Optional[str], typer.Option("--bearings", help="Direction-finder bearings fused with the tracks' received power: a file that is tailed (KrakenSDR DoA lines, or the plain CSV/JSON lines of `locate --bearings`) or an http(s):// URL polled every --bearings-poll-s (KrakenSDR: http://KRAKEN:8081/DOA_value.html). POST /api/v1/bearings adds more.")] = None,
    bearings_poll_s: Annotated[float, typer.Option("--bearings-poll-s", help="With --bearings URL: seconds between polls.")] = 1.0,
    source: Annotated[Optional[list[str]], typer.Argument(
        help="sim:default, sim:SCENE.toml, rtlsdr:0, or a recording (any format of `spectrum`). Repeat it for several "
             "receivers in one monitor (one store, one API; the plan's bands are shared between them); "
             "sim:default?receivers=4 is four simulated receivers. Default: the site file's \\[\\[receiver]] tables.",
        show_default=False, metavar="SOURCE")] = None,
) -> None:
    """Run the capture loop and the HTTP API together; stop with Ctrl-C or SIGTERM (the store stays consistent).

    Alerts are stored before anyone is told; `GET /api/v1/health` answers {"status": "ok"|"degraded", ...}.
    """
    import uvicorn

    from detector.app.monitor_app import AppSettings, MonitorApp
    from detector.app.monitor_setup import (baseline_warnings, check_drift_in_plan, open_monitor_source,
                                            resolve_monitor_site, revisit_warning, watch_scheduler)
    from detector.app.push import PushSettings
    from detector.detection.engine import EngineConfig
    from detector.localization.tracks import track_locator
    from detector.sources import source_kind

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the capture and processing threads share the interpreter with the API: hand the GIL over
    # more often so that requests are not held behind a processing step (bench: api_p99_ms)
    import sys as _sys

    _sys.setswitchinterval(0.001)
    st = _settings(config)
    st.push_url, st.vehicle_id, st.push_token_file = push or st.push_url, vehicle_id or st.vehicle_id, push_token_file or st.push_token_file
    db = db or st.db
    host = host or st.host
    port = port if port is not None else st.port
    data_dir = data_dir or st.data_dir
    sites_dir = sites_dir or st.sites_dir
    watchdog = watchdog_s if watchdog_s is not None else st.watchdog_s
    if not 0 < watchdog < float("inf"):
        raise InputError(f"--watchdog-s must be a number of seconds > 0, got {watchdog}")
    from detector.dsp import fft_backends

    if fft_backend not in ("auto", *fft_backends()):
        raise InputError(f"--fft-backend {fft_backend!r}: use auto or one of {', '.join(fft_backends())}")
    if not 0 < port < 65536:
        raise InputError(f"--port must be 1–65535, got {port}")
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise InputError(f"--log-level {log_level!r}: use debug, info, warning or error")
    utf8_path(data_dir, "--data-dir")
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir} is a file, not a folder")
    tf = token_file or st.token_file
    if tf is not None and Path(tf).is_dir():
        raise InputError(f"--token-file {tf} is a folder")
    gps_track = None
    if gps:
        from detector.sources.gps import parse_gps_spec

        gps_track = parse_gps_spec(gps)  # checked before anything starts: a bad spec is exit 2
    from detector.app.bearings import BearingStore, parse_bearings_spec

    if bearings is not None:
        parse_bearings_spec(bearings)  # a bad spec is exit 2, before anything starts
    if not 0 < bearings_poll_s < float("inf"):
        raise InputError(f"--bearings-poll-s must be a number of seconds > 0, got {bearings_poll_s}")
    bearing_store = BearingStore()  # the app's (POST /api/v1/bearings too), read by the locator
    check_listen(host, port)
    from detector.app.receivers import receiver_entries

    site_receivers = ()
    if not source:  # the site file's [[receiver]] tables (a sim: site has none)
        from detector.config.site import resolve_site

        site_receivers = tuple(resolve_site(site, sites_dir).receivers) if _is_site_file(site, sites_dir) else ()
    entries, ignored = receiver_entries(source or [], site_receivers)
    if ignored:
        console_err.print(f"[yellow]warning:[/] {ignored}", highlight=False)
    source = entries[0].spec
    rate_hz = positive_hz(rate, "--rate")
    center_hz = opt_hz(center, "--center")
    kind = source_kind(source)
    for e in entries:
        if source_kind(e.spec) == "sweep":
            raise InputError(f"{e.spec}: monitor needs IQ (a sweep CSV holds spectra; use replay)")
    drift = live_drift(ppm_reference, drift_interval_s, sim=kind == "sim")
    scene = None
    if kind == "sim":
        from detector.sim.scene import scene_from_spec

        scene = scene_from_spec(source)
    site_cfg, warning = resolve_monitor_site(site, sites_dir, scene)
    if warning:
        console_err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    plan_path = plan or (Path(site_cfg.plan) if site_cfg.plan else None)
    from detector.app.monitor_setup import first_tune_hz

    # a dongle without --center opens on the plan's first hop (the default exam-band plan's without
    # --plan); the scheduler below, given center_hz None, hops over the whole plan
    open_center_hz = first_tune_hz(kind, plan_path, center_hz, rate_hz)
    if len(entries) > 1:
        if profile is not None:
            raise InputError("--profile is one dongle's: with several receivers give each its profile in its [[receiver]] "
                             "table (or keep the profiles in --profiles-dir, found by serial)")
        from detector.app.monitor_setup import open_monitor_source as _open
        from detector.app.receivers import open_receivers

        opened = open_receivers(entries, open_one=lambda spec, sim_receiver, profile: _open(
            spec, sample_format=format, sample_rate_hz=rate_hz, center_hz=open_center_hz, seed=seed, realtime=realtime,
            profile=profile, profiles_dir=profiles_dir, sim_receiver=sim_receiver))
    else:
        opened = None
        if entries[0].config is not None and entries[0].config.profile and profile is None:
            profile = Path(entries[0].config.profile)
    src = opened[0].source if opened else open_monitor_source(
        source, sample_format=format, sample_rate_hz=rate_hz, center_hz=open_center_hz, seed=seed, realtime=realtime,
        profile=profile, profiles_dir=profiles_dir)
    info = src.info
    from detector.app.correction import load_correction, profile_warnings
    from detector.app.gps import track_positions

    receivers = whole_plan = None
    if opened:
        receivers, whole_plan, scheduler = _receiver_specs(opened, kind, plan_path, center_hz, drift, ppm_reference,
                                                           drift_interval_s, profiles_dir)
        correction = receivers[0].calibration
    else:
        scheduler = watch_scheduler(kind, plan_path, center_hz, info)
        correction = load_correction(profile, serial=info.serial, profiles_dir=profiles_dir,
                                     hardware_ppm=src.hardware_ppm, drift=drift)
    late = revisit_warning(scheduler) if not opened else _plan_warning(whole_plan, len(opened), info.sample_rate_hz)
    if late:
        console_err.print(f"[yellow]warning:[/] {late}", highlight=False)
    if not opened:
        check_drift_in_plan(drift, scheduler, info.sample_rate_hz)
    base = None
    if baseline is not None:
        from detector.baseline import load

        base = load(baseline)
        cover = scheduler if not opened or whole_plan is None else _whole_scheduler(whole_plan, info.sample_rate_hz)
        for w in baseline_warnings(base, src.first, cover, site=site_cfg.name,
                                   plan_given=plan_path is not None or bool(opened)):
            console_err.print(f"[yellow]warning:[/] {w}")
    live = kind == "rtlsdr" or realtime
    say = lambda line: console_err.print(line)  # noqa: E731
    wall_start = info.start
    vehicle = MonitorApp.build(
        AppSettings(data_dir=data_dir, db=db, token=st.token, token_file=token_file or st.token_file, sites_dir=sites_dir),
        source_factory=src.factory, site=site_cfg.name, site_config=site_cfg,
        engine_config=EngineConfig(fft_backend=fft_backend, integration=integration_config(integration)), baseline=base, whitelist=site_cfg.whitelist_obj(),
        sessions=site_cfg.exam_sessions(wall_start), wall_start=wall_start,
        locate=track_locator(site_cfg.lat, site_cfg.lon, buildings=site_cfg.buildings,
                             positions=track_positions(gps_track, wall_start),
                             bearings=bearing_store.timeline(wall_start)) if (scene is not None or gps) else None,
        calibration=correction, gps=gps_track,
        push=PushSettings(st.push_url, st.vehicle_id, st.push_token_file) if st.push_url else None, stream=True,
        scheduler=scheduler, realtime=live, watchdog_s=watchdog, say=say, receivers=receivers, plan=whole_plan,
        bearings=bearings, bearings_poll_s=bearings_poll_s, bearing_store=bearing_store)
    if correction is not None and correction.profile_id is not None:
        console_err.print(f"calibration profile {correction.profile_id} applied")
    if drift is not None:
        console_err.print(f"frequency error tracked from the carrier at {drift.reference_hz / 1e6:.6f} MHz every "
                          f"{drift.interval_s:g} s (GET /api/v1/health → calibration.drift)")
    for w in profile_warnings(base, correction):
        console_err.print(f"[yellow]warning:[/] {w}")
    mon, run_id, api = vehicle.monitor, vehicle.run_id, vehicle.api
    server = Server(uvicorn.Config(api, host=host, port=port, log_level="warning", lifespan="on"))
    mon.on_alert.append(lambda ev, alert: console_err.print(
        f"[bold red]ALERT[/] {alert.id if alert else ev.track_id} {ev.center_hz / 1e6:.5f} MHz {ev.classification} "
        f"({ev.kind}, v{alert.version if alert else '-'})") if ev.kind == "new" or (alert and alert.version == 1) else None)
    vehicle.start()
    if receivers:
        for r, o in zip(receivers, opened):
            console_err.print(f"receiver {r.name}: {o.info.name}, bands {', '.join(r.bands)}", highlight=False,
                              markup=False)
        what = f"{len(receivers)} receivers"
    else:
        what = info.name
    console_err.print(f"monitoring {what} for site {site_cfg.name!r}; API on http://{host}:{port}/api/v1 (run {run_id})",
                      markup=False)
    if exit_when_done:
        def stop_when_done():
            mon.finished.wait()
            server.should_exit = True
        threading.Thread(target=stop_when_done, daemon=True).start()
    stop_on_signals(server)
    try:
        server.run()
    finally:
        vehicle.stop()  # monitor → push sender (drained) → store
        console_err.print("monitor stopped; the store is consistent")
        stuck = vehicle.threads_alive()
        if stuck and not getattr(server, "startup_failed", False) and server.started:
            # a thread stuck in a native call (a USB read that never returns) must not meet the
            # interpreter's shutdown (that aborts the process): everything is stored, leave now
            console_err.print(f"[yellow]warning:[/] {', '.join(stuck)} did not stop; exiting without waiting for it")
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(0)
    if getattr(server, "startup_failed", False) or not server.started:
        raise InputError(f"the API could not listen on {host}:{port} (in use?)")


def _is_site_file(site: str, sites_dir: Path) -> bool:
    return Path(site).is_file() or (sites_dir / f"{site}.toml").is_file()


def _whole_scheduler(plan, sample_rate_hz: float):
    from detector.config.plan import Scheduler

    return Scheduler(plan, sample_rate_hz)


def _plan_warning(plan, n: int, sample_rate_hz: float) -> str | None:
    """The bands N receivers cannot revisit in time (one line; None: they keep up, or no plan)."""
    if plan is None:
        return None
    from detector.config.intercept import ReceiverModel, plan_catch, revisit_summary

    return revisit_summary(plan_catch(plan, n, model=ReceiverModel(sample_rate_hz=sample_rate_hz)))


def _receiver_specs(opened, kind, plan_path, center_hz, drift, ppm_reference, drift_interval_s, profiles_dir):
    """Several receivers: the whole plan, each receiver's share and calibration (its profile, found
    by serial, and ``--ppm-reference`` tracking on the receivers whose bands hold it)."""
    from detector.app.correction import load_correction
    from detector.app.receivers import receiver_specs, receivers_plan
    from detector.cli._common import live_drift

    info = opened[0].info
    plan = receivers_plan(kind, plan_path, center_hz, info, len(opened))
    used = []

    def calibration_of(o, sch):
        cfg = o.entry.config
        holds = drift is not None and any(abs(drift.reference_hz - h.center_hz) < 0.45 * o.info.sample_rate_hz
                                          for h in sch.hops)
        own_drift = live_drift(ppm_reference, drift_interval_s, sim=kind == "sim") if holds else None
        if holds:
            used.append(o.name)
        return load_correction(Path(cfg.profile) if cfg is not None and cfg.profile else None, serial=o.info.serial,
                               profiles_dir=profiles_dir, hardware_ppm=o.source.hardware_ppm, drift=own_drift)

    specs = receiver_specs(opened, plan, calibration_of=calibration_of, wall_clock=kind != "sim")
    if drift is not None and not used:
        raise InputError(f"--ppm-reference {drift.reference_hz / 1e6:.6f} MHz is in none of the receivers' bands")
    return specs, plan, specs[0].scheduler
