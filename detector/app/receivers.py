"""What ``examwatch monitor`` resolves for several receivers (issue #19 item 1): which sources, their
calibration and their share of the watch plan, as :class:`~detector.app.monitor_app.ReceiverSpec` s.

Sources come from the command line (``SOURCE`` repeated; ``sim:SCENE?receivers=N`` for N simulated
receivers in one vehicle) or, when none is given there, from the site file's ``[[receiver]]``
tables (:class:`~detector.config.receivers.ReceiverConfig`). Each is opened once here, so that a
bad spec or a missing dongle is exit 2 before anything is served; the monitor reopens each one
through its own factory. Every step raises :class:`~detector.core.errors.InputError` on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from detector.config.receivers import ReceiverConfig, receiver_names, receiver_schedulers, sim_receivers_plan, split_sim_receivers
from detector.core.errors import InputError

__all__ = ["ReceiverEntry", "OpenReceiver", "receiver_entries", "open_receivers", "receivers_plan", "receiver_specs"]


@dataclass(frozen=True)
class ReceiverEntry:
    """A receiver before it is opened: its name, source spec, ``[[receiver]]`` table (or None) and,
    for ``sim:``, which of the vehicle's simulated receivers it is."""

    name: str
    spec: str
    config: ReceiverConfig | None = None
    sim_index: int = 0


@dataclass
class OpenReceiver:
    entry: ReceiverEntry
    source: object  # a MonitorSource

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def info(self):
        return self.source.info


def receiver_entries(sources: Sequence[str], site_receivers: Sequence[ReceiverConfig] = ()) -> tuple[list[ReceiverEntry], str | None]:
    """The receivers of a monitor: ``sources`` (the command line) when given, else the site's
    ``[[receiver]]`` tables; and a warning when both were given (the command line wins)."""
    warning = None
    if sources:
        if site_receivers:
            warning = (f"the site file's {len(site_receivers)} [[receiver]] table(s) are ignored: SOURCE was given on the "
                       "command line")
        expanded: list[tuple[str, int]] = []
        for spec in sources:
            base, n = split_sim_receivers(spec)
            if base == spec and base.startswith("sim:"):  # no ?receivers=: the scene's [receiver] count
                from detector.sim.scene import scene_from_spec

                n = scene_from_spec(base).receiver.count
            expanded += [(base, k) for k in range(n)]
        sims = [k for b, k in expanded if b.startswith("sim:")]
        if len(sims) != len(expanded) and sims:
            raise InputError("the receivers of one monitor are either all simulated (sim:) or all real")
        names = receiver_names(len(expanded))
        # several plain sim: sources are several receivers of one vehicle: number them in order
        return [ReceiverEntry(nm, b, None, i if b.startswith("sim:") else 0)
                for i, (nm, (b, _)) in enumerate(zip(names, expanded))], warning
    if not site_receivers:
        raise InputError("give a SOURCE (sim:default, rtlsdr:0, a recording) or [[receiver]] tables in the site file")
    names = receiver_names(len(site_receivers), site_receivers)
    out = []
    for i, (nm, cfg) in enumerate(zip(names, site_receivers)):
        spec = cfg.source_spec()
        if spec is None:
            raise InputError(f"[[receiver]] {nm}: give its spec (rtlsdr:0, sim:default) or its serial")
        out.append(ReceiverEntry(nm, spec, cfg, i if spec.startswith("sim:") else 0))
    if len({e.spec.startswith("sim:") for e in out}) > 1:
        raise InputError("the receivers of one monitor are either all simulated (sim:) or all real")
    return out, None


def open_receivers(entries: Sequence[ReceiverEntry], *, open_one: Callable[..., object]) -> list[OpenReceiver]:
    """Open each receiver once (``open_one(spec, sim_receiver=k, profile=...)``: a
    :func:`~detector.app.monitor_setup.open_monitor_source`); what was opened is closed again when
    a later one fails, and the error names the receiver."""
    opened: list[OpenReceiver] = []
    try:
        for e in entries:
            profile = Path(e.config.profile) if e.config is not None and e.config.profile else None
            try:
                src = open_one(e.spec, sim_receiver=e.sim_index, profile=profile)
            except InputError as exc:
                raise InputError(f"receiver {e.name} ({e.spec}): {exc}") from None
            opened.append(OpenReceiver(e, src))
    except BaseException:
        for o in opened:
            o.source.close()
        raise
    rates = {o.info.sample_rate_hz for o in opened}
    if len(rates) > 1:
        for o in opened:
            o.source.close()
        raise InputError(f"the receivers run at different sample rates ({', '.join(f'{r / 1e6:g} MS/s' for r in sorted(rates))}); "
                         "give them one --rate")
    return opened


def receivers_plan(kind: str, plan_path: Path | None, center_hz: float | None, info, n: int):
    """The whole watch plan of ``n`` receivers (None: each receiver dwells where its source is,
    recordings): the given plan (tunable sources only), the default exam-band plan for dongles
    without ``--center``, N adjacent spans for N simulated receivers."""
    from detector.config.plan import default_plan, load_plan, single_band_plan

    if plan_path is not None:
        if kind not in ("rtlsdr", "sim"):
            raise InputError("--plan needs tunable sources (rtlsdr: or sim:)")
        return load_plan(plan_path)
    if kind == "rtlsdr":
        if center_hz is None:
            return default_plan()
        return single_band_plan(center_hz, info.sample_rate_hz)
    if kind == "sim":
        return sim_receivers_plan(info.center_hz, info.sample_rate_hz, n)
    return None


def receiver_specs(opened: Sequence[OpenReceiver], plan, *, calibration_of: Callable[[OpenReceiver, object], object],
                   wall_clock: bool):
    """The :class:`~detector.app.monitor_app.ReceiverSpec` s: each receiver's share of ``plan``
    (:func:`~detector.config.receivers.receiver_schedulers`; ``[[receiver]] bands`` kept), its
    calibration (``calibration_of(receiver, scheduler)``) and its factory."""
    from detector.app.monitor_app import ReceiverSpec
    from detector.config.plan import Scheduler, single_band_plan

    if plan is None:  # recordings: each dwells where it is tuned
        schedulers = [Scheduler(single_band_plan(o.info.center_hz, o.info.sample_rate_hz), o.info.sample_rate_hz)
                      for o in opened]
        bands = [tuple(b.name for b in s.plan.bands) for s in schedulers]
    else:
        fixed = [list(o.entry.config.bands) if o.entry.config is not None else [] for o in opened]
        shares = receiver_schedulers(plan, opened[0].info.sample_rate_hz, len(opened), fixed=fixed)
        schedulers = [s.scheduler for s in shares]
        bands = [s.bands for s in shares]
    return [ReceiverSpec(o.name, o.source.factory, sch, calibration_of(o, sch), b, wall_clock)
            for o, sch, b in zip(opened, schedulers, bands)]
