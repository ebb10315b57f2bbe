"""Alembic environment of the vehicle's alert store: see :func:`detector.alerts.schema.run_env`."""

from detector.alerts.schema import run_env

run_env()
