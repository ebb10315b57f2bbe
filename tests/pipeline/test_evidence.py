"""Evidence of alerts: the last second of IQ as SigMF (+ NFM audio), at the first alert and once
more after a second on the air."""

from __future__ import annotations

from dataclasses import replace

import json

import numpy as np

from detector.core.types import IQBlock
from detector.pipeline.evidence import EvidenceRecorder, RecentBlocks
from detector.detection.events import event_from_json
from tests.push import track_event as track_json


def track_event(*a, **kw):
    """A typed alerting track event (the engine's output)."""
    return event_from_json(track_json(*a, **kw))

FS = 50e3


class FakeStore:
    def __init__(self):
        self.files = []

    def add_evidence(self, alert_id, name, data, mime):
        self.files.append((alert_id, name, data))

    def get(self, alert_id):
        return Alert(alert_id)


class Alert:
    def __init__(self, aid):
        self.id = aid


def blocks(n, center=446e6, size=20_000):
    rng = np.random.default_rng(0)
    return [IQBlock((rng.standard_normal(size) + 1j * rng.standard_normal(size)).astype(np.complex64) * 0.1, center, FS,
                    offset_s=i * size / FS) for i in range(n)]


def test_recent_blocks_give_the_last_second_at_the_latest_tuning():
    r = RecentBlocks(maxlen=4)
    assert r.last_second() is None
    for b in blocks(2, center=433e6) + blocks(3):
        r.append(b)
    x, last = r.last_second()
    assert len(r) == 4 and last.center_hz == 446e6 and x.size == int(FS)  # 3 blocks of 446 MHz: 60 000 → 50 000


def test_evidence_at_the_first_alert_and_after_a_second_on_the_air():
    store = FakeStore()
    rec = EvidenceRecorder(store)
    for b in blocks(3):
        rec.recent.append(b)
    ev = track_event("T1", 0.3, snr=20.0, center_hz=446.01e6)  # 11 kHz wide: narrowband, with audio
    rec.on_alert(Alert("A1"), ev)
    assert [n for _, n, _ in store.files] == ["snippet.sigmf-meta", "snippet.sigmf-data", "audio.wav"]
    meta = json.loads(store.files[0][2])
    ann = meta["annotations"][0]
    assert ann["core:sample_count"] == int(FS) and ann["core:label"] == "T1 nfm_voice"
    assert abs(ann["core:freq_lower_edge"] - (446.01e6 - 5500)) < 1e-3
    assert len(store.files[1][2]) == int(FS) * 2 and meta["global"]["core:datatype"] == "cu8"  # 2 bytes a sample
    rec.on_alert(Alert("A1"), replace(ev, last_seen_s=0.9))  # < 1 s on the air: nothing new
    assert len(store.files) == 3 and rec.stage("A1") == 1
    rec.on_alert(Alert("A1"), replace(ev, last_seen_s=1.5))
    assert len(store.files) == 6 and rec.stage("A1") == 2
    rec.on_alert(Alert("A1"), replace(ev, last_seen_s=9.0))
    assert len(store.files) == 6


def test_a_wideband_alert_has_no_audio_and_a_resumed_alert_keeps_its_evidence():
    store = FakeStore()
    rec = EvidenceRecorder(store)
    for b in blocks(3):
        rec.recent.append(b)
    rec.on_alert(Alert("W"), event_from_json(dict(track_json("T2", 0.3, snr=20.0, center_hz=446e6), bandwidth_hz=200e3)))
    assert [n for _, n, _ in store.files] == ["snippet.sigmf-meta", "snippet.sigmf-data"]
    rec.keep_recorded("OLD")
    rec.on_alert(Alert("OLD"), track_event("T3", 5.0, snr=20.0, center_hz=446e6))
    assert all(a != "OLD" for a, _, _ in store.files)


def _dated(n, t0, size=20_000, center=446e6, position=None):
    from datetime import timedelta

    out = blocks(n, center=center, size=size)
    return [replace(b, start=t0 + timedelta(seconds=b.offset_s), position=position) for b in out]


def test_snippet_is_dated_by_its_first_sample_and_located():
    """Issue #24: the snippet was dated with its last block's start (0.4 s late here)."""
    from datetime import datetime, timezone

    from detector.core.types import Position

    t0 = datetime(2025, 6, 2, 9, 0, 0, tzinfo=timezone.utc)
    store = FakeStore()
    rec = EvidenceRecorder(store)
    for b in _dated(3, t0, position=Position(lat=48.8566, lon=2.3522, alt_m=35.0)):
        rec.recent.append(b)
    snip = rec.recent.snippet()
    # 3 blocks of 20 000 samples at 50 kS/s; the last 50 000 start at sample 10 000 = 0.2 s
    assert snip.start == datetime(2025, 6, 2, 9, 0, 0, 200000, tzinfo=timezone.utc)
    rec.on_alert(Alert("A1"), track_event("T1", 0.3, snr=20.0, center_hz=446.01e6))
    meta = json.loads(store.files[0][2])
    assert meta["captures"][0]["core:datetime"] == "2025-06-02T09:00:00.200000Z"
    assert meta["global"]["core:geolocation"] == {"type": "Point", "coordinates": [2.3522, 48.8566, 35.0]}


def test_snippet_without_time_or_position_has_neither_and_a_retune_ends_the_run():
    from datetime import datetime, timezone

    r = RecentBlocks()
    t0 = datetime(2025, 6, 2, 9, 0, 0, tzinfo=timezone.utc)
    later = [replace(b, retuned=i == 0) for i, b in enumerate(_dated(2, t0, center=446e6))]
    for b in _dated(2, t0, center=446e6) + _dated(1, t0, center=433e6) + later:
        r.append(b)
    snip = r.snippet()
    assert snip.samples.size == 40_000  # only the 2 blocks since the retune back to 446 MHz
    assert snip.start == t0 and snip.position is None
    store = FakeStore()
    rec = EvidenceRecorder(store)
    for b in blocks(2):
        rec.recent.append(b)
    rec.on_alert(Alert("B"), track_event("T1", 0.3, snr=20.0, center_hz=446.01e6))
    meta = json.loads(store.files[0][2])
    assert "core:datetime" not in meta["captures"][0] and "core:geolocation" not in meta["global"]


def test_nan_samples_in_the_snippet_are_written_as_the_zero_level():
    from detector.alerts import cu8_quantize, nfm_audio_wav

    x = np.full(1000, 0.5 + 0.5j, dtype=np.complex64)
    x[10] = complex(np.nan, np.inf)
    q = np.frombuffer(cu8_quantize(x), dtype=np.uint8)
    assert q[20] == 128 and q[21] == 128 and q[0] == 191
    assert len(nfm_audio_wav(x, sample_rate_hz=FS, offset_hz=0.0)) > 44
