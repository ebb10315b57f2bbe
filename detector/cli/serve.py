"""``examwatch serve``: the command center (pushed alerts from every vehicle, one read API, live stream)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from detector.cli._common import console_err
from detector.cli._server import Server, check_listen, stop_on_signals
from detector.core.errors import InputError


def serve(
    db: Annotated[Optional[str], typer.Option("--db", help="Center store URL: postgresql://USER@HOST:PORT/DB in production (default: SQLite center.db in --data-dir).")] = None,
    host: Annotated[str, typer.Option("--host", help="API address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="API port.")] = 8760,
    vehicle_tokens: Annotated[Optional[Path], typer.Option("--vehicle-tokens", help="File with one 'vehicle_id token' line per vehicle (# comments allowed): who may push.")] = None,
    read_token_file: Annotated[Optional[Path], typer.Option("--read-token-file", help="File holding a token that reads then need (default: reads are open).")] = None,
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help="File holding the center's API write token (created, mode 0600, when missing).")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the default SQLite store and the write token live.")] = Path("examwatch-center"),
    mqtt: Annotated[Optional[str], typer.Option("--mqtt", help="Also subscribe to vehicles through this MQTT broker: mqtt://[user:pass@]host[:port][?client_id=ID&prefix=P].")] = None,
    silent_after: Annotated[float, typer.Option("--silent-after", help="A vehicle with no contact for this many seconds is reported silent.", min=1)] = 60.0,
    sites_dir: Annotated[Optional[Path], typer.Option("--sites-dir", help="Folder of site TOML files (for GET /sites).")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Logging level on stderr.")] = "info",
) -> None:
    """Run the command center: vehicles push alerts (POST /api/v1/ingest with their token, or MQTT);
    screens read GET /api/v1/alerts, /overview and the live stream /api/v1/alerts/stream."""
    import uvicorn

    from detector.api.auth import load_or_create_token, token_file_note
    from detector.center import load_vehicle_tokens, open_center_store
    from detector.center.app import build_center_app

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 0 < port < 65536:
        raise InputError(f"--port must be 1–65535, got {port}")
    check_listen(host, port)
    from detector.cli._common import utf8_path

    utf8_path(data_dir, "--data-dir")
    tokens = load_vehicle_tokens(vehicle_tokens) if vehicle_tokens is not None else {}
    if not tokens:
        why = "no --vehicle-tokens" if vehicle_tokens is None else f"--vehicle-tokens {vehicle_tokens} holds no vehicle"
        console_err.print(f"[yellow]warning:[/] {why}: HTTP pushes will be refused (401)" + ("" if mqtt else "; nothing can reach this center"))
    read_token = None
    if read_token_file is not None:
        from detector.api.auth import MIN_TOKEN_CHARS
        from detector.core.textfile import read_text

        read_token = read_text(read_token_file, "--read-token-file").strip()
        if len(read_token) < MIN_TOKEN_CHARS or len(read_token.split()) != 1:
            raise InputError(f"--read-token-file {read_token_file} must hold one token of at least {MIN_TOKEN_CHARS} "
                             f"characters (no spaces)")
    mqtt_url = None
    if mqtt:
        from detector.push.mqtt import MqttUrl

        mqtt_url = MqttUrl.parse(mqtt)
    store = open_center_store(db, data_dir=data_dir)
    try:
        token, token_path = load_or_create_token(data_dir, token_file=token_file)
    except InputError:
        store.close()
        raise
    if token_path is not None:
        console_err.print(token_file_note(token_path))
    sub = None
    if mqtt_url is not None:
        from detector.center.ingest import MqttCenterSubscriber

        sub = MqttCenterSubscriber(store, mqtt_url, known=set(tokens.values()) if tokens else None).start()
    api = build_center_app(store, token=token, vehicle_tokens=tokens, read_token=read_token, silent_after_s=silent_after,
                           sites_dir=sites_dir, mqtt=sub)
    server = Server(uvicorn.Config(api, host=host, port=port, log_level="warning", lifespan="on",
                                   timeout_graceful_shutdown=3))
    console_err.print(f"command center on http://{host}:{port}/api/v1 (store {store.url}; {len(tokens)} vehicle(s)"
                      + (f"; MQTT {mqtt_url.host}:{mqtt_url.port}" if mqtt_url else "") + ")")
    stop_on_signals(server)
    try:
        server.run()
    finally:
        if sub is not None:
            sub.stop()
        store.close()
        console_err.print("command center stopped")
    if getattr(server, "startup_failed", False) or not server.started:
        raise InputError(f"the API could not listen on {host}:{port} (in use?)")
