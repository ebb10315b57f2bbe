"""Webhook sender, :class:`HttpPushSender`: the outbox to the command center's ingest API over
HTTP(S), one row or a batch per request, with idempotency keys and evidence uploads (see
:mod:`detector.push.sender`)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from detector.push._base import PushSender, _body, _TransportDown, idempotency_key, log
from detector.push.outbox import OutboxItem

__all__ = ["HttpPushSender"]


class HttpPushSender(PushSender):
    """Webhook sender (see the module docstring). ``center_url`` is the center's base URL."""

    transport = "http"

    def __init__(self, store, *, center_url: str, token: str, vehicle_id: str, timeout_s: float = 10.0,
                 max_batch: int = 100, **kw) -> None:
        import httpx

        super().__init__(store, vehicle_id=vehicle_id, **kw)
        self.center_url = center_url.rstrip("/")
        #: changes per request when several wait (1: always one POST /ingest per change)
        self.max_batch = max(1, int(max_batch))
        self._batch_ok = True
        self.token = token
        if logging.getLogger("httpx").level == logging.NOTSET:  # one INFO line per request is too many
            logging.getLogger("httpx").setLevel(logging.WARNING)
        self._client = httpx.Client(base_url=self.center_url, timeout=timeout_s,
                                    headers={"Authorization": f"Bearer {token}", "User-Agent": "examwatch-vehicle"})

    def _post(self, path: str, method: str = "POST", **kw):
        import httpx

        try:
            r = self._client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise _TransportDown(f"{type(exc).__name__}: {exc}") from None
        if r.status_code >= 500 or r.status_code in (401, 403, 404, 408, 429):
            raise _TransportDown(f"HTTP {r.status_code}: {r.text[:200]}")
        return r

    def _deliver(self, items, blocked):
        i = 0
        while i < len(items):
            it = items[i]
            if it.alert_id in blocked:
                i += 1
                continue
            if self.max_batch > 1 and self._batch_ok and len(items) - i > 1:
                chunk = [x for x in items[i:i + self.max_batch]]
                i += len(chunk)
                yield from self._deliver_batch(chunk, blocked)
                continue
            i += 1
            yield self._deliver_one(it)

    def _deliver_one(self, it: OutboxItem):
        r = self._post("/api/v1/ingest", json=_body(it, self.vehicle_id),
                       headers={"Idempotency-Key": idempotency_key(it.alert_id, it.version)})
        if not 200 <= r.status_code < 300:
            return it, False, f"HTTP {r.status_code}: {r.text[:300]}"
        try:
            need = r.json().get("need_evidence") or []
        except ValueError:
            need = []
        for name in need:
            self._upload_evidence(it.alert_id, str(name))
        return it, True, None

    def _deliver_batch(self, chunk: list[OutboxItem], blocked: set[str]):
        """One ``POST /ingest/batch`` for a backlog; falls back to single posts on a center without it."""
        chunk = [it for it in chunk if it.alert_id not in blocked]
        if not chunk:
            return
        body = {"items": [{"idempotency_key": idempotency_key(it.alert_id, it.version), "alert": _body(it, self.vehicle_id)}
                          for it in chunk]}
        try:
            r = self._post("/api/v1/ingest/batch", json=body)
        except _TransportDown as exc:
            if "HTTP 404" in str(exc):  # an older center: one change per request
                self._batch_ok = False
                for it in chunk:
                    if it.alert_id not in blocked:
                        yield self._deliver_one(it)
                return
            raise
        if not 200 <= r.status_code < 300:
            for it in chunk:  # the whole batch refused: retry each alert's head later
                if it.alert_id not in blocked:
                    yield it, False, f"HTTP {r.status_code}: {r.text[:300]}"
            return
        try:
            results = r.json()["results"]
            if len(results) != len(chunk):
                raise ValueError("result count")
        except (ValueError, KeyError, TypeError):
            raise _TransportDown(f"the center's batch answer is not understood: {r.text[:200]}") from None
        uploaded: set[tuple[str, str]] = set()  # each version of an alert in the batch lists the same files
        for it, res in zip(chunk, results):
            status = res.get("status")
            if status in ("stored", "stale", "duplicate"):
                for name in res.get("need_evidence") or []:
                    if (it.alert_id, str(name)) not in uploaded:
                        self._upload_evidence(it.alert_id, str(name))
                        uploaded.add((it.alert_id, str(name)))
                yield it, True, None
            elif status == "error" and it.alert_id not in blocked:
                yield it, False, f"HTTP {res.get('code')}: {res.get('error')}"
            # "skipped": after a refused version of the same alert; stays pending

    def _upload_evidence(self, alert_id: str, name: str) -> None:
        got = self.store.evidence(alert_id, name)
        if got is None:
            return  # gone on the vehicle: nothing to send
        data, info = got
        r = self._post(f"/api/v1/ingest/evidence/{quote(alert_id, safe='')}/{quote(name, safe='')}", "PUT",
                       content=data, headers={"Content-Type": info.media_type, "X-Content-SHA256": info.sha256})
        if not 200 <= r.status_code < 300:  # refused for good (too big, bad name): the alert still goes
            log.warning("center refused evidence %s/%s: HTTP %d %s", alert_id, name, r.status_code, r.text[:200])

    def _heartbeat(self) -> None:
        self._post("/api/v1/ingest/heartbeat", json=self._status_body())

    def _close(self) -> None:
        self._client.close()
