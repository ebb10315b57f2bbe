"""The vehicle's outbox and its HTTP sender: same transaction as the alert, order per alert, retries
with capped backoff, delivered only on 2xx, a queue that survives restarts; and the monitor hook."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from detector.alerts import open_store
from detector.api import ApiContext, create_app
from detector.core.errors import InputError
from detector.app.push import PushSettings, attach_push, spectrum_summary
from detector.center import open_center_store
from detector.push import HttpPushSender, Outbox
from detector.center.app import build_center_app
from detector.push.sender import make_sender
from tests.push import UvicornThread, free_port, pg_base_url, pg_schema, track_event


def ev(tid: str, t: float) -> dict:
    return track_event(tid, t, snr=10.0 + t, center_hz=446e6)


class RecordingCenter:
    """A fake center: records every ingest, and refuses what ``refuse(key, attempt)`` says."""

    def __init__(self, refuse=None, batch: bool = False) -> None:
        self.calls: list[tuple[float, str]] = []
        self.accepted: list[str] = []
        self.refuse = refuse or (lambda key, n: None)
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/api/v1/ingest")
        async def ingest(request: Request):
            key = request.headers["idempotency-key"]
            body = await request.json()
            assert request.headers["authorization"] == "Bearer tok-12345678"
            assert key == f"{body['id']}:{body['version']}" and body["vehicle_id"] == "v1"
            with self.lock:
                n = sum(1 for _, k in self.calls if k == key)
                self.calls.append((time.monotonic(), key))
                code = self.refuse(key, n)
                if code:
                    return JSONResponse({"detail": "no"}, status_code=code)
                self.accepted.append(key)
            return {"status": "stored", "need_evidence": []}

        if batch:
            @app.post("/api/v1/ingest/batch")
            async def ingest_batch(request: Request):
                assert request.headers["authorization"] == "Bearer tok-12345678"
                out, failed = [], set()
                for item in (await request.json())["items"]:
                    key, body = item["idempotency_key"], item["alert"]
                    assert key == f"{body['id']}:{body['version']}"
                    with self.lock:
                        if body["id"] in failed:
                            out.append({"status": "skipped"})
                            continue
                        n = sum(1 for _, k in self.calls if k == key)
                        self.calls.append((time.monotonic(), key))
                        code = self.refuse(key, n)
                        if code:
                            failed.add(body["id"])
                            out.append({"status": "error", "code": code, "error": "no"})
                            continue
                        self.accepted.append(key)
                    out.append({"status": "stored", "need_evidence": []})
                self.batches += 1
                return {"results": out}

        self.batches = 0

        @app.post("/api/v1/ingest/heartbeat")
        async def hb():
            return {"status": "ok"}

        self.app = app


@pytest.fixture(params=["sqlite", "postgresql"])
def vehicle_db(request):
    """``None`` (SQLite) or a fresh PostgreSQL schema for the vehicle's store."""
    if request.param == "sqlite":
        yield None
        return
    with pg_schema(pg_base_url()) as url:
        yield url


def test_outbox_row_is_written_in_the_alert_transaction(tmp_path, vehicle_db):
    store = open_store(vehicle_db, data_dir=tmp_path)
    try:
        ob = Outbox(store).attach()
        Outbox(store)  # a second Outbox does not attach by itself
        a = store.apply_event(ev("T1", 1), site="S", run_id="r")
        store.apply_event(ev("T1", 2), site="S", run_id="r")
        store.set_status(a.id, "acknowledged", "seen")
        store.add_evidence(a.id, "x.bin", b"1234", "application/octet-stream")
        rows = ob.all_rows()
        assert [(r["alert_id"], r["version"]) for r in rows] == [(a.id, v) for v in (1, 2, 3, 4)]
        assert [h.version for h in store.history(a.id)] == [1, 2, 3, 4]
        assert ob.ready()[2].payload["status"] == "acknowledged"
        assert ob.wake.is_set()

        # a hook that fails after the outbox hook rolls back the alert *and* its outbox row
        def boom(s, alert):
            raise RuntimeError("boom")

        store.on_change.append(boom)
        with pytest.raises(RuntimeError):
            store.apply_event(ev("T2", 3), site="S", run_id="r")
        store.on_change.remove(boom)
        assert store.find_by_track("S", "r", "T2") is None
        assert len(ob.all_rows()) == 4
        ob.attach()  # idempotent
        store.apply_event(ev("T1", 5), site="S", run_id="r")
        assert len(ob.all_rows()) == 5
    finally:
        store.close()


def test_queue_survives_a_vehicle_restart(tmp_path):
    store = open_store(None, data_dir=tmp_path / "v")
    Outbox(store).attach()
    for i in range(6):
        store.apply_event(ev(f"T{i % 2}", i), site="S", run_id="r")
    store.close()  # the vehicle stops before anything was sent

    center = open_center_store(None, data_dir=tmp_path / "c")
    srv = UvicornThread(build_center_app(center, token="w" * 24, vehicle_tokens={"tok-12345678": "v1"})).start()
    store = open_store(None, data_dir=tmp_path / "v")
    try:
        snd = HttpPushSender(store, center_url=srv.url, token="tok-12345678", vehicle_id="v1", poll_s=0.1).start()
        assert snd.pending() == 0 or snd.wait_drained(10)
        assert snd.wait_drained(10)
        assert center.ingest_count() == 6
        assert {a.id: a.version for a in center.all_alerts()} == {a.id: a.version for a in store.list()[0]}
        snd.stop()
    finally:
        srv.stop()
        store.close()
        center.close()


def test_backoff_is_capped_and_a_returning_center_gets_the_change_within_seconds(tmp_path):
    port = free_port()
    store = open_store(None, data_dir=tmp_path)
    attempts: list[float] = []

    class Counting(HttpPushSender):
        def _post(self, path, method="POST", **kw):
            if path == "/api/v1/ingest":
                attempts.append(time.monotonic())
            return super()._post(path, method, **kw)

    snd = Counting(store, center_url=f"http://127.0.0.1:{port}", token="tok-12345678", vehicle_id="v1",
                   max_backoff_s=1.0, initial_backoff_s=0.1, heartbeat_s=0, poll_s=0.1).start()
    rec = RecordingCenter()
    srv = None
    try:
        store.apply_event(ev("T1", 1), site="S", run_id="r")
        time.sleep(4.0)
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert len(attempts) >= 5
        assert gaps[0] < 0.5 and max(gaps) <= 1.0 * 1.2 + 0.3  # doubling from 0.1 s, capped at 1 s (±20 % jitter)
        assert snd.pending() == 1 and snd.failures >= 5 and "ConnectError" in snd.last_error
        srv = UvicornThread(rec.app, port=port).start()
        t0 = time.monotonic()
        assert snd.wait_drained(5)
        assert time.monotonic() - t0 < 1.0 * 1.2 + 1.0
        assert len(rec.accepted) == 1
    finally:
        snd.stop()
        if srv:
            srv.stop()
        store.close()


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_order_per_alert_and_a_refused_row_holds_back_only_its_alert(tmp_path, batch):
    store = open_store(None, data_dir=tmp_path)
    refused_key = {}

    def refuse(key, n):
        # refuse version 2 of the first alert three times (422), and one 503 for everyone once
        if key == refused_key.get("k") and n < 3:
            return 422
        return None

    rec = RecordingCenter(refuse, batch=batch)
    srv = UvicornThread(rec.app).start()
    try:
        Outbox(store).attach()
        a = store.apply_event(ev("A", 1), site="S", run_id="r")
        refused_key["k"] = f"{a.id}:2"
        for t in range(2, 5):
            store.apply_event(ev("A", t), site="S", run_id="r")  # versions 2, 3, 4 of A
        b = store.apply_event(ev("B", 1), site="S", run_id="r")
        for t in range(2, 4):
            store.apply_event(ev("B", t), site="S", run_id="r")
        snd = HttpPushSender(store, center_url=srv.url, token="tok-12345678", vehicle_id="v1", initial_backoff_s=0.1,
                             max_backoff_s=0.4, poll_s=0.05, heartbeat_s=0).start()
        assert snd.wait_drained(10)
        snd.stop()
        acc = rec.accepted
        assert sorted(acc) == sorted([f"{a.id}:{v}" for v in (1, 2, 3, 4)] + [f"{b.id}:{v}" for v in (1, 2, 3)])
        order_a = [int(k.split(":")[1]) for k in acc if k.startswith(a.id)]
        assert order_a == [1, 2, 3, 4]
        # B was not held back while A's version 2 waited for its retries
        assert acc.index(f"{b.id}:3") < acc.index(f"{a.id}:2")
        assert sum(1 for _, k in rec.calls if k == f"{a.id}:2") == 4
        assert (rec.batches > 0) == batch
        # delivered only on 2xx: the refused attempts were counted, the row delivered once
        rows = {f"{r['alert_id']}:{r['version']}": r for r in Outbox(store).all_rows()}
        assert rows[f"{a.id}:2"]["attempts"] == 4 and rows[f"{a.id}:2"]["delivered_at"] is not None
    finally:
        srv.stop()
        store.close()


def test_monitor_hook_attaches_push_and_stream(tmp_path):
    center = open_center_store(None, data_dir=tmp_path / "c")
    srv = UvicornThread(build_center_app(center, token="w" * 24, vehicle_tokens={"tok-12345678": "van-7"})).start()
    store = open_store(None, data_dir=tmp_path / "v")
    tokf = tmp_path / "push-token"
    tokf.write_text("tok-12345678\n")

    class FakeMonitor:
        site = "lycee"
        latest = None

        def __init__(self):
            self.health_sections = {}

        def health(self):
            return {"status": "ok", "frames_processed": 3}

    try:
        with pytest.raises(InputError):
            attach_push(ApiContext(store=store, token="w" * 24), FakeMonitor(), PushSettings(srv.url))
        ctx = ApiContext(store=store, token="w" * 24)
        st = PushSettings(srv.url, vehicle_id="van-7", token_file=tokf)
        mon = FakeMonitor()
        sender = attach_push(ctx, mon, st)
        assert len(ctx.extra_routers) == 1
        assert mon.health_sections["push"]()["vehicle_id"] == "van-7"  # the vehicle's /health → push
        app_srv = UvicornThread(create_app(ctx)).start()
        try:
            store.apply_event(ev("T1", 1), site="lycee", run_id="r")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and center.ingest_count() < 1:
                time.sleep(0.1)
            assert center.get(store.list()[0][0].id).vehicle_id == "van-7"
            v = center.vehicles()[0]
            assert v["vehicle_id"] == "van-7" and v["site"] == "lycee" and v["health"]["health"]["frames_processed"] == 3
            # the vehicle's stream route is reachable (not swallowed by /alerts/{id})
            with httpx.stream("GET", app_srv.url + "/api/v1/alerts/stream", timeout=5) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        finally:
            app_srv.stop()
        from detector.app.monitor_app import MonitorApp

        MonitorApp(engine=None, monitor=None, store=store, sender=sender).stop()  # the app's shutdown: sender, then store
        assert sender._thread is not None and not sender._thread.is_alive()
    finally:
        srv.stop()
        center.close()


def test_make_sender_urls(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    try:
        with pytest.raises(InputError):
            make_sender("ftp://x", store, vehicle_id="v")
        with pytest.raises(InputError):
            make_sender("http://127.0.0.1:1", store, vehicle_id="v")  # no token
        s = make_sender("http://127.0.0.1:1", store, vehicle_id="v", token="t" * 10)
        assert s.transport == "http" and s.center_url == "http://127.0.0.1:1"
        s.stop()
    finally:
        store.close()


def test_spectrum_summary_is_small():
    import numpy as np

    from detector.core.types import Spectrum

    class R:
        noise_floor_dbfs = -60.0
        emissions = []

    freqs = np.linspace(445.5e6, 446.5e6, 4096)
    power = np.full(4096, -60.0, dtype=np.float32)
    power[100] = -20.0
    sp = Spectrum(freqs_hz=freqs, power=power, rbw_hz=250.0, unit="dBFS", center_hz=446e6)

    class M:
        latest = {"spectrum": sp, "result": R()}

    s = spectrum_summary(M(), max_points=256)
    assert len(s["power_max"]) == 256 and max(s["power_max"]) == -20.0 and s["noise_floor_dbfs"] == -60.0
    assert spectrum_summary(type("E", (), {"latest": None})()) is None
    # what a vehicle sends is what the center accepts, also with an undefined noise floor
    from detector.center.store import Heartbeat

    assert Heartbeat.parse({"vehicle_id": "v1", "spectrum": s}).spectrum_dict() == s
    R.noise_floor_dbfs = float("nan")
    s = spectrum_summary(M(), max_points=256)
    assert s["noise_floor_dbfs"] is None and Heartbeat.parse({"spectrum": s}).spectrum_dict() == s


def test_monitor_cli_has_the_push_options():
    from typer.testing import CliRunner

    from detector.cli import app

    out = CliRunner().invoke(app, ["monitor", "--help"], env={"COLUMNS": "200"}).output
    for opt in ("--push", "--vehicle-id", "--push-token-file"):
        assert opt in out


def test_a_refused_token_is_an_error_that_is_repeated_health_shows_it_and_recovery_is_logged(tmp_path, caplog):
    import logging

    port = free_port()
    store = open_store(None, data_dir=tmp_path)
    refusing = {"on": True}
    rec = RecordingCenter(refuse=lambda key, n: 401 if refusing["on"] else None)
    srv = UvicornThread(rec.app, port=port).start()
    snd = HttpPushSender(store, center_url=f"http://127.0.0.1:{port}", token="tok-12345678", vehicle_id="v1",
                         max_backoff_s=0.2, initial_backoff_s=0.05, heartbeat_s=0, poll_s=0.05)
    snd.REPEAT_LOG_S = 0.5
    try:
        with caplog.at_level(logging.INFO, logger="examwatch"):
            snd.start()
            store.apply_event(ev("T1", 1), site="S", run_id="r")
            time.sleep(1.5)
            h = snd.health()
            assert h["pending"] == 1 and h["last_error"].startswith("HTTP 401") and h["failing_for_s"] >= 1.0
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert "refuses this vehicle's credentials" in errors[0].getMessage() and "--push-token-file" in errors[0].getMessage()
            assert any("still failing after" in r.getMessage() and "--push-token-file" in r.getMessage()
                       for r in errors[1:])  # not silent while it lasts, and says what to check
            refusing["on"] = False  # the operator fixed the center's --vehicle-tokens
            assert snd.wait_drained(5)
            assert any("works again" in r.getMessage() for r in caplog.records)
            assert snd.health()["failing_for_s"] is None and snd.health()["last_error"] is None
            refusing["on"] = True
            store.apply_event(ev("T1", 2), site="S", run_id="r")
            time.sleep(0.3)
            snd.stop()
            assert any("stay queued; they go out at the next start" in r.getMessage() for r in caplog.records)
    finally:
        snd.stop()
        srv.stop()
        store.close()
