"""Emission extraction from a stack's flagged bins: hysteresis runs around the seeds, gaps merged,
per-emission center, peak, 99 % occupied bandwidth and power, IQ images rejected
(:func:`_extract_stack`, over the working columns of :func:`_working_columns`), and the per-frame
reference helpers :func:`_runs` and :func:`_occupied_bandwidth`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detector.detection._results import Emission


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Inclusive (lo, hi) bin runs of True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _occupied_bandwidth(excess_lin: NDArray, bin_hz: float, fraction: float = 0.99) -> float:
    """Occupied bandwidth: the width holding ``fraction`` of the power above the floor, with
    (1 − fraction)/2 outside at each end (ITU-R SM.328 "99 % power" definition), at least one bin.
    Bins are taken in frequency order; the result is a multiple of the bin width."""
    w = np.maximum(np.asarray(excess_lin, dtype=np.float64), 0.0)
    total = w.sum()
    if total <= 0 or w.size == 1:
        return float(w.size * bin_hz) if total <= 0 else float(bin_hz)
    c = np.cumsum(w) / total
    lo = int(np.searchsorted(c, (1 - fraction) / 2))
    hi = int(np.searchsorted(c, 1 - (1 - fraction) / 2))
    return float((min(hi, w.size - 1) - lo + 1) * bin_hz)


def _working_columns(colmax, low_row, valid, seed_cols, merge_gap: int):
    """The columns emission extraction needs to look at: ``(cmap, pad)``, ``cmap`` (w,) the real
    column of each working column, ``pad`` (w,) the invalid padding column after each interval
    (None: every column, in order). Without a max-hold or a shared low threshold, every column.

    The intervals are the runs of ``colmax > low_row`` (valid bins, seeds included) that hold a
    seed, merged when at most ``merge_gap`` bins apart."""
    m = valid.size
    if colmax is None or low_row is None:
        return np.arange(m), None
    lowc = (colmax > low_row) & valid
    lowc[seed_cols] = True
    d = np.flatnonzero(np.diff(np.concatenate(([False], lowc, [False])).view(np.int8)))
    rs, re_ = d[0::2], d[1::2]  # runs [rs, re_)
    keep = np.unique(np.searchsorted(re_, seed_cols, side="right"))
    rs, re_ = rs[keep], re_[keep]
    join = rs[1:] - re_[:-1] <= merge_gap
    starts, ends = rs[np.concatenate(([True], ~join))], re_[np.concatenate((~join, [True]))]
    lens = ends - starts + 1  # with the padding column
    offsets = np.repeat(np.cumsum(lens) - lens, lens)
    local = np.arange(int(lens.sum())) - offsets
    pad = local == np.repeat(lens - 1, lens)
    cmap = np.minimum(np.repeat(starts, lens) + local, m - 1)
    return cmap, pad


def _to_working(cmap, pad, cols, m: int):
    """Real columns ``cols`` → their working columns (see :func:`_working_columns`)."""
    if pad is None:
        return cols
    pos_of = np.full(m, -1, dtype=np.int64)
    pos_of[cmap[~pad]] = np.flatnonzero(~pad)
    return pos_of[cols]


def _extract_stack(freqs_hz, p_db_all, p_lin, floor, flagged, valid, rows, gain_offset, high, covered, occ_base,
                   low_thr, bin_hz, center_hz, config, image_rej, cand=None, colmax=None) -> dict[int, list[Emission]]:
    """Emissions of the frames ``rows`` of a stack, all at once (no per-frame or per-bin Python loop).

    Per frame: hysteresis (an emission extends over the contiguous bins above a low threshold,
    Pfa 5 %, around its flagged seeds, so its occupied bandwidth is not only its strongest bins);
    runs of such bins separated by at most ``merge_gap_bins`` valid bins are one emission; per
    emission the power-weighted center, the strongest bin, the 99 % occupied bandwidth (ITU-R
    SM.328) and the total power; an emission whose peak is ``image_margin_db`` below the frame's
    power at the mirrored frequency (±1 bin) is an IQ image (the mirror is looked up in the frame,
    not among the emissions: the strong signal may be a known station the baseline keeps out).

    The frames are laid out row after row with one invalid padding bin between rows. The runs
    that hold a flagged bin (a seed; ``cand``, when given, lists the only columns that can hold
    one) are located from the seeds by a search among the mask's transitions, so the cost does
    not grow with the many short runs of noise above the low threshold; gaps and groups then use
    ``reduceat`` over the flat layout. Returns ``{frame index: [Emission, ...]}``; counts the rejected
    images per frame in ``image_rej`` (n,).
    """
    m = freqs_hz.size
    P = p_lin if rows.size == p_lin.shape[0] else p_lin[rows]
    shared = floor.shape[0] != p_lin.shape[0] or floor.strides[0] == 0
    FL = floor[:1] if shared else floor[rows]  # (1, m) for a stack's shared floor: broadcast, not copied
    # the flagged bins (seeds), found among the columns ``cand`` that can hold one (all without)
    cols = np.arange(m) if cand is None else cand
    r_f, j_f = np.nonzero(flagged[:, cols][rows] if cand is not None else flagged[rows])
    c_f = cols[j_f]
    if c_f.size == 0:
        return {}
    # the working columns ``cmap``: with the stack's max-hold (``colmax``) and a shared floor, only
    # the runs of the max-hold above the low threshold that hold a seed (merged when they are
    # ``merge_gap_bins`` apart), each followed by an invalid padding column. A frame's run around
    # a seed lies inside the max-hold's run around it (a bin above the threshold in a frame is
    # above it in the max-hold), so the runs, gaps and groups are those of the whole width.
    cmap, pad = _working_columns(colmax, FL[0] * low_thr if shared and colmax is not None else None, valid, c_f,
                                 config.merge_gap_bins)
    mw = cmap.size
    width = mw + 1
    c_w = _to_working(cmap, pad, c_f, m)
    fpos = r_f * width + c_w  # seeds on the padded working layout, ascending
    low = np.zeros((rows.size, width), dtype=bool)
    lv = low[:, :mw]
    Pw = P if pad is None else P[:, cmap]
    FLw = FL if pad is None else FL[:, cmap]
    np.greater(Pw, FLw * low_thr, out=lv)
    lv[r_f, c_w] = True
    valid_w = valid if pad is None else valid[cmap] & ~pad
    np.logical_and(lv, valid_w, out=lv)
    flat = low.ravel()
    # the runs of low bins that hold a seed, from the transitions: the run around seed p ends at
    # the first transition at or after p and starts after the one before it (the padding bin ends
    # every row, so every run ends with a transition)
    t = np.flatnonzero(flat[1:] != flat[:-1])
    k = np.unique(np.searchsorted(t, fpos))
    ends = t[k]
    starts = np.where(k > 0, t[np.maximum(k - 1, 0)] + 1, 0)
    # runs separated by at most merge_gap_bins valid bins (the padding bin is invalid) are one emission
    inv = np.ones(width, dtype=bool)
    inv[:mw] = ~valid_w
    cinv = np.concatenate(([0], np.cumsum(inv)))  # one row: runs of different rows never join
    gap = starts[1:] - ends[:-1] - 1
    same_row = starts[1:] // width == ends[:-1] // width
    join = same_row & (gap <= config.merge_gap_bins) & (cinv[starts[1:] % width] - cinv[ends[:-1] % width + 1] == 0)
    first_run = np.concatenate(([True], ~join))
    gstart = starts[first_run]
    gend = ends[np.concatenate((~join, [True]))]
    # the emission bins: the low bins inside each group's span, in order
    lens = gend - gstart + 1
    cl = np.cumsum(lens)
    span = np.arange(int(cl[-1])) + np.repeat(gstart - (cl - lens), lens)
    inside = flat[span]
    pos = span[inside]
    gi = np.repeat(np.arange(gstart.size), lens)[inside]
    gfirst = np.searchsorted(pos, gstart)
    sizes = np.diff(np.concatenate((gfirst, [pos.size])))
    r_loc, col = np.divmod(pos, width)
    col = cmap[col]  # working → real columns
    pl = P[r_loc, col].astype(np.float64)
    fl = FL[0 if shared else r_loc, col].astype(np.float64)
    if p_db_all is not None:
        pdb = p_db_all[rows[r_loc], col].astype(np.float64)
    else:
        pdb = 10 * np.log10(np.maximum(pl, 1e-30))
    f = freqs_hz[col]
    w = np.maximum(pl - fl, 0.0)
    W = np.add.reduceat(w, gfirst)
    WF = np.add.reduceat(w * f, gfirst)
    power = np.add.reduceat(pl, gfirst)
    peak = np.maximum.reduceat(pdb, gfirst)
    k = np.minimum.reduceat(np.where(pdb == peak[gi], np.arange(pos.size), pos.size), gfirst)
    # 99 % occupied bandwidth over the group's bins in frequency order (global cumulative sums)
    gcs = np.cumsum(w)
    base = np.where(gfirst > 0, gcs[np.maximum(gfirst - 1, 0)], 0.0)
    half = (1 - 0.99) / 2
    lo_i = np.searchsorted(gcs, base + half * W, side="left") - gfirst
    hi_i = np.searchsorted(gcs, base + (1 - half) * W, side="left") - gfirst
    obw = np.where(W <= 0, sizes, np.where(sizes == 1, 1, np.minimum(hi_i, sizes - 1) - lo_i + 1)) * bin_hz
    k_col, k_row = col[k], rows[r_loc[k]]
    floor_db_k = (10 * np.log10(np.maximum(fl[k], 1e-30))).astype(np.float32)
    snr = pdb[k] - floor_db_k
    center = np.where(W > 0, WF / np.where(W > 0, W, 1.0), f[k])
    excess = None
    if high is not None:
        excess = np.where(covered[k_col], pdb[k] - gain_offset[k_row] - high[k_col], np.nan)
    image = np.zeros(gstart.size, dtype=bool)
    if center_hz is not None:
        j = np.rint((2 * center_hz - f[k] - freqs_hz[0]) / bin_hz).astype(np.int64)
        inband = (j >= 0) & (j < m)
        if inband.any():
            cols3 = np.clip(j[:, None] + np.array([-1, 0, 1]), 0, m - 1)
            if p_db_all is not None:
                mirror_db = p_db_all[k_row[:, None], cols3].astype(np.float64).max(axis=1)
            else:
                mirror_db = 10 * np.log10(np.maximum(p_lin[k_row[:, None], cols3].astype(np.float64), 1e-30)).max(axis=1)
            image = inband & (mirror_db - peak >= config.image_margin_db)
    g_row = rows[gstart // width]
    g_lo_col, g_hi_col = cmap[gstart % width], cmap[gend % width]
    out: dict[int, list[Emission]] = {}
    for g in range(gstart.size):
        i = int(g_row[g])
        if image[g]:
            image_rej[i] += 1
            continue
        has_base = excess is not None and not np.isnan(excess[g])
        kc = int(k_col[g])
        out.setdefault(i, []).append(Emission(
            center_hz=float(center[g]),
            bandwidth_hz=float(obw[g]),
            f_lo_hz=float(freqs_hz[g_lo_col[g]] - bin_hz / 2),
            f_hi_hz=float(freqs_hz[g_hi_col[g]] + bin_hz / 2),
            peak_hz=float(freqs_hz[kc]),
            peak_dbfs=float(peak[g]),
            snr_db=float(snr[g]),
            excess_db=float(excess[g]) if has_base and excess is not None else None,
            power_dbfs=float(10 * np.log10(power[g])),
            bins=col[gfirst[g]:gfirst[g] + sizes[g]],
            baseline_occupancy=float(occ_base[kc]) if has_base else None,
        ))
    return out
