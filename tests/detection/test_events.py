"""Typed detection events: created by the engine, JSON only at the edges."""

from datetime import datetime, timezone

import pytest

from detector.core.errors import InputError
from detector.detection.events import MissingEvent, TrackEvent, event_from_json

REPLAY_KEYS = ["event", "track_id", "alert", "center_hz", "bandwidth_hz", "first_seen_s", "last_seen_s", "peak_dbfs",
               "snr_db", "excess_db", "classification", "bursts", "reasons", "location", "f_lo_hz", "f_hi_hz",
               "duty_cycle", "severity", "score_terms", "first_seen_utc", "last_seen_utc", "peak_dbm",
               "artefact", "artefact_of", "overload", "integration_s"]  # issue #18 item 1: keys added at the end


def _track(**kw):
    base = dict(kind="update", track_id="T00003", alert=True, center_hz=446079820.0, bandwidth_hz=11000.0,
                first_seen_s=209.99, last_seen_s=210.02, peak_dbfs=-31.2, snr_db=38.9, excess_db=37.5,
                classification="nfm_voice", bursts=1, reasons=("persistent: 3 of the last 5 frames",),
                f_lo_hz=446074320.0, f_hi_hz=446085320.0, duty_cycle=1.0, severity="high",
                score_terms={"excess": 3.0}, first_seen_utc=datetime(2026, 6, 7, 9, 3, 29, 990000, tzinfo=timezone.utc),
                last_seen_utc=datetime(2026, 6, 7, 9, 3, 30, 20000, tzinfo=timezone.utc), peak_dbm=-61.2)
    base.update(kw)
    return TrackEvent(**base)


def test_track_event_json_has_the_replay_keys_in_order_and_utc_with_z():
    d = _track().to_json()
    assert list(d) == REPLAY_KEYS
    assert d["first_seen_utc"] == "2026-06-07T09:03:29.990000Z" and d["last_seen_utc"] == "2026-06-07T09:03:30.020000Z"
    assert d["reasons"] == ["persistent: 3 of the last 5 frames"] and d["event"] == "update"


def test_track_event_without_wall_clock_has_no_utc_keys():
    d = _track(first_seen_utc=None, last_seen_utc=None).to_json()
    assert "first_seen_utc" not in d and "last_seen_utc" not in d and d["peak_dbm"] == -61.2


def test_json_round_trip_gives_the_same_event():
    ev = _track()
    assert event_from_json(ev.to_json()) == ev
    m = MissingEvent(track_id="M446100", center_hz=446.1e6, bandwidth_hz=12000.0, first_seen_s=10.0,
                     last_seen_s=40.0, reasons=("survey emission absent for 30 s",))
    back = event_from_json(m.to_json())
    assert isinstance(back, MissingEvent) and back.alert and back.is_missing
    assert (back.track_id, back.center_hz, back.bandwidth_hz, back.reasons) == (m.track_id, m.center_hz, m.bandwidth_hz, m.reasons)
    assert list(m.to_json()) == ["event", "track_id", "alert", "center_hz", "bandwidth_hz", "first_seen_s", "last_seen_s",
                                 "peak_dbfs", "peak_dbm", "snr_db", "excess_db", "classification", "bursts", "reasons",
                                 "location"]


def test_events_are_frozen():
    with pytest.raises(AttributeError):
        _track().center_hz = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("bad, msg", [
    ([1, 2], "must be a dict"),
    ({"center_hz": 1e6}, "non-empty string track_id"),
    ({"track_id": "T1", "center_hz": float("nan")}, "no finite center_hz"),
    ({"track_id": "T1", "center_hz": "x"}, "must be a number"),
    ({"track_id": "T1", "center_hz": 1e6, "first_seen_utc": "yesterday"}, "ISO 8601"),
])
def test_malformed_json_is_an_input_error(bad, msg):
    with pytest.raises(InputError, match=msg):
        event_from_json(bad)


def test_nan_levels_read_as_none():
    ev = event_from_json({"track_id": "T1", "center_hz": 1e6, "snr_db": float("inf"), "alert": True})
    assert ev.snr_db is None and ev.alert and ev.kind == "update"
