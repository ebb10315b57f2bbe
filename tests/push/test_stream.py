"""``GET /api/v1/alerts/stream`` (SSE) on a vehicle and on the center: a client that disconnects
and reconnects with ``Last-Event-ID`` receives every event it missed, once, in order."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from detector.alerts import open_store
from detector.api import ApiContext, create_app
from detector.app.push import attach_push
from detector.center import open_center_store
from detector.center.app import build_center_app
from tests.push import UvicornThread, parse_sse, track_event


def read_events(url: str, n: int, *, headers: dict | None = None, params: dict | None = None, timeout: float = 10.0):
    """Connect, read the ``ready`` event and then ``n`` alert events, and disconnect."""
    ready, got = None, []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url + "/api/v1/alerts/stream", headers=headers or {}, params=params or {},
                      timeout=httpx.Timeout(5.0, read=timeout)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for ev, eid, data in parse_sse(r.iter_lines()):
            if ev == "ready":
                ready = (int(eid), json.loads(data))
            elif ev == "alert":
                got.append((int(eid), json.loads(data)))
            if ready is not None and len(got) >= n:
                break
            assert time.monotonic() < deadline, f"only {len(got)} of {n} events"
    return ready, got


@pytest.fixture(params=["vehicle", "center"])
def node(request, tmp_path):
    """A running node with a way to make changes: ``(url, change(k), last_seq())``."""
    vstore = open_store(None, data_dir=tmp_path / "veh")
    clock = [0.0]

    def step() -> None:  # exactly one alert change (a new alert or a new version)
        clock[0] += 1
        vstore.apply_event(track_event(f"T{int(clock[0]) % 4}", clock[0], snr=10.0, center_hz=446e6), site="S", run_id="r")
    if request.param == "vehicle":
        ctx = ApiContext(store=vstore, token="w" * 24)
        attach_push(ctx, None, None)  # no push URL: only the SSE route
        srv = UvicornThread(create_app(ctx)).start()

        def change(k):
            for _ in range(k):
                step()

        from detector.api.stream import last_event_seq

        last = lambda: last_event_seq(vstore)  # noqa: E731
        stores = [vstore]
    else:
        cstore = open_center_store(None, data_dir=tmp_path / "center")
        srv = UvicornThread(build_center_app(cstore, token="w" * 24, vehicle_tokens={"t" * 16: "v1"}, stream_poll_s=0.1)).start()
        from detector.push import Outbox

        ob = Outbox(vstore).attach()

        def change(k):
            for _ in range(k):
                step()
            items = ob.ready()
            for it in items:  # what a sender does, straight into the center store
                cstore.ingest("v1", {**it.payload, "vehicle_id": "v1"}, f"{it.alert_id}:{it.version}")
            ob.mark_delivered([it.seq for it in items])

        last = cstore.last_event_seq
        stores = [vstore, cstore]
    try:
        yield srv.url, change, last
    finally:
        srv.stop()
        for s in stores:
            s.close()


def test_reconnect_with_last_event_id_gets_every_missed_event_once(node):
    url, change, last = node
    change(10)
    start = last()
    assert start >= 10

    # a fresh client starts at the present: `ready` carries the position, nothing old is sent
    import threading

    t = threading.Timer(0.5, change, args=(5,))
    t.start()
    ready, first = read_events(url, 5)
    t.join()
    assert ready[0] == start and ready[1]["seq"] == start
    ids1 = [i for i, _ in first]
    assert ids1 == list(range(start + 1, start + 6))

    # disconnected: 7 more changes happen
    change(7)
    # reconnect with the last id seen: exactly the missed events, in order, once
    ready2, missed = read_events(url, 7, headers={"Last-Event-ID": str(ids1[-1])})
    assert ready2[0] == ids1[-1]
    ids2 = [i for i, _ in missed]
    assert ids2 == list(range(ids1[-1] + 1, ids1[-1] + 8))
    assert not set(ids1) & set(ids2)
    for _, e in missed:
        assert e["alert"]["id"] == e["alert_id"] and e["alert"]["version"] >= e["version"]

    # the same through the query parameter, and nothing more than what exists
    ready3, again = read_events(url, 2, params={"last_event_id": ids2[-3]})
    assert [i for i, _ in again] == ids2[-2:]

    # ?replay=N on a fresh connection: the last N sequence numbers
    end = last()
    _, replayed = read_events(url, 3, params={"replay": 3})
    assert [i for i, _ in replayed] == [end - 2, end - 1, end]


def test_bad_or_future_last_event_id(node):
    url, change, last = node
    change(3)
    r = httpx.get(url + "/api/v1/alerts/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422
    # an id beyond the store (another or a reset database) restarts at the present
    ready, got = read_events(url, 0, headers={"Last-Event-ID": "999999"})
    assert ready[1]["reset"] is True and ready[0] == last()


def test_site_filter_sends_only_that_sites_alerts(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    ctx = ApiContext(store=store, token="w" * 24)
    attach_push(ctx, None, None)
    srv = UvicornThread(create_app(ctx)).start()
    try:
        for i, site in enumerate(["S", "B", "S", "B", "B"]):
            store.apply_event(track_event(f"T{i}", float(i + 1), snr=10.0, center_hz=446e6), site=site, run_id="r")
        _, got = read_events(srv.url, 3, params={"site": "B", "replay": 100})
        assert [e["alert"]["site"] for _, e in got] == ["B", "B", "B"]
        assert [seq for seq, _ in got] == sorted(seq for seq, _ in got)
        _, got = read_events(srv.url, 2, params={"site": "S", "replay": 100})
        assert {e["alert"]["site"] for _, e in got} == {"S"}
    finally:
        srv.stop()
        store.close()
