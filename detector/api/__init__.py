"""HTTP API (FastAPI), built by :func:`create_app` with the store and the monitor injected.

Routes under ``/api/v1``: health, sites, baseline summary, latest spectrum, emissions, tracks,
alerts (list, get, status update, history, evidence), plus ``/metrics`` (Prometheus text). Lists
answer ``{"data": [...], "count": N}`` with ``limit`` (1–1000) and ``offset``. Writes need the
bearer token; it is checked before the body (middleware) and declared in OpenAPI (Swagger's
*Authorize*). The only package that imports FastAPI (with the center's routes).

Layout
    :mod:`.app` the vehicle's factory · :mod:`.service` what every app shares (docs, middleware,
    routers, errors) · :mod:`.context` :class:`ApiContext` · :mod:`.deps` ``Annotated``
    dependencies and security schemes · :mod:`.schemas` response models · :mod:`.errors` domain
    errors → HTTP statuses · :mod:`.routes` one router per resource · :mod:`.dashboard` page,
    figures, exports · :mod:`.stream` SSE · :mod:`.auth` tokens and their middleware.
"""

from detector.api.app import create_app
from detector.api.context import ApiContext

__all__ = ["ApiContext", "create_app"]
