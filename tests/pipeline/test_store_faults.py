"""Store faults lose nothing (issue 24): a held SQLite write lock, a read-only database, the
PostgreSQL connections of the store cut by the server. Detection goes on, ``/health`` says
``store.ok`` false with the pending count within 5 s, and afterwards every alert is in the store
with its full history: one version per event, in order, none twice."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
import uuid

from sqlalchemy import event, text

from detector.alerts import open_store
from detector.pipeline import Monitor
from tests.pipeline._faults import PacedSource, ScriptedEngine, assert_every_alert_survived, wait_for


def _monitor(store, engine, **kw):
    return Monitor(lambda: PacedSource({}), engine, store=store, evidence=False, block_samples=1 << 12,
                   coalesce_samples=0, watchdog_s=5.0, stall_s=30.0, **kw).start()


def _run_fault(store, eng, inject, release, *, fault_s=4.0):
    """Run until the first alerts are stored, inject the fault, watch /health, release, and check.
    Returns the seconds until ``/health`` said ``store.ok`` false, the ``store.last_error`` it said
    then, and the seconds until the queue was written once the fault was lifted."""
    mon = _monitor(store, eng)
    try:
        assert wait_for(lambda: mon.health()["alerts_stored"] >= 3, 10), mon.health()
        assert mon.health()["store"]["ok"] is True
        inject()
        t0 = time.monotonic()
        seen: list = []
        assert wait_for(lambda: not (seen.append(mon.health()["store"]) or seen[-1])["ok"], 5.0), mon.health()
        took = time.monotonic() - t0
        why = seen[-1]["last_error"]
        assert took < 5.0
        assert wait_for(lambda: mon.health()["store"]["pending"] > 0, 5.0), mon.health()
        h = mon.health()
        assert h["status"] == "degraded" and h["last_error"].startswith("store: ") and h["store"]["since"]
        f0 = h["frames_processed"]
        time.sleep(fault_s)
        h = mon.health()
        assert h["frames_processed"] > f0 + 20  # detection goes on
        assert h["store"]["pending"] > 0 and h["store"]["dropped"] == 0
        assert all(c["state"] in ("running", "finished") for c in h["components"].values()), h["components"]
        release()
        t1 = time.monotonic()
        assert wait_for(lambda: mon.health()["store"]["ok"] and mon.health()["store"]["pending"] == 0, 10.0), mon.health()
        drained = time.monotonic() - t1
        assert mon.health()["status"] == "ok"
        eng.limit = sum(map(len, eng.emitted.values())) + 6  # a few more after the fault, then quiet
        assert wait_for(lambda: sum(map(len, eng.emitted.values())) >= eng.limit, 10)
        f1 = mon.health()["frames_processed"]
        assert wait_for(lambda: mon.health()["frames_processed"] > f1 + 20, 5)
    finally:
        mon.stop()
    assert_every_alert_survived(store, eng)
    return took, why, drained


def test_a_held_sqlite_write_lock_loses_nothing(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    eng = ScriptedEngine(every=4)
    other = sqlite3.connect(tmp_path / "examwatch.db", isolation_level=None, check_same_thread=False)

    def hold():
        other.execute("BEGIN IMMEDIATE")  # another connection holds the write lock

    try:
        took, why, drained = _run_fault(store, eng, hold, lambda: other.execute("COMMIT"), fault_s=8.0)
        assert took < 5.0 and drained < 10.0
        assert why == "the alert store cannot be written: database is locked" or \
            why.startswith("a write has waited"), why
    finally:
        other.close()
        store.close()


def test_a_stop_while_the_database_is_locked_spills_within_its_timeout(tmp_path):
    """A fresh-eyes run found a stop under a held SQLite write lock taking 24 s (each write waited
    the busy timeout, the writer thread's and the flush's in turn) where the stop allows 10 s: a
    supervisor that kills after its timeout would have lost the queue. The stop now spills within
    its timeout plus one write's patience, and the spill holds every change not in the store."""
    store = open_store(None, data_dir=tmp_path)
    eng = ScriptedEngine(every=4)
    other = sqlite3.connect(tmp_path / "examwatch.db", isolation_level=None, check_same_thread=False)
    mon = _monitor(store, eng, state_dir=tmp_path / "state")
    try:
        assert wait_for(lambda: mon.health()["alerts_stored"] >= 3, 10), mon.health()
        other.execute("BEGIN IMMEDIATE")
        assert wait_for(lambda: mon.health()["store"]["pending"] >= 3, 10), mon.health()
        t0 = time.monotonic()
        mon.stop(timeout=3.0)
        took = time.monotonic() - t0
        h = mon.health()["store"]
        assert took < 3.0 + 1.5, took
        assert h["spilled"] >= 3 and h["spill_file"] == str(tmp_path / "examwatch.db.pending.jsonl"), h
    finally:
        other.close()
        mon.stop()
        store.close()


def _read_only(store) -> dict:
    """Root ignores file modes, so the fault is injected where SQLite itself refuses writes:
    ``PRAGMA query_only`` on every connection the store takes, before its BEGIN, while
    ``flag["on"]`` (SQLITE_READONLY, "attempt to write a readonly database", as for a read-only
    file or folder)."""
    flag = {"on": False}

    @event.listens_for(store.engine.pool, "checkout")
    def _query_only(dbapi_conn, _rec, _proxy):
        dbapi_conn.execute(f"PRAGMA query_only={'ON' if flag['on'] else 'OFF'}")

    return flag


def test_a_read_only_database_loses_nothing(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    eng = ScriptedEngine(every=4)
    ro = _read_only(store)

    def inject():
        ro["on"] = True

    def release():
        ro["on"] = False

    try:
        took, why, drained = _run_fault(store, eng, inject, release)
        assert took < 5.0 and drained < 10.0
        assert why == ("the alert store cannot be written: the data folder or the database file is read-only: make it "
                       "writable (attempt to write a readonly database)"), why
    finally:
        store.close()


def test_a_full_disk_loses_nothing(tmp_path):
    """The data folder's disk fills up: ``PRAGMA max_page_count`` at the database's current size on
    every connection the store takes makes SQLite refuse to grow the file (SQLITE_FULL, "database
    or disk is full", as on a full disk). ``/health`` says the data folder is full within 5 s,
    detection goes on, and once there is room again every alert is in the store with its history."""
    store = open_store(None, data_dir=tmp_path)
    eng = ScriptedEngine(every=4)
    full = {"pages": None}

    @event.listens_for(store.engine.pool, "checkout")
    def _max_pages(dbapi_conn, _rec, _proxy):
        pages = full["pages"]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages if pages is not None else 4294967294}")

    def inject():
        with store.engine.connect() as c:  # the file as it is now, not a page more
            full["pages"] = c.exec_driver_sql("PRAGMA page_count").scalar()

    def release():
        full["pages"] = None

    try:
        took, why, drained = _run_fault(store, eng, inject, release)
        assert took < 5.0 and drained < 10.0
        assert why == ("the alert store cannot be written: the data folder is full: free space on its disk "
                       "(database or disk is full)"), why
    finally:
        store.close()


def test_changes_queued_when_the_monitor_stops_are_written_first_at_its_next_start(tmp_path):
    """The monitor stops while the database is read-only: what is queued is spilled next to the
    store (``/health`` → ``store.spilled``); the next start with the same store restores it
    (``store.restored``), writes it within 5 s and before any change of the new run, and removes
    the file. Every alert of both runs is in the store with its full history, none twice."""
    state = tmp_path / "state"
    spill = tmp_path / "examwatch.db.pending.jsonl"
    store = open_store(None, data_dir=tmp_path)
    ro = _read_only(store)
    eng = ScriptedEngine(every=4)
    mon = _monitor(store, eng, state_dir=state)
    try:
        assert wait_for(lambda: mon.health()["alerts_stored"] >= 3, 10), mon.health()
        ro["on"] = True
        assert wait_for(lambda: mon.health()["store"]["pending"] >= 6, 10), mon.health()
        eng.limit = sum(map(len, eng.emitted.values()))  # no more alerts: the counts below are exact
    finally:
        mon.stop(timeout=2.0)
    emitted = sum(map(len, eng.emitted.values()))
    in_store = sum(a.version for a in store.list(limit=1000)[0])
    h = mon.health()["store"]
    assert h["spilled"] == emitted - in_store and h["spilled"] >= 6, (h, emitted, in_store)
    assert (h["pending"], h["dropped"], h["restored"], h["spill_file"]) == (0, 0, 0, str(spill))
    assert len(spill.read_text().splitlines()) == h["spilled"] + 1  # the header, one line per change
    assert not state.exists()
    store.close()

    store = open_store(None, data_dir=tmp_path)  # the next start, the data folder writable again
    eng2 = ScriptedEngine(every=4)
    t0 = time.monotonic()
    mon2 = _monitor(store, eng2, run_id="run2", state_dir=state)
    try:
        assert mon2.health()["store"]["restored"] == h["spilled"]
        assert wait_for(lambda: mon2.health()["store"]["restore_left"] == 0, 5.0), mon2.health()["store"]
        assert time.monotonic() - t0 < 5.0
        assert not spill.exists()
        eng2.limit = 6
        assert wait_for(lambda: sum(map(len, eng2.emitted.values())) >= 6, 10)
        assert wait_for(lambda: mon2.health()["store"]["pending"] == 0, 5), mon2.health()["store"]
        h2 = mon2.health()["store"]
        assert (h2["ok"], h2["restored"], h2["restore_left"], h2["spilled"], h2["failed"]) == (True, h["spilled"], 0, 0, 0)
    finally:
        mon2.stop()
    assert_every_alert_survived(store, eng, run_id="run")
    assert_every_alert_survived(store, eng2, run_id="run2")
    alerts = store.list(limit=1000)[0]
    last_old = max(x.at for a in alerts if a.run_id == "run" for x in store.history(a.id))
    first_new = min(x.at for a in alerts if a.run_id == "run2" for x in store.history(a.id))
    assert last_old <= first_new  # the restored changes went first
    store.close()


def test_postgres_connections_cut_by_the_server_lose_nothing(tmp_path):
    """The loopback server terminates every connection of the store (``pg_terminate_backend``, as
    at a server restart), first for 3 s while it still accepts new ones (each write retries on a
    fresh connection), then for 4 s while it refuses the store's logins too (the store connects as
    a role of its own, made ``NOLOGIN``: the server is not back yet). ``/health`` says
    ``store.ok`` false with the reason within 5 s of that, detection goes on, and after the server
    accepts the store again every alert is in the store with its full history, none twice."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from tests.push import pg_base_url, pg_schema

    base = pg_base_url()  # skips (fails under CI) when no PostgreSQL is reachable, saying why
    role = f"ew_store_{uuid.uuid4().hex[:10]}"
    killer = create_engine(base, isolation_level="AUTOCOMMIT")
    with pg_schema(base) as url:
        schema = make_url(url).query["options"].split("=", 1)[1]
        with killer.connect() as c:
            c.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            c.execute(text(f'GRANT ALL ON SCHEMA "{schema}" TO "{role}"'))
        store = open_store(make_url(url).set(username=role).render_as_string(hide_password=False), data_dir=tmp_path)
        cut = {"on": False, "n": 0}
        stop = threading.Event()

        def terminate() -> int:
            with killer.connect() as c:
                return c.execute(text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE usename = :r AND pid <> pg_backend_pid()"), {"r": role}).scalar() or 0

        def cutter():
            while not stop.is_set():
                if cut["on"]:
                    cut["n"] += terminate()
                time.sleep(0.02)

        def logins(on: bool) -> None:
            with killer.connect() as c:
                c.execute(text(f'ALTER ROLE "{role}" {"LOGIN" if on else "NOLOGIN"}'))

        th = threading.Thread(target=cutter, daemon=True)
        th.start()
        eng = ScriptedEngine(every=4)
        mon = _monitor(store, eng, state_dir=tmp_path / "state")
        try:
            assert wait_for(lambda: mon.health()["alerts_stored"] >= 3, 10), mon.health()
            cut["on"] = True
            time.sleep(3.0)
            cut["on"] = False
            assert cut["n"] > 0
            assert wait_for(lambda: mon.health()["store"]["ok"] and mon.health()["store"]["pending"] == 0, 10), \
                mon.health()["store"]

            # the server goes away: the store's connections cut, its logins refused
            logins(False)
            terminate()  # may find none: between writes the pool can hold no connection, then the refused login alone fails the next write
            t0 = time.monotonic()
            seen: list = []
            assert wait_for(lambda: not (seen.append(mon.health()["store"]) or seen[-1])["ok"], 5.0), mon.health()
            took = time.monotonic() - t0
            assert took < 5.0
            why = seen[-1]["last_error"]
            assert why.startswith("the alert store cannot be written: ") and "127.0.0.1" in why, why
            assert wait_for(lambda: mon.health()["store"]["pending"] > 0, 5.0), mon.health()["store"]
            h = mon.health()
            assert h["status"] == "degraded" and h["last_error"].startswith("store: the alert store cannot be written")
            f0 = h["frames_processed"]
            time.sleep(4.0)
            h = mon.health()
            assert h["frames_processed"] > f0 + 20  # detection goes on
            assert h["store"]["ok"] is False and h["store"]["pending"] > 0 and h["store"]["dropped"] == 0

            logins(True)  # the server is back
            t1 = time.monotonic()
            assert wait_for(lambda: mon.health()["store"]["ok"] and mon.health()["store"]["pending"] == 0, 10.0), \
                mon.health()["store"]
            assert time.monotonic() - t1 < 10.0
            eng.limit = sum(map(len, eng.emitted.values())) + 6
            assert wait_for(lambda: sum(map(len, eng.emitted.values())) >= eng.limit, 15)
            assert wait_for(lambda: mon.health()["store"]["pending"] == 0 and mon.health()["store"]["ok"], 15), mon.health()
            h = mon.health()
            assert h["status"] == "ok" and (h["store"]["spilled"], h["store"]["failed"]) == (0, 0)
            assert all(c["state"] in ("running", "finished") for c in h["components"].values()), h["components"]
        finally:
            stop.set()
            mon.stop()
            th.join(2)
        try:
            assert_every_alert_survived(store, eng)
        finally:
            store.close()
            with killer.connect() as c:
                c.execute(text(f'ALTER ROLE "{role}" LOGIN'))
                terminate()
                c.execute(text(f'DROP OWNED BY "{role}"'))
                c.execute(text(f'DROP ROLE "{role}"'))
            killer.dispose()

def test_reads_get_503_while_another_program_holds_the_database_exclusively(tmp_path, monkeypatch):
    """Another program (a backup script, the ``sqlite3`` shell) takes the database with
    ``PRAGMA locking_mode=EXCLUSIVE``: in WAL mode that blocks the store's reads too, not only its
    writes. The read routes answer 503 with the reason and ``Retry-After``, ``/health`` answers 200
    with ``store.ok`` false within 5 s, and afterwards every alert is in the store with its history."""
    from fastapi.testclient import TestClient

    from detector.alerts import db as dbmod
    from detector.api import ApiContext, create_app

    monkeypatch.setattr(dbmod, "SQLITE_BUSY_TIMEOUT_S", 0.3)  # each blocked read waits this long
    store = open_store(None, data_dir=tmp_path)
    eng = ScriptedEngine(every=4)
    mon = _monitor(store, eng)
    client = TestClient(create_app(ApiContext(store=store, token="t", monitor=mon)))
    other = None
    try:
        assert wait_for(lambda: mon.health()["alerts_stored"] >= 3, 10), mon.health()
        a = store.find_by_track("site", "run", "T1")
        assert a is not None
        assert client.get("/api/v1/alerts").status_code == 200
        # the other program opens the database while the store's pooled connections are idle (closed
        # here: an exclusive lock cannot be taken while another connection holds the WAL index)
        # (the monitor writes an alert change every few frames and would reopen one: its processing
        # is held while the other program takes the database, after the write under way, if any, is
        # done: a connection checked out during dispose() stays open in the discarded pool)
        eng.hold.clear()
        try:
            time.sleep(0.5)
            for _ in range(100):
                store.engine.dispose()
                gc.collect()  # discarded pools close their connections when collected
                other = sqlite3.connect(tmp_path / "examwatch.db", isolation_level=None, timeout=0.2,
                                        check_same_thread=False)
                try:
                    other.execute("PRAGMA locking_mode=EXCLUSIVE")
                    other.execute("BEGIN EXCLUSIVE")
                    other.execute("COMMIT")  # the exclusive lock stays until the connection closes
                    break
                except sqlite3.OperationalError:
                    other.close()
                    other = None
                    time.sleep(0.05)
        finally:
            eng.hold.set()
        assert other is not None, "the database could not be taken exclusively in 100 tries"
        t0 = time.monotonic()
        assert wait_for(lambda: not client.get("/api/v1/health").json()["store"]["ok"], 5.0), mon.health()
        assert time.monotonic() - t0 < 5.0
        h = client.get("/api/v1/health")
        assert h.status_code == 200 and h.json()["status"] == "degraded"
        assert "database is locked" in h.json()["store"]["last_error"]
        for path in ("/api/v1/alerts?limit=7", f"/api/v1/alerts/{a.id}", f"/api/v1/alerts/{a.id}/history"):
            r = client.get(path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["detail"] == "the alert store cannot be read now: database is locked", r.text
            assert r.headers["retry-after"] == "5"
        f0 = mon.health()["frames_processed"]
        assert wait_for(lambda: mon.health()["frames_processed"] > f0 + 20, 5)  # detection goes on
        other.close()
        other = None
        assert wait_for(lambda: mon.health()["store"]["ok"] and mon.health()["store"]["pending"] == 0, 10), mon.health()
        assert client.get(f"/api/v1/alerts/{a.id}").status_code == 200
    finally:
        if other is not None:
            other.close()
        mon.stop()
    assert_every_alert_survived(store, eng)
    store.close()
