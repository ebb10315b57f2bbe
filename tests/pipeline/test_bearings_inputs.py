"""The monitor's bearings (issue #22 item 1): the app's store (selection by time and frequency,
bounded by age), the tailed file (lines appended later are read; a malformed one is counted, not
fatal), the URL poller (new lines only; a dead direction finder shows in ``/health`` within
seconds)."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import datetime, timezone

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.app.bearings import BearingStore, FileTail, UrlPoller, parse_bearings_spec
from detector.app.monitor_app import AppSettings, MonitorApp
from detector.core.errors import InputError
from detector.pipeline.supervisor import Supervisor
from detector.sources.bearings import bearings_from_records
from tests._bearing_files import T0_MS, kraken_line

F = 446_081_250.0


def kline(i, bearing=45.0, freq=F, lat=50.0001, lon=10.0002):
    return kraken_line(T0_MS + 1000 * i, bearing, 12.0, -60.5, freq, lat, lon, 90.0)


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_the_store_selects_by_time_and_frequency_and_forgets_old_bearings():
    store = BearingStore(max_age_s=600.0)
    recs = [{"time": 1000.0 + 10 * k, "lat": 50.0, "lon": 10.0, "bearing_deg": 10.0 * k, "frequency": f}
            for k, f in enumerate([F, F + 5e3, F + 40e3, None])]
    assert store.add(bearings_from_records(recs)) == 4
    got = store.query(1000.0, 1025.0, F - 10e3, F + 10e3)
    assert got is not None and list(got.bearing_deg) == [0.0, 10.0]  # the 3rd is 40 kHz off, the 4th has no frequency
    assert store.query(1005.0, 1025.0, F - 10e3, F + 10e3).bearing_deg.tolist() == [10.0]
    assert store.query(2000.0, 3000.0, 0.0, 1e10) is None
    # an hour later: the first four are older than max_age_s against the newest, dropped
    store.add(bearings_from_records([{"time": 4600.0, "lat": 50.0, "lon": 10.0, "bearing_deg": 5.0, "frequency": F}]))
    assert len(store) == 1 and store.health()["received"] == 5
    # the engine timeline: seconds from the run's wall-clock start
    on_timeline = store.timeline(datetime.fromtimestamp(4000.0, timezone.utc))
    assert on_timeline(590.0, 610.0, F - 1.0, F + 1.0).bearing_deg.tolist() == [5.0]


def test_a_bad_spec_is_an_input_error(tmp_path):
    assert parse_bearings_spec("http://kraken:8081/DOA_value.html") == ("url", "http://kraken:8081/DOA_value.html")
    assert parse_bearings_spec(str(tmp_path / "later.csv")) == ("file", str(tmp_path / "later.csv"))
    with pytest.raises(InputError, match="folder"):
        parse_bearings_spec(str(tmp_path))
    with pytest.raises(InputError, match="http"):
        parse_bearings_spec("ftp://x/y")


def test_the_tailed_file_reads_appended_lines_and_counts_a_malformed_one(tmp_path):
    path = tmp_path / "doa.csv"
    path.write_text(kline(0) + kline(1))
    store = BearingStore()
    sup = Supervisor()
    tail = FileTail(path, store, poll_s=0.02, component=sup.component("bearings"))
    th = threading.Thread(target=tail.run, daemon=True)
    th.start()
    try:
        assert wait_for(lambda: store.received == 2)
        with open(path, "a") as fh:  # the direction finder goes on writing
            fh.write("1717660802000, 12.5, not-a-number\n")
            fh.write(kline(3, bearing=80.0))
            fh.write(kline(4, bearing=81.0)[:30])  # a line still being written: waits for its end
        assert wait_for(lambda: store.received == 3 and store.rejected == 1)
        h = store.health()
        assert "at least 17 comma-separated fields" in h["last_error"] and th.is_alive()
        with open(path, "a") as fh:
            fh.write(kline(4, bearing=81.0)[30:])
        assert wait_for(lambda: store.received == 4)
        got = store.query(T0_MS / 1000 - 1, T0_MS / 1000 + 10, F - 1, F + 1)
        # relative bearings: heading 90° + the array's bearing
        assert np.allclose(got.true_bearing_deg(), [135.0, 135.0, 170.0, 171.0])
        assert sup.components["bearings"].healthy
    finally:
        tail.stop()
        th.join(2)
    assert not th.is_alive()


def test_the_tailed_plain_csv_keeps_its_header(tmp_path):
    path = tmp_path / "df.csv"
    path.write_text("time,lat,lon,heading,bearing_deg,confidence,frequency\n"
                    f"2024-06-06T08:00:00Z,50.0,10.0,,30.0,0.8,{F}\n")
    store = BearingStore()
    tail = FileTail(path, store, poll_s=0.02)
    th = threading.Thread(target=tail.run, daemon=True)
    th.start()
    try:
        assert wait_for(lambda: store.received == 1)
        with open(path, "a") as fh:
            fh.write(f"2024-06-06T08:00:01Z,50.0,10.0,,31.0,1.7,{F}\n")  # confidence outside 0..1
            fh.write(f"2024-06-06T08:00:02Z,50.0,10.0,,32.0,0.9,{F}\n")
        assert wait_for(lambda: store.received == 2 and store.rejected == 1)
        assert "confidence 1.7 is outside 0..1" in store.health()["last_error"]
    finally:
        tail.stop()
        th.join(2)


def test_the_poller_keeps_new_lines_only_and_reports_a_failed_poll():
    body = {"text": kline(0) + kline(0, freq=F + 1e6), "status": 200}

    def handler(request):
        return httpx.Response(body["status"], text=body["text"])

    store = BearingStore()
    sup = Supervisor()
    comp = sup.component("bearings")
    p = UrlPoller("http://kraken:8081/DOA_value.html", store, poll_s=0.05, component=comp,
                  client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert p.poll_once() == 2  # two VFOs
    assert p.poll_once() == 0  # the same lines served again: nothing new
    body["text"] = kline(1) + kline(1, freq=F + 1e6)
    assert p.poll_once() == 2 and store.received == 4
    # a plain CSV served whole at every poll: its header once, each row once
    csv = "time,lat,lon,heading,bearing_deg,confidence,frequency\n2024-06-06T08:00:00Z,50.0,10.0,,30.0,0.8,446081250\n"
    q = UrlPoller("http://df/bearings.csv", store, client=httpx.Client(transport=httpx.MockTransport(handler)))
    body["text"] = csv
    assert q.poll_once() == 1 and q.poll_once() == 0
    body["text"] = csv + "2024-06-06T08:00:01Z,50.0,10.0,,31.0,0.8,446081250\n"
    assert q.poll_once() == 1 and store.rejected == 0 and store.received == 6
    body["status"] = 503
    with pytest.raises(httpx.HTTPStatusError):
        p.poll_once()
    with pytest.raises(InputError, match="> 0"):
        UrlPoller("http://x/", store, poll_s=0.0)


class _Kraken(http.server.BaseHTTPRequestHandler):
    lines: list[str] = []

    def do_GET(self):  # noqa: N802
        data = "".join(self.lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Quiet:
    """A finite recording of noise: the monitor finishes at once and keeps serving."""

    def __call__(self):
        from detector.core.types import IQBlock
        from detector.sources import IQSource, SourceInfo

        class Src(IQSource):
            info = SourceInfo(kind="raw", name="quiet", center_hz=446e6, sample_rate_hz=250e3, n_samples=1 << 14)

            def blocks(self, bs):
                yield IQBlock(np.zeros(1 << 14, np.complex64), 446e6, 250e3, offset_s=0.0, retuned=True)

        return Src()


def test_a_polled_kraken_shows_in_health_and_a_dead_one_within_seconds(tmp_path):
    _Kraken.lines = [kline(0), kline(1)]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Kraken)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/DOA_value.html"
    app = MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=_Quiet(), site="S",
                           bearings=url, bearings_poll_s=0.1)
    try:
        app.start()
        client = TestClient(app.api)
        assert wait_for(lambda: client.get("/api/v1/health").json()["bearings"]["received"] == 2)
        h = client.get("/api/v1/health").json()
        assert h["bearings"]["source"] == url and h["bearings"]["rejected"] == 0 and h["bearings"]["last_at"]
        assert h["components"]["bearings"]["state"] == "running" and h["status"] == "ok"
        server.shutdown()
        server.server_close()
        t0 = time.monotonic()
        assert wait_for(lambda: client.get("/api/v1/health").json()["status"] == "degraded", timeout=5.0)
        assert time.monotonic() - t0 < 3.0
        h = client.get("/api/v1/health").json()
        assert h["components"]["bearings"]["state"] == "restarting"
        why = h["components"]["bearings"]["last_error"]
        assert why.startswith(f"{url}: ") and ("ConnectError" in why or "ReadError" in why)  # refused, or reset
        assert "bearings" in h["last_error"] and h["bearings"]["last_error"].startswith(url)
    finally:
        app.stop()
