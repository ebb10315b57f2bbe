"""``examwatch survey`` (the site baseline) and ``examwatch replay`` (detection over recordings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli import app
from detector.cli._common import CenterOpt, FormatOpt, RateOpt, console_err, progress_bar
from detector.cli._sources import open_all
from detector.engine import DetectionEngine, EngineConfig
from detector.errors import InputError

SourcesArg = Annotated[list[str], typer.Argument(help="IQ recordings (any format of `spectrum`), rtl_power CSVs, or rtlsdr:0; replayed one after another as one timeline.")]


def _total_s(sources) -> float | None:
    total = 0.0
    for s in sources:
        info = getattr(s, "info", None)
        if info is None or info.duration_s is None:
            return None
        total += info.duration_s
    return total


@app.command()
def survey(
    sources: SourcesArg,
    site: Annotated[str, typer.Option("--site", help="Site name recorded in the baseline.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Baseline file to write (exactly this path). Default: SITE.baseline.npz")] = None,
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    merge: Annotated[Optional[Path], typer.Option("--merge", help="Merge into this existing baseline (other hops, other days).")] = None,
    frame_s: Annotated[float, typer.Option("--frame-s", help="Frame length (s); use the same for replay/monitor.")] = EngineConfig.frame_s,
) -> None:
    """Survey a site before the exam: per-bin statistics of every frame of SOURCE... → a baseline file."""
    from detector.baseline import BaselineBuilder, load, merge as merge_baselines, save

    if frame_s <= 0:
        raise InputError(f"--frame-s must be > 0, got {frame_s}")
    srcs = open_all(sources, format, rate, center)
    engine = DetectionEngine(EngineConfig(frame_s=frame_s))
    builders: dict = {}
    done = 0.0
    with progress_bar(f"surveying {site}", _total_s(srcs)) as update:
        for src in srcs:
            if hasattr(src, "spectra"):
                frames = src.spectra
                for spec in frames:
                    key = (spec.rbw_hz,)
                    b = builders.get(key)
                    if b is None:
                        b = builders[key] = BaselineBuilder(spec.freqs_hz, rbw_hz=spec.rbw_hz, site=site, n_looks=spec.n_looks)
                    b.add(spec)
                continue
            for block in src.blocks():
                for spec in engine.frames_of_block(block):
                    key = (spec.rbw_hz,)
                    b = builders.get(key)
                    if b is None:
                        b = builders[key] = BaselineBuilder(spec.freqs_hz, rbw_hz=spec.rbw_hz, site=site, n_looks=spec.n_looks)
                    b.add(spec)
                done += block.duration_s
                update(done)
            engine.time_offset_s += src.info.duration_s or 0.0
    if not builders:
        raise InputError("survey: the sources held no complete frame")
    if len(builders) > 1:
        raise InputError("survey: the sources have different RBWs; survey them separately and merge with --merge")
    baseline = next(iter(builders.values())).build()
    baseline.sources = list(sources)
    if merge is not None:
        baseline = merge_baselines(load(merge), baseline)
    path = out or Path(f"{site}.baseline.npz")
    save(baseline, path)
    console_err.print(f"baseline of site {site!r}: {baseline.freqs_hz.size} bins, RBW {baseline.rbw_hz:.1f} Hz, "
                      f"{int(baseline.frames.max())} frames → {path}")


@app.command()
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
) -> None:
    """Run detection and tracking over recordings and print alert events (times: s from the first recording)."""
    from detector.detection import load_whitelist

    if frame_s <= 0:
        raise InputError(f"--frame-s must be > 0, got {frame_s}")
    if fa_per_hour <= 0:
        raise InputError(f"--fa-per-hour must be > 0, got {fa_per_hour}")
    base = None
    if baseline is not None:
        from detector.baseline import load

        base = load(baseline)
    wl = load_whitelist(whitelist) if whitelist is not None else None
    srcs = open_all(sources, format, rate, center)
    first = srcs[0]
    start = getattr(getattr(first, "info", None), "start", None)
    engine = DetectionEngine(EngineConfig(frame_s=frame_s, fa_per_hour=fa_per_hour), baseline=base, whitelist=wl,
                             site=site, wall_start=start)
    alerts: dict[str, dict] = {}

    def emit(events):
        for ev in events:
            if ev["alert"]:
                alerts[ev["track_id"]] = ev
            if jsonl:
                typer.echo(json.dumps(ev))
            elif ev["alert"] and ev["event"] in ("new", "update", "missing"):
                console_err.print(f"[bold red]ALERT[/] {ev['track_id']} {ev['center_hz'] / 1e6:.5f} MHz "
                                  f"{ev['classification']} at {ev['first_seen_s']:.2f} s: {'; '.join(ev['reasons'][:2])}")

    done = 0.0
    with progress_bar("replaying", _total_s(srcs)) as update:
        for src in srcs:
            if hasattr(src, "spectra"):
                t0 = engine.time_offset_s
                for spec in src.spectra:
                    from dataclasses import replace

                    emit(engine.process_spectrum(replace(spec, offset_s=t0 + spec.offset_s)))
                if src.spectra:
                    engine.time_offset_s = t0 + src.spectra[-1].offset_s + (src.spectra[-1].duration_s or 0)
                continue
            for block in src.blocks():
                emit(engine.process_block(block))
                done += block.duration_s
                update(done)
            engine.time_offset_s += src.info.duration_s or 0.0
    emit(engine.finish())
    if not jsonl:
        console_err.print(f"{engine.frames_processed} frames, {len(engine.all_tracks)} tracks, {len(alerts)} alert(s)")
        for ev in alerts.values():
            typer.echo(f"{ev['track_id']}  {ev['center_hz'] / 1e6:.5f} MHz  {ev['classification']:9}  "
                       f"{ev['first_seen_s']:.2f}–{ev['last_seen_s']:.2f} s  SNR {ev['snr_db']} dB  {ev['severity']}")
