"""What the API, the SSE stream and the dashboards read from a store: one protocol for both stores.

:class:`~detector.alerts.AlertStore` (a vehicle) and :class:`~detector.center.CenterStore` (the
command center) both implement :class:`AlertReader`; the read routes are written once against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, runtime_checkable

from detector.alerts._schemas import AlertHistoryEntry, AlertPublic, EvidenceInfo

__all__ = ["AlertReader"]


@runtime_checkable
class AlertReader(Protocol):
    """Read access to stored alerts (times are aware UTC datetimes; frequencies in Hz)."""

    #: ``"vehicle"`` or ``"center"``
    role: str

    def get(self, alert_id: str) -> AlertPublic | None:
        """The alert, or None for an unknown id."""

    def list(self, *, site: str | None = None, status: str | Iterable[str] | None = None, since: datetime | None = None,
             f_min_hz: float | None = None, f_max_hz: float | None = None, limit: int = 100,
             offset: int = 0) -> tuple[list[AlertPublic], int]:
        """A page of alerts, newest first, and the total count; InputError for bad paging or filters."""

    def open_alerts(self, site: str | None = None) -> list[AlertPublic]:
        """Alerts not acknowledged, dismissed or closed."""

    def history(self, alert_id: str) -> list[AlertHistoryEntry]:
        """The alert's changes, oldest first."""

    def evidence(self, alert_id: str, name: str) -> tuple[bytes, EvidenceInfo] | None:
        """An evidence file's bytes and description, or None."""

    def last_event_seq(self) -> int:
        """The sequence number of the last change (0 when empty): the SSE stream's event id."""

    def events_after(self, after_seq: int, limit: int = 500) -> list[dict]:
        """Changes after ``after_seq``, oldest first, as the SSE stream sends them."""

    def close(self) -> None:
        """Release the connections."""
