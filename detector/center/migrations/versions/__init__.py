"""Revisions of the command center's store, oldest first by ``down_revision``."""
