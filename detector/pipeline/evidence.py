"""Evidence of an alert from the recent blocks: the last ~1 s of IQ as a SigMF snippet, and the
demodulated NFM audio for narrowband alerts.

:class:`EvidenceRecorder` owns the ring of recent blocks and the stage of every alert's evidence:
evidence is attached at the first alert, and once more when the track has been on the air for a
second (the first snippet holds only the frames that triggered the alert). An alert of an earlier
run that already has evidence keeps it as it was recorded.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from detector.core.types import IQBlock, Position
from detector.detection.events import DetectionEvent

__all__ = ["EvidenceRecorder", "RecentBlocks", "Snippet"]

log = logging.getLogger("examwatch.monitor")


@dataclass(frozen=True)
class Snippet:
    """The last second of samples at the latest tuning: ``samples``, the ``last`` block, the UTC
    time of the first sample (``start``: its block's start plus the offset of the first kept
    sample; None when the blocks carry no time) and the receiver's ``position`` then (the first
    kept block's, else the latest known among the kept blocks; None when unknown)."""

    samples: np.ndarray
    last: IQBlock
    start: datetime | None
    position: Position | None


class RecentBlocks:
    """The last ``maxlen`` processed blocks."""

    def __init__(self, maxlen: int = 32) -> None:
        self._blocks: deque[IQBlock] = deque(maxlen=maxlen)

    def append(self, block: IQBlock) -> None:
        self._blocks.append(block)

    def snippet(self, seconds: float = 1.0) -> Snippet | None:
        """The last ``seconds`` of samples of the latest run of blocks at the latest tuning (a
        retune ends the run), dated by its own first sample; None when empty."""
        if not self._blocks:
            return None
        last = self._blocks[-1]
        want = max(1, int(seconds * last.sample_rate_hz))
        run: list[IQBlock] = []
        have = 0
        for b in reversed(self._blocks):
            if b.center_hz != last.center_hz or b.sample_rate_hz != last.sample_rate_hz:
                break
            run.append(b)
            have += b.samples.size
            if b.retuned or have >= want:  # a retune: earlier samples are of another tuning
                break
        run.reverse()
        # only the blocks that hold the last ``seconds`` are joined (not all the recent ones: the
        # slice kept would hold the whole joined array in memory while the evidence is written)
        x = np.concatenate([b.samples for b in run])
        skip = max(0, x.size - want)
        x = x[skip:]
        # the block holding the first kept sample, and that sample's offset in it
        j, k = 0, skip
        while j < len(run) - 1 and k >= run[j].samples.size:
            k -= run[j].samples.size
            j += 1
        first, kept = run[j], run[j:]
        start = first.start + timedelta(seconds=k / first.sample_rate_hz) if first.start is not None else None
        position = first.position or next((b.position for b in reversed(kept) if b.position is not None), None)
        return Snippet(x, last, start, position)

    def last_second(self) -> tuple[np.ndarray, IQBlock] | None:
        """The last second of samples at the latest tuning, and the latest block; None when empty."""
        snip = self.snippet()
        return None if snip is None else (snip.samples, snip.last)

    def __len__(self) -> int:
        return len(self._blocks)


class EvidenceRecorder:
    """Attaches evidence files to alerts in ``store`` (see the module docstring)."""

    def __init__(self, store, recent: RecentBlocks | None = None) -> None:
        self.store = store
        self.recent = recent if recent is not None else RecentBlocks()
        self._stage: dict[str, int] = {}

    def keep_recorded(self, alert_id: str) -> None:
        """An alert continued from an earlier run whose evidence stays as it was."""
        self._stage[alert_id] = 2

    def stage(self, alert_id: str) -> int:
        return self._stage.get(alert_id, 0)

    def on_alert(self, alert, ev: DetectionEvent):
        """Attach evidence when due for this event of ``alert``; returns the alert as stored now."""
        stage = self._stage.get(alert.id, 0)
        on_air = ev.last_seen_s - ev.first_seen_s
        if not (stage == 0 or (stage == 1 and on_air >= 1.0)):
            return alert
        self._stage[alert.id] = stage + 1
        self.attach(alert, ev)
        return self.store.get(alert.id)

    def attach(self, alert, ev: DetectionEvent) -> None:
        """The last ~1 s of IQ around the detection as SigMF (``core:datetime`` the time of its first
        sample, ``core:geolocation`` the receiver's position when known), and NFM audio for
        narrowband alerts."""
        try:
            from detector.alerts import nfm_audio_wav, sigmf_snippet
        except ImportError:
            return
        snip = self.recent.snippet()
        if snip is None:
            return
        x, last = snip.samples, snip.last
        fs = last.sample_rate_hz
        center, bw = ev.center_hz, ev.bandwidth_hz
        try:
            meta, data = sigmf_snippet(x, sample_rate_hz=fs, center_hz=last.center_hz, start=snip.start,
                                       position=snip.position, annotations=[{
                "core:sample_start": 0, "core:sample_count": int(x.size),
                "core:freq_lower_edge": center - bw / 2, "core:freq_upper_edge": center + bw / 2,
                "core:label": f"{ev.track_id} {ev.classification}"}])
            self.store.add_evidence(alert.id, "snippet.sigmf-meta", meta, "application/json")
            self.store.add_evidence(alert.id, "snippet.sigmf-data", data, "application/octet-stream")
            if bw <= 30e3:
                wav = nfm_audio_wav(x, sample_rate_hz=fs, offset_hz=center - last.center_hz, bandwidth_hz=max(bw, 12.5e3))
                self.store.add_evidence(alert.id, "audio.wav", wav, "audio/wav")
        except Exception:  # noqa: BLE001 - evidence is best effort; the alert is already stored
            log.exception("evidence for %s failed", alert.id)
