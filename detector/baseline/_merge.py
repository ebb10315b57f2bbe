"""Merging baselines: :func:`merge` combines two surveys of one site exactly (histograms and counts add, frequency ranges unite).

No function here reads files, the clock or the network.
"""

from __future__ import annotations

import numpy as np

from detector.baseline._grid import fmt_hz, grid_positions, same_rbw, snap
from detector.baseline._levels import LOOKS_TOLERANCE, N_LEVELS, _max_time, _min_time
from detector.baseline._model import SiteBaseline

__all__ = ["merge"]


def merge(a: SiteBaseline, b: SiteBaseline) -> SiteBaseline:
    """Combine two surveys of one site: histograms and counts add, frequency ranges unite.

    Merging two halves of a survey gives the same histograms, counts and hence statistics as one
    survey of all frames (``sum_lin`` up to floating-point rounding of the sum's order).

    Parameters
    ----------
    a, b : SiteBaseline
        Same site, unit, occupancy margin, RBW and grid spacing (within 1 %), looks within 10 %,
        and grids that align (every bin of ``b`` within 1 % of a bin of ``a``'s grid extended).

    Returns
    -------
    SiteBaseline
        On the union grid (``a``'s bins extended at ``a``'s spacing to span both); bins covered
        by neither have ``frames == 0``. Time span from the earliest start to the latest end,
        ``span_s`` summed, sources concatenated (``a``'s first). Metadata (rbw, looks) are ``a``'s.

    Raises
    ------
    ValueError
        Any of the requirements above not met, or (for dBFS levels) different known receiver gains.
    """
    if a.site != b.site:
        raise ValueError(f"cannot merge baselines of different sites ({a.site!r} and {b.site!r})")
    if a.unit != b.unit:
        raise ValueError(f"cannot merge a baseline in {a.unit} with one in {b.unit}")
    if not same_rbw(a.rbw_hz, b.rbw_hz):
        raise ValueError(
            f"cannot merge baselines of different RBW ({fmt_hz(a.rbw_hz)} Hz and {fmt_hz(b.rbw_hz)} Hz); "
            "survey again with one RBW"
        )
    if not same_rbw(a.bin_hz, b.bin_hz):
        raise ValueError(
            f"cannot merge baselines of different grid spacing ({fmt_hz(a.bin_hz)} Hz and {fmt_hz(b.bin_hz)} Hz)"
        )
    if abs(a.n_looks - b.n_looks) > LOOKS_TOLERANCE * a.n_looks:
        raise ValueError(
            f"cannot merge baselines of {a.n_looks:g}- and {b.n_looks:g}-look frames: their per-bin "
            "statistics differ; survey with one frame length"
        )
    if abs(a.margin_db - b.margin_db) > 1e-9:
        raise ValueError(
            f"cannot merge baselines whose occupancy used different margins ({a.margin_db:.3f} dB and "
            f"{b.margin_db:.3f} dB)"
        )
    gain = a.gain_db if b.gain_db is None else b.gain_db if a.gain_db is None else None
    if a.gain_db is not None and b.gain_db is not None:
        if abs(a.gain_db - b.gain_db) <= 1e-6:
            gain = a.gain_db
        elif a.unit == "dBFS":
            raise ValueError(
                f"cannot merge dBFS baselines taken at different receiver gains ({a.gain_db:g} dB and "
                f"{b.gain_db:g} dB): their levels are not comparable; calibrate to dBm first"
            )
    pos = grid_positions(b.freqs_hz, float(a.freqs_hz[0]), a.bin_hz)
    idx, on_grid = snap(pos)
    if not on_grid.all():
        off = float(np.max(np.abs(pos - idx)))
        raise ValueError(
            f"cannot merge baselines whose grids do not align: bins of the second are up to "
            f"{off:.3f} of a bin ({fmt_hz(off * a.bin_hz)} Hz) off the first's grid"
        )
    ma = a.n_bins
    k_lo = min(0, int(idx[0]))
    k_hi = max(ma - 1, int(idx[-1]))
    freqs = float(a.freqs_hz[0]) + a.bin_hz * np.arange(k_lo, k_hi + 1, dtype=np.float64)
    sa = slice(-k_lo, -k_lo + ma)
    freqs[sa] = a.freqs_hz
    ib = idx - k_lo
    mu = freqs.size
    hist = np.zeros((mu, N_LEVELS), dtype=np.int64)
    occupied = np.zeros(mu, dtype=np.int64)
    frames = np.zeros(mu, dtype=np.int64)
    sum_lin = np.zeros(mu, dtype=np.float64)
    for arr, xa, xb in ((hist, a.hist, b.hist), (occupied, a.occupied, b.occupied),
                        (frames, a.frames, b.frames), (sum_lin, a.sum_lin, b.sum_lin)):
        arr[sa] += xa
        arr[ib] += xb
    if a.calibration_profile == b.calibration_profile or b.calibration_profile is None:
        profile = a.calibration_profile
    elif a.calibration_profile is None:
        profile = b.calibration_profile
    else:
        profile = f"{a.calibration_profile}, {b.calibration_profile}"
    return SiteBaseline(
        freqs,
        hist,
        occupied,
        frames,
        sum_lin,
        site=a.site,
        rbw_hz=a.rbw_hz,
        n_looks=a.n_looks,
        margin_db=a.margin_db,
        unit=a.unit,
        first_start=_min_time(a.first_start, b.first_start),
        last_end=_max_time(a.last_end, b.last_end),
        span_s=a.span_s + b.span_s,
        gain_db=gain,
        calibration_profile=profile,
        sources=[*a.sources, *b.sources],
    )
