"""``examwatch doctor``: is this machine ready for a monitor (or, with --center, a command center)?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import JsonOpt, console_err, positive_hz

_MARK = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "skip": "[dim]skip[/]"}


def doctor(
    center: Annotated[bool, typer.Option("--center", help="Check a command center's machine (clock, disk, port 8760, database) instead of a vehicle's.")] = False,
    device: Annotated[str, typer.Option("--device", help="The dongle of the short read: an index or serial=SERIAL (as in rtlsdr:SPEC).")] = "0",
    rate: Annotated[str, typer.Option("--rate", "-r", help="Sample rate of the short read (the rate the monitor will use).")] = "2.4M",
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="The data folder whose disk is checked (default ./examwatch-data, ./examwatch-center with --center).")] = None,
    host: Annotated[str, typer.Option("--host", help="The address the API will listen on.")] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option("--port", help="The API port to check (default 8750, 8760 with --center).")] = None,
    gps_required: Annotated[bool, typer.Option("--require-gps", help="gpsd without a fix is a failure (default: a warning; a monitor can use --gps fixed:LAT,LON).")] = False,
    db: Annotated[Optional[str], typer.Option("--db", help="Also check this store's schema (read only): at this release's revision, or what to run.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check that this machine can run `examwatch monitor` (or `serve` with --center), and say what to
    do about each problem: librtlsdr and pyrtlsdr match, the dongles and their serials, the DVB-T
    kernel driver that would hold a dongle, a short read at --rate without drops, gpsd and a fix,
    clock synchronisation, free disk space, the API port, and with --db the store's schema.

    Exit codes: 0 every check ok or a warning, 1 at least one check failed (the monitor or center
    would not work as it is), 2 bad options. Nothing is changed on the machine.
    """
    from detector.app.doctor import Probes, exit_code, run_checks

    rate_hz = positive_hz(rate, "--rate")
    probes = Probes(schema_state=_schema_state if db else None)
    checks = run_checks(probes, center=center, data_dir=data_dir or Path("examwatch-center" if center else "examwatch-data"),
                        host=host, port=port, device=device, rate_hz=float(rate_hz or 2.4e6), gps_required=gps_required, db=db)
    code = exit_code(checks)
    if json_out:
        print(json.dumps({"ok": code == 0, "role": "center" if center else "vehicle", "checks": [c.to_json() for c in checks]}))
    else:
        from rich.markup import escape

        for c in checks:
            console_err.print(f"{_MARK[c.status]} {c.name:<11} {escape(c.detail)}", highlight=False)
            if c.fix and c.status != "ok":
                console_err.print(f"     {'':<11} → {escape(c.fix)}", highlight=False)
        failed = [c.name for c in checks if c.status == "fail"]
        console_err.print("ready" if not failed else f"not ready: {', '.join(failed)} failed")
    if code:
        raise typer.Exit(code)


def _schema_state(url: str, center: bool):
    """What the store at ``url`` holds (read only), for the ``schema`` check."""
    from detector.alerts.db import connect_database, on_database
    from detector.alerts.schema import inspect_schema

    if center:
        from detector.center._schema import CENTER_SCHEMA as spec
    else:
        from detector.alerts.schema import VEHICLE_SCHEMA as spec
    engine, safe = connect_database(url, data_dir=Path("."), default_file="unused.db", what=spec.what, readonly=True)

    def look():
        with engine.connect() as conn:
            return inspect_schema(conn, spec)

    try:
        return on_database(engine, safe, spec.what, look)
    finally:
        engine.dispose()
