"""Store faults at the store's level (issue 24): a locked database raises StoreUnavailable after a
bounded wait, a repeated event bumps no version (retries write nothing twice), and the API answers
503 with the reason."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone

import pytest

from detector.alerts import open_store
from detector.alerts import db as dbmod
from detector.core.errors import StoreUnavailable
from detector.detection.events import event_from_json
from tests.push import track_event


def test_a_locked_database_raises_store_unavailable_after_a_bounded_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(dbmod, "LOCKED_RETRY_S", 0.3)
    store = open_store(None, data_dir=tmp_path)
    ev = event_from_json(track_event("T1", 1.0, snr=20.0, center_hz=446e6))
    other = sqlite3.connect(tmp_path / "examwatch.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        with store.db.patience(0.2), pytest.raises(StoreUnavailable, match="database is locked"):
            store.apply(ev, site="s", run_id="r")
        assert time.monotonic() - t0 < 1.0
    finally:
        other.execute("COMMIT")
        other.close()
    assert store.apply(ev, site="s", run_id="r").version == 1
    store.close()


def test_the_same_event_applied_twice_bumps_no_version(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    when = datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc)
    e1 = event_from_json(track_event("T1", 1.0, snr=20.0, center_hz=446e6))
    e2 = event_from_json(track_event("T1", 2.0, snr=21.0, center_hz=446e6))
    a = store.apply(e1, site="s", run_id="r", when=when)
    assert store.apply(e1, site="s", run_id="r", when=when).version == a.version == 1
    b = store.apply(e2, site="s", run_id="r", when=when)
    assert store.apply(e2, site="s", run_id="r", when=when).version == b.version == 2
    assert [h.version for h in store.history(a.id)] == [1, 2]
    store.close()


def test_a_write_request_gets_503_with_the_reason_while_the_store_is_locked(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from detector.api import ApiContext, create_app

    monkeypatch.setattr(dbmod, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(dbmod, "LOCKED_RETRY_S", 0.2)
    store = open_store(None, data_dir=tmp_path)
    a = store.apply(event_from_json(track_event("T1", 1.0, snr=20.0, center_hz=446e6)), site="s", run_id="r")
    client = TestClient(create_app(ApiContext(store=store, token="t", monitor=None)))
    other = sqlite3.connect(tmp_path / "examwatch.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        r = client.patch(f"/api/v1/alerts/{a.id}", json={"status": "acknowledged", "reason": "x"},
                         headers={"Authorization": "Bearer t"})
        assert r.status_code == 503, r.text
        assert "database is locked" in r.json()["detail"] and r.headers["retry-after"] == "5"
    finally:
        other.execute("COMMIT")
        other.close()
    r = client.patch(f"/api/v1/alerts/{a.id}", json={"status": "acknowledged", "reason": "x"},
                     headers={"Authorization": "Bearer t"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert [h.version for h in store.history(a.id)] == [1, 2]  # the refused request wrote nothing
    store.close()


def test_a_full_or_read_only_database_is_said_in_the_operators_words(tmp_path):
    import errno

    from sqlalchemy.exc import OperationalError

    c = sqlite3.connect(tmp_path / "x.db")
    c.execute("CREATE TABLE t (x)")
    c.execute("PRAGMA max_page_count=2")  # the file may not grow: SQLITE_FULL, as on a full disk
    with pytest.raises(sqlite3.OperationalError) as full:
        c.execute("INSERT INTO t VALUES (randomblob(100000))")
    c.execute("PRAGMA query_only=ON")  # SQLITE_READONLY, as for a read-only file (root ignores modes)
    with pytest.raises(sqlite3.OperationalError) as ro:
        c.execute("INSERT INTO t VALUES (1)")
    c.close()
    assert dbmod.unavailable_reason(OperationalError("INSERT", {}, full.value)) == \
        "the data folder is full: free space on its disk (database or disk is full)"
    assert dbmod.unavailable_reason(OperationalError("INSERT", {}, ro.value)) == \
        "the data folder or the database file is read-only: make it writable (attempt to write a readonly database)"
    assert dbmod.unavailable_reason(OSError(errno.ENOSPC, "No space left on device")) == \
        "the data folder is full: free space on its disk ([Errno 28] No space left on device)"
    assert dbmod.unavailable_reason(OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))) == \
        "database is locked"
    assert dbmod.unavailable_reason(ValueError("a bug")) is None
