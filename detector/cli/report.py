"""``examwatch report``: the post-exam report of a site from the alert store (HTML or PDF)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import console_err
from detector.core.errors import InputError


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{name} {text!r} is not an ISO 8601 time such as 2026-06-07T09:00:00+08:00") from None
    if t.tzinfo is None:
        raise InputError(f"{name} {text!r} needs a zone (e.g. 2026-06-07T09:00:00+08:00 or ...Z)")
    return t


def report(
    site: Annotated[str, typer.Option("--site", help="Site name (looked up in --sites-dir) or a site TOML path: its sessions group the alerts.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the report to exactly this file (HTML, or PDF with --pdf).")],
    db: Annotated[Optional[str], typer.Option("--db", help="Alert store URL (default: SQLite in --data-dir; postgresql://... for PostgreSQL). A command center's database is read too: the alerts of all its vehicles.")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the default SQLite store and the monitor runs' records (runs/: what each run watched, the catch rate it achieved) live.")] = Path("examwatch-data"),
    sites_dir: Annotated[Path, typer.Option("--sites-dir", help="Folder of site TOML files.")] = Path("sites"),
    t_from: Annotated[Optional[str], typer.Option("--from", help="Start of the time range, ISO 8601 with a zone (alerts overlapping the range are reported).")] = None,
    t_to: Annotated[Optional[str], typer.Option("--to", help="End of the time range, ISO 8601 with a zone.")] = None,
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Site baseline (.npz from `examwatch survey`): adds the environment against the survey.")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Write a PDF (matplotlib PdfPages) instead of HTML.")] = False,
) -> None:
    """Write the post-exam report of a site: per exam session the timeline, the environment against
    the baseline, and each alert with its figures, location, evidence and handling history.

    The HTML is one self-contained file (figures embedded as base64 PNG); nothing is loaded from the
    network when it is opened.

    The store is only read: nothing is created or written in it. A command center's database
    (`--db` of `examwatch serve`) is reported with the alerts of every vehicle; a database that
    holds no store, or one of an older or newer schema, is refused (exit 2) with what to do.
    """
    from dashboards.report import write_report
    from detector.config.site import resolve_site

    start, end = _time(t_from, "--from"), _time(t_to, "--to")
    if start is not None and end is not None and start > end:
        raise InputError(f"--from ({t_from}) is after --to ({t_to})")
    if out.is_dir():
        raise InputError(f"{out} is a directory; give a file name such as report.html")
    if not out.parent.exists():
        raise InputError(f"{out.parent} does not exist")
    site_cfg = resolve_site(site, sites_dir)
    base = None
    if baseline is not None:
        from detector.baseline import load

        base = load(baseline)
    if db is None and not (data_dir / "examwatch.db").is_file():
        raise InputError(f"no alert store at {data_dir / 'examwatch.db'}; give --db URL or --data-dir")
    if db is not None:
        _check_sqlite_exists(db)
    store = _open_readonly(db, data_dir)
    try:
        from detector.app.run_record import RUNS_DIR, load_runs

        runs = load_runs(data_dir / RUNS_DIR, site_cfg.name, start, end)  # what the monitor runs watched
        rep = write_report(store, site_cfg, out, t_from=start, t_to=end, baseline=base, pdf=pdf, runs=runs)
        if not rep.alerts:
            others = sorted({a.site for a in store.list(limit=1000)[0]} - {site_cfg.name})
            console_err.print(f"[yellow]warning:[/] the store holds no alert of site {site_cfg.name!r}"
                              + (" in that time" if start or end else "")
                              + (f" (sites there: {', '.join(others)})" if others else " (it holds no alert at all)"))
    finally:
        store.close()
    console_err.print(f"wrote {out}: site {site_cfg.name}, {len(rep.sections)} section(s), {len(rep.alerts)} alert(s), "
                      f"{len(rep.runs)} monitor run(s) with what they watched")


def _open_readonly(db: str | None, data_dir: Path):
    """The vehicle's alert store, read-only; a command center's database opens as the center's
    store (its alerts have the same fields, plus the vehicle), read-only too."""
    from detector.alerts import open_store
    from detector.alerts.schema import SchemaError

    try:
        return open_store(db, data_dir=data_dir, readonly=True)
    except SchemaError as exc:
        if exc.state.kind != "foreign" or "center" not in exc.state.others:
            raise
    from detector.center import open_center_store

    store = open_center_store(db, data_dir=data_dir, readonly=True)
    console_err.print(f"{store.url} is a command center's database: reporting the alerts of all its vehicles")
    return store


def _check_sqlite_exists(url: str) -> None:
    """A report reads a store: a SQLite URL naming no file is a typo, not a new empty store."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        return  # open_store says what is wrong with it
    if u.drivername.startswith("sqlite") and u.database not in (None, "", ":memory:") and not Path(u.database).is_file():
        raise InputError(f"--db {url}: no SQLite store at {u.database}")
