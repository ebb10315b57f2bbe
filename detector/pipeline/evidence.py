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

import numpy as np

from detector.core.types import IQBlock
from detector.detection.events import DetectionEvent

__all__ = ["EvidenceRecorder", "RecentBlocks"]

log = logging.getLogger("examwatch.monitor")


class RecentBlocks:
    """The last ``maxlen`` processed blocks."""

    def __init__(self, maxlen: int = 32) -> None:
        self._blocks: deque[IQBlock] = deque(maxlen=maxlen)

    def append(self, block: IQBlock) -> None:
        self._blocks.append(block)

    def last_second(self) -> tuple[np.ndarray, IQBlock] | None:
        """The last second of samples at the latest tuning, and the latest block; None when empty."""
        if not self._blocks:
            return None
        last = self._blocks[-1]
        blocks = [b for b in self._blocks if b.center_hz == last.center_hz]
        x = np.concatenate([b.samples for b in blocks])[-int(last.sample_rate_hz):]
        return x, last

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
        """The last ~1 s of IQ around the detection as SigMF, and NFM audio for narrowband alerts."""
        try:
            from detector.alerts import nfm_audio_wav, sigmf_snippet
        except ImportError:
            return
        got = self.recent.last_second()
        if got is None:
            return
        x, last = got
        fs = last.sample_rate_hz
        center, bw = ev.center_hz, ev.bandwidth_hz
        try:
            meta, data = sigmf_snippet(x, sample_rate_hz=fs, center_hz=last.center_hz, start=last.start, annotations=[{
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
