"""``examwatch survey`` (the site baseline) and ``examwatch replay`` (detection over recordings)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import (CenterOpt, DriftIntervalOpt, FormatOpt, IntegrationOpt, PpmRefOpt, RateOpt, check_figure_path,
                                   check_out_path, check_reference_in_band, console_err, integration_config, live_drift,
                                   progress_bar)
from detector.cli._sources import open_all
from detector.app.monitor_app import build_engine
from detector.detection.engine import EngineConfig, center_moved
from detector.core.errors import InputError
from detector.core.units import format_hz
from detector.app.runs import run_detection, survey_baseline, total_duration_s

SourcesArg = Annotated[list[str], typer.Argument(help="IQ recordings (any format of `spectrum`), rtl_power CSVs, sim:default / sim:SCENE.toml, or rtlsdr:0; read one after another as one timeline.")]
DurationOpt = Annotated[Optional[float], typer.Option("--duration", help="Seconds to read from each source (needed for rtlsdr:, optional elsewhere).")]
TzOpt = Annotated[str, typer.Option("--tz", help="Time zone of sweep CSV timestamps that carry none (rtl_power writes local time): an IANA name such as Asia/Shanghai, or UTC.")]
ProfileOpt = Annotated[Optional[Path], typer.Option("--profile", help="Calibration profile of the dongle (examwatch calibrate): ppm, DC/IQ correction applied to the samples.")]
ProfilesDirOpt = Annotated[Path, typer.Option("--profiles-dir", help="Folder of calibration profiles, looked up by the serial of an rtlsdr: dongle when --profile is not given.")]


def _correction(profile: Path | None, srcs, drift=None, profiles_dir: Path | None = None):
    """The calibration correction for --profile (checked against a dongle serial when the source
    has one), else the profile of the dongle's serial in ``profiles_dir``, and/or --ppm-reference
    drift tracking."""
    from detector.app.correction import load_correction

    serial = next((getattr(getattr(s, "info", None), "serial", None) for s in srcs if getattr(getattr(s, "info", None), "serial", None)), None)
    corr = load_correction(profile, serial=serial, profiles_dir=profiles_dir, drift=drift)
    if corr is not None and profile is None and corr.profile_id is not None:
        console_err.print(f"calibration profile {corr.profile_id} of dongle {serial} applied (from {profiles_dir})")
    return corr


def _drift_summary(drift) -> None:
    """One stderr line on the frequency error tracked with --ppm-reference."""
    if drift is None:
        return
    d = drift.status()
    if d["n_windows"]:
        n = d["n_windows"]
        console_err.print(f"frequency error tracked from {format_hz(d['reference_hz'])}: {n} estimate{'s' if n != 1 else ''}, "
                          f"{d.get('first_ppm', d['last_ppm']):+.3f} → {d['last_ppm']:+.3f} ppm, model "
                          f"{d.get('model', 'last estimate')}, residual rms {d.get('residual_rms_ppm', 0.0):.3f} ppm")
    else:
        console_err.print(f"[yellow]warning:[/] --ppm-reference {format_hz(d['reference_hz'])}: no estimate "
                          f"({d['last_error'] or 'the reference is outside the band'})")


def _check_positive(value: float | None, name: str) -> None:
    if value is not None and not value > 0:
        raise InputError(f"{name} must be > 0, got {value}")


def _scene_context(sources: list[str]):
    """Sessions, whitelist and wall clock implied by a sim: source (else empty)."""
    from detector.detection import Channel, ExamSession, Whitelist

    for spec in sources:
        if spec.startswith("sim:"):
            from detector.sim.scene import scene_from_spec

            scene = scene_from_spec(spec)
            sessions = tuple(ExamSession(a, b, f"exam session {i + 1}") for i, (a, b) in enumerate(scene.timeline.exam))
            wl = Whitelist(tuple(Channel(e.f_c_hz, e.bandwidth_hz + 5e3, e.id, None) for e in scene.emitters if e.whitelisted))
            return scene, sessions, wl
    return None, (), None


def survey(
    sources: SourcesArg,
    site: Annotated[str, typer.Option("--site", help="Site name recorded in the baseline.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Baseline file to write (exactly this path). Default: SITE.baseline.npz")] = None,
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    merge: Annotated[Optional[Path], typer.Option("--merge", help="Merge into this existing baseline (other hops, other days).")] = None,
    frame_s: Annotated[float, typer.Option("--frame-s", help="Frame length (s); use the same for replay/monitor.")] = EngineConfig.frame_s,
    duration: DurationOpt = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of sim: sources (default: the scene's).")] = None,
    profile: ProfileOpt = None,
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    ppm_reference: PpmRefOpt = None,
    drift_interval_s: DriftIntervalOpt = 10.0,
    png: Annotated[Optional[Path], typer.Option("--png", help="Draw the baseline (median, p90–p99, max, occupancy) to this PNG/SVG file.")] = None,
    tz: TzOpt = "UTC",
) -> None:
    """Survey a site before the exam: per-bin statistics of every frame of SOURCE... → a baseline file.

    Survey with the same --profile / --ppm-reference as the monitoring run, so that known stations
    sit at the same frequencies in the baseline and in the exam.

    For sim: sources the survey window of the scene is read.
    """
    from detector.baseline import load, merge as merge_baselines, save

    _check_positive(frame_s, "--frame-s")
    _check_positive(duration, "--duration")
    path = out or Path(f"{site}.baseline.npz")
    check_out_path(path, what="--out", sources=sources)
    if png is not None:
        check_figure_path(png)
    drift = live_drift(ppm_reference, drift_interval_s, sim=any(src.startswith("sim:") for src in sources))
    srcs = open_all(sources, format, rate, center, sim_window="survey", sim_seed=seed, tz=tz)
    if duration is None and any(getattr(getattr(s, "info", None), "n_samples", 0) is None for s in srcs):
        raise InputError("a live source needs --duration (seconds to survey)")
    check_reference_in_band(drift, srcs)
    engine = build_engine(EngineConfig(frame_s=frame_s), calibration=_correction(profile, srcs, drift, profiles_dir))
    total = total_duration_s(srcs) if duration is None else duration * len(srcs)
    with progress_bar(f"surveying {site}", total) as update:
        baseline = survey_baseline(srcs, engine, site=site, progress=update, max_duration_s=duration, source_names=sources)
    if merge is not None:
        try:
            baseline = merge_baselines(load(merge), baseline)
        except ValueError as exc:
            raise InputError(f"--merge {merge}: {exc}") from None
    save(baseline, path)
    _drift_summary(drift)
    if png is not None:
        from dashboards import environment_figure, save_figure

        save_figure(environment_figure(baseline, title=f"baseline of site {site}"), png)
        console_err.print(f"wrote {png}")
    console_err.print(f"baseline of site {site!r}: {baseline.freqs_hz.size} bins, RBW {baseline.rbw_hz:.1f} Hz, "
                      f"{int(baseline.frames.max())} frames, {baseline.span_s:.1f} s → {path}")


def replay(
    sources: SourcesArg,
    site: Annotated[str, typer.Option("--site", help="Site name (whitelist and schedule lookups).")],
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Site baseline from `examwatch survey`; without it detection is CFAR-only.")] = None,
    whitelist: Annotated[Optional[Path], typer.Option("--whitelist", help="Licensed channels (CSV or TOML: center_hz, bandwidth_hz, name, site).")] = None,
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per track event on stdout (new/update/end/missing), for every track.")] = False,
    frame_s: Annotated[float, typer.Option("--frame-s", help="Frame length (s).")] = EngineConfig.frame_s,
    fa_per_hour: Annotated[float, typer.Option("--fa-per-hour", help="Target of false alerts per hour from noise.")] = EngineConfig.fa_per_hour,
    duration: DurationOpt = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of sim: sources (default: the scene's).")] = None,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="For sim: sources, write the run's ground truth (JSON) here, for `examwatch sim score`.")] = None,
    profile: ProfileOpt = None,
    profiles_dir: ProfilesDirOpt = Path("profiles"),
    ppm_reference: PpmRefOpt = None,
    drift_interval_s: DriftIntervalOpt = 10.0,
    png: Annotated[Optional[Path], typer.Option("--png", help="Draw the last frame against the baseline, with the alerts, to this PNG/SVG file.")] = None,
    tz: TzOpt = "UTC",
    integration: IntegrationOpt = True,
) -> None:
    """Run detection and tracking over recordings and print alert events.

    Times are seconds from the start of the first recording (scene seconds for sim: sources, whose
    exam window is read), plus UTC ISO 8601 where the recording carries a wall-clock time.
    """
    from detector.detection import load_whitelist

    _check_positive(frame_s, "--frame-s")
    _check_positive(fa_per_hour, "--fa-per-hour")
    _check_positive(duration, "--duration")
    if fa_per_hour > 3600:
        raise InputError(f"--fa-per-hour {fa_per_hour:g} is not a false-alarm target (at most 3600)")
    if png is not None:
        check_figure_path(png)
    base = None
    if baseline is not None:
        from detector.baseline import load

        base = load(baseline)
    scene, sessions, wl = _scene_context(sources)
    if whitelist is not None:
        wl = load_whitelist(whitelist)
    srcs = open_all(sources, format, rate, center, sim_window="exam", sim_seed=seed, tz=tz)
    if duration is None and any(getattr(getattr(s, "info", None), "n_samples", 0) is None for s in srcs):
        raise InputError("a live source needs --duration (seconds to read)")
    start = getattr(getattr(srcs[0], "info", None), "start", None)
    if start is None and getattr(srcs[0], "spectra", None):  # a sweep CSV: its first sweep's time (--tz)
        first = srcs[0].spectra[0]
        start = None if first.start is None else first.start - timedelta(seconds=first.offset_s)
    locate = None
    if scene is not None:
        from detector.localization.tracks import track_locator

        from detector.cli.demo import _buildings_llh

        locate = track_locator(scene.site.lat0, scene.site.lon0, buildings=_buildings_llh(scene))
    drift = live_drift(ppm_reference, drift_interval_s, sim=scene is not None)
    check_reference_in_band(drift, srcs)
    correction = _correction(profile, srcs, drift, profiles_dir)
    from detector.app.correction import profile_warnings

    for w in profile_warnings(base, correction):
        console_err.print(f"[yellow]warning:[/] {w}")
    engine = build_engine(EngineConfig(frame_s=frame_s, fa_per_hour=fa_per_hour, integration=integration_config(integration)),
                          baseline=base, whitelist=wl,
                          site=site, sessions=sessions, wall_start=start, locate=locate, calibration=correction)
    if base is not None:
        from detector.baseline.check import check_baseline

        for w in check_baseline(base, srcs, engine, site=site):
            console_err.print(f"[yellow]warning:[/] {w}")
    alerts: dict[str, dict] = {}
    announced: dict[str, tuple[str, float, float]] = {}  # track id → (class, center Hz, bandwidth Hz) last printed

    def emit(events):
        for event in events:
            ev = event.to_json()  # the CLI is an edge: JSON lines and console text
            if ev["alert"]:
                alerts[ev["track_id"]] = ev
            if jsonl:
                typer.echo(json.dumps(ev))
            elif ev["alert"] and ev["event"] in ("new", "update", "missing", "jamming", "overload", "declared_jammer"):
                # one ALERT line per track, when it starts to alert; later lines only when the class
                # changes or the track's center moves by more than half its bandwidth (then or now; an
                # emission that switched on with it joined the track); every alert's final state
                # is listed at the end
                tid = ev["track_id"]
                center, bw = ev["center_hz"], ev["bandwidth_hz"]
                if tid not in announced:
                    console_err.print(f"[bold red]ALERT[/] {tid} {center / 1e6:.5f} MHz {ev['classification']} "
                                      f"from {ev['first_seen_s']:.2f} s (alert at {ev['last_seen_s']:.2f} s): "
                                      f"{'; '.join(ev['reasons'][:2])}")
                    announced[tid] = (ev["classification"], center, bw)
                    continue
                cls, c0, bw0 = announced[tid]
                if ev["classification"] != cls:
                    console_err.print(f"      {tid} re-classified: {cls} → {ev['classification']} "
                                      f"(at {ev['last_seen_s']:.2f} s)")
                    cls = ev["classification"]
                if center_moved(c0, bw0, center, bw, engine.config.moved_min_hz):
                    console_err.print(f"      {tid} moved: {c0 / 1e6:.5f} → {center / 1e6:.5f} MHz, "
                                      f"{bw / 1e3:.1f} kHz wide (at {ev['last_seen_s']:.2f} s)")
                    c0, bw0 = center, bw
                announced[tid] = (cls, c0, bw0)

    total = total_duration_s(srcs) if duration is None else duration * len(srcs)
    with progress_bar("replaying", total) as update:
        run_detection(srcs, engine, emit, progress=update, max_duration_s=duration)
    if png is not None and engine.last_spectrum is not None:
        from dashboards import save_figure, spectrum_baseline_figure

        save_figure(spectrum_baseline_figure(engine.last_spectrum, baseline=base, alerts=list(alerts.values()),
                                             whitelist=wl, title=f"site {site}: last frame and alerts"), png)
        console_err.print(f"wrote {png}")
    if truth is not None:
        sims = [s for s in srcs if getattr(getattr(s, "info", None), "kind", "") == "sim"]
        if not sims:
            raise InputError("--truth needs a sim: source")
        from detector.sim.truth import scene_truth, write_truth

        write_truth(scene_truth(sims[0]), truth)
        console_err.print(f"ground truth → {truth}")
    _drift_summary(drift)
    if not jsonl:
        console_err.print(f"{engine.frames_processed} frames, {len(engine.all_tracks)} tracks, {len(alerts)} alert(s)")
        for ev in alerts.values():
            typer.echo(f"{ev['track_id']}  {ev['center_hz'] / 1e6:.5f} MHz  {ev['classification']:9}  "
                       f"{ev['first_seen_s']:.2f}–{ev['last_seen_s']:.2f} s  SNR {ev['snr_db']} dB  {ev['severity']}")
