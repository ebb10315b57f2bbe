"""Alembic migrations of the vehicle's alert store (run by :mod:`detector.alerts.schema`)."""
