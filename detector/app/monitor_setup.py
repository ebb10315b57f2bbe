"""What ``examwatch monitor`` resolves before it composes the vehicle: the site, the source (with
the dongle's integer ppm in the tuner), the watch plan and the baseline's fit.

Each step raises :class:`~detector.core.errors.InputError` (exit 2) on bad input before anything
is opened for writing; warnings are returned as sentences for the command to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from detector.core.errors import InputError

__all__ = ["MonitorSource", "open_monitor_source", "resolve_monitor_site", "watch_scheduler", "revisit_warning", "check_drift_in_plan",
           "baseline_warnings", "first_tune_hz"]


def resolve_monitor_site(site: str, sites_dir: Path, scene=None):
    """The :class:`~detector.config.site.Site` of ``--site`` (a sim: scene supplies one when there
    is no file), and a warning when a real source runs without a site file (or None)."""
    from detector.config.site import resolve_site

    if scene is not None:
        from detector.sim.site import site_from_scene

        return resolve_site(site, sites_dir, fallback=site_from_scene(scene, site)), None
    cfg = resolve_site(site, sites_dir)
    warning = None
    if not Path(site).suffix == ".toml" and not Path(site).is_file() and not (sites_dir / f"{site}.toml").is_file():
        warning = (f"no site file {sites_dir / (site + '.toml')}: monitoring site {site!r} without exam sessions, "
                   "whitelist or position (a site TOML: README, monitor, Site)")
    return cfg, warning


@dataclass
class MonitorSource:
    """The monitor's source: opened once (checked: a bad source is exit 2 before anything is
    served), then reopened through :meth:`factory` by the monitor."""

    spec: str
    kind: str
    open: Callable[[], object]
    first: object
    #: the integer ppm of the dongle's profile set in the tuner (the rest is corrected digitally)
    hardware_ppm: float = 0.0
    _pending: list = field(default_factory=list)

    @property
    def info(self):
        return self.first.info

    def factory(self):
        """The source opened first, then a fresh one on every reopen (a dongle: always fresh)."""
        return self._pending.pop() if self._pending else self.open()

    def close(self) -> None:
        """Close the source opened first if no monitor took it (a set-up that failed later)."""
        while self._pending:
            try:
                self._pending.pop().close()
            except Exception:  # noqa: BLE001 - closing what was never used
                pass


def open_monitor_source(spec: str, *, sample_format=None, sample_rate_hz=None, center_hz=None, seed=None,
                        realtime: bool = False, profile: Path | None = None, profiles_dir: Path | None = None,
                        sim_receiver: int = 0) -> MonitorSource:
    """Open the monitor's source (see :class:`MonitorSource`); a sweep CSV is refused.
    ``sim_receiver``: which of the vehicle's simulated receivers a ``sim:`` spec is."""
    from detector.app.sources import open_source
    from detector.sources import source_kind

    kind = source_kind(spec)
    if kind == "sweep":
        raise InputError(f"{spec}: monitor needs IQ (a sweep CSV holds spectra; use replay)")
    hardware_ppm = 0.0
    if kind == "rtlsdr":
        # a dongle's profile (given, or found by its serial) sets the tuner's freq_correction to its
        # integer ppm; the remainder is corrected digitally (load_correction(hardware_ppm=...))
        from detector.app.correction import load_correction
        from detector.sources.rtlsdr import parse_rtlsdr_spec

        parsed = parse_rtlsdr_spec(spec)
        prof = load_correction(profile, serial=parsed.serial, profiles_dir=profiles_dir)
        if prof is not None and parsed.ppm == 0 and prof.ppm:
            hardware_ppm = float(round(prof.ppm))
            spec = f"{spec}{',' if ':' in spec else ':'}ppm={int(hardware_ppm)}"

    def open_():
        return open_source(spec, sample_format=sample_format, sample_rate_hz=sample_rate_hz, center_hz=center_hz,
                           sim_window="exam", sim_seed=seed, realtime=realtime, sim_receiver=sim_receiver)

    first = open_()
    src = MonitorSource(spec, kind, open_, first, hardware_ppm)
    if kind == "rtlsdr":
        first.close()  # the dongle is opened again by the monitor
    else:
        src._pending.append(first)
    return src


def watch_scheduler(kind: str, plan_path: Path | None, center_hz: float | None, info):
    """The hop scheduler: the plan's (tunable sources only), the default exam-band plan for a
    dongle without ``--center``, else a dwell where the source is tuned."""
    from detector.config.plan import Scheduler, default_plan, load_plan, single_band_plan

    if plan_path is not None:
        if kind not in ("rtlsdr", "sim"):
            raise InputError("--plan needs a tunable source (rtlsdr: or sim:)")
        return Scheduler(load_plan(plan_path), info.sample_rate_hz)
    if kind == "rtlsdr" and center_hz is None:
        return Scheduler(default_plan(), info.sample_rate_hz)
    return Scheduler(single_band_plan(info.center_hz, info.sample_rate_hz), info.sample_rate_hz)


def first_tune_hz(kind: str, plan_path: Path | None, center_hz: float | None, sample_rate_hz: float | None) -> float | None:
    """Where a dongle is first tuned when ``--center`` is not given: the first hop of the watch
    plan (``--plan``/the site's, else the default exam-band plan), in Hz. The monitor retunes it
    as the plan says from then on. ``center_hz`` (``--center``) when given; None for a source
    that is not tunable (``rtlsdr:`` only is)."""
    if center_hz is not None or kind != "rtlsdr":
        return center_hz
    from detector.config.plan import Scheduler, default_plan, load_plan

    plan = load_plan(plan_path) if plan_path is not None else default_plan()
    return Scheduler(plan, sample_rate_hz or 2.4e6).hops[0].center_hz


def revisit_warning(scheduler) -> str | None:
    """The bands the receiver cannot revisit within their revisit_s, with the achieved figures
    (one line; None for a dwell or a plan that keeps up)."""
    if scheduler.single:
        return None
    from detector.config.intercept import ReceiverModel, plan_catch, revisit_summary

    model = ReceiverModel(sample_rate_hz=scheduler.sample_rate_hz, usable_fraction=scheduler.usable_fraction)
    return revisit_summary(plan_catch(scheduler.plan, 1, model=model))


def check_drift_in_plan(drift, scheduler, sample_rate_hz: float) -> None:
    """Refuse a ``--ppm-reference`` in none of the bands watched."""
    if drift is None or any(abs(drift.reference_hz - h.center_hz) < 0.45 * sample_rate_hz for h in scheduler.hops):
        return
    hops = scheduler.hops
    raise InputError(f"--ppm-reference {drift.reference_hz / 1e6:.6f} MHz is in none of the bands watched "
                     f"({', '.join(f'{h.center_hz / 1e6:.3f} MHz' for h in hops[:4])}"
                     f"{' …' if len(hops) > 4 else ''}; ± {0.45 * sample_rate_hz / 1e6:.3f} MHz)")


def baseline_warnings(base, first, scheduler, *, site: str, plan_given: bool) -> list[str]:
    """Where the baseline does not fit the source (grid, site, calibration) or the plan's hops."""
    from detector.app.monitor_app import build_engine
    from detector.baseline.check import check_baseline, check_plan_coverage

    warnings = check_baseline(base, [first], build_engine(), site=site)
    if plan_given or not scheduler.single:  # every hop of a plan, not only where the source starts
        warnings += check_plan_coverage(base, [h.center_hz for h in scheduler.hops], 0.45 * first.info.sample_rate_hz)
    return warnings
