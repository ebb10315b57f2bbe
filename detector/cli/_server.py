"""The HTTP server of ``monitor`` and ``serve``: uvicorn, with the address checked before anything
starts (exit 2 with one line when it cannot listen) and SIGINT/SIGTERM handled by examwatch, so
that the loop and the store shut down cleanly and the process exits 0."""

from __future__ import annotations

from detector.cli._common import console_err
from detector.core.errors import InputError

__all__ = ["check_listen", "Server", "stop_on_signals"]


def check_listen(host: str, port: int) -> None:
    """Refuse (exit 2) an address the API cannot listen on, before anything is started."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"--host {host!r}: {exc}") from None
    fam, _, _, _, addr = infos[0]
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); is another examwatch server running? use --port") from None


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server without its signal capture: examwatch handles SIGINT/SIGTERM itself so
        that the loop and the store shut down cleanly and the process exits 0."""

        def capture_signals(self):  # noqa: D401 - uvicorn hook
            import contextlib

            return contextlib.nullcontext()

    return Server


def Server(config):  # noqa: N802 - a factory that reads like the class
    return _server_class()(config)


def stop_on_signals(server) -> None:
    import signal

    def handler(signum, frame):  # noqa: ARG001
        console_err.print(f"signal {signal.Signals(signum).name}: stopping")
        server.should_exit = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
