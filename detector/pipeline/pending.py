"""Alert changes the store cannot take now: a bounded in-order queue, and the writer that drains it.

:class:`PendingWrites` is how the processing writes every alerting event to the store. While the
store works, an event is written at once, by the processing thread (the store first, then the
callbacks). When a write fails because the store is unavailable (SQLite locked, read-only or full,
PostgreSQL away: :class:`~detector.core.errors.StoreUnavailable`, or the database error itself),
detection goes on: the event waits in a queue (at most ``limit``; beyond, new events are refused,
counted and logged, the queued ones kept), every later event waits behind it (so the changes of
an alert keep their order), and :meth:`run` (a supervised thread) writes the queue in order, with
a backoff of 0.5 s doubling to 5 s, when the store is back. Writing an event twice changes nothing
(``AlertStore.apply`` with the same event and the same ``when`` bumps no version), so a write
whose commit was not acknowledged can be retried.

Nothing queued is lost at stop either: what :meth:`PendingWrites.flush` could not write in its
time is *spilled* (:meth:`PendingWrites.spill`) to a JSON-lines file, next to the SQLite file
(``<store>.pending.jsonl``) or, when that folder cannot be written or the store is PostgreSQL, in
the state folder (``$XDG_STATE_HOME/examwatch``, else ``~/.local/state/examwatch``:
:func:`default_state_dir`) as ``pending-<hash of the store>.jsonl`` (:func:`spill_paths`). The next
start with the same store loads it first (:meth:`PendingWrites.restore`, before any new event), and
the writer writes those changes in order before the new ones; the file goes only once all of them
are in the store. Progress is kept beside it (``<file>.done``: the file's id and the number of its
changes written), so a process killed while writing them rewrites at most the last one, which
changes nothing. See :func:`spill_line` for the format.

:meth:`health` is ``/health`` → ``store``: ``{"ok", "pending", "dropped", "failed", "last_error",
"since", "spilled", "restored", "restore_left", "spill_file"}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from detector.core.errors import InputError, StoreUnavailable
from detector.core.timefmt import utc_iso
from detector.pipeline.spill import (SPILL_FORMAT, SPILL_SUFFIX, _read_marker, _remove, _Restored, _write_whole,
                                     default_state_dir, parse_spill_line, spill_line, spill_paths)

__all__ = ["PendingWrites", "PENDING_LIMIT", "unavailable", "default_state_dir", "spill_paths", "spill_line",
           "parse_spill_line", "SPILL_SUFFIX"]

log = logging.getLogger("examwatch.store")

#: bound of the queue of alert changes waiting for the store
PENDING_LIMIT = 10_000
#: a single write taking longer than this already shows in ``/health`` (the database is locked)
SLOW_WRITE_S = 2.0
#: how long a write of the processing thread waits for a locked SQLite database before the event
#: is queued (the writer thread then waits the full busy timeout, the processing does not)
PROCESSING_PATIENCE_S = 0.5
#: how long a write of the writer thread (and of the flush at stop) waits for a locked SQLite
#: database before it backs off and tries again: short, so that a stop while locked takes at most
#: its timeout plus this
WRITER_PATIENCE_S = 1.0


def unavailable(exc: BaseException) -> str | None:
    """Why the store cannot be written, when ``exc`` says so; None for any other error."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    try:
        from detector.alerts.db import unavailable_reason
    except ImportError:  # pragma: no cover - the alerts layer is always there with a store
        return None
    why = unavailable_reason(exc)
    return None if why is None else f"the alert store cannot be written: {why}"


class PendingWrites:
    """The queue of alert changes waiting for the store (see the module docstring).

    ``on_stored(event, alert)`` is called (by the writer thread) for each queued event of this
    process once it is in the store (not for those restored from a spill file: they belong to an
    earlier run). ``spill_to`` are the files to spill to at stop and to restore from at start, in
    order of preference (:func:`spill_paths`; empty: nothing is spilled, what is left at stop is
    lost, and logged). Backoffs are in seconds.
    """

    def __init__(self, store, *, limit: int = PENDING_LIMIT, on_stored: Callable[[object, object], None] | None = None,
                 initial_backoff_s: float = 0.5, max_backoff_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, spill_to: Sequence[Path] = ()) -> None:
        self.store = store
        self.spill_to = tuple(Path(p) for p in spill_to)
        self.limit = int(limit)
        self.on_stored = on_stored
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._q: deque = deque()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()  # one drainer at a time (the writer thread, or flush at stop)
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._backoff = initial_backoff_s
        #: events refused because the queue was full (logged)
        self.dropped = 0
        #: queued events the store refused for another reason than being unavailable (logged)
        self.failed = 0
        #: queued events written once the store was back
        self.written_late = 0
        self.last_error: str | None = None
        self._down_since: datetime | None = None
        self._in_flight: float | None = None
        self._logged: set[str] = set()
        #: progress for the supervisor: writes done
        self.writes = 0
        #: changes written to a spill file at stop (:meth:`spill`)
        self.spilled = 0
        #: changes loaded from spill files at start (:meth:`restore`)
        self.restored = 0
        #: the spill file written at stop, or the last one restored from
        self.spill_file: Path | None = None
        self._restoring: list[_Restored] = []

    # ---- the processing side ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._q)

    def write(self, event, **kw):
        """``store.apply(event, **kw)`` now, or queued: the alert as stored, or None when queued."""
        with self._lock:
            if self._q:
                self._enqueue(event, kw)
                return None
        try:
            db = getattr(self.store, "db", None)
            if db is not None and hasattr(db, "patience"):
                with db.patience(PROCESSING_PATIENCE_S):
                    alert = self._apply(event, kw)
            else:
                alert = self._apply(event, kw)
        except Exception as exc:
            why = unavailable(exc)
            if why is None:
                raise
            with self._lock:
                self._enqueue(event, kw)
            self._down(why)
            self.wake.set()
            return None
        self._up()
        return alert

    def _apply(self, event, kw):
        self._in_flight = self.clock()
        try:
            alert = self.store.apply(event, **kw)
        finally:
            self._in_flight = None
        self.writes += 1
        return alert

    def _enqueue(self, event, kw) -> None:
        if len(self._q) >= self.limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("%d alert change(s) waiting for the store: the queue is full; %d newer change(s) "
                          "refused so far (track %s)", len(self._q), self.dropped, getattr(event, "track_id", "?"))
            return
        self._q.append((event, kw, None))

    def _down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = datetime.now(timezone.utc)
        if why not in self._logged:
            self._logged.add(why)
            log.error("%s; alert changes wait in memory (%d) and are written in order when it is back", why, len(self._q))
        self.last_error = why

    def _up(self) -> None:
        if self._down_since is not None and not self._q:
            log.info("the alert store works again (down since %s); %d queued change(s) written",
                     utc_iso(self._down_since), self.written_late)
            self._down_since = None
            self.last_error = None
            self._logged.clear()
        self._backoff = self.initial_backoff_s

    # ---- the writer thread ------------------------------------------------------------------------
    def run(self) -> None:
        """Write the queue in order while the store takes it; back off while it does not. Until
        :meth:`stop`."""
        while not self._stop.is_set():
            self.wake.wait(0.5)
            self.wake.clear()
            if not self.drain():
                self._stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, self.max_backoff_s)

    def drain(self, patience_s: float | None = WRITER_PATIENCE_S) -> bool:
        """Write queued events in order until the queue is empty (True) or the store fails (False).
        ``patience_s``: how long each write waits for a locked SQLite database (None: the store's
        busy timeout and retry), so that a stop is not held up by a lock."""
        with self._drain_lock:
            db = getattr(self.store, "db", None)
            if patience_s is not None and db is not None and hasattr(db, "patience"):
                with db.patience(patience_s):
                    return self._drain()
            return self._drain()

    def _drain(self) -> bool:
        while True:
            with self._lock:
                if not self._q:
                    break
                event, kw, src = self._q[0]
            try:
                alert = self._apply(event, kw)
            except Exception as exc:  # noqa: BLE001 - sorted below: unavailable → retry; else dropped, logged
                why = unavailable(exc)
                if why is not None:
                    self._down(why)
                    return False
                self.failed += 1
                log.exception("a queued alert change (track %s) was refused by the store and is dropped",
                              getattr(event, "track_id", "?"))
                alert = None
            with self._lock:
                self._q.popleft()
            if src is not None:
                self._restored_one(*src)
            elif alert is not None:
                self.written_late += 1
                if self.on_stored is not None:
                    self.on_stored(event, alert)
        self._up()
        return True

    def flush(self, timeout: float) -> int:
        """Give the queue up to ``timeout`` seconds to be written (at stop), then :meth:`spill` what
        is left; returns the number of changes not in the store (spilled or, when no spill file
        could be written, lost: logged)."""
        end = time.monotonic() + timeout
        self.stop()  # the writer thread starts no new attempt: flush drains alone
        while self._q and time.monotonic() < end:
            if not self.drain(patience_s=max(0.05, min(WRITER_PATIENCE_S, end - time.monotonic()))):
                time.sleep(min(0.2, max(0.0, end - time.monotonic())))
        left = len(self._q)
        if left:
            self.spill()
        return left

    # ---- spill at stop, restore at start -------------------------------------------------------------
    def spill(self) -> Path | None:
        """Write the queue, in order, to the first of ``spill_to`` that can be written (a new file
        replacing any earlier one, written whole before it replaces it) and empty it; returns the
        file, or None when there was nothing to spill or no file could be written (the changes are
        then lost: logged, with the reasons). Changes restored at start and not yet written go
        back to the file too, at its head: the earlier files they came from are removed."""
        with self._drain_lock, self._lock:
            items = list(self._q)
            if not items:
                return None
            header = {"examwatch_pending": SPILL_FORMAT, "id": uuid.uuid4().hex,
                      "store": str(getattr(getattr(self.store, "db", None), "url", "") or ""),
                      "spilled_at": utc_iso(datetime.now(timezone.utc)), "count": 0,
                      "supersedes": [r.id for r in self._restoring], "last_error": self.last_error}
            lines = []
            for event, kw, _src in items:
                try:
                    line, left_out = spill_line(event, kw)
                except TypeError as exc:
                    log.error("an alert change of track %s cannot be spilled (%s); it is lost",
                              getattr(event, "track_id", "?"), exc)
                    continue
                if left_out:
                    log.error("an alert change of track %s is spilled without %s", getattr(event, "track_id", "?"),
                              ", ".join(left_out))
                lines.append(line)
            header["count"] = len(lines)
            body = json.dumps(header, separators=(",", ":")) + "\n" + "".join(f"{line}\n" for line in lines)
            errors = []
            for path in self.spill_to:
                try:
                    _write_whole(path, body)
                except OSError as exc:
                    errors.append(f"{path}: {exc.strerror or exc}")
                    continue
                self._q.clear()
                self.spilled += len(lines)
                self.spill_file = path
                for r in self._restoring:  # now in the new file
                    _remove(r.marker)
                    if r.path != path:
                        _remove(r.path)
                _remove(path.with_name(path.name + ".done"))
                self._restoring = []
                also = f" ({'; '.join(errors)})" if errors else ""
                log.error("the alert store cannot take %d alert change(s) before stopping (%s): they are saved in %s%s "
                          "and written first at the next start with this store", len(lines), self.last_error, path, also)
                return path
            log.error("%d alert change(s) could not be written to the store before stopping (%s), nor saved (%s); "
                      "they are lost", len(items), self.last_error, "; ".join(errors) or "no spill file for this store")
            return None

    def restore(self) -> int:
        """Load the changes spilled by an earlier stop with this store (every readable file of
        ``spill_to``, oldest first, the changes already written skipped) at the head of the queue,
        before any new one, and wake the writer; returns how many. A line that cannot be read is
        logged and skipped. Call it before the processing starts."""
        found = []
        for path in self.spill_to:
            try:
                text_ = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                _remove(path.with_name(path.name + ".done"))  # a file gone with its marker left behind
                continue
            except OSError as exc:
                log.error("cannot read the alert changes saved in %s (%s); they stay there", path, exc.strerror or exc)
                continue
            lines = text_.splitlines()
            try:
                header = json.loads(lines[0]) if lines else None
            except ValueError:
                header = None
            if not isinstance(header, dict) or header.get("examwatch_pending") != SPILL_FORMAT:
                log.error("%s is not a file of saved alert changes (format %s); left as it is", path, SPILL_FORMAT)
                continue
            found.append((str(header.get("spilled_at") or ""), path, header, lines[1:]))
        superseded = {i for _, _, h, _ in found for i in (h.get("supersedes") or [])}
        items: list = []
        restoring = []
        for _, path, header, lines in sorted(found, key=lambda f: f[0]):
            fid = str(header.get("id") or "")
            if fid in superseded:
                log.info("%s was replaced by a newer file of saved alert changes; removed", path)
                _remove(path)
                _remove(path.with_name(path.name + ".done"))
                continue
            r = _Restored(path=path, id=fid, total=len(lines), done=_read_marker(path, fid))
            n0 = len(items)
            for i, line in enumerate(lines[r.done:], start=r.done + 1):
                try:
                    event, kw = parse_spill_line(line)
                except InputError as exc:
                    self.failed += 1
                    log.error("%s line %d: %s; that alert change is skipped", path, i + 1, exc)
                    continue
                items.append((event, kw, (r, i)))
            r.left = len(items) - n0
            restoring.append(r)
            if r.left:
                log.warning("%d alert change(s) saved at the last stop (%s, %s) are written to the store first%s",
                            r.left, header.get("spilled_at"), path,
                            f" ({r.done} of the file were already written)" if r.done else "")
            else:
                self._finished(r)
        with self._lock:
            self._q.extendleft(reversed(items))
            self._restoring.extend(r for r in restoring if r.left)
        self.restored += len(items)
        if restoring:
            self.spill_file = restoring[-1].path
        if items:
            self.wake.set()
        return len(items)

    @property
    def restore_left(self) -> int:
        """Restored changes not yet in the store."""
        return sum(r.left for r in self._restoring)

    def _restored_one(self, r: _Restored, line_no: int) -> None:
        """Change ``line_no`` (1-based) of ``r`` is in the store: note it beside the file (so that a
        kill now rewrites at most that one, which changes nothing); the file goes with the last."""
        r.done = max(r.done, line_no)
        r.left -= 1
        if r.left <= 0:
            self._finished(r)
            return
        try:
            _write_whole(r.marker, f"{r.id} {r.done}\n", sync=False)
        except OSError as exc:
            key = f"marker {r.marker}"
            if key not in self._logged:
                self._logged.add(key)
                log.warning("cannot note the progress in %s (%s): a kill now would write some of its changes "
                            "again at the next start", r.marker, exc.strerror or exc)

    def _finished(self, r: _Restored) -> None:
        """Every change of ``r`` is in the store: the file goes first, then its marker (the other
        order could make a kill between them write the file's changes again)."""
        try:
            r.path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("every alert change saved in %s is in the store, but the file cannot be removed (%s); "
                      "remove it, or its changes are written again at the next start", r.path, exc.strerror or exc)
            return
        _remove(r.marker)
        if r in self._restoring:
            self._restoring.remove(r)
        log.info("the alert change(s) saved in %s are in the store (%d line(s)); file removed", r.path, r.total)

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    # ---- reports ----------------------------------------------------------------------------------
    def health(self) -> dict:
        """``/health`` → ``store``."""
        why = self.last_error
        restore_left = self.restore_left
        # changes restored at start wait for no fault: the store works while it writes them
        ok = self._down_since is None and (not self._q or restore_left > 0)
        t = self._in_flight
        if t is not None and self.clock() - t > SLOW_WRITE_S:
            ok = False
            why = why or f"a write has waited {self.clock() - t:.1f} s for the store (locked?)"
        return {"ok": ok, "pending": len(self._q), "dropped": self.dropped, "failed": self.failed,
                "last_error": None if ok else why,
                "since": None if self._down_since is None else utc_iso(self._down_since),
                "spilled": self.spilled, "restored": self.restored, "restore_left": restore_left,
                "spill_file": None if self.spill_file is None else str(self.spill_file)}
