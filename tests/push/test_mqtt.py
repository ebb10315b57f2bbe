"""The MQTT transport against real Mosquitto brokers.

* Three vehicles publish through a broker of our own (persistence in a temporary folder) to
  ``examwatch serve --mqtt`` on PostgreSQL; the broker is stopped for a few seconds mid-run and
  restarted: the center ends with exactly the vehicles' alerts, newest version each, every version
  ingested once.
* Through the machine's broker (127.0.0.1:1883): the center's persistent session keeps the
  messages published while the center is away, and the center gets them when it comes back.

Without the ``mosquitto`` binary or the broker: skipped with the reason (failed under ``CI``).
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from detector.alerts import open_store
from detector.center import open_center_store
from detector.push import MqttPushSender
from detector.center.ingest import MqttCenterSubscriber
from detector.push.mqtt import MqttUrl, topic_part
from tests.push import (
    CenterProcess,
    Mosquitto,
    ScriptedVehicle,
    center_alerts,
    free_port,
    pg_base_url,
    pg_schema,
    strip_center,
    system_broker,
    write_tokens,
)


def test_mqtt_url_and_topics():
    u = MqttUrl.parse("mqtt://ew:s%40cret@broker.local:1884?client_id=c1&prefix=prov/ew")
    assert (u.host, u.port, u.username, u.password, u.client_id, u.prefix) == ("broker.local", 1884, "ew", "s@cret", "c1", "prov/ew")
    assert MqttUrl.parse("mqtt://127.0.0.1").port == 1883
    with pytest.raises(ValueError):
        MqttUrl.parse("http://x")
    assert topic_part("a/b+c#") == "a_b_c_"


def test_three_vehicles_through_a_restarted_broker(tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    base = pg_base_url()
    run = uuid.uuid4().hex[:8]
    vids = [f"mq{run}-{i}" for i in range(1, 4)]
    sites = dict(zip(vids, ["lycee-nord", "lycee-nord", "college-sud"]))
    write_tokens(tmp_path / "vehicles.txt", vids)
    senders, stores, vehicles = [], [], []
    center = None
    try:
        with pg_schema(base) as db_url:
            port = free_port()
            center = CenterProcess(["--db", db_url, "--vehicle-tokens", str(tmp_path / "vehicles.txt"),
                                    "--data-dir", str(tmp_path / "center"),
                                    "--mqtt", f"{broker.url}?client_id=center-{run}"], port, tmp_path / "center.log").start()
            for i, v in enumerate(vids):
                st = open_store(None, data_dir=tmp_path / v)
                stores.append(st)
                senders.append(MqttPushSender(st, url=broker.url, vehicle_id=v, site=sites[v], heartbeat_s=1.0,
                                              poll_s=0.2, max_backoff_s=2.0).start())
                vehicles.append(ScriptedVehicle(v, sites[v], st, seed=10 + i))
            for veh in vehicles:
                veh.run_for(3.0, rate=8)
            for veh in vehicles:
                veh.join()
            assert all(s.wait_drained(15) for s in senders), [s.health() for s in senders]

            broker.stop()  # mid-run: the broker goes away, the vehicles keep alerting
            for veh in vehicles:
                veh.run_for(3.0, rate=8)
            for veh in vehicles:
                veh.join()
            assert all(s.pending() > 0 for s in senders)
            broker.start()
            for veh in vehicles:
                veh.run_for(2.0, rate=8)
            for veh in vehicles:
                veh.join()
            assert all(s.wait_drained(30) for s in senders), [s.health() for s in senders]

            expected, versions = {}, set()
            for veh in vehicles:
                expected.update({k: {**a, "_vehicle": veh.vehicle_id} for k, a in veh.alerts().items()})
                versions |= veh.versions()
            cs = open_center_store(db_url, data_dir=tmp_path / "unused")
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and set(cs.ingest_keys()) != versions:
                    time.sleep(0.2)
                keys = cs.ingest_keys()
                assert len(keys) == len(set(keys))
                assert set(keys) == versions, (len(keys), len(versions))
            finally:
                cs.close()
            held = center_alerts(center.url)
            assert set(held) == set(expected)
            for aid, a in held.items():
                exp = dict(expected[aid])
                assert a["vehicle_id"] == exp.pop("_vehicle")
                assert strip_center(a) == exp
            ov = httpx.get(center.url + "/api/v1/overview").json()
            assert {v["vehicle_id"]: v["transport"] for v in ov["vehicles"]} == {v: "mqtt" for v in vids}
            center.stop()  # before its schema goes
    finally:
        for cleanup in [*[s.stop for s in senders], *[st.close for st in stores], *([center.stop] if center else []), broker.stop]:
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - clean up everything, report the test's own failure
                pass


def test_center_persistent_session_on_the_machine_broker(tmp_path):
    host, port = system_broker()
    run = uuid.uuid4().hex[:8]
    url = f"mqtt://{host}:{port}"
    cid = f"examwatch-center-test-{run}"
    vid = f"sess{run}"
    center = open_center_store(None, data_dir=tmp_path / "center")
    st = open_store(None, data_dir=tmp_path / "veh")
    sender = None
    try:
        sub = MqttCenterSubscriber(center, url, known={vid}, client_id=cid).start()
        assert sub.connected.wait(10)
        time.sleep(0.3)
        sub.stop()  # the center goes away; its session (and subscription) stays on the broker

        sender = MqttPushSender(st, url=url, vehicle_id=vid, site="S", heartbeat_s=0, poll_s=0.1).start()
        veh = ScriptedVehicle(vid, "S", st, seed=3)
        for _ in range(25):
            veh.step()
        assert sender.wait_drained(15)  # acknowledged by the broker while the center is away
        assert center.ingest_count() == 0

        sub = MqttCenterSubscriber(center, url, known={vid}, client_id=cid).start()
        versions = veh.versions()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and set(center.ingest_keys()) != versions:
            time.sleep(0.1)
        assert set(center.ingest_keys()) == versions
        assert {a.id: a.version for a in center.all_alerts()} == {k: a["version"] for k, a in veh.alerts().items()}
        sub.stop()
    finally:
        if sender is not None:
            sender.stop()
        st.close()
        center.close()
        _forget_session(host, port, cid)
        _forget_session(host, port, f"examwatch-vehicle-{vid}")


def _forget_session(host: str, port: int, client_id: str) -> None:
    """Remove a persistent session from the shared broker (connect once with a clean session)."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
    try:
        c.connect(host, port, keepalive=5)
        c.loop_start()
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()
    except OSError:
        pass


def test_bad_messages_are_dropped_not_fatal(tmp_path):
    host, port = system_broker()
    import paho.mqtt.client as mqtt

    run = uuid.uuid4().hex[:8]
    vid = f"bad{run}"
    center = open_center_store(None, data_dir=tmp_path / "center")
    sub = MqttCenterSubscriber(center, f"mqtt://{host}:{port}", known={vid}, client_id=f"examwatch-center-bad-{run}").start()
    try:
        assert sub.connected.wait(10)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bad-pub-{run}", protocol=mqtt.MQTTv311)
        c.connect(host, port)
        c.loop_start()
        for payload in (b"not json", b"[1]", json.dumps({"vehicle_id": vid, "id": "A-1"}).encode()):
            c.publish(f"examwatch/S/{vid}/alerts", payload, qos=1).wait_for_publish(5)
        c.publish(f"examwatch/S/{vid}/status", json.dumps({"vehicle_id": vid, "site": "S"}), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not center.vehicles(silent_after_s=60):
            time.sleep(0.1)
        c.disconnect()
        c.loop_stop()
        assert sub.dropped >= 3 and center.ingest_count() == 0
        assert [v["vehicle_id"] for v in center.vehicles()] == [vid]  # the heartbeat still counted
    finally:
        sub.stop()
        center.close()
        _forget_session(host, port, f"examwatch-center-bad-{run}")
