"""Shared data of the dashboard tests: a short simulated monitoring run (cached per process), a real
recording run through detection, and helpers to check figures.

``sim_run()`` runs the real :class:`~detector.pipeline.Monitor` on ``sim:default``: a 20 s survey
for the baseline, then the exam session from 205 s to 228 s (the hidden NFM transmitter starts at
210 s), with the alert store, evidence and the track locator — about 15 s on 2 cores, once.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SITE = "exam-site-default"
RUN_ID = "run-test"


@contextlib.contextmanager
def no_warnings():
    """Fail on any warning raised inside (UserWarning from matplotlib included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    msgs = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    assert not msgs, "warnings: " + "; ".join(msgs)


def by_gid(fig, gid: str) -> list:
    """Artists of ``fig`` whose gid is ``gid`` (lines, patches, texts, images, collections)."""
    return [a for a in fig.findobj() if getattr(a, "get_gid", lambda: None)() == gid]


def texts(fig) -> list[str]:
    """Every text drawn in the figure (titles, labels, annotations, tick labels)."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


@lru_cache(maxsize=1)
def sim_run() -> SimpleNamespace:
    """The monitor, store, site, baseline and scene of a short simulated run (see the module docstring)."""
    from detector.alerts import open_store
    from detector.detection.engine import DetectionEngine, EngineConfig
    from detector.localization.tracks import track_locator
    from detector.pipeline import Monitor
    from detector.app.runs import survey_baseline
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR
    from detector.sim.site import site_from_scene

    sc = scene_from_spec("sim:default")
    site = site_from_scene(sc)
    assert site.name == SITE
    survey = SimSDR(sc, window="survey")
    survey.t_end = 20.0
    baseline = survey_baseline([survey], DetectionEngine(EngineConfig()), site=SITE)
    engine = DetectionEngine(EngineConfig(), baseline=baseline, whitelist=site.whitelist_obj(), site=SITE,
                             sessions=site.exam_sessions(None), locate=track_locator(site.lat, site.lon))
    tmp = Path(tempfile.mkdtemp(prefix="examwatch-dash-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    store = open_store(None, data_dir=tmp)

    def source():
        s = SimSDR(sc, window="exam")
        s.t = s.t_start = 205.0
        s.t_end = 228.0
        return s

    mon = Monitor(source, engine, store=store, site=SITE, run_id=RUN_ID)
    mon.start()
    assert mon.finished.wait(180), "the simulated run did not finish"
    mon.stop()
    atexit.register(store.close)
    return SimpleNamespace(monitor=mon, store=store, site=site, baseline=baseline, scene=sc, data_dir=tmp)


def target_alert(run: SimpleNamespace):
    """The alert on the hidden transmitter T1 (PMR446 channel 7, 446.08125 MHz)."""
    alerts, _ = run.store.list(site=SITE)
    hits = [a for a in alerts if abs(a.center_hz - 446.08125e6) < 5e3]
    assert hits, [a.center_hz for a in alerts]
    return hits[0]


@lru_cache(maxsize=1)
def sim_drive_readings() -> SimpleNamespace:
    """Received power of the hidden transmitter T1 along the vehicle's whole exam loop (one reading a
    second, from the simulator's propagation model at the GPS-reported positions), the estimate
    located from them, the route and the true position."""
    from detector.localization import locate
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR
    from detector.sim.world import enu_to_llh

    sc = scene_from_spec("sim:default")
    sdr = SimSDR(sc, window="exam")
    t = np.arange(150.0, 390.0, 1.0)
    power = sdr.world.rx_power_dbm("T1", t)
    xy = sdr.world.vehicle.reported_xy(t)
    lat, lon = enu_to_llh(xy[:, 0], xy[:, 1], sc.site.lat0, sc.site.lon0)
    est = locate(lat, lon, power)
    t1 = next(e for e in sc.emitters if e.id == "T1")
    tlat, tlon = enu_to_llh(t1.position[0], t1.position[1], sc.site.lat0, sc.site.lon0)
    readings = [{"t_s": float(a), "lat": float(b), "lon": float(c), "power_db": float(d)} for a, b, c, d in zip(t, lat, lon, power)]
    return SimpleNamespace(readings=readings, route=list(zip(lat.tolist(), lon.tolist())), estimate=est,
                           truth=(float(tlat), float(tlon)))


def located_event(track_id: str = "T00001", f_hz: float = 446.08125e6, *, location: dict | None = None, **kw) -> dict:
    """A track event dict as ``examwatch replay --jsonl`` writes it (for ``store.apply_event``)."""
    ev = {"event": "new", "track_id": track_id, "alert": True, "center_hz": f_hz, "bandwidth_hz": 11000.0,
          "first_seen_s": 209.9, "last_seen_s": 224.0, "peak_dbfs": -30.0, "snr_db": 40.0, "excess_db": 35.0,
          "classification": "nfm_voice", "bursts": 2, "reasons": ["persistent: 3 of the last 5 frames", "35 dB over the site baseline"],
          "location": location, "severity": "high", "score_terms": {"excess": 3.0, "persistence": 2.0}}
    ev.update(kw)
    return ev


def real_iq_run(real_dir: Path, entry: dict) -> SimpleNamespace:
    """A real recording through CFAR-only detection: its frames, tracks (as events) and alerting tracks."""
    from detector.detection.engine import DetectionEngine, EngineConfig, track_event
    from detector.app.runs import run_detection, timeline_frames
    from detector.app.sources import open_source

    def src():
        return open_source(str(real_dir / entry["file"]), sample_format=entry["dtype"],
                           sample_rate_hz=entry["sample_rate_hz"], center_hz=entry["center_hz"])

    eng = DetectionEngine(EngineConfig())
    frames = list(timeline_frames([src()], eng))
    eng = DetectionEngine(EngineConfig())
    events: list[dict] = []
    run_detection([src()], eng, lambda evs: events.extend(e.to_json() for e in evs))
    tracks = [track_event("end", tr).to_json() for tr in eng.all_tracks.values() if tr.confirmed]
    alerts = {ev["track_id"]: ev for ev in events if ev.get("alert")}
    return SimpleNamespace(frames=frames, tracks=tracks, alerts=list(alerts.values()), engine=eng)
