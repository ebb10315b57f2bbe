"""The alert store, on SQLite (a temporary file) and on PostgreSQL (127.0.0.1:5432, database ``test``).

Each PostgreSQL test runs in its own fresh schema (``search_path`` set through the URL), dropped
afterwards, so tests do not interfere with each other or with other users of the database.
Without a reachable PostgreSQL the PostgreSQL cases are skipped with the reason, except under
``CI`` where they fail. ``EXAMWATCH_TEST_PG`` overrides the server URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from detector.alerts import (
    AlertPublic,
    AlertStatusUpdate,
    InvalidTransition,
    open_store,
)
from detector.core.errors import InputError

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 7, 9, 0, 0, tzinfo=timezone.utc)


# --- backends ------------------------------------------------------------------------------------
def _pg_candidates() -> list[str]:
    if os.environ.get("EXAMWATCH_TEST_PG"):
        return [os.environ["EXAMWATCH_TEST_PG"]]
    return [f"postgresql+psycopg://{user}@127.0.0.1:5432/test" for user in ("postgres", "root")]


@pytest.fixture(scope="session")
def pg_url() -> str:
    errors = []
    for url in _pg_candidates():
        eng = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with eng.connect() as c:
                c.execute(text("select 1"))
            return url
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            errors.append(f"{make_url(url).render_as_string(hide_password=True)}: {str(exc).splitlines()[0]}")
        finally:
            eng.dispose()
    msg = "PostgreSQL not reachable (" + "; ".join(errors) + ")"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@contextlib.contextmanager
def _pg_schema(base: str):
    """A fresh schema on the PostgreSQL server; yields the URL whose ``search_path`` is that schema."""
    schema = f"ew_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """``None`` (SQLite under ``tmp_path``) or the URL of a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    with _pg_schema(request.getfixturevalue("pg_url")) as url:
        yield url


@pytest.fixture
def make_store(db_url, tmp_path):
    """Opens stores on the test backend (all closed at the end)."""
    opened = []

    def make():
        s = open_store(db_url, data_dir=tmp_path / "data")
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store):
    return make_store()


def ev(track_id="T00001", *, kind="update", alert=True, center_hz=446_093_750.0, first_s=10.0, last_s=12.0,
       snr=20.0, excess=15.0, peak=-40.0, location=None, severity="high", bursts=1, **extra) -> dict:
    e = {"event": kind, "track_id": track_id, "alert": alert, "center_hz": center_hz, "bandwidth_hz": 11000.0,
         "first_seen_s": first_s, "last_seen_s": last_s, "peak_dbfs": peak, "snr_db": snr, "excess_db": excess,
         "classification": "nfm_voice", "bursts": bursts, "reasons": ["persistent: 3 of the last 5 frames"],
         "location": location, "severity": severity, "score_terms": {"excess": 3.0, "persistence": 2.0},
         "f_lo_hz": center_hz - 5500, "f_hi_hz": center_hz + 5500, "duty_cycle": 0.5}
    e.update(extra)
    return e


def loc(status="located", lat=50.0001, lon=10.0001) -> dict:
    return {"lat": lat, "lon": lon, "error_ellipse_m": {"semi_major": 30.0, "semi_minor": 12.0, "angle_deg": 40.0},
            "cep50_m": 15.0, "crlb_rmse_m": 9.0, "status": status, "method": "rss_nls", "n_readings": 40}


# --- creating and updating -----------------------------------------------------------------------
def test_alerting_event_creates_an_alert(store):
    assert store.apply_event(ev(alert=False), site="S", run_id="r1", when=T0) is None
    assert store.list()[1] == 0

    a = store.apply_event(ev(kind="new"), site="S", run_id="r1", when=T0)
    assert isinstance(a, AlertPublic)
    assert a.id.startswith("A-") and len(a.id) == 14
    assert (a.status, a.version, a.site, a.run_id, a.track_id) == ("new", 1, "S", "r1", "T00001")
    assert (a.center_hz, a.bandwidth_hz, a.classification, a.severity) == (446_093_750.0, 11000.0, "nfm_voice", "high")
    assert (a.snr_db, a.excess_db, a.peak_dbfs, a.bursts) == (20.0, 15.0, -40.0, 1)
    assert a.reasons == ["persistent: 3 of the last 5 frames"] and a.score_terms == {"excess": 3.0, "persistence": 2.0}
    assert a.location is None and a.evidence == []
    # `when` is the wall time of last_seen_s; first_seen is that minus the track's span
    assert a.last_seen == T0 and a.first_seen == T0 - timedelta(seconds=2)
    assert (a.first_seen_s, a.last_seen_s) == (10.0, 12.0)
    assert a.first_seen.tzinfo is not None and a.first_seen.utcoffset() == timedelta(0)
    assert a.created_at.utcoffset() == timedelta(0)

    assert store.get(a.id) == a
    assert store.get("A-000000000000") is None
    assert store.find_by_track("S", "r1", "T00001") == a
    assert store.find_by_track("S", "r2", "T00001") is None
    assert store.track_summary(a.id)["duty_cycle"] == 0.5
    # a non-alerting event of the same track changes nothing
    assert store.apply_event(ev(alert=False, last_s=20.0), site="S", run_id="r1", when=T0) is None
    assert store.get(a.id).version == 1


def test_wall_clock_fields_win_and_serialise_with_z(store):
    e = ev(first_seen_utc="2026-06-07T08:00:00Z", last_seen_utc="2026-06-07T08:00:02.5Z")
    a = store.apply_event(e, site="S", run_id="r1", when=T0)
    assert a.first_seen == datetime(2026, 6, 7, 8, 0, 0, tzinfo=timezone.utc)
    assert a.last_seen == datetime(2026, 6, 7, 8, 0, 2, 500000, tzinfo=timezone.utc)
    js = json.loads(a.model_dump_json())
    assert js["first_seen"] == "2026-06-07T08:00:00Z" and js["last_seen"] == "2026-06-07T08:00:02.500000Z"
    assert js["created_at"].endswith("Z")
    # default `when` is now (UTC)
    b = store.apply_event(ev("T2"), site="S", run_id="r1")
    assert abs((b.last_seen - datetime.now(timezone.utc)).total_seconds()) < 60


def test_versions_bump_only_on_change_and_keep_maxima(store):
    a = store.apply_event(ev(kind="new"), site="S", run_id="r1", when=T0)
    same = store.apply_event(ev(kind="new"), site="S", run_id="r1", when=T0)
    assert same.version == 1 and same.id == a.id
    b = store.apply_event(ev(last_s=17.0, snr=30.0, excess=10.0, peak=-50.0, bursts=3),
                          site="S", run_id="r1", when=T0 + timedelta(seconds=5))
    assert (b.id, b.version, b.status) == (a.id, 2, "updated")
    assert b.snr_db == 30.0 and b.excess_db == 15.0 and b.peak_dbfs == -40.0 and b.bursts == 3  # maxima
    assert b.last_seen == T0 + timedelta(seconds=5) and b.first_seen == a.first_seen
    assert b.last_seen_s == 17.0 and b.updated_at >= a.updated_at
    # a stale event does not move last_seen back
    c = store.apply_event(ev(last_s=13.0, severity="medium"), site="S", run_id="r1", when=T0)
    assert c.version == 3 and c.severity == "medium" and c.last_seen == b.last_seen and c.last_seen_s == 17.0
    # another run or site is another alert
    d = store.apply_event(ev(), site="S", run_id="r2", when=T0)
    e = store.apply_event(ev(), site="S2", run_id="r1", when=T0)
    assert len({a.id, d.id, e.id}) == 3
    hist = store.history(a.id)
    assert [h.version for h in hist] == [1, 2, 3]
    assert hist[1].cause == "event:update" and "snr_db" in hist[1].fields and hist[1].changes["snr_db"] == [20.0, 30.0]
    assert hist[1].changes["status"] == ["new", "updated"]


def test_lifecycle_to_located(store):
    a = store.apply_event(ev(kind="new"), site="S", run_id="r1", when=T0)
    assert a.status == "new"
    b = store.apply_event(ev(last_s=14.0, location=loc("not_localizable")), site="S", run_id="r1", when=T0)
    assert b.status == "updated" and b.location["status"] == "not_localizable"
    c = store.apply_event(ev(last_s=16.0, location=loc()), site="S", run_id="r1", when=T0)
    assert (c.status, c.version) == ("located", 3)
    assert c.location == loc()
    # later events without a location, or with a worse one, keep the located estimate
    d = store.apply_event(ev(last_s=18.0, location=None), site="S", run_id="r1", when=T0)
    e = store.apply_event(ev(last_s=20.0, location=loc("not_localizable")), site="S", run_id="r1", when=T0)
    assert d.status == e.status == "located" and e.location == loc() and e.version == 5
    # a newer located estimate replaces the old one
    f = store.apply_event(ev(last_s=22.0, location=loc(lat=50.0002)), site="S", run_id="r1", when=T0)
    assert f.location["lat"] == 50.0002
    assert [h.status for h in store.history(a.id)] == ["new", "updated", "located", "located", "located", "located"]
    # an alert located on its first event starts located
    g = store.apply_event(ev("T9", location=loc()), site="S", run_id="r1", when=T0)
    assert (g.status, g.version) == ("located", 1)


def test_missing_events_are_alerts(store):
    m = {"event": "missing", "track_id": "M446500", "alert": True, "center_hz": 446_500_000.0, "bandwidth_hz": 5000.0,
         "first_seen_s": 100.0, "last_seen_s": 130.0, "peak_dbfs": None, "snr_db": None, "excess_db": None,
         "classification": "unknown", "bursts": 0, "reasons": ["survey emission absent for 30 s"], "location": None}
    a = store.apply_event(m, site="S", run_id="r1", when=T0)
    assert a is not None and a.status == "new" and a.severity == "medium" and a.snr_db is None
    assert a.first_seen == T0 - timedelta(seconds=30)
    assert store.apply_event({**m, "alert": False}, site="S", run_id="r1", when=T0).id == a.id


def test_bad_events_are_input_errors(store):
    with pytest.raises(InputError):
        store.apply_event(ev(track_id=""), site="S", run_id="r1")
    with pytest.raises(InputError):
        store.apply_event({**ev(), "center_hz": "abc"}, site="S", run_id="r1")
    with pytest.raises(InputError):
        store.apply_event(ev(), site="", run_id="r1")
    with pytest.raises(InputError):
        store.apply_event(ev(first_seen_utc="yesterday"), site="S", run_id="r1")
    assert store.list()[1] == 0


# --- status --------------------------------------------------------------------------------------
def test_set_status_transitions(store):
    a = store.apply_event(ev(kind="new"), site="S", run_id="r1", when=T0)
    b = store.set_status(a.id, "acknowledged", reason="crew on the way", actor="van-3")
    assert (b.status, b.version) == ("acknowledged", 2)
    assert store.set_status(a.id, "acknowledged").version == 2  # same status: nothing changes
    # an acknowledged alert keeps following its track
    c = store.apply_event(ev(last_s=30.0, snr=40.0, location=loc()), site="S", run_id="r1", when=T0 + timedelta(seconds=18))
    assert (c.status, c.version, c.snr_db, c.location["status"]) == ("acknowledged", 3, 40.0, "located")
    d = store.set_status(a.id, "dismissed", reason="licensed taxi radio")
    assert (d.status, d.version) == ("dismissed", 4)
    with pytest.raises(InvalidTransition) as exc:
        store.set_status(a.id, "acknowledged")
    assert isinstance(exc.value, InputError) and "dismissed" in str(exc.value)
    # a dismissed alert is not reopened by its track: only last_seen moves
    e = store.apply_event(ev(last_s=50.0, snr=60.0, severity="low"), site="S", run_id="r1", when=T0 + timedelta(seconds=38))
    assert (e.status, e.version, e.snr_db, e.severity) == ("dismissed", 5, 40.0, "high")
    assert e.last_seen == T0 + timedelta(seconds=38) and e.last_seen_s == 50.0
    f = store.set_status(a.id, "closed", reason="done", actor="center")
    assert (f.status, f.version) == ("closed", 6)
    for target in ("acknowledged", "dismissed"):
        with pytest.raises(InvalidTransition):
            store.set_status(a.id, target)
    g = store.apply_event(ev(last_s=70.0), site="S", run_id="r1", when=T0 + timedelta(seconds=58))
    assert (g.status, g.version) == ("closed", 7)
    assert store.get(a.id).version == 7

    hist = store.history(a.id)
    assert [h.version for h in hist] == list(range(1, 8))
    assert hist[1].reason == "crew on the way" and hist[1].actor == "van-3" and hist[1].cause == "status"
    assert hist[5].changes == {"status": ["dismissed", "closed"]} and hist[5].actor == "center"
    assert all(h.at.utcoffset() == timedelta(0) for h in hist)
    assert hist == sorted(hist, key=lambda h: h.seq)

    with pytest.raises(KeyError):
        store.set_status("A-nope", "closed")
    with pytest.raises(InputError):
        store.set_status(a.id, "located")  # not settable
    assert store.history("A-nope") == []
    # open alert straight to closed is allowed
    h = store.apply_event(ev("T2"), site="S", run_id="r1", when=T0)
    assert store.set_status(h.id, "closed").status == "closed"


def test_status_update_schema():
    assert AlertStatusUpdate(status="dismissed", reason="x").status == "dismissed"
    for bad in ({"status": "new"}, {"status": "closed", "extra": 1}, {"reason": "x"}):
        with pytest.raises(ValueError):
            AlertStatusUpdate.model_validate(bad)


# --- lists ---------------------------------------------------------------------------------------
def _populate(store):
    ids = {}
    specs = [  # track, site, center, last_seen offset (s)
        ("T1", "A", 446_006_250.0, 0), ("T2", "A", 433_920_000.0, 10), ("T3", "B", 446_093_750.0, 20),
        ("T4", "B", 868_300_000.0, 30), ("T5", "A", 446_193_750.0, 40),
    ]
    for tid, site, f, dt in specs:
        a = store.apply_event(ev(tid, center_hz=f), site=site, run_id="r1", when=T0 + timedelta(seconds=dt))
        ids[tid] = a.id
    return ids


def test_list_filters_order_and_paging(store):
    ids = _populate(store)
    store.set_status(ids["T2"], "acknowledged")
    store.set_status(ids["T4"], "closed")

    rows, n = store.list()
    assert n == 5 and [r.track_id for r in rows] == ["T5", "T4", "T3", "T2", "T1"]  # newest last_seen first
    rows, n = store.list(site="A")
    assert n == 3 and {r.track_id for r in rows} == {"T1", "T2", "T5"}
    assert store.list(status="closed")[1] == 1
    rows, n = store.list(status=["new", "acknowledged"])
    assert n == 4 and {r.track_id for r in rows} == {"T1", "T2", "T3", "T5"}
    rows, n = store.list(since=T0 + timedelta(seconds=20))
    assert n == 3 and {r.track_id for r in rows} == {"T3", "T4", "T5"}
    rows, n = store.list(since=(T0 + timedelta(seconds=20)).replace(tzinfo=None))  # naive = UTC
    assert n == 3
    rows, n = store.list(since=(T0 + timedelta(seconds=20)).astimezone(timezone(timedelta(hours=2))))
    assert n == 3
    rows, n = store.list(f_min_hz=446e6, f_max_hz=446.2e6)
    assert n == 3 and {r.track_id for r in rows} == {"T1", "T3", "T5"}
    assert store.list(f_min_hz=800e6)[1] == 1 and store.list(f_max_hz=434e6)[1] == 1
    assert store.list(f_min_hz=446_093_750.0, f_max_hz=446_093_750.0)[1] == 1  # inclusive
    rows, n = store.list(site="A", status="new", f_min_hz=446e6)
    assert n == 2 and [r.track_id for r in rows] == ["T5", "T1"]

    # paging: count ignores limit/offset
    rows, n = store.list(limit=2)
    assert n == 5 and [r.track_id for r in rows] == ["T5", "T4"]
    rows, n = store.list(limit=2, offset=2)
    assert n == 5 and [r.track_id for r in rows] == ["T3", "T2"]
    rows, n = store.list(limit=2, offset=4)
    assert n == 5 and [r.track_id for r in rows] == ["T1"]
    assert store.list(offset=10) == ([], 5)
    assert len(store.list(limit=1000)[0]) == 5 and len(store.list(limit=1)[0]) == 1
    for bad in (0, 1001, -1, 2.5, True):
        with pytest.raises(ValueError):
            store.list(limit=bad)
    with pytest.raises(ValueError):
        store.list(offset=-1)
    with pytest.raises(ValueError):
        store.list(status="bogus")
    with pytest.raises(ValueError):
        store.list(f_min_hz=2e6, f_max_hz=1e6)


def test_open_alerts(store):
    ids = _populate(store)
    store.set_status(ids["T2"], "dismissed")
    store.set_status(ids["T4"], "closed")
    store.set_status(ids["T3"], "acknowledged")
    assert [a.track_id for a in store.open_alerts()] == ["T1", "T3", "T5"]
    assert [a.track_id for a in store.open_alerts("A")] == ["T1", "T5"]
    assert store.open_alerts("nowhere") == []


def test_a_restarted_run_continues_the_open_alert_of_the_same_transmitter(store):
    a = store.apply_event(ev("T00001"), site="S", run_id="r1", when=T0)
    store.apply_event(ev("T00002", center_hz=446_200_000.0), site="S", run_id="r1", when=T0)
    gone = store.apply_event(ev("T00003", center_hz=446_300_000.0), site="S", run_id="r1", when=T0)
    m = store.apply_event(ev("M7", kind="missing", center_hz=446_400_000.0), site="S", run_id="r1", when=T0)
    other_site = store.apply_event(ev("T00001"), site="B", run_id="r1", when=T0)
    store.set_status(store.find_by_track("S", "r1", "T00002").id, "closed")  # closed, not resumed
    resume = {x.id for x in store.open_alerts("S")}
    assert resume == {a.id, gone.id, m.id}
    # the restarted run sees the same transmitter 2 kHz off as its track T00004
    b = store.apply_event(ev("T00004", center_hz=446_095_750.0, first_s=1.0, last_s=2.0), site="S", run_id="r2",
                          when=T0 + timedelta(minutes=5), resume=resume)
    assert b.id == a.id and b.run_id == "r2" and b.track_id == "T00004" and b.version == a.version + 1
    h = store.history(a.id)[-1]
    assert h.cause == "event:resumed" and "run r2, track T00004 continues run r1, track T00001" in h.reason
    assert store.find_by_track("S", "r2", "T00004").id == a.id
    # the next event of that track updates the same alert
    assert store.apply_event(ev("T00004", center_hz=446_095_750.0, last_s=3.0), site="S", run_id="r2",
                             resume=resume - {a.id}).id == a.id
    # 200 kHz off (the closed one's frequency) and with nothing left to resume: a new alert
    c = store.apply_event(ev("T00005", center_hz=446_200_000.0), site="S", run_id="r2", resume=resume - {a.id})
    assert c.id not in {a.id, gone.id, m.id}
    # a missing station continues only the same station's alert
    assert store.apply_event(ev("M8", kind="missing", center_hz=446_400_000.0), site="S", run_id="r2",
                             resume={m.id}).id != m.id
    assert store.apply_event(ev("M7", kind="missing", center_hz=446_400_000.0), site="S", run_id="r2",
                             resume={m.id}).id == m.id
    # another site's alert is never continued
    assert store.apply_event(ev("T00009"), site="S", run_id="r3", resume={other_site.id}).id != other_site.id
    assert store.get(gone.id).status == "new"  # not seen again: stays open for the operator


# --- evidence ------------------------------------------------------------------------------------
def test_evidence(store):
    import hashlib

    a = store.apply_event(ev(), site="S", run_id="r1", when=T0)
    blob = bytes(range(256)) * 100
    info = store.add_evidence(a.id, "iq.sigmf-data", blob, "application/octet-stream")
    assert info.sha256 == hashlib.sha256(blob).hexdigest() and info.size_bytes == len(blob)
    got = store.evidence(a.id, "iq.sigmf-data")
    assert got is not None and got[0] == blob and got[1] == info
    b = store.get(a.id)
    assert b.version == 2
    assert b.evidence == [{"name": "iq.sigmf-data", "media_type": "application/octet-stream",
                           "sha256": info.sha256, "size_bytes": len(blob)}]
    store.add_evidence(a.id, "audio.wav", b"RIFF....WAVE", "audio/wav")
    c = store.get(a.id)
    assert c.version == 3 and [e["name"] for e in c.evidence] == ["audio.wav", "iq.sigmf-data"]
    assert [e["name"] for e in store.list()[0][0].evidence] == ["audio.wav", "iq.sigmf-data"]
    # the same bytes again change nothing; new bytes replace
    store.add_evidence(a.id, "audio.wav", b"RIFF....WAVE", "audio/wav")
    assert store.get(a.id).version == 3
    info2 = store.add_evidence(a.id, "audio.wav", b"RIFF....WAVE2", "audio/wav")
    assert store.get(a.id).version == 4 and store.evidence(a.id, "audio.wav")[0] == b"RIFF....WAVE2"
    assert store.evidence(a.id, "audio.wav")[1] == info2
    assert store.history(a.id)[-1].cause == "evidence"
    assert store.add_evidence(a.id, "empty.bin", b"", "application/octet-stream").size_bytes == 0

    for bad in ("", "../etc/passwd", "a/b", "a b", "x" * 101, ".", "..", "ü.wav", "a\nb"):
        with pytest.raises(InputError):
            store.add_evidence(a.id, bad, b"x", "audio/wav")
    with pytest.raises(InputError):
        store.add_evidence(a.id, "ok.bin", b"x", "not a type")
    with pytest.raises(InputError):
        store.add_evidence(a.id, "ok.bin", "text", "text/plain")
    with pytest.raises(KeyError):
        store.add_evidence("A-nope", "ok.bin", b"x", "text/plain")
    assert store.evidence(a.id, "nope.bin") is None and store.evidence("A-nope", "audio.wav") is None
    assert store.get(a.id).version == 5


# --- hooks (the outbox of issue 7 writes in the same transaction) ---------------------------------
def test_on_change_hooks_run_inside_the_transaction(store):
    seen = []

    def hook(session, alert):
        assert session.in_transaction()
        seen.append((alert.id, alert.version, alert.status))

    store.on_change.append(hook)
    a = store.apply_event(ev(), site="S", run_id="r1", when=T0)
    store.apply_event(ev(), site="S", run_id="r1", when=T0)  # no change, no hook
    store.set_status(a.id, "acknowledged")
    store.add_evidence(a.id, "x.bin", b"1", "application/octet-stream")
    assert seen == [(a.id, 1, "new"), (a.id, 2, "acknowledged"), (a.id, 3, "acknowledged")]

    def failing(session, alert):
        raise RuntimeError("outbox unavailable")

    store.on_change.append(failing)
    with pytest.raises(RuntimeError):
        store.apply_event(ev("T2"), site="S", run_id="r1", when=T0)
    with pytest.raises(RuntimeError):
        store.set_status(a.id, "closed")
    store.on_change.clear()
    assert store.find_by_track("S", "r1", "T2") is None  # rolled back with the hook
    assert store.get(a.id).status == "acknowledged" and store.get(a.id).version == 3
    assert len(store.history(a.id)) == 3


# --- concurrency ---------------------------------------------------------------------------------
def test_concurrent_writers_and_readers(store):
    errors: list[BaseException] = []
    a = store.apply_event(ev("T0"), site="S", run_id="r1", when=T0)

    barrier = threading.Barrier(4)

    def writer(k: int) -> None:
        try:
            barrier.wait(timeout=10)
            store.apply_event(ev("RACE", last_s=12.0 + k), site="S", run_id="r1", when=T0)  # same new track at once
            for i in range(15):
                store.apply_event(ev(f"T{k}-{i % 3}", last_s=12.0 + i), site="S", run_id="r1", when=T0)
                store.apply_event(ev("T0", last_s=100.0 * k + i), site="S", run_id="r1", when=T0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(20):
                store.list(limit=50)
                store.open_alerts()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(1, 5)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert store.list()[1] == 1 + 4 * 3 + 1
    race = store.find_by_track("S", "r1", "RACE")
    assert race.last_seen_s == 16.0 and len(store.history(race.id)) == race.version
    # every change of the shared alert got its own version and history row
    final = store.get(a.id)
    assert [h.version for h in store.history(a.id)] == list(range(1, final.version + 1))


# --- restarts and crashes ------------------------------------------------------------------------
def test_reopen_keeps_alerts(make_store):
    s1 = make_store()
    ids = _populate(s1)
    s1.set_status(ids["T2"], "closed")
    s1.add_evidence(ids["T1"], "a.bin", b"abc", "application/octet-stream")
    before = {a.id: a for a in s1.open_alerts()}
    hist = s1.history(ids["T1"])
    s1.close()
    with pytest.raises(RuntimeError):
        s1.get(ids["T1"])
    s2 = make_store()
    after = {a.id: a for a in s2.open_alerts()}
    assert after == before and len(after) == 4
    assert s2.history(ids["T1"]) == hist
    assert s2.evidence(ids["T1"], "a.bin")[0] == b"abc"
    # the restarted monitor continues the same alert for the same track
    b = s2.apply_event(ev("T1", center_hz=446_006_250.0, last_s=99.0), site="A", run_id="r1", when=T0 + timedelta(seconds=99))
    assert b.id == ids["T1"] and b.version == before[ids["T1"]].version + 1


_CHILD = textwrap.dedent("""
    import json, sys
    from datetime import datetime, timezone
    from pathlib import Path
    from detector.alerts import open_store

    url = sys.argv[1] or None
    store = open_store(url, data_dir=Path(sys.argv[2]))
    i = 0
    while True:
        e = {"event": "update", "track_id": f"T{i % 7}", "alert": True, "center_hz": 446e6 + 12500 * (i % 7),
             "bandwidth_hz": 11000.0, "first_seen_s": 0.0, "last_seen_s": float(i), "peak_dbfs": -40.0,
             "snr_db": 20.0 + i, "excess_db": 15.0, "classification": "nfm_voice", "bursts": 1, "reasons": [],
             "location": None, "severity": "high", "score_terms": {}}
        a = store.apply_event(e, site="S", run_id="crash", when=datetime.now(timezone.utc))
        print(a.model_dump_json(), flush=True)
        i += 1
""")


def test_sigkill_loses_nothing_committed(db_url, tmp_path, make_store):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, db_url or "", str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    reported: list[AlertPublic] = []
    try:
        deadline = time.monotonic() + 30
        while len(reported) < 60 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(AlertPublic.model_validate_json(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert len(reported) >= 60, err
    assert proc.returncode == -signal.SIGKILL
    store = make_store()
    newest: dict[str, AlertPublic] = {}
    for a in reported:
        newest[a.id] = a
    for aid, a in newest.items():
        got = store.get(aid)
        assert got is not None, aid
        assert got.version >= a.version
        if got.version == a.version:
            assert got == a
        assert len(store.history(aid)) == got.version
    assert {a.id for a in store.open_alerts("S")} >= set(newest)


# --- opening -------------------------------------------------------------------------------------
def test_sqlite_settings(tmp_path):
    s = open_store(None, data_dir=tmp_path / "deep" / "dir")
    try:
        assert (tmp_path / "deep" / "dir" / "examwatch.db").is_file()
        with s.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert s.backend == "sqlite"
    finally:
        s.close()
    t = open_store(f"sqlite:///{tmp_path / 'other' / 'x.db'}", data_dir=tmp_path)
    t.close()
    assert (tmp_path / "other" / "x.db").is_file()


def test_bad_urls_are_input_errors(tmp_path):
    for url in ("not a url", "mysql://u@localhost/db", "postgresql+psycopg2://u@localhost/db", "oracle://x"):
        with pytest.raises(InputError) as exc:
            open_store(url, data_dir=tmp_path)
        assert "URL" in str(exc.value)
    t = time.monotonic()
    with pytest.raises(InputError) as exc:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none", data_dir=tmp_path)
    assert "cannot open the alert database" in str(exc.value) and "secret" not in str(exc.value)
    assert time.monotonic() - t < 10
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError):
        open_store(f"sqlite:///{tmp_path / 'file' / 'x.db'}", data_dir=tmp_path)


def test_postgres_url_is_normalised(pg_url, tmp_path):
    with _pg_schema(pg_url) as url:
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        s = open_store(plain, data_dir=tmp_path)
        try:
            assert s.backend == "postgresql" and s.engine.url.drivername == "postgresql+psycopg"
            assert s.apply_event(ev(), site="S", run_id="r1").version == 1
        finally:
            s.close()


def test_both_stores_implement_the_reader_protocol(tmp_path):
    from detector.alerts import AlertReader, open_store
    from detector.center import open_center_store

    with open_store(None, data_dir=tmp_path / "v") as v, open_center_store(None, data_dir=tmp_path / "c") as c:
        assert isinstance(v, AlertReader) and isinstance(c, AlertReader)
        assert v.last_event_seq() == 0 and v.events_after(0) == []
        a = v.apply_event({"event": "new", "track_id": "T1", "alert": True, "center_hz": 446e6, "bandwidth_hz": 1e4,
                           "first_seen_s": 1.0, "last_seen_s": 2.0}, site="S", run_id="r")
        (ev,) = v.events_after(0)
        assert (ev["seq"], ev["alert_id"], ev["version"], ev["cause"]) == (1, a.id, 1, "event:new")
        assert v.last_event_seq() == 1 and ev["at"].endswith("Z")


def test_a_change_is_dated_when_it_happened_not_when_it_was_written(store):
    """Issue #24: a change that waited for a store that was down keeps its own time in the history
    (the ``when`` it is applied with), so a post-exam timeline is not a burst at the moment the
    store came back."""
    t_new, t_upd = T0 - timedelta(minutes=3), T0 - timedelta(minutes=1)
    a = store.apply_event(ev(kind="new", last_s=12.0), site="S", run_id="r1", when=t_new)
    a = store.apply_event(ev(last_s=40.0, snr=30.0), site="S", run_id="r1", when=t_upd)
    hist = store.history(a.id)
    assert [h.version for h in hist] == [1, 2]
    assert [h.at for h in hist] == [t_new, t_upd]
    assert a.updated_at == t_upd
