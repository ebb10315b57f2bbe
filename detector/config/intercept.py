"""Catch rate of a watch plan: will a burst on a random channel be seen long enough to detect?

The planner of issue #19 (``examwatch plan check``, ``/health`` → ``intercept``). Pure arithmetic
over dwell windows; no I/O, and no clock of its own (:class:`~detector.config.dwell_log.InterceptHealth` is given one).

Model
-----
A band of width W is cut into hops of the receiver's usable span (sample rate × usable fraction,
:class:`~detector.config.plan.Scheduler`). A hop's visit costs ``dwell_s + retune_s`` of the
receiver's time (the capture loop starts the dwell timer after the retune command returns); the
first ``settle_s`` of the dwell are discarded while the tuner settles
(:data:`~detector.sources.rtlsdr.SETTLE_SAMPLES`, 27 ms at 2.4 MS/s), so the detector *observes*
``d = dwell_s − settle_s`` per visit. The detector alerts after K flagged frames of M (the K-of-M
rule, :class:`~detector.detection._decision.DecisionConfig`) of ``frame_s`` each, so a burst is
*caught* when one dwell on its hop overlaps it for at least the minimum on-time
``τ = K · frame_s`` (30 ms with the defaults; optimistic by up to one frame, since frames are
not aligned with the burst: pass ``min_on_s=(K + 1) · frame_s`` for the pessimistic figure).
Bursts that straddle a retune are not joined (issue #19 item 4 is not modelled here).

One burst (closed form). Let a hop be observed in windows ``[kC, kC + d]`` (period C, the hop's
revisit time) and a burst of duration D start at a uniformly random time t. Its overlap with the
window ``[0, d]`` is ``min(t + D, d) − max(t, 0)``; that is ≥ τ exactly when D ≥ τ, d ≥ τ and
``τ − D ≤ t ≤ d − τ``, an interval of length ``L = d + D − 2τ``. Those intervals repeat every C,
so the share of start times that are caught is::

    P(one burst) = min(1, (d + D − 2τ) / C)    if D ≥ τ and d ≥ τ, else 0

which also covers D > C (several visits inside one burst: the intervals overlap and P = 1 once
L ≥ C). THEORY §1.2 item 10 writes ``(L + T_dwell − T_need)/T_R`` with one ``T_need``; requiring
the overlap *inside one dwell* to reach τ costs τ at both ends, hence 2τ here. Jitter of the
revisit times does not change the result while L is shorter than every gap between visits (the
caught share is Σ min(L, gap) / Σ gap). A hop that is alone on its receiver is never retuned
(it *stares*): P = 1 for D ≥ τ.

A hop's revisit time C under the scheduler. :class:`~detector.config.plan.Scheduler` visits the
hop whose ``priority × age / revisit_s`` is highest, so in steady state every hop is visited when
that urgency reaches a common level U: hop i returns every ``C_i = U · revisit_s,i / priority_i``.
The visits fill the receiver's time, Σ (dwell_i + retune_s) / C_i = 1, hence::

    U = Σ_j (dwell_j + retune_s) · priority_j / revisit_s,j     C_i = U · revisit_s,i / priority_i

(``C_i ≥ dwell_i + retune_s`` always; U ≤ 1 means every hop meets its ``revisit_s``, and in
general hop i meets it when U ≤ priority_i). A band's figure is the mean over its channels (a
channel is uniformly random in the band). A channel is seen by every hop whose usable span holds
it: its band's own and, near the band's edges, a neighbouring band's hop (a narrow band such as
PMR446 stares over the edges of the bands beside it), so the band is cut into segments of one set
of covering hops (:func:`coverage_segments`) and a segment seen by hops h catches
``1 − Π (1 − p_h)`` of the bursts (the hops taken as independent; exact, from the windows of all
of them together, in :func:`~detector.config.dwell_log.measured_catch`). Within a band the hops tile it, so away from its
edges this is the mean over its hops.

A session. Bursts repeat every P for a session of S seconds: n = max(1, ⌊S / P⌋) bursts. Assuming
P is not commensurate with the hop's revisit time, the bursts fall at independent phases of the
hop cycle, and ``P(session) = 1 − (1 − p)^n``. The expected time to the first detection (from the
first burst's start, the transmitter going on for as long as it takes) is geometric:
``E[T] = P · (1 − p) / p + δ``, δ being the mean time from a caught burst's start to the moment
the overlap reaches τ (exact, from the windows: :func:`catch_from_windows`).

The dwell log. What the capture loop actually observed is a list of (center, start, end) windows
(:class:`~detector.config.dwell_log.DwellLog`, a bounded ring of the last hour). :func:`catch_from_windows` computes the same
quantities exactly by interval arithmetic: a burst starting at t is caught by window ``[a, b]``
(b − a ≥ τ) when ``a + τ − D ≤ t ≤ b − τ``; the caught share of start times is the measure of the
union of those intervals within ``[t0, t1 − D]`` (bursts that lie inside the log) over its length.
A dwell counts for a hop when the hop's center lies in the dwell's usable span.

Band assignment with N receivers (:func:`assign`): the bands' hops are shared by the receivers
(longest-processing-time first by load ``(dwell + retune) · priority / revisit_s``); then, in
order of priority, a band whose hops fit on the receivers left over is given receivers of its own
(one per hop, staring) when that raises Σ priority × P(one burst) over the bands. Deterministic:
ties break on the plan's order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from detector.config.plan import Hop, Scheduler, WatchPlan

__all__ = ["ReceiverModel", "BandCatch", "PlanCatch", "p_burst_periodic", "catch_from_windows",
           "coverage_segments",
           "periodic_catch", "hop_revisits", "assign", "plan_catch", "min_on_time_s",
           "revisit_summary", "DEFAULT_BURST_S", "DEFAULT_PERIOD_S", "DEFAULT_SESSION_S"]

#: the figures ``plan check`` and ``/health`` quote by default: a 2 s burst every 3 minutes over a
#: 150-minute exam session
DEFAULT_BURST_S, DEFAULT_PERIOD_S, DEFAULT_SESSION_S = 2.0, 180.0, 9000.0


def min_on_time_s(k: int | None = None, frame_s: float | None = None) -> float:
    """τ = K frames × ``frame_s`` of the detector's defaults (30 ms)."""
    from detector.detection._decision import DecisionConfig
    from detector.detection.engine import EngineConfig

    return (DecisionConfig().k if k is None else k) * (EngineConfig().frame_s if frame_s is None else frame_s)


@dataclass(frozen=True)
class ReceiverModel:
    """The receiver's timing: hop width, retune cost, settle time, the detector's minimum on-time."""

    sample_rate_hz: float = 2.4e6
    usable_fraction: float = 0.8
    #: receiver time lost per retune outside the dwell (the tuner command, ≈ 10 ms on an RTL-SDR)
    retune_s: float = 0.010
    #: discarded at the start of each dwell (None: the RTL-SDR source's SETTLE_SAMPLES at this rate)
    settle_s: float | None = None
    #: τ: the overlap a burst needs within one dwell (None: K × frame_s of the detector's defaults)
    min_on_s: float | None = None

    @property
    def settle(self) -> float:
        if self.settle_s is not None:
            return self.settle_s
        from detector.sources.rtlsdr import SETTLE_SAMPLES

        return SETTLE_SAMPLES / self.sample_rate_hz

    @property
    def tau(self) -> float:
        return min_on_time_s() if self.min_on_s is None else self.min_on_s

    @property
    def hop_width_hz(self) -> float:
        return self.usable_fraction * self.sample_rate_hz

    def observed(self, dwell_s: float) -> float:
        return max(0.0, dwell_s - self.settle)

    def cost(self, dwell_s: float) -> float:
        return dwell_s + self.retune_s


# ---- the arithmetic -------------------------------------------------------------------------------
def p_burst_periodic(burst_s: float, observed_s: float, cycle_s: float, tau_s: float, *, stare: bool = False) -> float:
    """P(one burst is caught) for windows of ``observed_s`` every ``cycle_s`` (the closed form of the
    module docstring); ``stare``: one hop never retuned."""
    if burst_s < tau_s:
        return 0.0
    if stare:
        return 1.0
    if observed_s < tau_s or not cycle_s > 0:
        return 0.0
    return min(1.0, (observed_s + burst_s - 2 * tau_s) / cycle_s)


def catch_from_windows(windows: Iterable[tuple[float, float]], burst_s: float, tau_s: float,
                       t0: float, t1: float) -> tuple[float, float | None]:
    """(P(one burst), mean delay from a caught burst's start to its detection) for bursts starting
    uniformly in ``[t0, t1]``, observed in ``windows`` (start, end); exact interval arithmetic.

    A burst starting at t is detected by the first window [a, b] with a + τ − D ≤ t ≤ b − τ, at
    max(t, a) + τ. Delay None when nothing is caught.
    """
    if not t1 > t0:
        raise ValueError("empty range of burst start times")
    if burst_s < tau_s:
        return 0.0, None
    ws = sorted((a, b) for a, b in windows if b - a >= tau_s)
    caught = delay = 0.0
    reach = -math.inf  # the union of the earlier windows' catch sets, beyond its last start, ends here
    for a, b in ws:
        lo, hi = max(a + tau_s - burst_s, reach, t0), min(b - tau_s, t1)
        reach = max(reach, b - tau_s)
        if hi <= lo:
            continue
        caught += hi - lo
        # ∫ τ + max(0, a − t) dt over [lo, hi]
        delay += tau_s * (hi - lo)
        if lo < a:
            m = min(hi, a)
            delay += ((a - lo) ** 2 - (a - m) ** 2) / 2
    p = caught / (t1 - t0)
    return min(1.0, p), (delay / caught if caught > 0 else None)


def periodic_catch(burst_s: float, observed_s: float, cycle_s: float, tau_s: float, *,
                   stare: bool = False) -> tuple[float, float | None]:
    """(P(one burst), mean detection delay) for periodic windows, from :func:`catch_from_windows`
    over one period (P agrees with :func:`p_burst_periodic`)."""
    if burst_s < tau_s:
        return 0.0, None
    if stare:
        return 1.0, tau_s
    if observed_s < tau_s or not cycle_s > 0:
        return 0.0, None
    k = math.ceil((burst_s + cycle_s) / cycle_s) + 2
    windows = [(i * cycle_s, i * cycle_s + observed_s) for i in range(-1, k + 1)]
    return catch_from_windows(windows, burst_s, tau_s, 0.0, cycle_s)


def session_figures(p: float, delay_s: float | None, period_s: float, session_s: float) -> tuple[float, float | None]:
    """(P(caught in the session), expected time to the first detection) from P(one burst) (module
    docstring: independent phases, geometric)."""
    n = max(1, int(session_s // period_s))
    p_session = 1.0 - (1.0 - p) ** n
    if p <= 0:
        return p_session, None
    return p_session, period_s * (1.0 - p) / p + (delay_s or 0.0)


def coverage_segments(start_hz: float, stop_hz: float, hops: Sequence[Hop], width_hz: float) -> list[tuple[float, list[int]]]:
    """``[start_hz, stop_hz]`` cut where the set of hops whose span (center ± ``width_hz``/2) holds
    a channel changes: (segment width Hz, indices into ``hops``), in frequency order."""
    half = width_hz / 2
    near = [i for i, h in enumerate(hops) if h.center_hz + half > start_hz and h.center_hz - half < stop_hz]
    edges = {start_hz, stop_hz}
    for i in near:
        for e in (hops[i].center_hz - half, hops[i].center_hz + half):
            if start_hz < e < stop_hz:
                edges.add(e)
    xs = sorted(edges)
    out = []
    for x0, x1 in zip(xs, xs[1:]):
        mid = 0.5 * (x0 + x1)
        out.append((x1 - x0, [i for i in near if abs(hops[i].center_hz - mid) <= half]))
    return out


# ---- hops, receivers and the assignment ------------------------------------------------------------
def plan_hops(plan: WatchPlan, model: ReceiverModel) -> list[Hop]:
    """The plan's hops as the scheduler cuts them."""
    return Scheduler(plan, model.sample_rate_hz, model.usable_fraction).hops


def hop_revisits(hops: Sequence[Hop], model: ReceiverModel) -> list[float]:
    """Each hop's revisit time on one receiver that holds these hops (module docstring; 0: a hop
    alone on its receiver, staring)."""
    if len(hops) == 1:
        return [0.0]
    u = sum(model.cost(h.dwell_s) * h.priority / h.revisit_s for h in hops)
    return [u * h.revisit_s / h.priority for h in hops]


def _split(hops: list[Hop], k: int, model: ReceiverModel) -> list[list[Hop]]:
    """Share ``hops`` between k receivers: longest-processing-time first by load."""
    out: list[list[Hop]] = [[] for _ in range(k)]
    loads = [0.0] * k
    order = sorted(range(len(hops)), key=lambda i: -model.cost(hops[i].dwell_s) * hops[i].priority / hops[i].revisit_s)
    for i in order:
        r = min(range(k), key=lambda j: (loads[j], j))
        out[r].append(hops[i])
        loads[r] += model.cost(hops[i].dwell_s) * hops[i].priority / hops[i].revisit_s
    rank = {id(h): i for i, h in enumerate(hops)}
    return [sorted(rs, key=lambda h: rank[id(h)]) for rs in out]


@dataclass
class _Layout:
    receivers: list[list[Hop]]
    dedicated: set[str] = field(default_factory=set)  # bands given receivers of their own by the greedy step

    @property
    def stare(self) -> set[str]:
        """Bands every hop of which is alone on its receiver (never retuned)."""
        alone = {id(hs[0]) for hs in self.receivers if len(hs) == 1}
        bands = {h.band for hs in self.receivers for h in hs}
        return {b for b in bands if all(id(h) in alone for hs in self.receivers for h in hs if h.band == b)}


def _layout(hops: list[Hop], n: int, stare_bands: Sequence[str], model: ReceiverModel) -> _Layout | None:
    own = [[h] for h in hops if h.band in stare_bands]
    pool = [h for h in hops if h.band not in stare_bands]
    left = n - len(own)
    if left < 0 or (pool and left < 1):
        return None
    rest = _split(pool, left, model) if pool else [[] for _ in range(left)]
    return _Layout(own + rest, set(stare_bands))


def _hop_catch(layout: _Layout, model: ReceiverModel, burst_s: float) -> dict[int, tuple[int, float, float]]:
    """id(hop) → (receiver, revisit s, P(one burst))."""
    out = {}
    for r, hs in enumerate(layout.receivers):
        if not hs:
            continue
        for h, c in zip(hs, hop_revisits(hs, model)):
            p = p_burst_periodic(burst_s, model.observed(h.dwell_s), c, model.tau, stare=c == 0.0)
            out[id(h)] = (r, c, p)
    return out


def _objective(plan: WatchPlan, hops: list[Hop], layout: _Layout, model: ReceiverModel, burst_s: float) -> float:
    hc = _hop_catch(layout, model, burst_s)
    total = 0.0
    for b in plan.bands:
        ps = [hc[id(h)][2] for h in hops if h.band == b.name]
        total += b.priority * (sum(ps) / len(ps) if ps else 0.0)
    return total


def assign(plan: WatchPlan, receivers: int = 1, *, model: ReceiverModel = ReceiverModel(),
           burst_s: float = DEFAULT_BURST_S) -> _Layout:
    """Bands to receivers (module docstring): ``layout.receivers[r]`` is receiver r's hops."""
    if receivers < 1:
        raise ValueError("at least one receiver")
    hops = plan_hops(plan, model)
    best = _layout(hops, receivers, (), model)
    assert best is not None
    best_score = _objective(plan, hops, best, model, burst_s)
    chosen: list[str] = []
    order = sorted(range(len(plan.bands)), key=lambda i: (-plan.bands[i].priority, i))
    for i in order:
        name = plan.bands[i].name
        if name in chosen:
            continue
        trial = _layout(hops, receivers, (*chosen, name), model)
        if trial is None:
            continue
        score = _objective(plan, hops, trial, model, burst_s)
        if score > best_score + 1e-12:
            best, best_score = trial, score
            chosen.append(name)
    return best


# ---- the plan's figures ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BandCatch:
    name: str
    priority: int
    hops: int
    receivers: tuple[int, ...]
    dwell_s: float
    revisit_s: float                #: the plan's revisit_s
    revisit_achieved_s: float       #: the worst hop's revisit time (0: staring)
    stare: bool
    p_burst: float
    p_session: float
    time_to_detect_s: float | None  #: None: never caught
    reason: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "priority": self.priority, "hops": self.hops, "receivers": list(self.receivers),
                "dwell_s": self.dwell_s, "revisit_s": self.revisit_s,
                "revisit_achieved_s": round(self.revisit_achieved_s, 3), "stare": self.stare,
                "p_burst": round(self.p_burst, 6), "p_session": round(self.p_session, 6),
                "time_to_detect_s": None if self.time_to_detect_s is None else round(self.time_to_detect_s, 1),
                "reason": self.reason}


@dataclass(frozen=True)
class PlanCatch:
    plan: str
    receivers: int
    burst_s: float
    period_s: float
    session_s: float
    model: ReceiverModel
    bands: tuple[BandCatch, ...]
    assignment: tuple[dict, ...]
    warnings: tuple[str, ...]
    weighted_catch: float           #: Σ priority × P(one burst) / Σ priority

    def as_dict(self) -> dict:
        m = self.model
        return {"plan": self.plan, "receivers": self.receivers, "burst_s": self.burst_s, "period_s": self.period_s,
                "session_s": self.session_s, "sample_rate_hz": m.sample_rate_hz, "hop_width_hz": m.hop_width_hz,
                "retune_s": m.retune_s, "settle_s": round(m.settle, 6), "min_on_s": m.tau,
                "weighted_catch": round(self.weighted_catch, 6),
                "bands": [b.as_dict() for b in self.bands], "assignment": list(self.assignment),
                "warnings": list(self.warnings)}


def plan_catch(plan: WatchPlan, receivers: int = 1, *, burst_s: float = DEFAULT_BURST_S,
               period_s: float = DEFAULT_PERIOD_S, session_s: float = DEFAULT_SESSION_S,
               model: ReceiverModel = ReceiverModel()) -> PlanCatch:
    """The nominal figures of ``plan`` on ``receivers`` receivers (``examwatch plan check``)."""
    for what, v in (("burst", burst_s), ("period", period_s), ("session", session_s)):
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"the {what} must be a positive number of seconds, got {v}")
    layout = assign(plan, receivers, model=model, burst_s=burst_s)
    hc = _hop_catch(layout, model, burst_s)
    hops = [h for rs in layout.receivers for h in rs]
    bands, warnings = [], []
    for b in plan.bands:
        bh = [h for h in hops if h.band == b.name]
        per = [(hc[id(h)], periodic_catch(burst_s, model.observed(h.dwell_s), hc[id(h)][1], model.tau,
                                          stare=hc[id(h)][1] == 0.0)) for h in bh]
        p = _band_share(b, hops, model, lambda idx: 1.0 - math.prod(1.0 - hc[id(hops[i])][2] for i in idx))
        delays = [x[1][1] for x in per if x[1][1] is not None]
        delay = sum(delays) / len(delays) if delays else None
        p_session, ttd = session_figures(p, delay, period_s, session_s)
        revisit = max(x[0][1] for x in per)
        rx = tuple(sorted({x[0][0] for x in per}))
        stare = all(x[0][1] == 0.0 for x in per)
        bands.append(BandCatch(b.name, b.priority, len(bh), rx, b.dwell_s, b.revisit_s, revisit, stare, p, p_session,
                               ttd, getattr(b, "reason", "")))
        if revisit > b.revisit_s * (1 + 1e-9):
            warnings.append(f"band {b.name}: revisited every {revisit:.1f} s, longer than its revisit_s "
                            f"{b.revisit_s:g} s ({len(bh)} hop(s) on receiver(s) {', '.join(map(str, rx))} of {receivers})")
        if model.observed(b.dwell_s) < model.tau:
            warnings.append(f"band {b.name}: dwell_s {b.dwell_s:g} s leaves {model.observed(b.dwell_s) * 1e3:.0f} ms "
                            f"after the {model.settle * 1e3:.0f} ms settle, less than the {model.tau * 1e3:.0f} ms "
                            f"a burst must be seen: nothing is detected there")
    assignment = []
    for r, rs in enumerate(layout.receivers):
        names = list(dict.fromkeys(h.band for h in rs))
        cyc = sum(model.cost(h.dwell_s) for h in rs) if len(rs) > 1 else 0.0
        assignment.append({"receiver": r, "bands": names, "hops": len(rs), "stare": len(rs) == 1,
                           "sweep_s": round(cyc, 3)})
    wsum = sum(b.priority for b in bands)
    weighted = sum(b.priority * b.p_burst for b in bands) / wsum
    return PlanCatch(plan.name, receivers, burst_s, period_s, session_s, model, tuple(bands), tuple(assignment),
                     tuple(warnings), weighted)


def _band_share(band, hops: Sequence[Hop], model: ReceiverModel, p_of: Callable[[list[int]], float]) -> float:
    """The mean over the band's channels of ``p_of(covering hops)`` (:func:`coverage_segments`)."""
    segs = coverage_segments(band.start_hz, band.stop_hz, hops, model.hop_width_hz)
    cache: dict[tuple[int, ...], float] = {}
    total = 0.0
    for width, idx in segs:
        key = tuple(idx)
        if key not in cache:
            cache[key] = p_of(idx) if idx else 0.0
        total += width * cache[key]
    return total / (band.stop_hz - band.start_hz)


def revisit_summary(pc: PlanCatch) -> str | None:
    """One line for the monitor's start: the bands revisited more slowly than their revisit_s."""
    late = [b for b in pc.bands if not b.stare and b.revisit_achieved_s > b.revisit_s * (1 + 1e-9)]
    if not late:
        return None
    parts = ", ".join(f"{b.name} {b.revisit_achieved_s:.1f} s (revisit_s {b.revisit_s:g})" for b in late)
    return (f"{pc.receivers} receiver(s) cannot revisit {len(late)} of the plan's {len(pc.bands)} band(s) within "
            f"their revisit_s: {parts}; `examwatch plan check` prints the catch rates")


