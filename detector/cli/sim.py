"""``examwatch sim``: export simulated recordings and score alerts against the ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from detector.cli._common import console_err, positive_hz, progress_bar
from detector.core.errors import InputError

sim_app = typer.Typer(help="The simulated exam site: export recordings, score alerts.", no_args_is_help=True)


@sim_app.command("export")
def export(
    scene: Annotated[str, typer.Argument(help="sim:default or sim:PATH.toml")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output path: PATH.sigmf-meta and PATH.sigmf-data are written (PATH may end in .sigmf, .sigmf-meta or .sigmf-data).")],
    center: Annotated[Optional[str], typer.Option("--center", "-c", help="Center frequency (default: the scene receiver's).")] = None,
    rate: Annotated[Optional[str], typer.Option("--rate", "-r", help="Sample rate (default: the scene receiver's).")] = None,
    start: Annotated[float, typer.Option("--start", help="Scene second to start at.")] = 0.0,
    duration: Annotated[float, typer.Option("--duration", help="Seconds to export.")] = 10.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Override the scene's seed.")] = None,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Also write the ground truth JSON here.")] = None,
) -> None:
    """Write a window of a scene as SigMF (cu8 data; annotations carry the truth)."""
    from detector.sim.export import export_sigmf
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR
    from detector.sim.truth import scene_truth, write_truth

    if not duration > 0 or duration == float("inf"):
        raise InputError(f"--duration must be a number of seconds > 0, got {duration}")
    if not 0 <= start < float("inf"):
        raise InputError(f"--start must be a number of seconds ≥ 0, got {start}")
    if duration > 600:
        raise InputError(f"--duration {duration} s is more than the 600 s one export may hold")
    from detector.cli._common import check_out_path

    if out.suffix.lower() == ".sigmf":  # "x.sigmf" names the pair x.sigmf-meta / x.sigmf-data
        out = out.with_suffix("")
    check_out_path(Path(f"{out}.sigmf-meta") if out.suffix not in (".sigmf-meta", ".sigmf-data") else out, what="-o")
    sc = scene_from_spec(scene)
    sdr = SimSDR(sc, seed=seed, window="all")
    c = positive_hz(center, "--center")
    r = positive_hz(rate, "--rate")
    if c is not None:
        from detector.sources.rtlsdr import check_rtl_center

        check_rtl_center(c)
    scene_end = max(b for _, b in [sc.timeline.survey, *sc.timeline.exam])
    if start >= scene_end:
        raise InputError(f"--start {start:g} s is past the end of the scene ({scene_end:g} s)")
    if r is not None and not 225e3 <= r <= 3.2e6:
        raise InputError(f"--rate {rate} is outside the RTL-SDR range 225k–3.2M")
    if c is not None or r is not None:
        sdr.tune(c or sdr.center_hz, r)
    with progress_bar("exporting", duration) as update:
        data, meta = export_sigmf(sdr, out, start_s=start, duration_s=duration, progress=update)
    if truth is not None:
        t = scene_truth(sdr)
        t["window"] = [start, start + duration]
        write_truth(t, truth)
    console_err.print(f"wrote {meta} and {data}")


@sim_app.command("score")
def score(
    alerts: Annotated[Path, typer.Argument(help="Track events, one JSON object per line (replay --jsonl).")],
    truth: Annotated[Path, typer.Argument(help="Ground truth JSON written beside the run.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Score alerts against the ground truth (SCENES.md §3.8 matching rules)."""
    from detector.sim.score import score_alerts
    from detector.sim.truth import load_truth

    if not alerts.is_file():
        raise InputError(f"{alerts}: alerts file not found")
    events = []
    try:
        text = alerts.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{alerts}: not a text file of JSON lines") from None
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{alerts} line {i}: not JSON") from None
        if not isinstance(ev, dict) or not {"track_id", "alert", "center_hz", "last_seen_s"} <= set(ev):
            raise InputError(f"{alerts} line {i}: not a track event (needs track_id, alert, center_hz, last_seen_s)")
        events.append(ev)
    result = score_alerts(events, load_truth(truth))
    if json_out:
        typer.echo(json.dumps(result))
        return
    print_score(result)


#: the score's keys (the contract of ``--json``) and what each means to an operator
_METRICS = (
    ("pd", "share of hidden transmitters with a matched alert"),
    ("false_alarms_per_hour", "alerts matching no emitter, per monitored hour"),
    ("false_alarms", "alerts matching no emitter (or a known one behaving as surveyed)"),
    ("nuisance_alerts", "alerts on benign newcomers (e.g. a passing taxi radio)"),
    ("tta_median_s", "time to alert after the transmitter switched on, median (s)"),
    ("tta_p90_s", "time to alert, 90th percentile (s)"),
    ("freq_error_median_hz", "|alert frequency − true carrier|, median (Hz)"),
    ("freq_error_obs_median_hz", "|alert frequency − carrier as the receiver sees it|, median (Hz)"),
    ("classification_accuracy", "share of matched alerts with the right class"),
    ("location_error_m", "distance from the estimated to the true position (m)"),
    ("monitored_hours", "hours of exam monitoring scored"),
)


def print_score(result: dict) -> None:
    """The score as a table on stdout."""
    from rich.console import Console

    t = Table(title="score against the ground truth (SCENES.md §3.8)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("meaning")
    for k, meaning in _METRICS:
        v = result.get(k)
        t.add_row(k, "—" if v is None else f"{v:g}" if isinstance(v, (int, float)) else str(v), meaning)
    Console().print(t)
