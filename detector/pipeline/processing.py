"""Processing: blocks off the queue → detection engine → the store first → the callbacks.

:class:`Processing` takes blocks off the capture queue, joins contiguous blocks that queued up
while the last one was processed (up to ``coalesce_samples``: the per-block costs of detection are
then shared by more frames, so that a loop that fell behind catches up), runs the detection
engine, stores every alert change (``AlertStore.apply``) *before* telling anyone (the
``on_alert`` callbacks: SSE, push), has evidence attached, updates the live view, and extends the
watch plan's dwell on a band with an alert.

This module and :mod:`~detector.pipeline.evidence` are the only places of the pipeline that read
fields of the engine's track events.
"""

from __future__ import annotations

import logging
import queue
from dataclasses import replace
from datetime import timedelta, datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from detector.config.plan import Scheduler
from detector.core.types import IQBlock
from detector.pipeline._threads import END, lower_priority
from detector.pipeline.evidence import EvidenceRecorder
from detector.pipeline.live import LiveView
from detector.pipeline.pending import PendingWrites
from detector.pipeline.status import MonitorStatus
from detector.detection.events import DetectionEvent
from detector.core.timefmt import utc_iso

__all__ = ["Processing", "AlertBook", "contiguous"]

log = logging.getLogger("examwatch.monitor")


def contiguous(last: IQBlock, nxt: IQBlock) -> bool:
    """``nxt`` continues ``last`` without a gap or a retune (the two can be processed as one)."""
    return (not nxt.retuned and nxt.center_hz == last.center_hz and nxt.sample_rate_hz == last.sample_rate_hz
            and abs(nxt.offset_s - (last.offset_s + last.duration_s)) <= 0.5 / last.sample_rate_hz)


class AlertBook:
    """The alerts of this run: those raised, and the open alerts of an earlier run of the site not
    yet continued by a track of this one (a restart)."""

    def __init__(self, resume: Iterable[str] = ()) -> None:
        self.raised: set[str] = set()
        self.resumable: set[str] = set(resume)


class Processing:
    """The processing side of the monitor (see the module docstring)."""

    def __init__(self, engine, source: queue.Queue, status: MonitorStatus, *, live: LiveView,
                 evidence: EvidenceRecorder | None, store=None, site: str = "site", run_id: str = "run",
                 scheduler: Scheduler | None = None, coalesce_samples: int = 1 << 19, worker_nice: int = 5,
                 clock: Callable[[], float], resume: Iterable[str] = (),
                 on_event: list | None = None, on_alert: list | None = None,
                 pending_limit: int | None = None, spill_to: Sequence[Path] = ()) -> None:
        self.engine = engine
        self.source = source
        self.status = status
        self.live = live
        self.evidence = evidence
        self.store = store
        self.site = site
        self.run_id = run_id
        self.scheduler = scheduler
        self.coalesce_samples = coalesce_samples
        self.worker_nice = worker_nice
        self.clock = clock
        self.alerts = AlertBook(resume)
        self.on_event: list[Callable[[dict], None]] = on_event if on_event is not None else []
        self.on_alert: list[Callable[[dict, object], None]] = on_alert if on_alert is not None else []
        #: the store's writes, queued in order while the store is unavailable (see pipeline.pending)
        self.pending = (PendingWrites(store, on_stored=self._stored_late, spill_to=spill_to,
                                      **({"limit": pending_limit} if pending_limit else {}))
                        if store is not None else None)
        #: blocks taken off the queue and processed (the supervisor's progress of this stage)
        self.blocks_done = 0
        self._evidence_skipped: set[str] = set()

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, finished=None) -> None:
        """Process until the end marker; then end the open tracks and set ``finished``."""
        lower_priority(self.worker_nice)
        pending = None
        while True:
            item = pending if pending is not None else self.source.get()
            if item is END:
                break
            block, pending = self.coalesce(item)
            self.step(block)
            self.blocks_done += 1
        self.after(self.engine.finish(), None)
        if finished is not None:
            finished.set()

    def coalesce(self, block: IQBlock) -> tuple[IQBlock, object]:
        """``block`` joined with the contiguous blocks waiting in the queue (up to
        ``coalesce_samples``), and the first waiting item that was not joined (or None)."""
        if self.coalesce_samples <= block.samples.size:
            return block, None
        parts, n, pending = [block], block.samples.size, None
        while n < self.coalesce_samples:
            try:
                nxt = self.source.get_nowait()
            except queue.Empty:
                break
            if nxt is END or not contiguous(parts[-1], nxt):
                pending = nxt
                break
            parts.append(nxt)
            n += nxt.samples.size
        if len(parts) > 1:
            block = replace(block, samples=np.concatenate([b.samples for b in parts]),
                            position=parts[-1].position or block.position)
            self.status.blocks_coalesced += len(parts) - 1
        return block, pending

    def step(self, block: IQBlock) -> None:
        """Detection over one block, then :meth:`after`."""
        if self.evidence is not None:
            self.evidence.recent.append(block)
        try:
            events = self.engine.process_block(block)
        except Exception as exc:  # noqa: BLE001 - e.g. a baseline refusing this grid: report, keep going
            self.status.degrade(f"processing failed: {exc}")
            log.exception("processing failed")
            return
        self.after(events, block)

    # ---- after detection --------------------------------------------------------------------------
    def after(self, events: list[DetectionEvent], block: IQBlock | None) -> None:
        st = self.status
        st.frames_processed = self.engine.frames_processed
        st.frames_excluded = getattr(self.engine, "frames_excluded", 0)
        if block is not None:
            st.scene_time_s = block.offset_s + block.duration_s
            wall = block.start + timedelta(seconds=block.duration_s) if block.start else datetime.now(timezone.utc)
            st.last_frame_time = utc_iso(wall)
        self.live.update()
        for ev in events:
            for cb in self.on_event:
                cb(ev)
            if not ev.alert:
                continue
            alert = self._store(ev, block) if self.store is not None else None
            if self.scheduler is not None and not self.scheduler.single:
                self.scheduler.extend(ev.center_hz, self.clock() + 30.0)
            for cb in self.on_alert:
                cb(ev, alert)

    def _store(self, ev: DetectionEvent, block: IQBlock | None):
        """The event into the store (first); evidence when due. Returns the alert as stored, or
        None while the store is unavailable (the event then waits in ``pending``, in order)."""
        assert self.pending is not None
        # ``when`` is fixed now, so that a retried write of the event is the same write (no second version)
        alert = self.pending.write(ev, site=self.site, run_id=self.run_id, when=datetime.now(timezone.utc),
                                   resume=self.alerts.resumable)
        if alert is None:
            if len(self.pending):
                if ev.track_id not in self._evidence_skipped and self.evidence is not None:
                    self._evidence_skipped.add(ev.track_id)
                    why = ("the store is unavailable" if self.pending.last_error
                           else "the changes saved at the last stop are written first")
                    log.warning("track %s: %s; its change waits in memory, and its evidence is recorded at its "
                                "next change once the queue is written", ev.track_id, why)
            else:
                self.status.alerts_stored += 1
            return None
        return self._stored(ev, alert, block)

    def _stored_late(self, ev: DetectionEvent, alert) -> None:
        """A queued event is in the store now (the writer thread)."""
        self._stored(ev, alert, None)

    def _stored(self, ev: DetectionEvent, alert, block: IQBlock | None):
        book = self.alerts
        self.status.alerts_stored += 1
        if alert.id in book.resumable:
            book.resumable.discard(alert.id)
            log.info("alert %s of an earlier run continues with track %s", alert.id, ev.track_id)
            if alert.evidence and self.evidence is not None:  # the first detection's evidence stays as recorded
                self.evidence.keep_recorded(alert.id)
        if alert.id not in book.raised:
            book.raised.add(alert.id)
            self.status.alerts_raised = len(book.raised)
        if self.evidence is not None and block is not None:
            try:
                alert = self.evidence.on_alert(alert, ev)
            except Exception as exc:  # noqa: BLE001 - evidence is best effort, the alert is stored: say so
                why = f"{type(exc).__name__}: {exc}"
                if why not in self._evidence_skipped:
                    self._evidence_skipped.add(why)
                    log.warning("evidence of alert %s not recorded: %s", alert.id, why)
        return alert
