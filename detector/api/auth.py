"""Bearer-token authentication for write endpoints, checked before the request body is read."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["WriteTokenMiddleware", "load_or_create_token"]

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def load_or_create_token(data_dir: Path, *, token: str | None = None, token_file: Path | None = None) -> tuple[str, Path | None]:
    """The API write token: given, read from ``token_file``, or generated once and kept in
    ``data_dir/api-token`` readable only by its user (mode 0600). Returns (token, file or None)."""
    if token:
        return token, None
    path = Path(token_file) if token_file else Path(data_dir) / "api-token"
    if path.is_file():
        text = path.read_text().strip()
        if text:
            return text, path
    if token_file is not None and not path.exists() and path.parent != Path(data_dir):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    new = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new + "\n")
    os.chmod(path, 0o600)
    return new, path


class WriteTokenMiddleware(BaseHTTPMiddleware):
    """401 for any non-read request under ``prefix`` without ``Authorization: Bearer <token>``.

    Being a middleware, it runs before routing and body parsing, so a malformed body without a
    token is a 401, never a 422. ``read_token`` (optional) protects reads too.
    """

    def __init__(self, app, *, token: str, prefix: str = "/api/", read_token: str | None = None, exempt: tuple[str, ...] = ()) -> None:
        super().__init__(app)
        self.token = token
        self.prefix = prefix
        self.read_token = read_token
        self.exempt = exempt

    async def dispatch(self, request: Request, call_next):
        path = request.url.path
        if path.startswith(self.prefix) and not any(path.startswith(e) for e in self.exempt):
            need = self.token if request.method not in _READ_METHODS else self.read_token
            if need is not None:
                auth = request.headers.get("authorization", "")
                scheme, _, value = auth.partition(" ")
                if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip().encode(), need.encode()):
                    return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)
