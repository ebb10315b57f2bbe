"""``examwatch db``: the schema of a store (``upgrade``, ``current``, ``history``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import JsonOpt, console_err
from detector.core.errors import InputError

db_app = typer.Typer(help="The schema of a store: upgrade it after installing a new examwatch, show its revision, list the revisions.",
                     no_args_is_help=True)

DbOpt = Annotated[Optional[str], typer.Option("--db", help="Store URL (default: SQLite in --data-dir: examwatch.db, or center.db with --center).")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Where the default SQLite store lives (default ./examwatch-data, or ./examwatch-center with --center).")]
CenterFlag = Annotated[bool, typer.Option("--center", help="The command center's store (examwatch serve) instead of a vehicle's alert store.")]


def _spec(center: bool):
    if center:
        from detector.center._schema import CENTER_SCHEMA

        return CENTER_SCHEMA, "center.db", Path("examwatch-center")
    from detector.alerts.schema import VEHICLE_SCHEMA

    return VEHICLE_SCHEMA, "examwatch.db", Path("examwatch-data")


def _connect(db: str | None, data_dir: Path | None, center: bool, *, readonly: bool):
    from detector.alerts.db import connect_database

    spec, default_file, default_dir = _spec(center)
    engine, safe = connect_database(db, data_dir=data_dir or default_dir, default_file=default_file, what=spec.what,
                                    readonly=readonly)
    return spec, engine, safe


def upgrade(
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    center: CenterFlag = False,
    to: Annotated[str, typer.Option("--to", help="Target revision (default: head, this release's schema).")] = "head",
    json_out: JsonOpt = False,
) -> None:
    """Upgrade a store's schema to this release's (back the database up first), in one transaction:
    an empty database is created, one made before migrations (examwatch 0.1 without `db`) is adopted
    as revision 1 with its data, then every later revision is applied. A database made by a newer
    examwatch, or another store's, is refused (exit 2) and left as it is.
    """
    from detector.alerts.db import on_database
    from detector.alerts.schema import upgrade_schema

    if db is None and data_dir is not None and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir} does not exist")
    spec, engine, safe = _connect(db, data_dir, center, readonly=False)
    try:
        before, after = on_database(engine, safe, spec.what, lambda: upgrade_schema(engine, spec, url=safe, target=to))
    finally:
        engine.dispose()
    was = before.revision or {"empty": "empty", "unversioned": "made before migrations"}.get(before.kind, before.kind)
    if json_out:
        print(json.dumps({"store": spec.name, "url": safe, "before": before.to_json(), "revision": after}))
    elif before.revision == after:
        console_err.print(f"{spec.what} {safe}: already at {after}")
    else:
        console_err.print(f"{spec.what} {safe}: {was} → {after}")


def current(
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    center: CenterFlag = False,
    json_out: JsonOpt = False,
) -> None:
    """Show a store's schema revision and what a store opening it would do; reads only (nothing is
    created or written, even in an empty database). Exit 0 when the schema is this release's (or
    made before migrations and readable as revision 1), 1 when the store would refuse it (older:
    run `examwatch db upgrade`; newer; another store's; empty)."""
    from detector.alerts.db import on_database
    from detector.alerts.schema import inspect_schema

    spec, engine, safe = _connect(db, data_dir, center, readonly=True)

    def look():
        with engine.connect() as conn:
            return inspect_schema(conn, spec)

    try:
        state = on_database(engine, safe, spec.what, look)
    finally:
        engine.dispose()
    flag = " --center" if center else ""
    say = {
        "current": f"at {state.head} (this release's schema)",
        "older": f"at {state.revision}, older than this release's {state.head}: run `examwatch db upgrade{flag} --db {safe}`",
        "newer": f"at {state.revision}, unknown to this release (newest {state.head}): made by a newer examwatch",
        "unversioned": "made before migrations: a writer adopts it as revision 1"
                       + (f" (creating {', '.join(state.missing)})" if state.missing else ""),
        "empty": "empty: a writer creates the schema",
        "foreign": "holds no such store but " + ", ".join(state.others) + "'s",
    }[state.kind]
    if json_out:
        print(json.dumps({"store": spec.name, "url": safe, **state.to_json()}))
    else:
        console_err.print(f"{spec.what} {safe}: {say}")
    if state.kind not in ("current", "unversioned"):
        raise typer.Exit(1)


def history(
    center: CenterFlag = False,
    json_out: JsonOpt = False,
) -> None:
    """List the schema revisions this release knows for a store, newest first."""
    from detector.alerts.schema import revisions

    spec, _, _ = _spec(center)
    revs = revisions(spec)
    if json_out:
        print(json.dumps({"store": spec.name, "revisions": revs}))
        return
    for r in revs:
        first = r["message"].splitlines()[0] if r["message"] else ""
        console_err.print(f"{r['revision']}  (after {r['down_revision'] or 'nothing'})  {first}")


db_app.command()(upgrade)
db_app.command()(current)
db_app.command()(history)
