"""``examwatch library``: the device library of known cheating and benign transmitters (#23 item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from detector.cli._common import console_err, opt_hz
from detector.core.errors import InputError

library_app = typer.Typer(help="The device library: known cheating and benign transmitters, and what an alert matches.",
                          no_args_is_help=True)

_STATE = {"match": "[green]match[/]", "mismatch": "[red]mismatch[/]", "unknown": "[dim]?[/]"}


@library_app.command("match")
def match(
    alert: Annotated[Optional[str], typer.Argument(help="Alert id in the store (e.g. A-1f3c9a0b7d2e); or give --file.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", help="A recording (raw IQ, WAV, SigMF) to compare instead of a stored alert.")] = None,
    center: Annotated[Optional[str], typer.Option("--center", help="Centre frequency of --file (e.g. 433.92M), when its name or header does not say.")] = None,
    rate: Annotated[Optional[str], typer.Option("--rate", help="Sample rate of a raw --file (e.g. 250k).")] = None,
    sample_format: Annotated[Optional[str], typer.Option("--format", help="Sample type of a raw --file: cu8, cs8, cs16, cf32.")] = None,
    start: Annotated[float, typer.Option("--start", help="Seconds into --file where the burst starts.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option("--duration", help="Seconds of --file to analyse (at most 30).")] = None,
    bandwidth: Annotated[Optional[str], typer.Option("--bandwidth", help="Occupied bandwidth of the emission in --file, if known (e.g. 12.5k).")] = None,
    library: Annotated[Optional[Path], typer.Option("--library", help="A TOML file of [[device]] entries added to the shipped library (same name replaces).")] = None,
    site: Annotated[Optional[str], typer.Option("--site", help="Site name (in --sites-dir) or TOML path whose device_library key adds the team's entries.")] = None,
    sites_dir: Annotated[Path, typer.Option("--sites-dir", help="Folder of site TOML files.")] = Path("sites"),
    db: Annotated[Optional[str], typer.Option("--db", help="Alert store URL (default: SQLite in --data-dir).")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the default SQLite store lives.")] = Path("examwatch-data"),
    decode: Annotated[bool, typer.Option("--decode/--no-decode", help="Run rtl_433 (and multimon-ng in pager bands) when installed.")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds each decoder may run.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON on stdout.")] = False,
    attach: Annotated[bool, typer.Option("--attach", help="Store the comparison with the alert as its triage.json evidence.")] = False,
) -> None:
    """Compare an alert (or a recording) with every library entry, field by field: band, bandwidth,
    modulation, symbol rate, burst pattern and decoded model. The best match gives the score term
    (positive for a cheating device, negative for a benign one) and its reason.
    """
    from detector.app.triage import triage_alert, triage_recording
    from detector.config.devices import load_library

    if (alert is None) == (file is None):
        raise InputError("give an alert id or --file RECORDING (one of them)")
    if attach and alert is None:
        raise InputError("--attach stores the comparison with an alert: give an alert id, not --file")
    if site is not None:
        from detector.config.site import resolve_site

        site_lib = resolve_site(site, sites_dir).device_library
        if site_lib is not None and library is not None:
            raise InputError(f"--library {library} and the site's device_library {site_lib}: give one")
        library = Path(site_lib) if site_lib is not None else library
    lib = load_library(library)
    if file is not None:
        t = triage_recording(file, lib, center_hz=opt_hz(center, "--center"),
                             sample_rate_hz=opt_hz(rate, "--rate"), sample_format=sample_format,
                             start_s=start, duration_s=duration, decode=decode, timeout_s=timeout,
                             bandwidth_hz=opt_hz(bandwidth, "--bandwidth"))
    else:
        from detector.alerts import open_store

        if db is None and not (data_dir / "examwatch.db").is_file():
            raise InputError(f"no alert store at {data_dir / 'examwatch.db'}; give --db URL or --data-dir")
        store = open_store(db, data_dir=data_dir)
        try:
            t = triage_alert(store, alert, lib, decode=decode, timeout_s=timeout)
            if attach:
                info = store.add_evidence(alert, "triage.json", json.dumps(t.to_json(), indent=2).encode(), "application/json")
                console_err.print(f"attached triage.json ({info.size_bytes} bytes) to {alert}")
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps(t.to_json(), indent=2))
        return
    out = Console(soft_wrap=True)
    o = t.observation
    out.print(f"[bold]{t.subject}[/]: {o.center_hz / 1e6:.4f} MHz"
              + (f", {o.bandwidth_hz / 1e3:.1f} kHz" if o.bandwidth_hz else "")
              + f", modulation {o.modulation or '?'}"
              + (f", {o.symbol_rate_baud:.0f} Bd" if o.symbol_rate_baud else "")
              + (f", burst pattern {o.burst}" if o.burst else ""))
    if t.symbols is not None and t.symbols.modulation == "FSK":
        out.print(f"  FSK deviation ±{t.symbols.deviation_hz:.0f} Hz")
    for d in t.decodes:
        out.print(f"  {d.decoder}: {d.status} — {d.detail}")
    table = Table(title=f"library ({', '.join(lib.sources)})")
    for col in ("entry", "verdict", "band", "bandwidth", "modulation", "symbol rate", "burst pattern", "burst period",
                "decoded model", "matched"):
        table.add_column(col)
    for c in t.term.comparisons:
        states = {k.field: k for k in c.checks}
        cells = []
        for f in ("band", "bandwidth", "modulation", "symbol rate", "burst pattern", "burst period", "decoded model"):
            k = states.get(f)
            cells.append("" if k is None else f"{_STATE[k.state]} {k.expected}")
        table.add_row(c.entry.name, c.entry.verdict, *cells, "[bold]yes[/]" if c.matched else "no")
    out.print(table)
    out.print(f"score term library = {t.term.value:+.2f}: {t.term.reason}")
    if not t.decodes and decode and t.symbols is None:
        console_err.print("[dim]no IQ evidence with this alert: compared on frequency, bandwidth and class only[/]")
