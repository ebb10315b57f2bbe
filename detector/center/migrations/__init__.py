"""Alembic migrations of the command center's store (run by :mod:`detector.alerts.schema`)."""
