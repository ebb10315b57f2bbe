"""Direction-finder bearings in the running monitor (issue #22 item 1): the store, its inputs.

* :class:`BearingStore` — the app's bounded, thread-safe buffer of recent bearings (the last
  ``max_age_s`` = 30 min by the bearings' own UTC times, at most ``max_n``), queried by the track
  locator (:func:`~detector.localization.tracks.track_locator`, ``bearings=``) through
  :meth:`BearingStore.timeline`: engine-timeline seconds are converted to UTC with the run's
  ``wall_start`` as the readings are (:func:`detector.app.gps.track_positions`), then selected by
  :func:`~detector.localization.select_bearings`. ``/health`` → ``bearings`` is
  :meth:`BearingStore.health` (received, rejected, last_error, last_at, source).
* Inputs (``examwatch monitor --bearings SPEC``, :func:`parse_bearings_spec`): a file that is
  tailed (:class:`FileTail`: lines a running KrakenSDR or another direction finder appends are read
  as they come; a malformed line is counted and kept as ``last_error``, never fatal), or an
  ``http(s)://`` URL polled every ``--bearings-poll-s`` (:class:`UrlPoller`, httpx). KrakenSDR's
  DSP software (``krakenrf/krakensdr_doa``) rewrites its DoA result file ``DOA_value.html`` (the
  web interface opens ``_android_web/DOA_value.html``, ``_UI/_web_interface/kraken_web_interface.py``)
  with one "Kraken App" line per VFO on every update, and its web server serves that file, e.g.
  ``http://KRAKEN:8081/DOA_value.html``; the poller parses every line of the body and keeps the
  lines it has not seen (the last 4096 lines are remembered). The third input is ``POST /api/v1/bearings``.
* Each input runs as the supervised component ``bearings`` (``/health`` → ``components``): a
  poll that fails puts it in ``restarting`` with the error, so a dead direction finder shows
  within one poll.

A source with no wall-clock start (a ``sim:`` scene) has its timeline taken from the Unix epoch:
a bearing at POSIX time t matches the readings at engine second t.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from detector.core.errors import InputError
from detector.core.timefmt import utc_iso
from detector.sources.bearings import BearingReadings, detect_format, parse_bearings

__all__ = ["BearingStore", "FileTail", "UrlPoller", "parse_bearings_spec", "start_bearings_input",
           "DEFAULT_MAX_AGE_S", "DEFAULT_POLL_S"]

log = logging.getLogger("examwatch.monitor")

#: bearings older than this (s, by their own time against the newest) are dropped from the store
DEFAULT_MAX_AGE_S = 1800.0
#: ``--bearings-poll-s``: seconds between polls of a bearings URL
DEFAULT_POLL_S = 1.0
_FIELDS = ("time_s", "lat", "lon", "heading_deg", "bearing_deg", "quality", "confidence", "frequency_hz")


class BearingStore:
    """Recent bearings, bounded by age (``max_age_s``, s) and count (``max_n``); thread-safe.

    :meth:`add` takes :class:`~detector.sources.bearings.BearingReadings`; :meth:`reject` counts
    what could not be read; :meth:`query` selects by UTC time and frequency. ``clock``: the wall
    clock of ``last_at`` (POSIX seconds)."""

    def __init__(self, *, max_age_s: float = DEFAULT_MAX_AGE_S, max_n: int = 20000, source: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not max_age_s > 0 or max_n < 1:
            raise ValueError(f"max_age_s must be > 0 and max_n ≥ 1, got {max_age_s}, {max_n}")
        self.max_age_s = float(max_age_s)
        self.max_n = int(max_n)
        self.source = source
        self.clock = clock
        self._lock = threading.Lock()
        self._rows: deque[tuple] = deque(maxlen=self.max_n)
        self.received = 0
        self.rejected = 0
        self.without_fix = 0
        self.last_error: str | None = None
        self.last_at: float | None = None

    def add(self, readings: BearingReadings) -> int:
        """Keep ``readings`` (lines without a fix are counted); returns how many were added."""
        cols = [np.asarray(getattr(readings, f), float) for f in _FIELDS]
        new = list(zip(*(c.tolist() for c in cols)))
        with self._lock:
            self._rows.extend(new)
            self.received += len(new)
            self.without_fix += int(readings.n_skipped)
            if new:
                self.last_at = self.clock()
            if self._rows:
                newest = max(r[0] for r in self._rows)
                while self._rows and self._rows[0][0] < newest - self.max_age_s:
                    self._rows.popleft()
                if any(r[0] < newest - self.max_age_s for r in self._rows):  # out of order: rebuild
                    self._rows = deque((r for r in self._rows if r[0] >= newest - self.max_age_s), maxlen=self.max_n)
        return len(new)

    def reject(self, why: str, n: int = 1) -> None:
        """``n`` bearings (or lines) could not be read, for ``why``."""
        with self._lock:
            self.rejected += n
            self.last_error = why

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def query(self, t0_utc_s: float, t1_utc_s: float, f_lo_hz: float, f_hi_hz: float) -> BearingReadings | None:
        """The bearings taken in [t0, t1] (POSIX s) at a frequency in [f_lo, f_hi] (Hz), or None."""
        from detector.localization import select_bearings

        with self._lock:
            rows = list(self._rows)
        if not rows:
            return None
        a = np.asarray(rows, float).reshape(-1, len(_FIELDS))
        m = select_bearings(a[:, 0], a[:, 7], t0_s=t0_utc_s, t1_s=t1_utc_s, f_lo_hz=f_lo_hz, f_hi_hz=f_hi_hz)
        if not m.any():
            return None
        a = a[m]
        return BearingReadings(*(a[:, k] for k in range(len(_FIELDS))), line=np.arange(1, a.shape[0] + 1),
                               path=self.source or "bearings", fmt="store")

    def timeline(self, wall_start: datetime | None) -> Callable[[float, float, float, float], BearingReadings | None]:
        """``bearings(t0_s, t1_s, f_lo_hz, f_hi_hz)`` at engine-timeline times (s from
        ``wall_start``, the UTC time of timeline second 0; None: the Unix epoch), for the locator."""
        t0 = wall_start.timestamp() if wall_start is not None else 0.0
        return lambda a, b, f_lo, f_hi: self.query(t0 + a, t0 + b, f_lo, f_hi)

    def health(self) -> dict:
        """``/health`` → ``bearings``."""
        with self._lock:
            at = None if self.last_at is None else utc_iso(datetime.fromtimestamp(self.last_at, timezone.utc))
            return {"received": self.received, "rejected": self.rejected, "without_fix": self.without_fix,
                    "kept": len(self._rows), "last_error": self.last_error, "last_at": at, "source": self.source}


def parse_bearings_spec(spec: str) -> tuple[str, str]:
    """``--bearings SPEC`` → ("url", URL) for ``http(s)://…``, else ("file", PATH); InputError for
    an empty spec, another URL scheme or a path that is a folder. A file that does not exist yet
    is waited for (the direction finder may start later)."""
    s = (spec or "").strip()
    if not s:
        raise InputError("--bearings needs a file or an http(s):// URL")
    low = s.lower()
    if low.startswith(("http://", "https://")):
        return "url", s
    if "://" in s:
        raise InputError(f"--bearings {spec!r}: use a file or an http(s):// URL")
    if Path(s).is_dir():
        raise InputError(f"--bearings {spec}: is a folder, not a bearings file")
    return "file", s


class _Lines:
    """Feeds lines to the store: the format from the first line, a plain CSV's header kept."""

    def __init__(self, store: BearingStore, name: str) -> None:
        self.store = store
        self.name = name
        self.fmt: str | None = None
        self.header: str | None = None

    def feed(self, line: str, lineno: int) -> None:
        text = line.strip()
        if not text or text.startswith("#") or text == self.header:  # a CSV header served again
            return
        if self.fmt is None:
            self.fmt = detect_format(text)
            if self.fmt == "plain" and not text.startswith(("{", "[")):
                self.header = text  # the CSV header: not a bearing
                return
        try:
            got = parse_bearings(text, f"{self.name}:{lineno}",
                                 self.fmt, header=self.header, allow_empty=True)
        except InputError as exc:
            self.store.reject(str(exc))
            return
        self.store.add(got)


class FileTail:
    """Follow a bearings file: read what is there, then what is appended (every ``poll_s``).

    A file that is truncated or replaced (rotated) is read again from its start; one that does not
    exist yet is waited for. ``component``: a supervisor handle (``beat()`` per line)."""

    def __init__(self, path: str | Path, store: BearingStore, *, poll_s: float = 0.2, component=None) -> None:
        self.path = Path(path)
        self.store = store
        self.poll_s = poll_s
        self.component = component
        self.stop_event = threading.Event()
        self._lines = _Lines(store, self.path.name)

    def run(self) -> None:
        fh = None
        ino = None
        pos = 0
        lineno = 0
        partial = ""
        try:
            while not self.stop_event.is_set():
                if fh is None:
                    try:
                        fh = open(self.path, encoding="utf-8-sig", errors="replace", newline="")
                        ino, pos, lineno, partial = self.path.stat().st_ino, 0, 0, ""
                        self._lines = _Lines(self.store, self.path.name)
                        if self.component is not None:
                            self.component.ok()
                    except FileNotFoundError:
                        if self.component is not None:
                            self.component.note(f"waiting for {self.path}")
                        self.stop_event.wait(self.poll_s)
                        continue
                chunk = fh.read()
                if chunk:
                    pos += len(chunk)
                    text = partial + chunk
                    lines = text.split("\n")
                    partial = lines.pop()  # an unfinished last line waits for its end
                    for ln in lines:
                        lineno += 1
                        self._lines.feed(ln.rstrip("\r"), lineno)
                        if self.component is not None:
                            self.component.beat()
                    continue
                try:
                    st = self.path.stat()
                    if st.st_ino != ino or st.st_size < pos:  # rotated or truncated: from the start
                        fh.close()
                        fh = None
                        continue
                except FileNotFoundError:
                    fh.close()
                    fh = None
                self.stop_event.wait(self.poll_s)
        finally:
            if fh is not None:
                fh.close()

    def stop(self) -> None:
        self.stop_event.set()


class UrlPoller:
    """Poll a bearings URL every ``poll_s`` with httpx; each answer's lines are parsed, those not
    seen before kept (a KrakenSDR line carries its time stamp: the same line served again is the
    same bearing; a plain CSV's header is kept once). A failed poll (no answer, an HTTP error) is
    reported to ``component`` (``restarting``, with the error) and to the store's ``last_error``;
    the next poll that works reports ``ok``. ``client``: an ``httpx.Client`` (tests: a
    ``MockTransport``)."""

    def __init__(self, url: str, store: BearingStore, *, poll_s: float = DEFAULT_POLL_S, timeout_s: float = 5.0,
                 component=None, client=None) -> None:
        if not poll_s > 0:
            raise InputError(f"--bearings-poll-s must be > 0, got {poll_s:g}")
        self.url = url
        self.store = store
        self.poll_s = float(poll_s)
        self.timeout_s = timeout_s
        self.component = component
        self.client = client
        self.stop_event = threading.Event()
        self.polls = 0
        self._seen: deque[str] = deque()  # the lines of recent answers, oldest first (with _seen_set)
        self._seen_set: set[str] = set()
        self._lines = _Lines(store, url.rsplit("/", 1)[-1] or url)

    def poll_once(self) -> int:
        """One poll; returns the new bearings kept. Raises httpx errors (an HTTP status ≥ 400 too)."""
        import httpx

        client = self.client or httpx.Client(timeout=self.timeout_s)
        try:
            r = client.get(self.url)
            r.raise_for_status()
            body = r.text
        finally:
            if self.client is None:
                client.close()
        self.polls += 1
        before = self.store.received
        for k, ln in enumerate(body.splitlines(), start=1):
            text = ln.strip()
            if not text:
                continue
            if text in self._seen_set:  # served again: not a new bearing
                continue
            self._lines.feed(text, k)
            self._seen.append(text)
            self._seen_set.add(text)
            if len(self._seen) > 4096:
                self._seen_set.discard(self._seen.popleft())
        return self.store.received - before

    def run(self) -> None:
        import httpx

        own = self.client is None
        if own:  # one connection pool for the life of the worker
            self.client = httpx.Client(timeout=self.timeout_s)
        try:
            self._loop()
        finally:
            if own:
                self.client.close()
                self.client = None

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
                if self.component is not None:
                    self.component.beat()
                    self.component.ok()
            except Exception as exc:  # noqa: BLE001 - a lost direction finder must not stop the monitor
                why = f"{self.url}: {type(exc).__name__}: {exc}"
                self.store.reject(why, n=0)
                if self.component is not None:
                    self.component.error(why)
            self.stop_event.wait(self.poll_s)

    def stop(self) -> None:
        self.stop_event.set()


def start_bearings_input(spec: str, store: BearingStore, supervisor, *, poll_s: float = DEFAULT_POLL_S, client=None):
    """Start the input of ``--bearings SPEC`` as the supervised component ``bearings``; returns
    the worker (its ``stop()`` ends it)."""
    kind, where = parse_bearings_spec(spec)
    comp = supervisor.component("bearings")
    store.source = where
    worker = (UrlPoller(where, store, poll_s=poll_s, component=comp, client=client) if kind == "url"
              else FileTail(where, store, component=comp))
    supervisor.spawn("bearings", worker.run, thread_name="examwatch-bearings")
    return worker
