"""``examwatch monitor``: the live capture loop and the HTTP API, together, until stopped."""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict

from detector.cli import app
from detector.cli._common import CenterOpt, DriftIntervalOpt, FormatOpt, PpmRefOpt, RateOpt, console_err, live_drift, opt_hz, positive_hz, utf8_path
from detector.cli._server import Server, check_listen, stop_on_signals
from detector.core.errors import InputError
from detector.core.textfile import read_text

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


@app.command()
def monitor(
    source: Annotated[str, typer.Argument(help="sim:default, sim:SCENE.toml, rtlsdr:0, or a recording (any format of `spectrum`).")],
    site: Annotated[str, typer.Option("--site", help="Site name (looked up in --sites-dir) or a site TOML path.")],
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
) -> None:
    """Run the capture loop and the HTTP API together; stop with Ctrl-C or SIGTERM (the store stays consistent).

    Alerts are stored before anyone is told; `GET /api/v1/health` answers {"status": "ok"|"degraded", ...}.
    """
    import uvicorn

    from detector.api import ApiContext, create_app
    from detector.api.auth import load_or_create_token
    from detector.detection.engine import DetectionEngine, EngineConfig
    from detector.localization.tracks import track_locator
    from detector.pipeline import Monitor
    from detector.config.plan import Scheduler, load_plan, single_band_plan
    from detector.config.site import resolve_site
    from detector.app.sources import open_source
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
    from detector.api.auth import token_file_note

    check_listen(host, port)
    drift = live_drift(ppm_reference, drift_interval_s, sim=source_kind(source) == "sim")
    rate_hz = positive_hz(rate, "--rate")
    center_hz = opt_hz(center, "--center")
    kind = source_kind(source)
    if kind == "sweep":
        raise InputError(f"{source}: monitor needs IQ (a sweep CSV holds spectra; use replay)")
    scene = None
    if kind == "sim":
        from detector.sim.scene import scene_from_spec

        scene = scene_from_spec(source)
    if scene is not None:
        from detector.sim.site import site_from_scene

        site_cfg = resolve_site(site, sites_dir, fallback=site_from_scene(scene, site))
    else:
        site_cfg = resolve_site(site, sites_dir)
    if scene is None and not Path(site).suffix == ".toml" and not Path(site).is_file() and \
            not (sites_dir / f"{site}.toml").is_file():
        console_err.print(f"[yellow]warning:[/] no site file {sites_dir / (site + '.toml')}: monitoring site {site!r} "
                          "without exam sessions, whitelist or position (a site TOML: README, monitor, Site)", highlight=False)
    hardware_ppm = 0.0
    if kind == "rtlsdr":
        # a dongle's profile (given, or found by its serial) sets the tuner's freq_correction to its
        # integer ppm; the remainder is corrected digitally below
        from detector.app.correction import load_correction as _lc
        from detector.sources.rtlsdr import parse_rtlsdr_spec

        parsed = parse_rtlsdr_spec(source)
        prof_corr = _lc(profile, serial=parsed.serial, profiles_dir=profiles_dir)
        if prof_corr is not None and parsed.ppm == 0 and prof_corr.ppm:
            hardware_ppm = float(round(prof_corr.ppm))
            source = f"{source}{',' if ':' in source else ':'}ppm={int(hardware_ppm)}"

    def factory():
        return open_source(source, sample_format=format, sample_rate_hz=rate_hz, center_hz=center_hz,
                           sim_window="exam", sim_seed=seed, realtime=realtime)

    first = factory()  # fail fast on a bad source (exit 2) before serving anything
    info = first.info
    if kind == "rtlsdr":
        first.close()
    scheduler = None
    plan_path = plan or (Path(site_cfg.plan) if site_cfg.plan else None)
    if plan_path is not None:
        if kind not in ("rtlsdr", "sim"):
            raise InputError("--plan needs a tunable source (rtlsdr: or sim:)")
        scheduler = Scheduler(load_plan(plan_path), info.sample_rate_hz)
    elif kind == "rtlsdr" and center_hz is None:
        from detector.config.plan import default_plan

        scheduler = Scheduler(default_plan(), info.sample_rate_hz)
    else:
        scheduler = Scheduler(single_band_plan(info.center_hz, info.sample_rate_hz), info.sample_rate_hz)
    if drift is not None and not any(abs(drift.reference_hz - h.center_hz) < 0.45 * info.sample_rate_hz for h in scheduler.hops):
        raise InputError(f"--ppm-reference {drift.reference_hz / 1e6:.6f} MHz is in none of the bands watched "
                         f"({', '.join(f'{h.center_hz / 1e6:.3f} MHz' for h in scheduler.hops[:4])}"
                         f"{' …' if len(scheduler.hops) > 4 else ''}; ± {0.45 * info.sample_rate_hz / 1e6:.3f} MHz)")

    base = None
    if baseline is not None:
        from detector.baseline import load

        base = load(baseline)
        from detector.baseline.check import check_baseline

        from detector.baseline.check import check_plan_coverage

        warnings = check_baseline(base, [first], DetectionEngine(EngineConfig()), site=site_cfg.name)
        if plan_path is not None or not scheduler.single:  # every hop of a plan, not only where the source starts
            warnings += check_plan_coverage(base, [h.center_hz for h in scheduler.hops], 0.45 * info.sample_rate_hz)
        for w in warnings:
            console_err.print(f"[yellow]warning:[/] {w}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--data-dir {data_dir}: cannot create it ({exc.strerror or exc})") from None
    _lock = _lock_data_dir(data_dir)  # noqa: F841 - held (open) for the life of the process
    from detector.alerts import open_store

    token, token_path = load_or_create_token(data_dir, token=st.token, token_file=token_file or st.token_file)
    store = open_store(db, data_dir=data_dir)
    if token_path is not None:
        console_err.print(token_file_note(token_path))
    reopened = store.open_alerts(site_cfg.name)
    if reopened:
        console_err.print(f"{len(reopened)} open alert(s) of site {site_cfg.name!r} reloaded from the store; "
                          f"a track on the same frequency continues its alert")
    wall_start = info.start
    locate = track_locator(site_cfg.lat, site_cfg.lon, buildings=site_cfg.buildings) if (scene is not None or gps) else None
    from detector.app.correction import load_correction, profile_warnings

    correction = load_correction(profile, serial=info.serial, profiles_dir=profiles_dir, hardware_ppm=hardware_ppm, drift=drift)
    if correction is not None and correction.profile_id is not None:
        console_err.print(f"calibration profile {correction.profile_id} applied")
    if drift is not None:
        console_err.print(f"frequency error tracked from the carrier at {drift.reference_hz / 1e6:.6f} MHz every "
                          f"{drift.interval_s:g} s (GET /api/v1/health → calibration.drift)")
    for w in profile_warnings(base, correction):
        console_err.print(f"[yellow]warning:[/] {w}")
    whitelist = site_cfg.whitelist_obj()
    added_wl = data_dir / "whitelist-added.csv"
    if added_wl.is_file():
        from detector.detection import Whitelist, load_whitelist

        added = [c for c in load_whitelist(added_wl).channels if c.site in (None, site_cfg.name)]
        if added:
            whitelist = Whitelist(whitelist.channels + tuple(added), whitelist.far_above_db)
            console_err.print(f"{len(added)} channel(s) whitelisted by dismissals reloaded from {added_wl}")
    engine = DetectionEngine(EngineConfig(fft_backend=fft_backend), baseline=base, whitelist=whitelist, site=site_cfg.name,
                             sessions=site_cfg.exam_sessions(wall_start), wall_start=wall_start, locate=locate,
                             correct=correction)
    run_id = uuid.uuid4().hex[:12]
    live = kind == "rtlsdr" or realtime
    pending = [first] if kind != "rtlsdr" else []

    def source_factory():
        """The source opened above first, then a fresh one on every reopen."""
        return pending.pop() if pending else factory()

    mon = Monitor(source_factory, engine, store=store, site=site_cfg.name, run_id=run_id, scheduler=scheduler, realtime=live,
                  watchdog_s=watchdog, resume=[a.id for a in reopened])
    if gps_track is not None:
        _attach_gps(mon, gps_track)
    ctx = ApiContext(store=store, token=token, monitor=mon, site=site_cfg, sites_dir=sites_dir, whitelist_file=added_wl,
                     baselines={site_cfg.name: base} if base is not None else {})
    from detector.app.push import attach_push

    attach_push(ctx, mon, st)  # the SSE route, and push to a command center with --push
    api = create_app(ctx)
    server = Server(uvicorn.Config(api, host=host, port=port, log_level="warning", lifespan="on"))
    mon.on_alert.append(lambda ev, alert: console_err.print(
        f"[bold red]ALERT[/] {alert.id if alert else ev.track_id} {ev.center_hz / 1e6:.5f} MHz {ev.classification} "
        f"({ev.kind}, v{alert.version if alert else '-'})") if ev.kind == "new" or (alert and alert.version == 1) else None)
    mon.start()
    console_err.print(f"monitoring {info.name} for site {site_cfg.name!r}; API on http://{host}:{port}/api/v1 (run {run_id})")
    if exit_when_done:
        def stop_when_done():
            mon.finished.wait()
            server.should_exit = True
        threading.Thread(target=stop_when_done, daemon=True).start()
    stop_on_signals(server)
    try:
        server.run()
    finally:
        mon.stop()
        store.close()
        console_err.print("monitor stopped; the store is consistent")
        stuck = mon.threads_alive()
        if stuck and not getattr(server, "startup_failed", False) and server.started:
            # a thread stuck in a native call (a USB read that never returns) must not meet the
            # interpreter's shutdown (that aborts the process): everything is stored, leave now
            console_err.print(f"[yellow]warning:[/] {', '.join(stuck)} did not stop; exiting without waiting for it")
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(0)
    if getattr(server, "startup_failed", False) or not server.started:
        raise InputError(f"the API could not listen on {host}:{port} (in use?)")


def _lock_data_dir(data_dir: Path):
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


def _attach_gps(mon, track, *, gpsd_retry_s: float = 5.0) -> None:
    """Give blocks without a position the receiver position of ``--gps`` (a parsed
    :func:`~detector.sources.gps.parse_gps_spec`: a fixed position, a log, or gpsd)."""
    from dataclasses import replace

    from detector.core.types import Position

    eng = mon.engine
    orig = eng.frames_of_block
    fixed = Position(float(track.lat[0]), float(track.lon[0])) if getattr(track, "is_fixed", False) else None
    live = _follow_gpsd(track, retry_s=gpsd_retry_s) if hasattr(track, "fixes") else None

    def with_position(block):
        if block.position is None:
            if fixed is not None:
                block = replace(block, position=fixed)
            elif live is not None:
                pos = live()
                if pos is not None:
                    block = replace(block, position=pos)
            elif block.start is not None and hasattr(track, "at"):
                at = track.at(block.start.timestamp())
                if at is not None:
                    block = replace(block, position=Position(*at[:2]))
        return orig(block)

    eng.frames_of_block = with_position


#: a live gpsd fix older than this is not used (the vehicle may have moved; no position is better)
GPSD_MAX_AGE_S = 5.0


def _follow_gpsd(client, *, retry_s: float = 5.0):
    """Follow a gpsd client in a daemon thread; returns ``latest() -> Position | None`` (None while
    no fix is younger than :data:`GPSD_MAX_AGE_S`). A lost gpsd is logged once and retried every
    ``retry_s`` seconds."""
    import time

    from detector.core.types import Position

    state: dict = {"pos": None, "at": -1e9}

    def run() -> None:
        down = False
        while True:
            try:
                for fix in client.fixes():
                    state["pos"], state["at"] = Position(fix.lat, fix.lon), time.monotonic()
                    if down:
                        log.warning("gpsd is back: positions attached again")
                        down = False
            except Exception as exc:  # noqa: BLE001 - a lost gpsd must not stop the monitor
                if not down:
                    log.warning("gpsd lost (%s): readings carry no position until it is back; retrying", exc)
                    down = True
            time.sleep(retry_s)

    threading.Thread(target=run, name="examwatch-gpsd", daemon=True).start()

    def latest():
        return state["pos"] if time.monotonic() - state["at"] <= GPSD_MAX_AGE_S else None

    return latest
