"""HTTP API (FastAPI), built by :func:`create_app` with the store and the monitor injected.

Routes under ``/api/v1``: health, sites, baseline summary, latest spectrum, tracks, alerts (list,
get, status update, history, evidence), plus ``/metrics`` (Prometheus text). Lists answer
``{"data": [...], "count": N}`` with ``limit`` (1–1000) and ``offset``. Writes need the bearer
token; it is checked before the body (middleware). The only package that imports FastAPI.
"""

from detector.api.app import ApiContext, create_app

__all__ = ["ApiContext", "create_app"]
