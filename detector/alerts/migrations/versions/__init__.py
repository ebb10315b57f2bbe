"""Revisions of the vehicle's alert store, oldest first by ``down_revision``."""
