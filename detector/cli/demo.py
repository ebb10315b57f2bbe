"""``examwatch demo``: the whole job on the simulated exam site, end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import IntegrationOpt, console_err, integration_config, progress_bar
from detector.core.errors import InputError


def demo(
    scene: Annotated[str, typer.Option("--scene", help="Scene to run: sim:default or sim:PATH.toml.")] = "sim:default",
    seed: Annotated[Optional[int], typer.Option("--seed", help="Override the scene's seed.")] = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API and the dashboards while it runs.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="At the end print one JSON object with the score (and nothing else on stdout).")] = False,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where the baseline, the alerts (JSONL) and the ground truth are written.")] = Path("examwatch-demo"),
    exam_s: Annotated[Optional[float], typer.Option("--exam-s", help="Monitor only the first S seconds of the exam session (shortened demo).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address of the API served while the demo runs.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port of the API served while the demo runs.")] = 8750,
    integration: IntegrationOpt = True,
) -> None:
    """Survey the simulated site, then monitor an exam session while the vehicle drives its loop.

    Alerts are printed as they come; at the end the run is scored against the ground truth. With
    --json, stdout holds one object: {"pd", "false_alarms_per_hour", "nuisance_alerts",
    "tta_median_s", "freq_error_median_hz", "location_error_m", "alerts": [...]}.
    """
    from detector.app.monitor_app import MonitorApp, build_engine
    from detector.detection.engine import EngineConfig
    from detector.baseline import save
    from detector.detection import Channel, ExamSession, Whitelist
    from detector.localization.tracks import track_locator
    from detector.app.runs import survey_baseline
    from detector.sim.scene import scene_from_spec
    from detector.sim.score import score_alerts
    from detector.sim.sdr import SimSDR
    from detector.sim.truth import scene_truth, write_truth

    if exam_s is not None and exam_s <= 0:
        raise InputError(f"--exam-s must be > 0, got {exam_s}")
    sc = scene_from_spec(scene)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    site = sc.site.name
    console_err.print(f"[bold]examwatch demo[/]: scene {sc.name!r} (seed {sc.seed if seed is None else seed}), site {site}, "
                      f"dwell {sc.receiver.center_hz / 1e6:.3f} MHz ± {sc.receiver.sample_rate_hz / 2e6:.3f} MHz")

    # 1. survey before the exam
    survey_src = SimSDR(sc, seed=seed, window="survey")
    engine = build_engine()
    a, b = sc.timeline.survey
    with progress_bar(f"survey {a:.0f}–{b:.0f} s", survey_src.info.duration_s) as update:
        baseline = survey_baseline([survey_src], engine, site=site, progress=update, source_names=[scene])
    save(baseline, out_dir / "baseline.npz")
    console_err.print(f"survey: {int(baseline.frames.max())} frames, baseline → {out_dir / 'baseline.npz'}")

    # 2. monitoring during the exam session
    exam_src = SimSDR(sc, seed=seed, window="exam")
    if exam_s is not None:
        exam_src.t_end = min(exam_src.t_end, exam_src.t_start + exam_s)
    sessions = tuple(ExamSession(x, y, f"exam session {i + 1}") for i, (x, y) in enumerate(sc.timeline.exam))
    wl = Whitelist(tuple(Channel(e.f_c_hz, e.bandwidth_hz + 5e3, e.id) for e in sc.emitters if e.whitelisted))
    locate = track_locator(sc.site.lat0, sc.site.lon0, buildings=_buildings_llh(sc))
    settings = _api_settings(out_dir, host, port) if serve else None
    # no lock, no resumed alerts and no dismissal whitelist: every demo run starts afresh
    vehicle = MonitorApp.build(settings, source_factory=lambda: exam_src, site=site, baseline=baseline, whitelist=wl,
                               engine_config=EngineConfig(integration=integration_config(integration)),
                               sessions=sessions, locate=locate, stream=True, realtime=False, run_id="demo",
                               monitor_options={"block_samples": 1 << 18})
    engine, mon = vehicle.engine, vehicle.monitor
    server = _serve(vehicle, host, port) if settings is not None else None
    events: list[dict] = []
    announced: set[str] = set()
    announced_class: dict[str, str] = {}
    alerts_path = out_dir / "alerts.jsonl"
    fh = open(alerts_path, "w")

    def on_event(event):
        ev = event.to_json()  # the CLI is an edge: alerts.jsonl lines and console text
        events.append(ev)
        fh.write(json.dumps(ev) + "\n")
        if ev["alert"] and ev["track_id"] in announced and ev["classification"] != announced_class.get(ev["track_id"]):
            console_err.print(f"      {ev['track_id']} re-classified: {announced_class.get(ev['track_id'])} → "
                              f"{ev['classification']} (t={ev['last_seen_s']:.1f} s, {ev['bursts']} burst(s) seen)")
            announced_class[ev["track_id"]] = ev["classification"]
        if ev["alert"] and ev["track_id"] not in announced:
            announced.add(ev["track_id"])
            announced_class[ev["track_id"]] = ev["classification"]
            console_err.print(
                f"[bold red]ALERT[/] t={ev['last_seen_s']:.1f} s  {ev['track_id']}  {ev['center_hz'] / 1e6:.5f} MHz  "
                f"{ev['classification']}  {ev['severity']}  — {'; '.join(ev['reasons'][:2])}")
        elif ev["alert"] and ev.get("location") and ev["event"] == "update":
            loc = ev["location"]
            key = (loc["status"], round(loc["lat"], 5), round(loc["lon"], 5))
            if shown_loc.get(ev["track_id"]) != key:
                shown_loc[ev["track_id"]] = key
                if loc["status"] == "located":
                    console_err.print(f"      {ev['track_id']} located: {loc['lat']:.6f}, {loc['lon']:.6f} "
                                      f"(CEP50 {loc.get('cep50_m') or 0:.0f} m, {ev['classification']})")
                else:
                    # a coarse answer only: the strongest reading and a radius, with the reason
                    why = (loc.get("reason") or "").split(";")[0]
                    console_err.print(f"      {ev['track_id']} not localizable yet ({why}): near the strongest reading "
                                      f"{loc['lat']:.6f}, {loc['lon']:.6f}, within {loc.get('radius_m') or 0:.0f} m")

    shown_loc: dict = {}
    mon.on_event.append(on_event)
    with progress_bar(f"exam {exam_src.t_start:.0f}–{exam_src.t_end:.0f} s", exam_src.t_end - exam_src.t_start) as update:
        mon.start()
        while not mon.finished.wait(0.25):
            if mon.status.scene_time_s is not None:
                update(mon.status.scene_time_s - exam_src.t_start)
    mon.stop()
    fh.close()
    if server is not None:
        server.should_exit = True
    vehicle.stop()  # the store is closed
    truth = scene_truth(exam_src)
    truth["window"] = [exam_src.t_start, exam_src.t_end]
    write_truth(truth, out_dir / "truth.json")

    # 3. score against the truth
    result = score_alerts(events, truth)
    elapsed = time.monotonic() - t_start
    console_err.print(f"done in {elapsed:.1f} s: {engine.frames_processed} frames, {len(engine.all_tracks)} tracks, "
                      f"{len(announced)} alert(s); alerts → {alerts_path}, truth → {out_dir / 'truth.json'}")
    summary = {k: result[k] for k in ("pd", "false_alarms_per_hour", "nuisance_alerts", "tta_median_s",
                                      "freq_error_median_hz", "location_error_m")}
    summary.update({k: result[k] for k in ("false_alarms", "tta_p90_s", "freq_error_obs_median_hz",
                                           "classification_accuracy", "monitored_hours")})
    summary["alerts"] = result["alerts"]
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        from detector.cli.sim import print_score

        print_score(result)


def _api_settings(out_dir: Path, host: str, port: int):
    """The data folder of the API served while the demo runs (``out_dir/data``); None when the port
    is taken (the demo then runs without the API)."""
    import socket

    from detector.app.monitor_app import AppSettings

    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            console_err.print(f"[yellow]port {port} is in use: running without the API (use --port)[/]")
            return None
    return AppSettings(data_dir=out_dir / "data", lock=False, resume=False, dismissals=False)


def _serve(vehicle, host: str, port: int):
    """Serve the vehicle's API (the live stream as on a vehicle: the dashboard's alerts list
    follows it) in a thread."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(vehicle.api, host=host, port=port, log_level="warning"))
    threading.Thread(target=server.run, name="examwatch-demo-api", daemon=True).start()
    console_err.print(f"API on http://{host}:{port}/api/v1 while the demo runs (write token in {vehicle.token_path})")
    return server


def _buildings_llh(scene) -> list:
    from detector.sim.world import enu_to_llh

    return [[tuple(map(float, enu_to_llh(x, y, scene.site.lat0, scene.site.lon0))) for x, y in poly]
            for poly in scene.site.buildings]
