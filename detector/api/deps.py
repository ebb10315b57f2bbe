"""Dependencies of the routes, as ``Annotated`` types (the FastAPI way): the context, paging, the
alert-status filter, and the bearer-token security schemes declared in OpenAPI.

Enforcement of the API tokens stays in :class:`~detector.api.auth.WriteTokenMiddleware`, which
runs before routing and body parsing (no token → 401, never 422). The security dependencies here
*declare* the same rules in OpenAPI (``components.securitySchemes``, ``security`` per operation), so
Swagger's *Authorize* button sends ``Authorization: Bearer <token>`` where it is needed. The vehicle
token of the center's ingest routes is enforced here (:func:`authenticated_vehicle`).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from detector.api.context import ApiContext

__all__ = [
    "API_TOKEN_SCHEME",
    "VEHICLE_TOKEN_SCHEME",
    "AlertStatusQuery",
    "Ctx",
    "Limit",
    "Offset",
    "ReadAccess",
    "Vehicle",
    "VehicleTokens",
    "WriteAccess",
    "api_bearer",
    "authenticated_vehicle",
    "get_context",
    "vehicle_bearer",
]

#: names of the security schemes in ``components.securitySchemes``
API_TOKEN_SCHEME = "apiToken"
VEHICLE_TOKEN_SCHEME = "vehicleToken"

#: the API token (write token; the read token where one is configured), sent as ``Authorization: Bearer``
api_bearer = HTTPBearer(scheme_name=API_TOKEN_SCHEME, auto_error=False,
                        description="The API token: the write token for changes (PATCH, POST, …), the read token for "
                                    "reads where one is configured (`--read-token-file`); `/api/v1/health` and "
                                    "`/metrics` are always open.")
#: a vehicle's push token (the center's ``/api/v1/ingest`` routes)
vehicle_bearer = HTTPBearer(scheme_name=VEHICLE_TOKEN_SCHEME, auto_error=False,
                            description="A vehicle's push token (`--vehicle-tokens` file of `examwatch serve`).")


def get_context(request: Request) -> ApiContext:
    """The :class:`ApiContext` the app was built with."""
    return request.app.state.ctx


Ctx = Annotated[ApiContext, Depends(get_context)]

#: paging of every list (DESIGN.md: ``limit`` 1–1000, ``offset``)
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1–1000).")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")]
AlertStatusQuery = Annotated[list[Literal["new", "updated", "located", "acknowledged", "dismissed", "closed"]] | None,
                             Query(description="Only alerts with one of these statuses (repeatable).")]
Frequency = Annotated[float | None, Query(ge=0, le=1e10, allow_inf_nan=False)]


def _declared(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(api_bearer)]) -> None:
    """Declares the API token in OpenAPI; the middleware has already checked it (before the body)."""


#: ``dependencies=`` of a route that changes something (the write token)
WriteAccess = Security(_declared)
#: ``dependencies=`` of the read routes where a read token is configured
ReadAccess = Security(_declared)


class VehicleTokens:
    """Token → vehicle id, compared in constant time against every token (no early exit)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)

    def vehicle_of(self, value: str) -> str | None:
        found = None
        for tok, vid in self.tokens.items():
            if secrets.compare_digest(tok.encode(), value.encode()):
                found = vid
        return found

    @property
    def known(self) -> list[str]:
        return sorted(set(self.tokens.values()))


def authenticated_vehicle(request: Request,
                          _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(vehicle_bearer)]) -> str:
    """The vehicle id of ``Authorization: Bearer <vehicle token>`` (``app.state.vehicle_tokens``), else 401.

    Ingest routes read their body themselves, after this dependency: no token → 401 before the body."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    found = None
    if scheme.lower() == "bearer" and value:
        found = request.app.state.vehicle_tokens.vehicle_of(value)
    if found is None:
        raise HTTPException(401, "missing or unknown vehicle token", headers={"WWW-Authenticate": "Bearer"})
    return found


Vehicle = Annotated[str, Depends(authenticated_vehicle)]
