"""Schema migrations of both stores (Alembic), on SQLite and on the loopback PostgreSQL server.

Revision 1 is the schema ``create_all`` made before migrations, exactly; an empty database is
created through the migrations; a database made before migrations is adopted with its data; a
synthetic revision 2 (a copy of the scripts with one more revision) is applied by
``examwatch db upgrade`` with the data kept; an older schema is refused at open with the command
to run, a newer one refused; readers write nothing (no DDL, no stamp); ``report`` reads a
center's database (all vehicles) and refuses a database without a store.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from detector.alerts import open_store
from detector.alerts._models import Base
from detector.alerts._store import AlertStore
from detector.alerts.db import _postgres_engine, _sqlite_engine
from detector.alerts.schema import VEHICLE_SCHEMA, SchemaError, head_revision, inspect_schema
from detector.center import open_center_store
from detector.center._models import CenterBase
from detector.center._schema import CENTER_SCHEMA
from detector.cli import app
from detector.cli._errors import exit_code_for
from tests.push import pg_base_url, pg_schema, track_event

runner = CliRunner()


def _exit(capsys, args) -> tuple[int, str]:
    """The console-script entry point in-process: its exit code and stderr (errors exit there)."""
    import sys

    from detector.cli import main

    argv, sys.argv = sys.argv, ["examwatch", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    return exc.value.code, " ".join(capsys.readouterr().err.split())

REV2 = '''"""synthetic revision 2 (tests): a note on each alert, a table of operators

Revision ID: vehicle_0002
Revises: vehicle_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "vehicle_0002"
down_revision = "vehicle_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("alerts", sa.Column("note", sa.Text(), nullable=False, server_default="none"))
    op.create_table("operators", sa.Column("name", sa.String(50), primary_key=True))
    op.execute("INSERT INTO operators (name) SELECT DISTINCT actor FROM alert_history WHERE actor IS NOT NULL")


def downgrade():
    op.drop_table("operators")
    op.drop_column("alerts", "note")
'''


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A SQLite file URL (no file yet) or a fresh PostgreSQL schema's URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with pg_schema(pg_base_url()) as u:
        yield u


def _raw_engine(url: str):
    """The stores' own engine (pragmas, BEGIN IMMEDIATE) without any schema step."""
    return (_sqlite_engine if url.startswith("sqlite") else _postgres_engine)(make_url(url))


def _fill(store) -> list[str]:
    """Two alerts, a status change with an actor, an evidence file: what must survive migrations."""
    a = store.apply_event(track_event("T1", 1.0, snr=12.0, center_hz=446.1e6), site="S", run_id="r")
    store.apply_event(track_event("T1", 2.0, snr=14.0, center_hz=446.1e6), site="S", run_id="r")
    b = store.apply_event(track_event("T2", 1.0, snr=9.0, center_hz=433.9e6), site="S", run_id="r")
    store.set_status(b.id, "acknowledged", reason="checked", actor="ops-1")
    store.add_evidence(a.id, "snippet.sigmf-data", b"\x01\x02\x03" * 100, "application/octet-stream")
    return [a.id, b.id]


def _snapshot(store) -> dict:
    page, total = store.list(limit=100)
    return {"total": total,
            "alerts": {a.id: a.model_dump(mode="json") for a in page},
            "history": {a.id: [h.model_dump(mode="json") for h in store.history(a.id)] for a in page},
            "evidence": {a.id: [store.evidence(a.id, e["name"])[0] for e in a.evidence] for a in page}}


def _legacy_store(url: str, tmp_path: Path, *, drop: tuple[str, ...] = ()) -> dict:
    """A database as a release before migrations left it: ``create_all`` and data, no version table."""
    engine = _raw_engine(url)
    Base.metadata.create_all(engine)
    store = AlertStore(engine, data_dir=tmp_path, url=url)
    _fill(store)
    snap = _snapshot(store)
    with engine.begin() as c:
        for t in drop:
            c.execute(text(f"DROP TABLE {t}"))
    store.close()
    return snap


def _tables(url: str) -> set[str]:
    eng = create_engine(url)
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def _version(url: str, table: str = "alembic_version_vehicle") -> str:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text(f"SELECT version_num FROM {table}")).scalar_one()
    finally:
        eng.dispose()


@pytest.fixture
def rev2(tmp_path, monkeypatch):
    """The vehicle's scripts with a synthetic revision 2, in a copy; the spec pointed at it."""
    scripts = tmp_path / "scripts"
    shutil.copytree(VEHICLE_SCHEMA.location(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "vehicle_0002_note.py").write_text(REV2)
    return lambda: monkeypatch.setattr(VEHICLE_SCHEMA, "script_location", str(scripts))


# --- revision 1 = the schema of create_all ------------------------------------------------------
def _schema_of(engine) -> dict:
    insp = inspect(engine)
    out = {}
    for t in sorted(set(insp.get_table_names()) - {"alembic_version_vehicle", "alembic_version_center"}):
        out[t] = {"columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
                  "pk": insp.get_pk_constraint(t)["constrained_columns"],
                  "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
                  "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
                  "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                                for f in insp.get_foreign_keys(t))}
    return out


@pytest.mark.parametrize("which", ["vehicle", "center"])
def test_revision_1_is_exactly_the_schema_create_all_made(url, tmp_path, which):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    metadata = Base.metadata if which == "vehicle" else CenterBase.metadata
    opener = open_store if which == "vehicle" else open_center_store
    opener(url, data_dir=tmp_path).close()
    migrated = create_engine(url)
    with migrated.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), metadata)
    assert [d for d in diff if "alembic_version" not in str(d)] == []
    # and the same tables, columns, keys and indexes as create_all on a second database
    if url.startswith("sqlite"):
        other_url = f"sqlite:///{tmp_path / 'create_all.db'}"
        other = create_engine(other_url)
        metadata.create_all(other)
        assert _schema_of(migrated) == _schema_of(other)
        other.dispose()
    else:
        with pg_schema(pg_base_url()) as other_url:
            other = create_engine(other_url)
            metadata.create_all(other)
            assert _schema_of(migrated) == _schema_of(other)
            other.dispose()
    assert len(_schema_of(migrated)) == 4
    migrated.dispose()


# --- open: create, adopt, refuse --------------------------------------------------------------------
def test_an_empty_database_is_created_at_head_and_reopened(url, tmp_path):
    with open_store(url, data_dir=tmp_path) as s:
        ids = _fill(s)
    assert _version(url) == "vehicle_0001" == head_revision(VEHICLE_SCHEMA)
    assert _tables(url) == {"alerts", "alert_history", "alert_evidence", "push_outbox", "alembic_version_vehicle"}
    with open_store(url, data_dir=tmp_path) as s:
        assert sorted(a.id for a in s.list()[0]) == sorted(ids)


def test_a_database_made_before_migrations_is_adopted_with_its_data(url, tmp_path):
    before = _legacy_store(url, tmp_path)
    assert "alembic_version_vehicle" not in _tables(url)
    with open_store(url, data_dir=tmp_path) as s:
        assert _snapshot(s) == before
        assert len(before["alerts"]) == 2 and sum(len(h) for h in before["history"].values()) == 5  # 2 + 1 + status + evidence
        s.apply_event(track_event("T3", 1.0, snr=20.0, center_hz=440e6), site="S", run_id="r")  # still writable
    assert _version(url) == "vehicle_0001"


def test_adoption_creates_a_table_an_older_release_did_not_have(url, tmp_path):
    before = _legacy_store(url, tmp_path, drop=("push_outbox",))
    with open_store(url, data_dir=tmp_path) as s:
        assert _snapshot(s) == before
    assert "push_outbox" in _tables(url) and _version(url) == "vehicle_0001"


def test_a_pre_migration_table_missing_a_column_is_refused_and_left_as_it_was(url, tmp_path):
    eng = _raw_engine(url)
    with eng.begin() as c:
        c.execute(text("CREATE TABLE alerts (id VARCHAR(32) PRIMARY KEY, site VARCHAR(200))"))
        c.execute(text("INSERT INTO alerts (id, site) VALUES ('A-1', 'S')"))
    eng.dispose()
    with pytest.raises(Exception) as e:
        open_store(url, data_dir=tmp_path)
    assert "lacks the columns run_id, track_id" in str(e.value) and exit_code_for(e.value) == 2
    assert _tables(url) == {"alerts"}  # the transaction rolled back: nothing made, no stamp


def test_two_processes_creating_the_same_database_at_once_both_open_it(url, tmp_path):
    errors, stores = [], []

    def go():
        try:
            stores.append(open_store(url, data_dir=tmp_path))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 3
    for s in stores:
        s.close()
    assert _version(url) == "vehicle_0001"


def test_an_older_schema_is_refused_with_the_command_and_upgraded_by_db_upgrade(url, tmp_path, rev2):
    with open_store(url, data_dir=tmp_path) as s:
        _fill(s)
        before = _snapshot(s)
    rev2()
    with pytest.raises(SchemaError) as e:
        open_store(url, data_dir=tmp_path)
    assert e.value.state.kind == "older" and exit_code_for(e.value) == 2
    assert "older than this examwatch's (vehicle_0002)" in str(e.value) and "`examwatch db upgrade --db " in str(e.value)
    assert _version(url) == "vehicle_0001"  # the refusal changed nothing

    r = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert r.exit_code == 0, r.output
    assert "vehicle_0001 → vehicle_0002" in r.stderr
    assert _version(url) == "vehicle_0002"
    with open_store(url, data_dir=tmp_path) as s:
        assert _snapshot(s) == before
    eng = create_engine(url)
    with eng.connect() as c:
        assert c.execute(text("SELECT DISTINCT note FROM alerts")).scalars().all() == ["none"]
        assert c.execute(text("SELECT name FROM operators")).scalars().all() == ["ops-1"]
    eng.dispose()
    again = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert again.exit_code == 0 and "already at vehicle_0002" in again.stderr


def test_db_upgrade_adopts_a_pre_migration_database_then_applies_revision_2(url, tmp_path, rev2):
    before = _legacy_store(url, tmp_path)
    rev2()
    with pytest.raises(SchemaError, match="predates migrations"):
        open_store(url, data_dir=tmp_path)
    r = runner.invoke(app, ["db", "upgrade", "--db", url, "--json"])
    assert r.exit_code == 0, r.output
    import json

    out = json.loads(r.stdout)
    assert out["before"]["state"] == "unversioned" and out["revision"] == "vehicle_0002"
    with open_store(url, data_dir=tmp_path) as s:
        assert _snapshot(s) == before


def test_a_newer_schema_is_refused_by_writers_and_readers(url, tmp_path, rev2, monkeypatch, capsys):
    rev2()
    open_store(url, data_dir=tmp_path).close()  # made at vehicle_0002 by "a newer release"
    monkeypatch.undo()  # this release again: its newest is vehicle_0001
    for readonly in (False, True):
        with pytest.raises(SchemaError) as e:
            open_store(url, data_dir=tmp_path, readonly=readonly)
        assert e.value.state.kind == "newer" and exit_code_for(e.value) == 2
        assert "schema revision vehicle_0002, which this examwatch does not know" in str(e.value)
    code, err = _exit(capsys, ["db", "upgrade", "--db", url])
    assert code == 2 and "a newer examwatch made it" in err and _version(url) == "vehicle_0002"
    cur = runner.invoke(app, ["db", "current", "--db", url, "--json"])
    assert cur.exit_code == 1 and '"state": "newer"' in cur.stdout


def test_each_store_refuses_the_other_s_database(url, tmp_path):
    open_center_store(url, data_dir=tmp_path).close()
    with pytest.raises(SchemaError, match="holds a command center's store"):
        open_store(url, data_dir=tmp_path)
    assert "alerts" not in _tables(url)  # no vehicle table made in the center's database
    open_store(f"sqlite:///{tmp_path / 'v.db'}", data_dir=tmp_path).close()
    with pytest.raises(SchemaError, match="holds a vehicle's alert store"):
        open_center_store(f"sqlite:///{tmp_path / 'v.db'}", data_dir=tmp_path)


# --- readers write nothing -------------------------------------------------------------------------------
def _sqlite_bytes(path: Path) -> tuple:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        master = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        version = con.execute("PRAGMA schema_version").fetchone()
    finally:
        con.close()
    return master, version, path.read_bytes()


def test_a_read_only_store_writes_nothing_sqlite(tmp_path):
    with open_store(None, data_dir=tmp_path) as s:
        _fill(s)
    path = tmp_path / "examwatch.db"
    before = _sqlite_bytes(path)
    with open_store(None, data_dir=tmp_path, readonly=True) as s:
        assert s.list()[1] == 2
        with pytest.raises(Exception, match="readonly|read-only|query_only"):
            s.apply_event(track_event("T9", 1.0, snr=9.0, center_hz=440e6), site="S", run_id="r")
    assert _sqlite_bytes(path) == before
    # an empty file and a missing one are refused, and stay as they were
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(SchemaError, match="holds no alert database"):
        open_store(f"sqlite:///{empty}", data_dir=tmp_path, readonly=True)
    assert empty.stat().st_size == 0
    with pytest.raises(Exception, match="no alert database at .*nothing.db"):
        open_store(f"sqlite:///{tmp_path / 'nothing.db'}", data_dir=tmp_path, readonly=True)
    assert not (tmp_path / "nothing.db").exists()


def test_a_read_only_store_writes_nothing_postgresql(tmp_path):
    with pg_schema(pg_base_url()) as url:
        with pytest.raises(SchemaError, match="holds no alert database"):
            open_store(url, data_dir=tmp_path, readonly=True)
        assert _tables(url) == set()
        _legacy_store(url, tmp_path)  # made before migrations: readable as revision 1, not stamped
        with open_store(url, data_dir=tmp_path, readonly=True) as s:
            assert s.list()[1] == 2
            with pytest.raises(Exception, match="read-only transaction"):
                s.set_status(s.list()[0][0].id, "closed")
        assert "alembic_version_vehicle" not in _tables(url)


def test_db_current_reads_only(tmp_path):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    r = runner.invoke(app, ["db", "current", "--db", f"sqlite:///{empty}"])
    assert r.exit_code == 1 and "empty: a writer creates the schema" in r.stderr
    assert empty.stat().st_size == 0
    open_store(None, data_dir=tmp_path).close()
    r = runner.invoke(app, ["db", "current", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "at vehicle_0001 (this release's schema)" in r.stderr
    h = runner.invoke(app, ["db", "history", "--center", "--json"])
    assert h.exit_code == 0 and '"revision": "center_0001"' in h.stdout


# --- report ------------------------------------------------------------------------------------------------
SITE = 'name = "S"\nlat = 50.0\nlon = 10.0\n'


def test_report_reads_a_center_database_with_all_vehicles_and_writes_nothing(tmp_path):
    (tmp_path / "S.toml").write_text(SITE)
    ids = []
    with open_center_store(None, data_dir=tmp_path / "c") as center:
        for vid in ("van-01", "van-02"):
            with open_store(None, data_dir=tmp_path / vid) as v:
                a = v.apply_event(track_event("T1", 1.0, snr=12.0, center_hz=446e6), site="S", run_id="r")
                center.ingest(vid, {**a.model_dump(mode="json"), "vehicle_id": vid}, f"{a.id}:1")
                ids.append(a.id)
    db = tmp_path / "c" / "center.db"
    before = _sqlite_bytes(db)
    out = tmp_path / "r.html"
    r = runner.invoke(app, ["report", "--site", str(tmp_path / "S.toml"), "--db", f"sqlite:///{db}", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "command center's database: reporting the alerts of all its vehicles" in r.stderr
    html = out.read_text()
    assert all(f'id="{i}"' in html for i in ids) and "2 alert(s)" in r.stderr
    assert "<tr><th>vehicle</th><td>van-01</td></tr>" in html and "<tr><th>vehicle</th><td>van-02</td></tr>" in html
    assert _sqlite_bytes(db) == before  # no vehicle table, no stamp, not a byte


def test_report_on_a_database_without_a_store_is_refused_and_nothing_is_made(tmp_path, capsys):
    (tmp_path / "S.toml").write_text(SITE)
    with pg_schema(pg_base_url()) as url:
        code, err = _exit(capsys, ["report", "--site", str(tmp_path / "S.toml"), "--db", url, "-o", str(tmp_path / "r.html")])
        assert code == 2 and "holds no alert database (no examwatch tables): check the URL" in err
        assert _tables(url) == set()
    assert not (tmp_path / "r.html").exists()


def test_inspect_schema_names_both_stores_in_a_shared_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'both.db'}"
    eng = create_engine(url)
    Base.metadata.create_all(eng)
    CenterBase.metadata.create_all(eng)
    with eng.connect() as c:
        v, cs = inspect_schema(c, VEHICLE_SCHEMA), inspect_schema(c, CENTER_SCHEMA)
    eng.dispose()
    assert (v.kind, v.others) == ("unversioned", ("center",))
    assert (cs.kind, cs.others) == ("unversioned", ("vehicle",))


def test_a_center_database_made_before_migrations_is_adopted_with_its_data(url, tmp_path):
    from detector.center.store import CenterStore

    engine = _raw_engine(url)
    CenterBase.metadata.create_all(engine)
    legacy = CenterStore(engine, url=url)
    with open_store(None, data_dir=tmp_path / "v") as v:
        a = v.apply_event(track_event("T1", 1.0, snr=12.0, center_hz=446e6), site="S", run_id="r")
        b = v.apply_event(track_event("T1", 2.0, snr=13.0, center_hz=446e6), site="S", run_id="r")
    for x in (a, b):
        legacy.ingest("van-01", {**x.model_dump(mode="json"), "vehicle_id": "van-01"}, f"{x.id}:{x.version}")
    legacy.touch("van-01", health={"status": "ok"})
    before = (legacy.get(a.id).model_dump(mode="json"), [h.model_dump(mode="json") for h in legacy.history(a.id)],
              legacy.ingest_count(), legacy.last_event_seq())
    legacy.close()
    assert "alembic_version_center" not in _tables(url)
    with open_center_store(url, data_dir=tmp_path) as c:
        assert (c.get(a.id).model_dump(mode="json"), [h.model_dump(mode="json") for h in c.history(a.id)],
                c.ingest_count(), c.last_event_seq()) == before
        assert before[0]["version"] == 2 and before[2] == 2
    assert _version(url, "alembic_version_center") == "center_0001"


def test_db_upgrade_to_an_unknown_revision_is_refused_and_to_a_lower_one_changes_nothing(tmp_path, rev2, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    rev2()
    open_store(url, data_dir=tmp_path).close()
    code, err = _exit(capsys, ["db", "upgrade", "--db", url, "--to", "nonsense"])
    assert code == 2 and "to 'nonsense'" in err and "does not downgrade" in err
    r = runner.invoke(app, ["db", "upgrade", "--db", url, "--to", "vehicle_0001"])
    assert r.exit_code == 0 and "already at vehicle_0002" in r.stderr  # no downgrade
    assert _version(url) == "vehicle_0002"


def test_serve_on_a_center_database_of_a_newer_release_exits_2_before_listening(tmp_path, capsys):
    from tests._helpers import free_port

    url = f"sqlite:///{tmp_path / 'center.db'}"
    open_center_store(url, data_dir=tmp_path).close()
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("UPDATE alembic_version_center SET version_num = 'center_9999'"))
    eng.dispose()
    code, err = _exit(capsys, ["serve", "--db", url, "--port", str(free_port()), "--data-dir", str(tmp_path)])
    assert code == 2 and "schema revision center_9999, which this examwatch does not know" in err
    assert "a newer examwatch made it" in err
