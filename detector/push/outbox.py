"""The vehicle's outbox: every alert change, written in the alert's own transaction.

:meth:`Outbox.attach` adds a hook to ``AlertStore.on_change``; the hook adds one ``push_outbox``
row (the alert as the API shows it, at that version) with the *same session*, so the alert change
and its outbox row commit together or not at all. A sender (:mod:`detector.push.sender`) reads
the rows back in ``seq`` order and marks them delivered only once the center (or the broker) has
accepted them. The table is the queue: it survives restarts of the vehicle.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from detector.alerts._models import OutboxRow

__all__ = ["Outbox", "OutboxItem"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class OutboxItem:
    """A pending outbox row (detached from the database)."""

    seq: int
    alert_id: str
    version: int
    site: str
    payload: dict
    attempts: int
    created_at: datetime


class Outbox:
    """The outbox of one :class:`~detector.alerts.AlertStore` (see the module docstring)."""

    def __init__(self, store) -> None:
        self.store = store
        #: set after a transaction that added outbox rows has committed
        self.wake = threading.Event()
        self._attached = False

    # --- writing (inside the alert's transaction) --------------------------------------------------
    def attach(self) -> Outbox:
        """Start recording every alert change of the store (idempotent)."""
        if not self._attached:
            self.store.on_change.append(self._on_change)
            self._attached = True
        return self

    def detach(self) -> None:
        if self._attached:
            try:
                self.store.on_change.remove(self._on_change)
            except ValueError:
                pass
            self._attached = False

    def _on_change(self, s: Session, alert) -> None:
        s.add(OutboxRow(alert_id=alert.id, version=alert.version, site=alert.site,
                        payload=alert.model_dump(mode="json"), created_at=_now(), attempts=0))
        if not s.info.get("examwatch_outbox_wake"):
            s.info["examwatch_outbox_wake"] = True
            event.listen(s, "after_commit", self._after_commit, once=True)

    def _after_commit(self, _session) -> None:
        self.wake.set()

    # --- reading and marking (the sender) ----------------------------------------------------------
    def ready(self, limit: int = 500, now: datetime | None = None) -> list[OutboxItem]:
        """Undelivered rows in ``seq`` order, leaving out every alert whose oldest undelivered row
        is still waiting for its retry time (so that an alert's versions go out in order)."""
        now = now or _now()
        with self.store.db.reader() as s:
            blocked = select(OutboxRow.alert_id).where(OutboxRow.delivered_at.is_(None),
                                                       OutboxRow.next_attempt_at.is_not(None),
                                                       OutboxRow.next_attempt_at > now)
            rows = s.scalars(select(OutboxRow).where(OutboxRow.delivered_at.is_(None),
                                                     OutboxRow.alert_id.not_in(blocked))
                             .order_by(OutboxRow.seq).limit(limit)).all()
            return [OutboxItem(r.seq, r.alert_id, r.version, r.site, dict(r.payload), r.attempts, r.created_at)
                    for r in rows]

    def mark_delivered(self, seqs: list[int], now: datetime | None = None) -> None:
        if not seqs:
            return
        now = now or _now()

        def tx(s: Session) -> None:
            for i in range(0, len(seqs), 500):
                part = seqs[i:i + 500]
                s.execute(update(OutboxRow).where(OutboxRow.seq.in_(part))
                          .values(delivered_at=now, attempts=OutboxRow.attempts + 1, last_error=None))

        self.store.db.write(tx)

    def mark_failed(self, seq: int, error: str, retry_in_s: float, now: datetime | None = None) -> None:
        now = now or _now()

        def tx(s: Session) -> None:
            s.execute(update(OutboxRow).where(OutboxRow.seq == seq).values(
                attempts=OutboxRow.attempts + 1, last_error=error[:2000],
                next_attempt_at=now + timedelta(seconds=retry_in_s)))

        self.store.db.write(tx)

    def pending_count(self) -> int:
        with self.store.db.reader() as s:
            return int(s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.delivered_at.is_(None))) or 0)

    def oldest_pending_at(self) -> datetime | None:
        with self.store.db.reader() as s:
            return s.scalar(select(func.min(OutboxRow.created_at)).where(OutboxRow.delivered_at.is_(None)))

    def all_rows(self) -> list[dict]:
        """Every row (delivered or not), oldest first: for tests and diagnostics."""
        with self.store.db.reader() as s:
            return [{"seq": r.seq, "alert_id": r.alert_id, "version": r.version, "attempts": r.attempts,
                     "delivered_at": r.delivered_at, "last_error": r.last_error}
                    for r in s.scalars(select(OutboxRow).order_by(OutboxRow.seq)).all()]

    def prune(self, older_than_s: float = 86400.0) -> int:
        """Delete rows delivered more than ``older_than_s`` ago; returns how many."""
        cutoff = _now() - timedelta(seconds=older_than_s)

        def tx(s: Session) -> int:
            return s.execute(delete(OutboxRow).where(OutboxRow.delivered_at.is_not(None),
                                                     OutboxRow.delivered_at < cutoff)).rowcount or 0

        return self.store.db.write(tx)
