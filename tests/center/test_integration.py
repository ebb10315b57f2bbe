"""Three vehicles push to one command center over loopback; the center (``examwatch serve`` on
PostgreSQL) is killed for 30 s in the middle and restarted. Afterwards the center holds exactly the
vehicles' alerts (newest version each, byte-for-byte the same JSON): none lost, none duplicated, and
an SSE client that followed the center through the outage saw every ingest event once."""

from __future__ import annotations

import time

import httpx

from detector.alerts import open_store
from detector.center import open_center_store
from detector.push import HttpPushSender
from tests.push import (
    CenterProcess,
    ScriptedVehicle,
    SSEFollower,
    center_alerts,
    free_port,
    pg_base_url,
    pg_schema,
    strip_center,
    write_tokens,
)

OUTAGE_S = 30.0


def test_three_vehicles_survive_a_30s_center_outage(tmp_path):
    base = pg_base_url()
    with pg_schema(base) as db_url:
        vids = ["van-1", "van-2", "van-3"]
        sites = {"van-1": "lycee-nord", "van-2": "lycee-nord", "van-3": "college-sud"}
        tokens = write_tokens(tmp_path / "vehicles.txt", vids)
        port = free_port()
        center = CenterProcess(["--db", db_url, "--vehicle-tokens", str(tmp_path / "vehicles.txt"),
                                "--data-dir", str(tmp_path / "center"), "--silent-after", "5"], port, tmp_path / "center.log")
        center.start()
        vehicles, senders, stores = [], [], []
        follower = SSEFollower(center.url)
        try:
            follower.start()
            for i, v in enumerate(vids):
                st = open_store(None, data_dir=tmp_path / v)
                stores.append(st)
                snd = HttpPushSender(st, center_url=center.url, token=tokens[v], vehicle_id=v, site=sites[v],
                                     heartbeat_s=1.0, poll_s=0.2).start()
                senders.append(snd)
                vehicles.append(ScriptedVehicle(v, sites[v], st, seed=i))

            # phase 1: center up
            for veh in vehicles:
                veh.run_for(4.0, rate=8)
            for veh in vehicles:
                veh.join()
            assert all(s.wait_drained(10) for s in senders), [s.health() for s in senders]
            before = center_alerts(center.url)
            assert len(before) >= 3

            # phase 2: the center is killed (SIGKILL) while the vehicles keep alerting for 30 s
            center.kill()
            t_down = time.monotonic()
            for veh in vehicles:
                veh.run_for(OUTAGE_S - 2.0, rate=4)
            for veh in vehicles:
                veh.join()
            assert all(s.pending() > 0 for s in senders)
            while time.monotonic() - t_down < OUTAGE_S:
                time.sleep(0.2)
            assert all(s.failures > 0 for s in senders)

            # phase 3: restart; the backlog arrives within the capped backoff, new changes too
            center.start()
            t_up = time.monotonic()
            for veh in vehicles:
                veh.run_for(3.0, rate=8)
            for veh in vehicles:
                veh.join()
            assert all(s.wait_drained(30) for s in senders), [s.health() for s in senders]
            drain_s = time.monotonic() - t_up
            assert drain_s < 20, f"backlog took {drain_s:.1f} s after the restart (backoff is capped at 10 s)"

            # the center holds exactly the vehicles' alerts, newest version each
            expected: dict[str, dict] = {}
            versions: set[str] = set()
            for veh in vehicles:
                got = veh.alerts()
                assert not set(got) & set(expected)
                expected.update({k: {**a, "_vehicle": veh.vehicle_id} for k, a in got.items()})
                versions |= veh.versions()
            held = center_alerts(center.url)
            assert set(held) == set(expected)
            for aid, a in held.items():
                exp = dict(expected[aid])
                assert a["vehicle_id"] == exp.pop("_vehicle")
                assert strip_center(a) == exp, aid
            # every version exactly once (the idempotency keys), none extra
            cs = open_center_store(db_url, data_dir=tmp_path / "unused")
            try:
                keys = cs.ingest_keys()
                assert len(keys) == len(set(keys)) == len(versions)
                assert set(keys) == versions
                # the history of an alert on the center is every version, in order
                some = next(iter(held))
                assert [h.version for h in cs.history(some)] == list(range(1, held[some]["version"] + 1))
            finally:
                cs.close()
            # evidence uploaded by the vehicles is served by the center with the same hash
            with_ev = [a for a in held.values() if a["evidence"]]
            assert with_ev, "the script adds evidence to some alerts"
            for a in with_ev[:3]:
                e = a["evidence"][0]
                r = httpx.get(f"{center.url}/api/v1/alerts/{a['id']}/evidence/{e['name']}")
                assert r.status_code == 200 and r.headers["x-content-sha256"] == e["sha256"]

            # overview: sites, open alerts per site, vehicles and their last contact
            ov = httpx.get(center.url + "/api/v1/overview").json()
            assert {s["site"] for s in ov["sites"]} == {"lycee-nord", "college-sud"}
            for s in ov["sites"]:
                n_open = sum(1 for a in expected.values() if a["site"] == s["site"] and a["status"] not in ("dismissed", "closed"))
                assert s["open_alerts"] == n_open
            assert {v["vehicle_id"] for v in ov["vehicles"]} == set(vids)
            assert ov["silent_vehicles"] == [] and all(v["last_contact"] for v in ov["vehicles"])

            # the SSE follower reconnected after the outage and saw every ingest event exactly once
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(follower.events) < len(versions):
                time.sleep(0.2)
            ids = [i for i, _ in follower.events]
            assert len(ids) == len(set(ids)), "an event arrived twice"
            assert ids == sorted(ids)
            assert {f"{e['alert_id']}:{e['version']}" for _, e in follower.events} == versions
            assert follower.connects >= 2
        finally:
            for cleanup in [follower.stop, *[s.stop for s in senders], *[st.close for st in stores], center.stop]:
                try:
                    cleanup()
                except Exception:  # noqa: BLE001 - clean up everything, report the test's own failure
                    pass
