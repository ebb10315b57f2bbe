"""Alerts: a store with a lifecycle, a version per change, a history and evidence files.

``open_store(url, data_dir=...)`` opens a SQLite file (``data_dir/examwatch.db``, WAL mode) or a
PostgreSQL database; :class:`AlertStore` turns alerting track events (``detector.detection.engine``) into
alerts keyed by ``(site, run_id, track_id)``. Status lifecycle::

    new → updated → located            (set by track events; "located" once an estimate is located)
      ↘ acknowledged → dismissed → closed   (set_status only; closed is final)

An acknowledged alert still follows its track (version bumps); a dismissed or closed one only
records ``last_seen``. Evidence: :func:`sigmf_snippet` (IQ as SigMF, cu8) and
:func:`nfm_audio_wav` (NFM audio), stored with :meth:`AlertStore.add_evidence` (bytes kept in the
database, with their SHA-256). ``AlertStore.on_change`` hooks run inside each write transaction
(for the outbox). The schema comes from the store's Alembic migrations
(:mod:`detector.alerts.schema`): ``open_store`` creates it in an empty database and refuses one of
another revision (``examwatch db upgrade``); ``open_store(..., readonly=True)`` writes nothing.
"""

from detector.alerts._evidence import cu8_quantize, nfm_audio_wav, sigmf_snippet
from detector.alerts._models import Base
from detector.alerts._schemas import (
    ALERT_STATUSES,
    FINAL_STATUSES,
    AlertHistoryEntry,
    AlertPublic,
    AlertStatusUpdate,
    EvidenceInfo,
)
from detector.alerts._store import EVIDENCE_NAME_RE, MAX_EVIDENCE_BYTES, AlertStore, InvalidTransition, open_store
from detector.alerts.reader import AlertReader

__all__ = [
    "AlertReader",
    "ALERT_STATUSES",
    "FINAL_STATUSES",
    "EVIDENCE_NAME_RE",
    "MAX_EVIDENCE_BYTES",
    "AlertHistoryEntry",
    "AlertPublic",
    "AlertStatusUpdate",
    "AlertStore",
    "Base",
    "EvidenceInfo",
    "InvalidTransition",
    "cu8_quantize",
    "nfm_audio_wav",
    "open_store",
    "sigmf_snippet",
]
