"""What the engine reports of a track: :func:`track_event` (a :class:`~detector.detection._tracking.Track`
now, as a :class:`~detector.detection.events.TrackEvent`) and :func:`center_moved` (the ``update``
rule's "the center moved" test). Re-exported by :mod:`detector.detection.engine`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from detector.detection._tracking import Track
from detector.detection.events import TrackEvent

__all__ = ["track_event", "center_moved"]


def _r(x, nd=2):
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def track_event(kind: Literal["new", "update", "end"], tr: Track, *, wall_start: datetime | None = None, location: dict | None = None,
                peak_dbm_offset_db: float | None = None) -> TrackEvent:
    """The event of a track now (see :class:`~detector.detection.events.TrackEvent`);
    ``peak_dbm_offset_db`` is dBm − dBFS at the track's frequency when a power calibration applies."""
    peak = _r(tr.peak_dbfs)
    return TrackEvent(
        kind=kind, track_id=tr.track_id, alert=bool(tr.alert), center_hz=round(tr.center_hz, 1),
        bandwidth_hz=round(tr.bandwidth_hz, 1), first_seen_s=round(tr.first_seen_s, 4),
        last_seen_s=round(tr.last_seen_s + tr.frame_s, 4), peak_dbfs=peak, snr_db=_r(tr.snr_db),
        excess_db=_r(tr.excess_db), classification=tr.classification, bursts=tr.bursts,
        reasons=tuple(tr.alert_reasons) if tr.alert else (), location=location, f_lo_hz=round(tr.f_lo_hz, 1),
        f_hi_hz=round(tr.f_hi_hz, 1), duty_cycle=round(tr.duty_cycle, 3), severity=tr.severity if tr.alert else None,
        score_terms=dict(tr.score_terms),
        first_seen_utc=None if wall_start is None else wall_start + timedelta(seconds=tr.first_seen_s),
        last_seen_utc=None if wall_start is None else wall_start + timedelta(seconds=tr.last_seen_s + tr.frame_s),
        peak_dbm=None if peak is None or peak_dbm_offset_db is None else round(peak + peak_dbm_offset_db, 2),
        artefact=tr.artefact, artefact_of=tr.artefact_of, overload=bool(tr.overload),
        integration_s=tr.integration_s,
    )


def center_moved(c0_hz: float, bw0_hz: float, c_hz: float, bw_hz: float, min_hz: float) -> bool:
    """Whether a track's center moved from ``c0_hz`` to ``c_hz`` by more than half its bandwidth
    (then ``bw0_hz`` or now ``bw_hz``, the larger) and at least ``min_hz``."""
    return abs(c_hz - c0_hz) > max(bw0_hz / 2, bw_hz / 2, min_hz)
