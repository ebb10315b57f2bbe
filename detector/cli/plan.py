"""``examwatch plan``: what a watch plan catches (issue #19)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Optional

import typer
from rich.table import Table

from detector.cli._common import console_err, positive_hz
from detector.core.errors import InputError

plan_app = typer.Typer(help="Watch plans: the catch rate of bursts on the bands watched.", no_args_is_help=True)


def _seconds(value: float, name: str) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a positive number of seconds, got {value:g}")
    return value


def _pct(p: float) -> str:
    if p >= 1.0:
        return "100 %"
    return f"{100 * p:.1f} %" if p < 0.9995 else "> 99.9 %"


def _duration(s: float | None) -> str:
    if s is None:
        return "never"
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


@plan_app.command("check")
def check(
    plan: Annotated[Optional[str], typer.Argument(help="Watch plan TOML, or 'default' (the default): the plan of rtlsdr: without --center.")] = None,
    receivers: Annotated[int, typer.Option("--receivers", "-n", help="Receivers (dongles) sharing the plan.")] = 1,
    burst_s: Annotated[float, typer.Option("--burst-s", help="Duration D of one burst, seconds.")] = 2.0,
    period_s: Annotated[float, typer.Option("--period-s", help="The bursts repeat every P seconds.")] = 180.0,
    session_s: Annotated[float, typer.Option("--session-s", help="Length of the exam session, seconds (9000: 150 minutes).")] = 9000.0,
    rate: Annotated[Optional[str], typer.Option("--rate", "-r", help="Sample rate of the receivers (sets the hop width: 80 % of it).")] = "2.4M",
    retune_s: Annotated[float, typer.Option("--retune-s", help="Receiver time lost per retune, outside the dwell, seconds.")] = 0.010,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (nothing else on stdout).")] = False,
) -> None:
    """Print, per band, the chance that a burst of D seconds on a random channel is seen long enough
    to detect: once, over a session of bursts every P seconds, and the expected time to the first
    detection, from the dwell and revisit times, the retune and settle cost and the detector's
    minimum on-time (formulas in detector/config/intercept.py). With several receivers the bands
    are assigned to them (a receiver may stare at a high-priority band). A band the receivers cannot
    revisit within its revisit_s is a warning with the achieved figure."""
    from detector.config.intercept import ReceiverModel, plan_catch
    from detector.config.plan import default_plan, load_plan

    if not 1 <= receivers <= 64:
        raise InputError(f"--receivers must be 1–64, got {receivers}")
    _seconds(burst_s, "--burst-s")
    _seconds(period_s, "--period-s")
    _seconds(session_s, "--session-s")
    if not (retune_s >= 0 and math.isfinite(retune_s)):
        raise InputError(f"--retune-s must be a number of seconds ≥ 0, got {retune_s:g}")
    fs = positive_hz(rate, "--rate")
    assert fs is not None
    if not 225e3 <= fs <= 3.2e6:
        raise InputError(f"--rate {rate} is outside the RTL-SDR range 225k–3.2M")
    wp = default_plan() if plan in (None, "default") else load_plan(plan)
    res = plan_catch(wp, receivers, burst_s=burst_s, period_s=period_s, session_s=session_s,
                     model=ReceiverModel(sample_rate_hz=fs, retune_s=retune_s))
    if json_out:
        typer.echo(json.dumps(res.as_dict(), separators=(",", ":")))
    else:
        _print_table(res)
    for w in res.warnings:
        console_err.print(f"[yellow]warning:[/] {w}", highlight=False)


def _print_table(res) -> None:
    from rich.console import Console

    m = res.model
    t = Table(title=f"{res.plan}: a {res.burst_s:g} s burst every {res.period_s:g} s, {res.session_s / 60:g}-minute session, "
                    f"{res.receivers} receiver(s)", title_justify="left")
    for col, just in (("band", "left"), ("priority", "right"), ("hops", "right"), ("receiver", "left"),
                      ("dwell s", "right"), ("revisit s", "right"), ("P(one burst)", "right"),
                      ("P(session)", "right"), ("time to detect", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for b in res.bands:
        revisit = "stare" if b.stare else f"{b.revisit_achieved_s:.1f}"
        if not b.stare and b.revisit_achieved_s > b.revisit_s:
            revisit = f"[yellow]{revisit}[/] (> {b.revisit_s:g})"
        t.add_row(b.name, str(b.priority), str(b.hops), ",".join(map(str, b.receivers)), f"{b.dwell_s:g}", revisit,
                  _pct(b.p_burst), _pct(b.p_session), _duration(b.time_to_detect_s))
    probe = Console()
    out = Console(soft_wrap=False, width=None if probe.is_terminal else 160)
    out.print(t)
    out.print(f"priority-weighted P(one burst) {100 * res.weighted_catch:.1f} %; hop {m.hop_width_hz / 1e6:g} MHz, "
              f"retune {m.retune_s * 1e3:g} ms, settle {m.settle * 1e3:.1f} ms, minimum on-time {m.tau * 1e3:g} ms",
              highlight=False)
