"""The spill file of the queue of alert changes (issue 24): what the store could not take before a
stop is saved, restored first at the next start, written in order and once, and the file goes
only when all of it is in the store."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

from detector.alerts import open_store
from detector.detection.events import JammingEvent, MissingEvent, event_from_json
from detector.pipeline.pending import (
    PendingWrites,
    default_state_dir,
    parse_spill_line,
    spill_line,
    spill_paths,
)
from tests.push import track_event

WHEN = datetime(2025, 6, 1, 9, 0, 0, 123456, tzinfo=timezone.utc)


def _events(n, tracks=2):
    """``n`` alerting updates of ``tracks`` tracks, each later than the one before of its track."""
    return [event_from_json(track_event(f"T{i % tracks}", 1.0 + i, snr=20.0 + i, center_hz=446e6 + 25e3 * (i % tracks)))
            for i in range(n)]


def _read_only(store):
    """``PRAGMA query_only`` on every connection the store takes while ``flag["on"]``: SQLite refuses
    writes as for a read-only file (root ignores file modes)."""
    flag = {"on": False}

    @event.listens_for(store.engine.pool, "checkout")
    def _q(dbapi_conn, _rec, _proxy):
        dbapi_conn.execute(f"PRAGMA query_only={'ON' if flag['on'] else 'OFF'}")

    return flag


def _kw(i):
    return {"site": "s", "run_id": "r", "when": WHEN + timedelta(seconds=i), "resume": set()}


def test_a_spill_line_gives_back_the_event_and_the_keywords():
    loc = {"lat": 50.0, "lon": 10.0, "status": "located", "cep50_m": 15.0}
    d = track_event("T1", 3.25, snr=21.5, center_hz=446.00625e6)
    d.update(location=loc, first_seen_utc="2025-06-01T08:59:57.75Z", last_seen_utc="2025-06-01T09:00:01Z")
    events = [event_from_json(d),
              MissingEvent(track_id="M446100", center_hz=446.1e6, bandwidth_hz=12500.0, first_seen_s=1.0,
                           last_seen_s=31.0, reasons=("gone",), severity="high", first_seen_utc=WHEN),
              JammingEvent(track_id="J446000", center_hz=446e6, bandwidth_hz=2e5, first_seen_s=2.0, last_seen_s=9.5,
                           rise_db=12.5, carrier_change_db=0.25, reasons=("jammed",), score_terms={"rise": 1.0})]
    kw = {"site": "s", "run_id": "r", "when": WHEN, "resume": {"A-1", "A-2"}, "note": b"\x00\xff",
          "where": Path("/data/evidence/x.sigmf-data"), "nan": float("nan")}
    for ev in events:
        line, left_out = spill_line(ev, kw)
        assert left_out == [] and "\n" not in line
        back, kw2 = parse_spill_line(line)
        assert back == ev
        assert kw2["when"] == WHEN and kw2["when"].microsecond == 123456 and kw2["when"].tzinfo is not None
        assert kw2["resume"] == {"A-1", "A-2"} and kw2["note"] == b"\x00\xff"
        assert kw2["where"] == Path("/data/evidence/x.sigmf-data") and kw2["nan"] != kw2["nan"]
        assert (kw2["site"], kw2["run_id"]) == ("s", "r")


def test_a_keyword_without_json_is_left_out_and_named():
    line, left_out = spill_line(_events(1)[0], {"site": "s", "run_id": "r", "lock": object()})
    assert left_out == ["lock (a object cannot be written as JSON)"]
    assert set(json.loads(line)["kw"]) == {"site", "run_id"}


def test_spill_paths(tmp_path):
    st = tmp_path / "state"
    store = open_store(None, data_dir=tmp_path)
    a, b = spill_paths(store, st)
    assert a == tmp_path / "examwatch.db.pending.jsonl"
    assert b.parent == st and b.name.startswith("pending-") and b.name.endswith(".jsonl") and len(b.name) == 26
    assert spill_paths(store, st) == (a, b)  # the same store, the same files
    store.close()
    mem = open_store("sqlite://", data_dir=tmp_path)
    assert spill_paths(mem, st) == ()
    mem.close()
    assert default_state_dir({"XDG_STATE_HOME": "/x/state"}) == Path("/x/state/examwatch")
    assert default_state_dir({}) == Path.home() / ".local" / "state" / "examwatch"


def test_what_is_queued_at_stop_is_spilled_and_written_in_order_at_the_next_start(tmp_path, caplog):
    store = open_store(None, data_dir=tmp_path)
    ro = _read_only(store)
    to = spill_paths(store, tmp_path / "state")
    evs = _events(7)
    p = PendingWrites(store, spill_to=to)
    assert p.write(evs[0], **_kw(0)).version == 1
    ro["on"] = True
    for i in range(1, 7):
        assert p.write(evs[i], **_kw(i)) is None
    assert len(p) == 6
    with caplog.at_level(logging.ERROR, "examwatch.store"):
        assert p.flush(0.3) == 6
    assert len(p) == 0
    assert p.spill_file == to[0] and to[0].is_file() and not to[1].exists()
    assert f"they are saved in {to[0]}" in caplog.text
    lines = to[0].read_text().splitlines()
    header = json.loads(lines[0])
    assert header["count"] == 6 and len(lines) == 7 and "readonly" in header["last_error"]
    h = p.health()
    assert (h["spilled"], h["restored"], h["restore_left"], h["pending"]) == (6, 0, 0, 0)
    assert h["spill_file"] == str(to[0])
    store.close()

    store = open_store(None, data_dir=tmp_path)  # the next start, the store writable again
    q = PendingWrites(store, spill_to=to)
    assert q.restore() == 6
    new = event_from_json(track_event("T0", 100.0, snr=30.0, center_hz=446e6))
    assert q.write(new, **_kw(100)) is None  # behind the restored ones
    h = q.health()
    assert (h["ok"], h["pending"], h["restored"], h["restore_left"]) == (True, 7, 6, 6)
    assert q.drain() is True
    assert not to[0].exists() and not to[0].with_name(to[0].name + ".done").exists()
    h = q.health()
    assert (h["ok"], h["pending"], h["restored"], h["restore_left"]) == (True, 0, 6, 0)
    a0 = store.find_by_track("s", "r", "T0")
    a1 = store.find_by_track("s", "r", "T1")
    # T0: events 0, 2, 4, 6 then the new one; T1: 1, 3, 5 — one version each, in order
    assert [x.version for x in store.history(a0.id)] == [1, 2, 3, 4, 5]
    assert [x.version for x in store.history(a1.id)] == [1, 2, 3]
    assert [x.changes["last_seen_s"][1] for x in store.history(a0.id)[1:]] == [3.0, 5.0, 7.0, 100.0]
    assert a1.last_seen_s == 6.0
    store.close()


def test_a_kill_while_restoring_writes_nothing_twice(tmp_path):
    """Killed after 3 of 5 restored changes were written: the next start writes the other 2. Killed
    after the 3rd was written but before its progress was noted: the 3rd is written again, which
    bumps no version (the same event with the same ``when``)."""
    to = spill_paths(open_store(None, data_dir=tmp_path), tmp_path / "state")
    store = open_store(None, data_dir=tmp_path)
    ro = _read_only(store)
    p = PendingWrites(store, spill_to=to)
    ro["on"] = True
    evs = _events(5, tracks=1)
    for i, ev in enumerate(evs):
        p.write(ev, **_kw(i))
    assert p.flush(0.0) == 5 and to[0].is_file()
    ro["on"] = False

    q = PendingWrites(store, spill_to=to)
    assert q.restore() == 5
    for _ in range(3):  # the writer writes 3, then the process is killed
        ev, kw, src = q._q.popleft()
        store.apply(ev, **kw)
        q._restored_one(*src)
    marker = to[0].with_name(to[0].name + ".done")
    assert marker.read_text().split()[1] == "3"
    marker.write_text(marker.read_text().replace(" 3", " 2"))  # the 3rd's progress not noted yet

    r = PendingWrites(store, spill_to=to)
    assert r.restore() == 3  # lines 3, 4, 5
    assert r.drain() is True
    a = store.find_by_track("s", "r", "T0")
    assert a.version == 5 and [x.version for x in store.history(a.id)] == [1, 2, 3, 4, 5]
    assert [x.changes["last_seen_s"][1] for x in store.history(a.id)[1:]] == [2.0, 3.0, 4.0, 5.0]
    assert not to[0].exists() and not marker.exists()
    store.close()


def test_a_spill_file_that_cannot_be_written_next_to_the_store_goes_to_the_state_folder(tmp_path, caplog):
    """The folder of the store refuses the file (root ignores file modes, so the file's name is
    taken by a folder here: ``os.replace`` fails as on a read-only folder)."""
    store = open_store(None, data_dir=tmp_path)
    ro = _read_only(store)
    to = spill_paths(store, tmp_path / "state")
    (to[0] / "occupied").mkdir(parents=True)
    p = PendingWrites(store, spill_to=to)
    ro["on"] = True
    for i, ev in enumerate(_events(3)):
        p.write(ev, **_kw(i))
    with caplog.at_level(logging.ERROR, "examwatch.store"):
        assert p.flush(0.0) == 3
    assert p.spill_file == to[1] and len(to[1].read_text().splitlines()) == 4
    assert f"they are saved in {to[1]} ({to[0]}: " in caplog.text
    ro["on"] = False
    q = PendingWrites(store, spill_to=to)
    assert q.restore() == 3 and q.drain() is True
    assert not to[1].exists()
    assert store.find_by_track("s", "r", "T0").version == 2 and store.find_by_track("s", "r", "T1").version == 1
    store.close()


def test_restored_changes_the_store_refuses_again_are_spilled_again_once(tmp_path):
    """The store is still down at the next start: the restored changes and the new ones go back
    to one new file (the old one replaced), nothing twice."""
    store = open_store(None, data_dir=tmp_path)
    ro = _read_only(store)
    to = spill_paths(store, tmp_path / "state")
    ro["on"] = True
    p = PendingWrites(store, spill_to=to)
    for i, ev in enumerate(_events(4)):
        p.write(ev, **_kw(i))
    p.flush(0.0)
    first_id = json.loads(to[0].read_text().splitlines()[0])["id"]
    q = PendingWrites(store, spill_to=to)
    assert q.restore() == 4
    assert q.drain() is False and q.health()["ok"] is False  # still read-only
    q.write(event_from_json(track_event("T0", 50.0, snr=30.0, center_hz=446e6)), **_kw(50))
    assert q.flush(0.0) == 5
    lines = to[0].read_text().splitlines()
    header = json.loads(lines[0])
    assert header["count"] == 5 and header["supersedes"] == [first_id] and len(lines) == 6
    assert [parse_spill_line(x)[0].last_seen_s for x in lines[1:]] == [1.0, 2.0, 3.0, 4.0, 50.0]
    ro["on"] = False
    r = PendingWrites(store, spill_to=to)
    assert r.restore() == 5 and r.drain() is True
    assert [x.version for x in store.history(store.find_by_track("s", "r", "T0").id)] == [1, 2, 3]
    assert [x.version for x in store.history(store.find_by_track("s", "r", "T1").id)] == [1, 2]
    store.close()


def test_without_a_spill_file_what_is_left_at_stop_is_lost_and_said(tmp_path, caplog):
    store = open_store(None, data_dir=tmp_path)
    ro = _read_only(store)
    ro["on"] = True
    p = PendingWrites(store)
    p.write(_events(1)[0], **_kw(0))
    with caplog.at_level(logging.ERROR, "examwatch.store"):
        assert p.flush(0.0) == 1
    assert "1 alert change(s) could not be written to the store before stopping" in caplog.text
    assert "no spill file for this store" in caplog.text and "they are lost" in caplog.text
    assert p.health()["spilled"] == 0
    store.close()
