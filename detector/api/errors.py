"""Domain errors → HTTP statuses, in one place, for every app (vehicle and center).

=====================================  ======  ===========================================
exception                              status  answer
=====================================  ======  ===========================================
request validation (query, body)       422     ``{"detail": [{"type", "loc", "msg"}, ...]}``
                                               (never the offending input: a 2 MB body must
                                               not come back in the answer)
:class:`~detector.center.store.IngestError`  its ``status_code`` (403, 409, 413, 422) ``{"detail": message}``
:class:`~detector.alerts.InvalidTransition`  409  ``{"detail": message}`` (the lifecycle forbids it)
:class:`~detector.core.errors.StoreUnavailable`  503  ``{"detail": reason}`` with ``Retry-After: 5``
                                               (the store is locked, read-only, full or away;
                                               nothing was changed)
a database error of a read that means  503  ``{"detail": "the alert store cannot be read
the store is unavailable (locked,              now: <reason>"}`` with ``Retry-After: 5``
PostgreSQL away: ``unavailable_reason``)       (``/health`` still answers 200, ``store.ok``
                                               false); any other database error stays a 500
:class:`~detector.core.errors.InputError`,
``ValueError``                         422     ``{"detail": message}``
=====================================  ======  ===========================================

A route that gives an error a meaning of its own (a refused status change is a conflict on the
center too) says so with :func:`refused_as` instead of catching and re-raising.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["add_error_handlers", "refused_as", "status_of", "RETRY_AFTER_S"]

#: seconds a client is asked to wait (``Retry-After``) when the store is unavailable (503)
RETRY_AFTER_S = 5


def status_of(exc: BaseException) -> int:
    """The HTTP status of a domain error (see the module docstring)."""
    from detector.alerts import InvalidTransition
    from detector.core.errors import StoreUnavailable

    if isinstance(exc, StoreUnavailable):
        return 503
    code = getattr(exc, "status_code", None)
    if isinstance(code, int) and 400 <= code < 600:
        return code  # IngestError and the like carry their own
    if isinstance(exc, InvalidTransition):
        return 409
    return 422


@contextmanager
def refused_as(status_code: int, *types: type[BaseException]) -> Iterator[None]:
    """Inside the block, an error of ``types`` (default: :class:`InputError`) is an HTTP
    ``status_code`` answer with its message."""
    from detector.core.errors import InputError

    caught = types or (InputError,)
    try:
        yield
    except caught as exc:
        raise HTTPException(status_code, str(exc)) from None


def add_error_handlers(app: FastAPI) -> None:
    """Install the mapping of the module docstring on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    from detector.core.errors import StoreUnavailable

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from detector.alerts.db import unavailable_reason

    async def store_unreadable(request: Request, exc: Exception):
        why = unavailable_reason(exc)
        if why is None:
            raise exc  # a bug, not an outage: the server error (500) it is, logged with its traceback
        db = getattr(getattr(request.app.state.ctx, "store", None), "db", None)
        what = getattr(db, "what", "store")
        return JSONResponse({"detail": f"the {what} cannot be read now: {why}"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    app.add_exception_handler(DBAPIError, store_unreadable)
    app.add_exception_handler(PoolTimeout, store_unreadable)

    @app.exception_handler(ValueError)  # InputError, IngestError, InvalidTransition are ValueErrors
    async def domain_error(request: Request, exc: ValueError):
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
