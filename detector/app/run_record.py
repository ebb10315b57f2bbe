"""What a monitor run watched, kept for the report (issue #19: the report shows the catch rate the
running plan achieved, from the scheduler's real dwell log).

:class:`RunRecorder` writes ``DATA_DIR/runs/<run_id>.json`` when the run starts, every
``interval_s`` (default 60 s) and when it stops: the run's site, start, last update and end, the
watch plan, ``/health`` → ``intercept`` (per band the plan's and the achieved P(one burst) and the
revisit times, over the dwell log's last hour) and the receivers (``/health`` → ``receivers``, or
the one receiver's figures). Each write replaces the file whole (a temporary file renamed), so a
crash leaves the last complete record. :func:`load_runs` reads the records of a site that overlap
a time range (``examwatch report``). A record that cannot be written is logged (once per cause) and
the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from detector.core.timefmt import utc_iso

__all__ = ["RunRecorder", "load_runs", "RUNS_DIR"]

log = logging.getLogger("examwatch.monitor")

#: the records' folder inside the data folder
RUNS_DIR = "runs"
_KEYS = ("status", "source_state", "source", "center_hz", "sample_rate_hz", "blocks_read", "frames_processed",
         "frames_dropped", "reopen_count", "retunes", "last_error")


def _receivers(h: dict) -> list[dict]:
    entries = h.get("receivers")
    if isinstance(entries, list):
        return entries
    return [{"name": "rx0", **{k: h.get(k) for k in _KEYS}, "calibration": h.get("calibration")}]


class RunRecorder:
    """Keeps ``folder/<run_id>.json`` up to date (module docstring).

    Parameters
    ----------
    folder : Path
        ``DATA_DIR/runs``; created when missing.
    run_id, site : str
    health : callable
        The monitor's ``/health`` (``Monitor.health`` or ``ReceiverGroup.health``).
    plan : str, optional
        The watch plan's name.
    interval_s : float
        Seconds between writes while the run goes on.
    clock : callable
        UTC now (tests give their own).
    """

    def __init__(self, folder: Path, run_id: str, site: str, health: Callable[[], dict], *, plan: str | None = None,
                 interval_s: float = 60.0, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.folder, self.run_id, self.site, self.health, self.plan = Path(folder), run_id, site, health, plan
        self.interval_s, self.clock = interval_s, clock
        self.started_at = clock()
        self.writes = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.run_id}.json"

    def record(self, *, ended: bool = False) -> dict:
        """The record now (``ended``: the run's end is now)."""
        try:
            h = self.health()
        except Exception as exc:  # noqa: BLE001 - a record without health still says what ran when
            h = {"last_error": f"{type(exc).__name__}: {exc}"}
        now = self.clock()
        intercept = h.get("intercept")
        return {"examwatch_run": 1, "run_id": self.run_id, "site": self.site, "plan": self.plan,
                "started_at": utc_iso(self.started_at), "updated_at": utc_iso(now),
                "ended_at": utc_iso(now) if ended else None,
                "intercept": intercept if isinstance(intercept, dict) and "bands" in intercept else None,
                "receivers": _receivers(h)}

    def write(self, *, ended: bool = False) -> bool:
        """Write the record; False (logged) when the folder cannot take it."""
        body = json.dumps(self.record(ended=ended), default=str, indent=1)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(body, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            why = f"cannot write the run record {self.path}: {exc.strerror or exc}"
            if why != self.last_error:
                log.warning("%s", why)
            self.last_error = why
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            return False
        self.writes += 1
        self.last_error = None
        return True

    def start(self) -> "RunRecorder":
        self.write()
        self._thread = threading.Thread(target=self._run, name="examwatch-run-record", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()

    def stop(self) -> None:
        """The last write, with the run's end. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.write(ended=True)


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def load_runs(folder: Path, site: str, t_from: datetime | None = None, t_to: datetime | None = None) -> list[dict]:
    """The run records of ``site`` in ``folder`` whose span overlaps ``[t_from, t_to]``, oldest
    first; files that are not run records are skipped (logged)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: not a run record (%s)", p, exc)
            continue
        if not isinstance(d, dict) or d.get("examwatch_run") != 1 or d.get("site") != site:
            continue
        a, b = _time(d.get("started_at")), _time(d.get("ended_at") or d.get("updated_at"))
        if a is None or b is None:
            continue
        if (t_to is not None and a > t_to) or (t_from is not None and b < t_from):
            continue
        out.append(d)
    out.sort(key=lambda d: d["started_at"])
    return out
