"""Bearer-token authentication for write endpoints, checked before the request body is read."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from detector.core.errors import InputError

__all__ = ["WriteTokenMiddleware", "load_or_create_token", "token_file_note", "MIN_TOKEN_CHARS"]

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


#: shortest API token accepted from a file (the generated ones have 43 characters)
MIN_TOKEN_CHARS = 8


def load_or_create_token(data_dir: Path, *, token: str | None = None, token_file: Path | None = None) -> tuple[str, Path | None]:
    """The API write token: given, read from ``token_file``, or generated once and kept in
    ``data_dir/api-token`` readable only by its user (mode 0600). Returns (token, file or None).

    Raises :class:`~detector.core.errors.InputError` (one line naming the file) when the file cannot be
    read or written, is not UTF-8 text, or holds a token shorter than :data:`MIN_TOKEN_CHARS`.
    """
    if token:
        if len(token) < MIN_TOKEN_CHARS:
            raise InputError(f"the API token must have at least {MIN_TOKEN_CHARS} characters")
        return token, None
    path = Path(token_file) if token_file else Path(data_dir) / "api-token"
    what = f"--token-file {path}" if token_file else f"the API token file {path}"
    try:
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                if len(text) < MIN_TOKEN_CHARS or len(text.split()) != 1:
                    raise InputError(f"{what} must hold one token of at least {MIN_TOKEN_CHARS} characters "
                                     f"(no spaces); delete it to have one generated")
                return text, path
        elif path.exists():
            raise InputError(f"{what} is not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        new = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new + "\n")
        os.chmod(path, 0o600)
    except UnicodeDecodeError:
        raise InputError(f"{what} is not a text file holding a token") from None
    except OSError as exc:
        raise InputError(f"{what}: {exc.strerror or exc}") from None
    return new, path


def token_file_note(path: Path) -> str:
    """One line saying where the write token is, and a warning when other users can read it."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return f"API write token in {path}"
    if mode & 0o077:
        return (f"API write token in {path} [yellow](warning: mode {mode:04o} lets other users read it; "
                f"chmod 600 {path})[/]")
    return f"API write token in {path} (mode {mode:04o})"


class WriteTokenMiddleware(BaseHTTPMiddleware):
    """401 for any non-read request under ``prefix`` without ``Authorization: Bearer <token>``.

    Being a middleware, it runs before routing and body parsing, so a malformed body without a
    token is a 401, never a 422. ``read_token`` (optional) protects reads too, except the paths in
    ``open_reads`` (default ``/api/v1/health``: liveness probes, like ``/metrics`` outside the prefix).
    """

    def __init__(self, app, *, token: str, prefix: str = "/api/", read_token: str | None = None, exempt: tuple[str, ...] = (),
                 open_reads: tuple[str, ...] = ("/api/v1/health",)) -> None:
        super().__init__(app)
        self.token = token
        self.prefix = prefix
        self.read_token = read_token
        self.exempt = exempt
        self.open_reads = open_reads

    async def dispatch(self, request: Request, call_next):
        path = request.url.path
        if path.startswith(self.prefix) and not any(path.startswith(e) for e in self.exempt):
            read = request.method in _READ_METHODS
            if read and path in self.open_reads:
                return await call_next(request)
            need = self.token if not read else self.read_token
            if need is not None:
                auth = request.headers.get("authorization", "")
                scheme, _, value = auth.partition(" ")
                if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip().encode(), need.encode()):
                    return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)
