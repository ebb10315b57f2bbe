"""Helpers of the push / command-center tests: ports, servers, PostgreSQL schemas, a scripted alert
source, an SSE reader and a Mosquitto broker of our own.

External services: PostgreSQL at 127.0.0.1:5432 (database ``test``; ``EXAMWATCH_TEST_PG``
overrides) and Mosquitto (the ``mosquitto`` binary, and the broker at 127.0.0.1:1883). Without them
the tests that need them are skipped with the reason, except under ``CI`` where they fail.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests._helpers import free_port  # noqa: F401  (re-exported for tests/push and tests/center)

REPO = Path(__file__).resolve().parents[2]


def skip_or_fail(msg: str):
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- PostgreSQL ----------------------------------------------------------------------------------
def pg_base_url() -> str:
    """A reachable PostgreSQL URL (database ``test``), else skip (fail under CI)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    cands = [os.environ["EXAMWATCH_TEST_PG"]] if os.environ.get("EXAMWATCH_TEST_PG") else [
        f"postgresql+psycopg://{u}@127.0.0.1:5432/test" for u in ("postgres", "root")]
    errors = []
    for url in cands:
        eng = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with eng.connect() as c:
                c.execute(text("select 1"))
            return url
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{make_url(url).render_as_string(hide_password=True)}: {str(exc).splitlines()[0]}")
        finally:
            eng.dispose()
    skip_or_fail("PostgreSQL not reachable (" + "; ".join(errors) + ")")


@contextlib.contextmanager
def pg_schema(base: str):
    """A fresh schema; yields the URL whose ``search_path`` is that schema; dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"ew_push_{uuid.uuid4().hex[:12]}"
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


# --- servers -------------------------------------------------------------------------------------
class UvicornThread:
    """A real uvicorn server on a loopback port, in a thread."""

    def __init__(self, app, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


SERVE_LAUNCHER = "import detector.cli.serve; from detector.cli import main; main()"


def write_tokens(path: Path, vehicles: list[str]) -> dict[str, str]:
    """A vehicle-tokens file; returns ``{vehicle_id: token}``."""
    toks = {v: f"tok-{v}-{uuid.uuid4().hex}" for v in vehicles}
    path.write_text("# vehicle tokens\n\n" + "".join(f"{v} {t}  # {v}\n" for v, t in toks.items()))
    return toks


class CenterProcess:
    """``examwatch serve`` in a subprocess (killed with SIGKILL or stopped with SIGTERM)."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.args, self.port, self.log = args, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> CenterProcess:
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE_LAUNCHER, "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port), *self.args], cwd=REPO, stdout=self._fh,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not answer: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._fh.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()


# --- Mosquitto -----------------------------------------------------------------------------------
class Mosquitto:
    """A Mosquitto broker of our own on a free loopback port, with persistence in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)), None)
        if exe is None:
            skip_or_fail("the mosquitto binary is not installed (apt-get install mosquitto)")
        self.exe = exe
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would switch to a user that cannot write here
            f"persistence_location {self.dir}/\nautosave_interval 1\nmax_queued_messages 0\n"
            f"max_inflight_messages 100\nlog_dest file {self.dir}/mosquitto.log\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "mosquitto.log")
                raise RuntimeError("mosquitto did not start: " + (log.read_text()[-1000:] if log.exists() else ""))
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: the persistence file is written
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def system_broker() -> tuple[str, int]:
    """The machine's broker (127.0.0.1:1883, ``EXAMWATCH_TEST_MQTT=host:port`` overrides)."""
    spec = os.environ.get("EXAMWATCH_TEST_MQTT", "127.0.0.1:1883")
    host, _, port = spec.rpartition(":")
    if not port_open(int(port), host):
        skip_or_fail(f"no MQTT broker at {spec} (start mosquitto)")
    return host, int(port)


# --- a scripted alert source -----------------------------------------------------------------------
def track_event(track_id: str, last_s: float, *, snr: float, center_hz: float, located: bool = False) -> dict:
    loc = None
    if located:
        loc = {"lat": 50.0 + random.random() * 1e-3, "lon": 10.0, "status": "located", "cep50_m": 15.0,
               "error_ellipse_m": {"semi_major": 30.0, "semi_minor": 10.0, "angle_deg": 20.0}, "method": "rss_nls",
               "crlb_rmse_m": 8.0, "n_readings": 30}
    return {"event": "update", "track_id": track_id, "alert": True, "center_hz": center_hz, "bandwidth_hz": 11000.0,
            "first_seen_s": 0.0, "last_seen_s": last_s, "snr_db": snr, "excess_db": snr - 3, "peak_dbfs": -40.0,
            "classification": "nfm_voice", "severity": "high", "bursts": 1, "reasons": ["scripted"],
            "score_terms": {"excess": 1.0}, "location": loc}


class ScriptedVehicle:
    """A vehicle whose alerts come from a script: ``apply_event`` straight into its AlertStore (so the
    outbox fills exactly as in a monitor), plus status changes and evidence."""

    def __init__(self, vehicle_id: str, site: str, store, seed: int) -> None:
        self.vehicle_id, self.site, self.store = vehicle_id, site, store
        self.rng = random.Random(seed)
        self.tracks: list[str] = []
        self.t = 0.0
        self.changes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rate = 5.0

    def step(self) -> None:
        rng = self.rng
        self.t += 0.5
        r = rng.random()
        if not self.tracks or r < 0.2:
            tid = f"T{len(self.tracks) + 1:05d}"
            self.tracks.append(tid)
            a = self.store.apply_event(track_event(tid, self.t, snr=10 + rng.random(), center_hz=446e6 + 12500 * len(self.tracks)),
                                       site=self.site, run_id=self.vehicle_id)
        else:
            tid = rng.choice(self.tracks)
            a = self.store.apply_event(track_event(tid, self.t, snr=10 + 20 * rng.random(), center_hz=446e6,
                                                   located=rng.random() < 0.2), site=self.site, run_id=self.vehicle_id)
            if r > 0.95 and a is not None and a.status not in ("dismissed", "closed"):
                self.store.set_status(a.id, rng.choice(["acknowledged", "closed"]), "scripted", actor="crew")
            elif 0.9 < r <= 0.95 and a is not None:
                self.store.add_evidence(a.id, "snippet.bin", os.urandom(64), "application/octet-stream")
        self.changes += 1

    def run_for(self, seconds: float, rate: float | None = None) -> None:
        """Run the script in a thread at ``rate`` steps per second for ``seconds`` (non-blocking)."""
        rate = rate or self.rate
        self._stop.clear()

        def loop() -> None:
            end = time.monotonic() + seconds
            while not self._stop.is_set() and time.monotonic() < end:
                self.step()
                self._stop.wait(1.0 / rate)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def alerts(self) -> dict[str, dict]:
        out, off = {}, 0
        while True:
            page, total = self.store.list(limit=1000, offset=off)
            for a in page:
                out[a.id] = a.model_dump(mode="json")
            off += len(page)
            if off >= total or not page:
                return out

    def versions(self) -> set[str]:
        """Every ``alert_id:version`` the store ever produced."""
        return {f"{h.alert_id}:{h.version}" for a in self.alerts() for h in self.store.history(a)}


def center_alerts(url: str) -> dict[str, dict]:
    out, off = {}, 0
    with httpx.Client(base_url=url, timeout=10) as c:
        while True:
            r = c.get("/api/v1/alerts", params={"limit": 1000, "offset": off})
            r.raise_for_status()
            js = r.json()
            for a in js["data"]:
                out[a["id"]] = a
            off += len(js["data"])
            if off >= js["count"] or not js["data"]:
                return out


def strip_center(a: dict) -> dict:
    return {k: v for k, v in a.items() if k not in ("vehicle_id", "received_at")}


# --- SSE -----------------------------------------------------------------------------------------
def parse_sse(lines):
    """Yield ``(event, id, data)`` for each complete event of an iterator of lines (SSE rules:
    a partial event at the end of a connection is dropped)."""
    ev, eid, data = None, None, []
    for line in lines:
        if line == "":
            if data or ev:
                yield ev or "message", eid, "\n".join(data)
            ev, eid, data = None, None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            ev = value
        elif name == "id":
            eid = value
        elif name == "data":
            data.append(value)


class SSEFollower(threading.Thread):
    """Follows a stream, reconnecting with ``Last-Event-ID`` whenever the connection drops."""

    def __init__(self, url: str, read_timeout: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.read_timeout = read_timeout
        self.last_id: str | None = None
        self.events: list[tuple[int, dict]] = []
        self.connects = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            headers = {"Last-Event-ID": self.last_id} if self.last_id is not None else {}
            try:
                with httpx.stream("GET", self.url + "/api/v1/alerts/stream", headers=headers,
                                  timeout=httpx.Timeout(3.0, read=self.read_timeout)) as r:
                    if r.status_code != 200:
                        raise httpx.TransportError(f"HTTP {r.status_code}")
                    self.connects += 1
                    for ev, eid, data in parse_sse(r.iter_lines()):
                        if eid is not None:
                            self.last_id = eid
                        if ev == "alert":
                            self.events.append((int(eid), json.loads(data)))
                        if self._halt.is_set():
                            return
            except (httpx.HTTPError, OSError):
                pass
            self._halt.wait(0.3)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
