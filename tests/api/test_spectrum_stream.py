"""The live spectrum stream (issue #20 item 1): 8-bit rows with their scale, max-hold decimation and
zoom (:mod:`detector.api.spectrum_rows`), and ``GET /api/v1/spectrum/stream`` over a real running
monitor (a paced endless source, 4 096 engine bins), served by uvicorn and read over HTTP."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import zlib

import httpx
import numpy as np
import pytest

from detector.api.spectrum_rows import (
    CODE_MAX,
    CODE_NAN,
    dequantise,
    max_hold_decimate,
    quantise_db,
    row_grid,
)

FS = 1.024e6
CENTER = 446.0e6
TONE_HZ = 100e3
BIN_HZ = 250.0  # 4 096 engine bins at 1.024 MS/s
READ = "read-token-1234"
WRITE = "write-token-1234"


# --- the pure helpers ----------------------------------------------------------------------------
class TestQuantiser:
    def test_round_trip_within_half_a_step(self):
        db = np.random.default_rng(0).uniform(-130.0, -20.0, 4096)
        r = quantise_db(db)
        assert r.q.dtype == np.uint8 and r.q.shape == (4096,)
        assert r.offset_db <= db.min() and r.offset_db + CODE_MAX * r.step_db >= db.max()
        assert r.step_db == pytest.approx(110.0 / 254, abs=0.01)
        err = np.abs(r.levels_db() - db)
        assert err.max() <= r.step_db / 2 + 1e-9
        assert r.q.max() <= CODE_MAX and r.q.min() == 0

    def test_a_given_scale_clips_and_nan_is_its_own_code(self):
        db = np.array([-200.0, -100.0, -99.75, np.nan, 0.0, -np.inf, np.inf])
        r = quantise_db(db, offset_db=-100.0, step_db=0.5)
        assert r.q.tolist() == [0, 0, 0, CODE_NAN, 200, 0, CODE_MAX]  # -99.75 rounds to code 0 (half to even)
        back = dequantise(r.q, r.offset_db, r.step_db)
        assert np.isnan(back[3]) and back[4] == 0.0 and back[0] == -100.0
        clipped = quantise_db(np.array([50.0]), offset_db=-100.0, step_db=0.5)
        assert clipped.q.tolist() == [CODE_MAX] and clipped.levels_db()[0] == pytest.approx(27.0)

    def test_nan_and_degenerate_rows(self):
        r = quantise_db(np.array([np.nan, -50.0, np.nan, -50.0]))
        assert r.q.tolist() == [CODE_NAN, 0, CODE_NAN, 0] and r.offset_db == -50.0 and r.step_db == 0.01
        allnan = quantise_db(np.full(3, np.nan))
        assert allnan.q.tolist() == [CODE_NAN] * 3 and np.isnan(allnan.levels_db()).all()
        with pytest.raises(ValueError, match="both"):
            quantise_db([1.0], offset_db=0.0)
        with pytest.raises(ValueError, match="positive"):
            quantise_db([1.0], offset_db=0.0, step_db=0.0)

    def test_max_hold_decimation_and_the_row_grid(self):
        x = np.array([1.0, 5.0, 2.0, np.nan, np.nan, np.nan, 3.0])
        assert max_hold_decimate(x, 2).tolist()[:2] == [5.0, 2.0]
        out = max_hold_decimate(x, 3)
        assert out[0] == 5.0 and np.isnan(out[1]) and out[2] == 3.0  # a partial last run
        f = CENTER - FS / 2 + BIN_HZ * np.arange(4096)
        g = row_grid(f, 1024)
        assert (g.factor, g.n, g.bin_hz) == (4, 1024, 1000.0) and g.f0_hz == pytest.approx(f[0] + 1.5 * BIN_HZ)
        z = row_grid(f, 4096, CENTER, CENTER + 50e3)
        assert z.factor == 1 and z.f0_hz == CENTER and z.n == 201 and z.bin_hz == BIN_HZ
        assert row_grid(f, 4096, 1e9, 1.1e9).n == 4096  # a span off the grid: the whole grid
        with pytest.raises(ValueError):
            row_grid(f, 0)


# --- a running monitor ---------------------------------------------------------------------------
class Paced:
    """Noise and a carrier at ``CENTER + TONE_HZ`` for ever, a 64 ms block every 64 ms (real time)."""

    def __init__(self, center_hz=CENTER):
        from detector.sim import awgn, tone
        from detector.sources import SourceInfo

        rng = np.random.default_rng(3)
        n = 1 << 16
        self.center_hz = center_hz
        self.blocks_x = [(awgn(n, -45.0, rng) + tone(n, FS, TONE_HZ, -20.0)).astype(np.complex64) for _ in range(4)]
        self.info = SourceInfo(kind="raw", name="paced", center_hz=center_hz, sample_rate_hz=FS, n_samples=None)

    def blocks(self, bs):
        from detector.core.types import IQBlock

        n = self.blocks_x[0].size
        t0 = time.monotonic()
        i = 0
        while True:
            time.sleep(max(0.0, t0 + i * n / FS - time.monotonic()))
            yield IQBlock(self.blocks_x[i % 4], self.center_hz, FS, offset_s=i * n / FS, retuned=i == 0)
            i += 1

    def close(self):
        pass


class Hopping(Paced):
    """:class:`Paced`, retuned between ``CENTER`` and ``CENTER + 2 MHz`` every ``dwell`` blocks."""

    dwell = 10  # 0.64 s

    def blocks(self, bs):
        from detector.core.types import IQBlock

        for i, b in enumerate(super().blocks(bs)):
            hop = (i // self.dwell) % 2
            yield IQBlock(b.samples, CENTER + 2e6 * hop, FS, offset_s=b.offset_s, retuned=i % self.dwell == 0)


class _Server:
    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        end = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < end, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def _monitor(store, *, baseline=None, center_hz=CENTER, receiver=None, source=None):
    from detector.detection.engine import DetectionEngine, EngineConfig
    from detector.pipeline import Monitor

    engine = DetectionEngine(EngineConfig(bin_hz=BIN_HZ), baseline=baseline, site="S")
    return Monitor(source or (lambda: Paced(center_hz)), engine, store=store, site="S", run_id="run-stream", evidence=False,
                   spill=False, receiver=receiver)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A group of two running receivers (``uhf`` with a baseline, ``vhf`` without), behind the API
    with a read token; yields (url, group)."""
    from detector.alerts import open_store
    from detector.api import ApiContext, create_app
    from detector.pipeline.receivers import ReceiverGroup
    from detector.sim import awgn
    from tests._helpers import survey_iq
    from detector.detection.engine import DetectionEngine, EngineConfig

    x = awgn(1 << 18, -45.0, np.random.default_rng(9)).astype(np.complex64)
    baseline = survey_iq(x, FS, CENTER, engine=DetectionEngine(EngineConfig(bin_hz=BIN_HZ)), site="S")
    store = open_store(None, data_dir=tmp_path_factory.mktemp("store"))
    uhf = _monitor(store, baseline=baseline, receiver="uhf")
    vhf = _monitor(store, center_hz=150.0e6, receiver="vhf")
    group = ReceiverGroup([("uhf", uhf, ()), ("vhf", vhf, ())], site="S", run_id="run-stream")
    group.start()
    app = create_app(ApiContext(store=store, token=WRITE, monitor=group, read_token=READ))
    try:
        end = time.monotonic() + 20
        while uhf.live.frames.seq < 3 or vhf.live.frames.seq < 3:
            assert time.monotonic() < end, "no frames"
            time.sleep(0.05)
        with _Server(app) as srv:
            yield srv.url, group
    finally:
        group.stop()
        store.close()


def read_stream(url, seconds, **params):
    """``(events, body_bytes, elapsed_s)``: the events ``[(name, data)]`` of ``seconds`` of the stream."""
    events, n_bytes = [], 0
    arrivals = read_stream.arrivals = []
    headers = {"Authorization": f"Bearer {READ}"}
    t0 = time.monotonic()
    with httpx.stream("GET", url + "/api/v1/spectrum/stream", params=params, headers=headers, timeout=10) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        buf = b""
        for chunk in r.iter_raw():
            n_bytes += len(chunk)
            buf += chunk
            while b"\r\n\r\n" in buf or b"\n\n" in buf:
                sep = b"\r\n\r\n" if b"\r\n\r\n" in buf else b"\n\n"
                block, buf = buf.split(sep, 1)
                name, data = "message", None
                for line in block.decode().splitlines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:].strip())
                if data is not None:
                    events.append((name, data))
                    arrivals.append(time.monotonic())
            if time.monotonic() - t0 >= seconds:
                break
    return events, n_bytes, time.monotonic() - t0


def decode(levels: dict, encoding="deflate") -> np.ndarray:
    raw = base64.b64decode(levels["q"])
    q = np.frombuffer(zlib.decompress(raw) if encoding == "deflate" else raw, dtype=np.uint8)
    return dequantise(q, levels["offset_db"], levels["step_db"])


def expected_row(mon, row, prev_seq):
    """The max-hold of the monitor's frames in the row (numbers prev_seq+1 … row["seq"])."""
    frames = [f for f in mon.live.frames.after(prev_seq) if f[0] <= row["seq"]]
    assert len(frames) == row["frames"], (len(frames), row["frames"])
    return np.fmax.reduce(np.vstack([np.asarray(f[1].power, dtype=np.float64) for f in frames]), axis=0)


def test_rows_at_5_per_second_within_30_kB_per_second_for_4096_bins(served):
    url, group = served
    uhf = group.receivers["uhf"]
    events, n_bytes, elapsed = read_stream(url, 4.0)
    names = [n for n, _ in events]
    assert names[:2] == ["hello", "grid"] and events[0][1]["receivers"] == ["uhf", "vhf"]
    grid = events[1][1]
    assert (grid["n"], grid["decimation"], grid["bin_hz"], grid["unit"]) == (4096, 1, BIN_HZ, "dBFS")
    rows = [d for n, d in events if n == "row"]
    at = [t for (n, _), t in zip(events, read_stream.arrivals) if n == "row"]
    rate = (len(rows) - 1) / (at[-1] - at[0])
    bps = n_bytes / elapsed
    print(f"\nspectrum stream: {rate:.2f} rows/s, {bps / 1000:.1f} kB/s for {grid['n']} bins ({n_bytes} B in {elapsed:.2f} s)")
    assert rate >= 4.9 and len(rows) >= 20  # 5 rows/s
    assert bps <= 30_000
    assert all(decode(r).size == 4096 for r in rows)
    assert "baseline" in names and "tracks" in names
    # every row is the max-hold of the monitor's frames since the row before, within half a step
    prev = rows[0]["seq"] - rows[0]["frames"]
    for r in rows[:6]:
        want = expected_row(uhf, r, prev)
        got = decode(r)
        assert np.nanmax(np.abs(got - want)) <= r["step_db"] / 2 + 1e-4
        prev = r["seq"]
    assert rows[-1]["floor_db"] == pytest.approx(-45.0 + 10 * np.log10(BIN_HZ * 1.5 / FS), abs=3.0)
    # the carrier is the row's peak, at its bin
    peak = int(np.nanargmax(decode(rows[-1])))
    assert abs(grid["f0_hz"] + peak * grid["bin_hz"] - (CENTER + TONE_HZ)) <= BIN_HZ
    # the baseline's quantiles on the same grid (a noise survey: p99 above p50, both near the floor)
    base = next(d for n, d in events if n == "baseline")
    p50, p99 = decode(base["p50"]), decode(base["p99"])
    assert p50.size == p99.size == 4096 and np.nanmedian(p99 - p50) > 1.0
    assert np.nanmedian(p50) == pytest.approx(rows[-1]["floor_db"], abs=3.0)


def test_raw_rows_fit_too(served):
    """``encoding=raw`` (no deflate): 4 096 bytes of base64 a row, ≤ 30 kB/s once the grid and the
    baseline (sent first) are out."""
    url, group = served
    events, n_bytes, elapsed = read_stream(url, 3.0, encoding="raw")
    rows = [d for n, d in events if n == "row"]
    assert events[0][1]["encoding"] == "raw" and all(len(base64.b64decode(r["q"])) == 4096 for r in rows)
    per_row = np.mean([len(json.dumps(r, separators=(",", ":"))) + len("event: row\r\ndata: \r\n\r\n") for r in rows])
    print(f"\nraw rows: {per_row:.0f} B a row, {5 * per_row / 1000:.1f} kB/s at 5 rows/s; "
          f"{n_bytes / elapsed / 1000:.1f} kB/s over {elapsed:.1f} s with the grid and baseline")
    assert 5 * per_row <= 30_000
    r = rows[-1]
    want = expected_row(group.receivers["uhf"], r, r["seq"] - r["frames"])
    assert np.nanmax(np.abs(decode(r, "raw") - want)) <= r["step_db"] / 2 + 1e-4


def test_zoom_sends_the_engine_bins_of_the_span(served):
    url, group = served
    lo, hi = CENTER + 50e3, CENTER + 150e3
    events, _, _ = read_stream(url, 1.0, f_lo_hz=lo, f_hi_hz=hi)
    grid = next(d for n, d in events if n == "grid")
    assert grid["decimation"] == 1 and grid["bin_hz"] == BIN_HZ and grid["n"] == 401
    assert lo <= grid["f0_hz"] < lo + BIN_HZ and grid["f0_hz"] + (grid["n"] - 1) * grid["bin_hz"] <= hi
    assert (grid["full_f_lo_hz"], grid["full_f_hi_hz"]) == (CENTER - FS / 2, CENTER + FS / 2 - BIN_HZ)
    row = next(d for n, d in events if n == "row")
    assert decode(row).size == 401
    peak = int(np.nanargmax(decode(row)))
    assert abs(grid["f0_hz"] + peak * BIN_HZ - (CENTER + TONE_HZ)) <= BIN_HZ
    # fewer bins than the span: max-hold decimation keeps the carrier's level
    events, _, _ = read_stream(url, 1.0, bins=512)
    grid = next(d for n, d in events if n == "grid")
    assert (grid["n"], grid["decimation"], grid["bin_hz"]) == (512, 8, 8 * BIN_HZ)
    row = next(d for n, d in events if n == "row")
    frame = expected_row(group.receivers["uhf"], row, row["seq"] - row["frames"])
    assert np.nanmax(decode(row)) == pytest.approx(np.nanmax(frame), abs=row["step_db"] / 2 + 1e-4)


def test_the_receiver_query_selects_a_receiver(served):
    url, _ = served
    events, _, _ = read_stream(url, 0.8, receiver="vhf")
    hello, grid = events[0][1], events[1][1]
    assert hello["receiver"] == "vhf" and grid["center_hz"] == 150.0e6
    base = next(d for n, d in events if n == "baseline")
    assert base == {"p50": None, "p99": None, "key": grid["key"]}  # this receiver has no baseline
    tracks = next(d for n, d in events if n == "tracks")
    assert tracks["run_id"] == "run-stream" and isinstance(tracks["data"], list)


def test_a_hopping_receiver_gets_each_grid_baseline_once(tmp_path):
    """A plan hopping between two grids: a grid event at every hop, the baseline of each grid once
    (the client keeps them by key), and still within 30 kB/s for 4 096 bins."""
    from detector.alerts import open_store
    from detector.api import ApiContext, create_app
    from detector.sim import awgn

    x = awgn(1 << 18, -45.0, np.random.default_rng(9)).astype(np.complex64)
    from detector.detection.engine import DetectionEngine, EngineConfig
    from tests._helpers import survey_iq

    baseline = survey_iq(x, FS, CENTER, engine=DetectionEngine(EngineConfig(bin_hz=BIN_HZ)), site="S")
    store = open_store(None, data_dir=tmp_path)
    mon = _monitor(store, baseline=baseline, source=Hopping)
    mon.start()
    try:
        with _Server(create_app(ApiContext(store=store, token=WRITE, monitor=mon, read_token=READ))) as srv:
            events, n_bytes, elapsed = read_stream(srv.url, 3.5)
    finally:
        mon.stop()
        store.close()
    grids = [d for n, d in events if n == "grid"]
    bases = [d for n, d in events if n == "baseline"]
    assert len(grids) >= 4 and len({g["key"] for g in grids}) == 2
    assert sorted(b["key"] for b in bases) == sorted({g["key"] for g in grids})  # once per grid
    covered = {b["key"]: b["p50"] is not None and bool(np.isfinite(decode(b["p50"])).any()) for b in bases}
    by_center = {g["center_hz"]: covered[g["key"]] for g in grids}
    assert by_center == {CENTER: True, CENTER + 2e6: False}  # the survey covers the first grid only
    print(f"\nhopping: {len(grids)} grids, {len(bases)} baselines, {n_bytes / elapsed / 1000:.1f} kB/s")
    assert n_bytes / elapsed <= 30_000


def test_refusals(served):
    url, _ = served
    auth = {"Authorization": f"Bearer {READ}"}
    s = url + "/api/v1/spectrum/stream"
    assert httpx.get(s, timeout=5).status_code == 401
    assert httpx.get(s, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    r = httpx.get(s, params={"receiver": "nope"}, headers=auth, timeout=5)
    assert r.status_code == 404 and "uhf, vhf" in r.json()["detail"]
    for bad in ({"rate_hz": 0}, {"rate_hz": 100}, {"bins": 8}, {"bins": 100000}, {"f_lo_hz": 2e6, "f_hi_hz": 1e6}):
        assert httpx.get(s, params=bad, headers=auth, timeout=5).status_code == 422, bad


def test_a_center_has_no_live_spectrum(tmp_path):
    from fastapi.testclient import TestClient

    from detector.alerts import open_store
    from detector.api import ApiContext, create_app

    store = open_store(None, data_dir=tmp_path)
    with TestClient(create_app(ApiContext(store=store, token=WRITE))) as c:
        r = c.get("/api/v1/spectrum/stream")
        assert r.status_code == 404 and "capture loop" in r.json()["detail"]
        spec = c.get("/openapi.json").json()["paths"]["/api/v1/spectrum/stream"]["get"]
        ok = spec["responses"]["200"]
        assert "text/event-stream" in ok["content"] and set(ok["x-events"]) == {"hello", "grid", "row", "baseline", "tracks"}
        assert {p["name"] for p in spec["parameters"]} == {"rate_hz", "bins", "f_lo_hz", "f_hi_hz", "receiver", "encoding"}
    store.close()
