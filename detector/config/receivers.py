"""The receivers of one monitor (issue #19 item 1): which sources, and which bands each one watches.

A monitor takes several sources: ``SOURCE`` repeated on the command line, ``[[receiver]]`` tables
in the site file (spec, serial, gain, profile, bands), or one ``sim:`` spec with a receiver count
(``sim:default?receivers=4``: four simulated dongles in the same vehicle, each with its own seed
and impairments). :func:`receiver_schedulers` gives each receiver its share of the watch plan:

* a receiver whose ``bands`` are named watches those bands (receivers that name the same band
  share its hops);
* the others are assigned the remaining bands by :func:`detector.config.intercept.assign`, the
  catch-rate planner of ``examwatch plan check --receivers N`` (a receiver may stare at a
  high-priority band while the others sweep), so that the running assignment is the one the
  planner's figures describe;
* a single dwell (no plan: a recording's center, the simulated site's tuning) cannot be shared:
  :func:`sim_receivers_plan` gives N simulated receivers N adjacent hops, the first on the scene's
  own tuning, so that each one stares at its own span.

Pure configuration: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from detector.config.plan import Band, Hop, Scheduler, WatchPlan
from detector.core.errors import InputError

__all__ = ["ReceiverConfig", "ReceiverShare", "receiver_schedulers", "sim_receivers_plan", "split_sim_receivers",
           "receiver_names", "MAX_RECEIVERS"]

#: more dongles than this on one vehicle's USB is a typing error, not a set-up
MAX_RECEIVERS = 16


class ReceiverConfig(BaseModel):
    """One receiver: ``[receiver]`` (the only one) or ``[[receiver]]`` (several) in the site file.

    ``spec`` is a source spec (``rtlsdr:0``, ``rtlsdr:serial=00000002,gain=30``, ``sim:default``);
    without it, ``rtlsdr:serial=SERIAL`` when ``serial`` is given. ``gain_db`` and ``ppm`` are added
    to an ``rtlsdr:`` spec that does not set them; ``profile`` is the dongle's calibration profile
    (``examwatch calibrate``); ``bands`` the plan's band names this receiver watches (default:
    assigned by the planner)."""

    model_config = ConfigDict(extra="forbid")
    name: Optional[str] = None
    spec: Optional[str] = None
    serial: Optional[str] = None
    gain_db: Optional[float] = None
    ppm: float = 0.0
    profile: Optional[str] = None
    bands: list[str] = Field(default_factory=list)

    def source_spec(self) -> str | None:
        """The source spec with ``serial``, ``gain_db`` and ``ppm`` applied (None: no source given)."""
        spec = self.spec
        if spec is None and self.serial is not None:
            spec = f"rtlsdr:serial={self.serial}"
        if spec is None or not spec.startswith("rtlsdr:"):
            return spec
        keys = {k.split("=", 1)[0] for k in spec[len("rtlsdr:"):].split(",") if "=" in k}
        extra = []
        if self.serial is not None and "serial" not in keys and spec.rstrip(":") == "rtlsdr":
            extra.append(f"serial={self.serial}")
        if self.gain_db is not None and "gain" not in keys:
            extra.append(f"gain={self.gain_db:g}")
        if self.ppm and "ppm" not in keys:
            extra.append(f"ppm={int(round(self.ppm))}")
        if not extra:
            return spec
        body = spec[len("rtlsdr:"):]
        return "rtlsdr:" + ",".join([body, *extra] if body else extra)


def split_sim_receivers(spec: str) -> tuple[str, int]:
    """``sim:default?receivers=4`` → (``sim:default``, 4); any other spec → (spec, 1).

    Raises InputError for an unknown query key or a count outside 1–:data:`MAX_RECEIVERS`."""
    if not spec.startswith("sim:") or "?" not in spec:
        return spec, 1
    base, query = spec.split("?", 1)
    n = 1
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "receivers":
            raise InputError(f"{spec}: unknown sim: option {key!r} (use ?receivers=N)")
        try:
            n = int(value)
        except ValueError:
            raise InputError(f"{spec}: receivers must be a whole number, got {value!r}") from None
    if not 1 <= n <= MAX_RECEIVERS:
        raise InputError(f"{spec}: receivers must be 1–{MAX_RECEIVERS}, got {n}")
    return base, n


def receiver_names(n: int, configs: Sequence[ReceiverConfig] = ()) -> list[str]:
    """The receivers' names: a ``[[receiver]]``'s ``name``, else ``rx0``, ``rx1``…; InputError on a
    name given twice."""
    names = [(configs[i].name if i < len(configs) and configs[i].name else f"rx{i}") for i in range(n)]
    if len(set(names)) != len(names):
        raise InputError(f"receiver names must be unique, got {', '.join(names)}")
    for nm in names:
        if not nm.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"receiver name {nm!r}: use letters, digits, - and _ only")
    return names


def sim_receivers_plan(center_hz: float, sample_rate_hz: float, n: int, *, usable_fraction: float = 0.8) -> WatchPlan:
    """N one-hop bands for N simulated receivers: the first on ``center_hz`` (the scene's tuning),
    then alternately above and below it, one usable span apart, each staring (dwell 3600 s)."""
    width = usable_fraction * sample_rate_hz
    bands = []
    for i in range(n):
        k = (i + 1) // 2 * (1 if i % 2 else -1)
        c = center_hz + k * width
        bands.append(Band(name=f"dwell{'+' if k > 0 else ''}{k}" if k else "dwell", start_hz=c - width / 2,
                          stop_hz=c + width / 2, priority=1, dwell_s=3600.0, revisit_s=3600.0,
                          reason="a simulated receiver's own span"))
    return WatchPlan(name=f"sim-{n}-receivers", band=bands)


@dataclass(frozen=True)
class ReceiverShare:
    """A receiver's share of the plan: its scheduler (over its hops only) and its bands' names."""

    scheduler: Scheduler
    bands: tuple[str, ...]


def _of_hops(plan: WatchPlan, sample_rate_hz: float, hops: list[Hop], usable_fraction: float) -> Scheduler:
    sch = Scheduler(plan, sample_rate_hz, usable_fraction)
    sch.hops = [Hop(h.band, h.center_hz, h.dwell_s, h.priority, h.revisit_s) for h in hops]
    return sch


def receiver_schedulers(plan: WatchPlan, sample_rate_hz: float, n: int, *, fixed: Sequence[Sequence[str]] = (),
                        usable_fraction: float = 0.8, model=None) -> list[ReceiverShare]:
    """Each of ``n`` receivers' share of ``plan`` (module docstring).

    Parameters
    ----------
    plan : WatchPlan
    sample_rate_hz : float
        The receivers' sample rate (all receivers of a plan use one rate).
    n : int
        Number of receivers, ≥ 1.
    fixed : sequence of sequence of str
        ``fixed[i]``: the bands receiver i was given (``[[receiver]] bands``); empty: assigned.
    model : ReceiverModel, optional
        Of the planner (:class:`~detector.config.intercept.ReceiverModel`; default: this rate).

    Raises
    ------
    InputError
        A band named that the plan does not have; a receiver left with nothing to watch (more
        receivers than hops).
    """
    from detector.config.intercept import ReceiverModel, _split, assign

    if n < 1:
        raise InputError("at least one receiver")
    model = model or ReceiverModel(sample_rate_hz=sample_rate_hz, usable_fraction=usable_fraction)
    full = Scheduler(plan, sample_rate_hz, usable_fraction)
    names = [b.name for b in plan.bands]
    fixed = [list(f) for f in fixed] + [[] for _ in range(n - len(fixed))]
    for i, f in enumerate(fixed):
        for b in f:
            if b not in names:
                raise InputError(f"receiver {i}: band {b!r} is not in the watch plan ({', '.join(names)})")
    if n == 1 and not fixed[0]:
        return [ReceiverShare(full, tuple(names))]
    shares: list[list[Hop] | None] = [None] * n
    taken = {b for f in fixed for b in f}
    # bands named by several receivers: their hops shared between those receivers
    for b in taken:
        owners = [i for i, f in enumerate(fixed) if b in f]
        parts = _split([h for h in full.hops if h.band == b], len(owners), model)
        for i, part in zip(owners, parts):
            shares[i] = (shares[i] or []) + part
    free = [i for i in range(n) if not fixed[i]]
    rest = [b for b in plan.bands if b.name not in taken]
    if free and rest:
        sub = WatchPlan(name=plan.name, band=rest)
        layout = assign(sub, len(free), model=model)
        for i, hops in zip(free, layout.receivers):
            shares[i] = list(hops)
    out = []
    for i, hops in enumerate(shares):
        if not hops:
            raise InputError(f"{n} receivers for a plan of {len(full.hops)} hop(s): receiver {i} has nothing to watch "
                             f"(give fewer receivers or a wider plan)")
        out.append(ReceiverShare(_of_hops(plan, sample_rate_hz, hops, usable_fraction),
                                 tuple(dict.fromkeys(h.band for h in hops))))
    return out
