"""The dwell log and the catch rate a running plan achieves (issue #19: ``/health`` → ``intercept``).

The capture thread adds every block it reads to a :class:`DwellLog` (center, start, end; merged
into dwells); :func:`measured_catch` computes from it, exactly, the same figures that
:func:`~detector.config.intercept.plan_catch` predicts from the plan (the model is in
:mod:`detector.config.intercept`'s docstring); :class:`InterceptHealth` is the ``/health`` section.
Pure arithmetic over windows; the clock is given.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

from detector.config.intercept import (DEFAULT_BURST_S, PlanCatch, ReceiverModel, _band_share, catch_from_windows,
                                       plan_catch, plan_hops)
from detector.config.plan import WatchPlan

__all__ = ["Dwell", "DwellLog", "measured_catch", "InterceptHealth"]

_DEFAULT_MODEL = ReceiverModel()


@dataclass(frozen=True)
class Dwell:
    center_hz: float
    start_s: float
    end_s: float
    receiver: int = 0


class DwellLog:
    """The windows the capture loop actually observed (center, start, end; the source's sample
    clock), merged from contiguous blocks at one center; bounded to the last ``keep_s`` seconds
    and ``max_dwells`` entries. The capture thread writes, ``/health`` reads a copy (under a lock)."""

    def __init__(self, keep_s: float = 3600.0, max_dwells: int = 200_000) -> None:
        self.keep_s = keep_s
        self._done: deque[Dwell] = deque(maxlen=max_dwells)
        self._open: dict[int, list[float]] = {}  # receiver → [center, start, end]
        self._lock = threading.Lock()

    def add_block(self, center_hz: float, start_s: float, duration_s: float, receiver: int = 0) -> None:
        """A block of ``duration_s`` seconds at ``center_hz`` seen from ``start_s``."""
        with self._lock:
            self._add(center_hz, start_s, duration_s, receiver)

    def _add(self, center_hz: float, start_s: float, duration_s: float, receiver: int) -> None:
        cur = self._open.get(receiver)
        end = start_s + duration_s
        tol = max(1e-3, 0.5 * duration_s)
        if cur is not None and cur[0] == center_hz and cur[1] - tol <= start_s <= cur[2] + tol:
            cur[2] = max(cur[2], end)
            return
        if cur is not None:
            self._done.append(Dwell(cur[0], cur[1], cur[2], receiver))
        self._open[receiver] = [center_hz, start_s, end]
        while self._done and self._done[0].end_s < end - self.keep_s:
            self._done.popleft()

    def dwells(self) -> list[Dwell]:
        """All dwells of the log, the open ones included (a copy)."""
        with self._lock:
            out = list(self._done)
            out += [Dwell(c, s, e, r) for r, (c, s, e) in self._open.items()]
        return out

    def __len__(self) -> int:
        return len(self._done) + len(self._open)


def measured_catch(plan: WatchPlan, dwells: Sequence[Dwell], *, burst_s: float = DEFAULT_BURST_S,
                   model: ReceiverModel = _DEFAULT_MODEL, receivers: int = 1,
                   nominal: PlanCatch | None = None) -> dict:
    """Per band: the nominal P(one burst) (the plan on ``receivers``, or ``nominal``) beside the one
    achieved in ``dwells`` (exact, :func:`catch_from_windows` over the log's span), and the revisit
    times (the worst hop's mean gap between visits; None: a hop visited at most once). P achieved
    is None while the log is shorter than a burst."""
    if nominal is None:
        nominal = plan_catch(plan, receivers, burst_s=burst_s, model=model)
    nom = {b.name: b for b in nominal.bands}
    hops = plan_hops(plan, model)
    half = model.hop_width_hz / 2
    by_center: dict[float, list[tuple[float, float]]] = {}
    for d in dwells:
        by_center.setdefault(d.center_hz, []).append((d.start_s, d.end_s))
    if dwells:
        t0, t1 = min(d.start_s for d in dwells), max(d.end_s for d in dwells)
    else:
        t0 = t1 = 0.0
    span = t1 - t0
    hop_windows = [[w for c, cw in by_center.items() if abs(c - h.center_hz) < half for w in cw] for h in hops]
    bands = []
    for b in plan.bands:
        gaps: list[float] = []
        visits = 0
        p_band = None
        if span > burst_s:  # exact over the windows of every hop that sees a channel (coverage_segments)
            p_band = _band_share(b, hops, model, lambda idx: catch_from_windows(
                [w for i in idx for w in hop_windows[i]], burst_s, model.tau, t0, t1 - burst_s)[0])
        for k, h in enumerate(hops):
            if h.band != b.name:
                continue
            ws = hop_windows[k]
            visits += len(ws)
            starts = sorted(a for a, _ in ws)
            if len(starts) >= 2:
                gaps.append((starts[-1] - starts[0]) / (len(starts) - 1))
            elif not (len(ws) == 1 and ws[0][1] - ws[0][0] >= 0.99 * span):  # one dwell over the whole log: staring
                gaps.append(math.inf)
        nb = nom[b.name]
        achieved = max(gaps) if gaps else 0.0
        bands.append({"name": b.name, "priority": b.priority,
                      "p_burst_nominal": round(nb.p_burst, 6),
                      "p_burst_achieved": round(p_band, 6) if p_band is not None else None,
                      "revisit_nominal_s": round(nb.revisit_achieved_s, 3),
                      "revisit_achieved_s": None if math.isinf(achieved) else round(achieved, 3),
                      "revisit_s": b.revisit_s, "dwells": visits})
    return {"burst_s": burst_s, "min_on_s": model.tau, "log_s": round(span, 3), "dwells": len(dwells),
            "receivers": receivers, "bands": bands}


class InterceptHealth:
    """``/health`` → ``intercept``: the running plan's catch rate, nominal and achieved from the
    capture's :class:`DwellLog` (a 2 s burst by default)."""

    def __init__(self, plan: WatchPlan, log: DwellLog, model: ReceiverModel, *, receivers: int = 1,
                 burst_s: float = DEFAULT_BURST_S, clock: Callable[[], float] | None = None,
                 min_interval_s: float = 5.0) -> None:
        self.plan, self.log, self.model, self.receivers, self.burst_s = plan, log, model, receivers, burst_s
        self.nominal = plan_catch(plan, receivers, burst_s=burst_s, model=model)
        self.clock, self.min_interval_s = clock, min_interval_s
        self._last: tuple[float, dict] | None = None

    def __call__(self) -> dict:
        """The figures, recomputed at most every ``min_interval_s`` of ``clock`` (an hour's log of
        the default plan takes ≈ 70 ms)."""
        now = self.clock() if self.clock is not None else None
        if now is not None and self._last is not None and now - self._last[0] < self.min_interval_s:
            return self._last[1]
        out = measured_catch(self.plan, self.log.dwells(), burst_s=self.burst_s, model=self.model,
                             receivers=self.receivers, nominal=self.nominal)
        if now is not None:
            self._last = (now, out)
        return out
