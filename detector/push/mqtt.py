"""MQTT transport: URL parsing and topic names (the center's subscriber: :mod:`detector.center.ingest`).

Topics (``prefix`` defaults to ``examwatch``)::

    {prefix}/{site}/{vehicle}/alerts     alert changes from the outbox (QoS 1), body = AlertPublic
                                         + vehicle_id + idempotency_key
    {prefix}/{site}/{vehicle}/spectrum   periodic spectrum summaries (QoS 1)
    {prefix}/{site}/{vehicle}/status     heartbeats: health and outbox counters (QoS 1)

Both ends use MQTT 3.1.1 persistent sessions (``clean_session=False`` with a fixed client id):
the broker keeps the center's subscription and queues QoS 1 messages while the center is away,
and the center acknowledges a message (manual PUBACK) only after it is committed to its store, so
a center that dies mid-message gets it again. Brokers limit such queues (Mosquitto:
``max_queued_messages``, 1000 by default): a production broker needs a larger limit (or 0, no
limit) and ``persistence true`` so that queued messages survive a broker restart.

Authentication is the broker's: give each vehicle its own user (``mqtt://user:pass@host:port``)
and an ACL that lets it publish only under its own ``{prefix}/+/{vehicle}/#``. When the center has
a vehicle-tokens file, messages from vehicles not listed there are dropped.

URL: ``mqtt://[user[:password]@]host[:port][?client_id=ID&prefix=P]`` (port 1883 by default).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from detector.core.errors import InputError

__all__ = ["MqttUrl", "topic_part"]

log = logging.getLogger("examwatch.mqtt")

_BAD_TOPIC = re.compile(r"[+#/\x00]")


def topic_part(s: str) -> str:
    """A name made safe as one topic level (no ``/``, ``+``, ``#``)."""
    return _BAD_TOPIC.sub("_", str(s)) or "_"


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    prefix: str = "examwatch"

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        u = urlsplit(url)
        if u.scheme not in ("mqtt", "tcp") or not u.hostname:
            raise InputError(f"{url!r} is not an MQTT URL; use mqtt://[user:pass@]host[:port]"
                             + (" (TLS, mqtts://, is not supported yet)" if u.scheme == "mqtts" else ""))
        try:
            port = u.port or 1883
        except ValueError:
            raise InputError(f"{url!r}: bad port") from None
        q = parse_qs(u.query)
        prefix = (q.get("prefix") or ["examwatch"])[0].strip("/") or "examwatch"
        return cls(host=u.hostname, port=port, username=unquote(u.username) if u.username else None,
                   password=unquote(u.password) if u.password else None,
                   client_id=(q.get("client_id") or [None])[0], prefix=prefix)
