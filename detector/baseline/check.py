"""Checking, before any work, that a baseline can be compared with what a source will deliver."""

from __future__ import annotations

from detector.core.errors import InputError

__all__ = ["check_baseline", "check_plan_coverage"]


def check_baseline(baseline, sources, engine, *, site: str | None = None) -> list[str]:
    """Align the baseline with the first frame grid of each IQ source, as the engine will.

    Raises :class:`~detector.baseline.RegridError` (an InputError, exit 2) when the grids cannot
    be compared; returns warnings for a baseline that covers none of a source's band or belongs to
    another site."""
    import numpy as np

    from detector.baseline import align
    from detector.dsp import default_nfft, make_plan

    warnings = []
    if site is not None and getattr(baseline, "site", None) not in (None, site):
        warnings.append(f"the baseline was surveyed for site {baseline.site!r}, not {site!r}")
    for src in sources:
        info = getattr(src, "info", None)
        spectra = getattr(src, "spectra", None)
        if info is None and spectra:
            # a sweep file: its frames carry their own grid (the baseline is regridded per frame)
            first = spectra[0]
            lo, hi = float(first.freqs_hz[0]), float(first.freqs_hz[-1])
            if hi < baseline.freqs_hz[0] or lo > baseline.freqs_hz[-1]:
                warnings.append(f"the baseline ({baseline.freqs_hz[0] / 1e6:.3f}–{baseline.freqs_hz[-1] / 1e6:.3f} MHz) covers "
                                f"none of {getattr(src, 'path', 'the sweep')} ({lo / 1e6:.3f}–{hi / 1e6:.3f} MHz): "
                                "detection there is CFAR-only")
            continue
        if info is None:
            continue
        nfft = engine.config.nfft or default_nfft(info.sample_rate_hz, engine.config.bin_hz)
        plan = make_plan(info.sample_rate_hz, nfft=nfft)
        freqs = info.center_hz + plan.offsets_hz
        try:
            aligned = align(baseline, freqs, plan.rbw_hz)
        except InputError as exc:
            raise type(exc)(f"{exc}: survey at the sample rate of {info.name} "
                            f"({info.sample_rate_hz / 1e3:g} kS/s), which gives that RBW") from None
        looks = max(1, int(round(engine.config.frame_s * info.sample_rate_hz / plan.step))) * plan.looks_per_segment
        base_looks = float(getattr(baseline, "n_looks", 0) or 0)
        same_rbw = abs(plan.rbw_hz - float(baseline.rbw_hz)) <= 0.01 * float(baseline.rbw_hz)
        if same_rbw and base_looks > 0 and not 1 / 1.5 <= looks / base_looks <= 1.5:
            warnings.append(f"the baseline's frames averaged {base_looks:.0f} looks per bin, this run's {looks:.0f} "
                            f"(--frame-s {engine.config.frame_s:g}): its quantiles do not describe these frames; "
                            "use the survey's --frame-s")
        if not np.any(aligned.covered):
            warnings.append(f"the baseline ({baseline.freqs_hz[0] / 1e6:.3f}–{baseline.freqs_hz[-1] / 1e6:.3f} MHz) covers none "
                            f"of {info.name} ({freqs[0] / 1e6:.3f}–{freqs[-1] / 1e6:.3f} MHz): detection there is CFAR-only")
    return warnings


def check_plan_coverage(baseline, hop_centers_hz, half_width_hz: float) -> list[str]:
    """A warning when the baseline covers none of some hops of the watch plan (detection there is
    CFAR-only, and the survey's licensed stations alert); ``[]`` when it covers every hop.

    ``hop_centers_hz`` are the plan's hop centers (Hz) and ``half_width_hz`` the half width a hop
    watches (Hz)."""
    f0, f1 = float(baseline.freqs_hz[0]), float(baseline.freqs_hz[-1])
    out = [c for c in hop_centers_hz if c + half_width_hz < f0 or c - half_width_hz > f1]
    if not out:
        return []
    shown = ", ".join(f"{c / 1e6:.3f} MHz" for c in out[:4]) + (" …" if len(out) > 4 else "")
    return [f"the baseline ({f0 / 1e6:.3f}–{f1 / 1e6:.3f} MHz) covers none of {len(out)} of the {len(hop_centers_hz)} "
            f"watched hop(s) ({shown}): detection there is CFAR-only; survey those bands too (survey --merge)"]
