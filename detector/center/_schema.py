"""The command center's schema: its migrations (``detector/center/migrations``) and version table."""

from __future__ import annotations

from detector.alerts.schema import SchemaSpec

__all__ = ["CENTER_SCHEMA"]


def _center_metadata():
    from detector.center._models import CenterBase

    return CenterBase.metadata


CENTER_SCHEMA = SchemaSpec(
    name="center", what="center database", package="detector.center", version_table="alembic_version_center",
    tables=("center_alerts", "center_ingest", "center_vehicles", "center_evidence"), metadata=_center_metadata)
