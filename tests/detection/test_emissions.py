"""The stack extraction of ``detector.detection._emissions`` against a straightforward per-frame
reference (the earlier implementation): same emissions, same images rejected."""

from __future__ import annotations

import numpy as np
import pytest

from detector.detection._emissions import DetectionConfig, _count_above, detect_frames, detect_stack
from detector.detection._extract import _extract_stack, _occupied_bandwidth, _runs


def reference_extract(freqs_hz, p_db, p_lin, floor, floor_db, flagged, valid, excess, occ_base, low_thr, bin_hz,
                      center_hz, config, rejected):
    """One frame, bin runs in Python: the behaviour the vectorised version must keep."""
    m = freqs_hz.size
    low = ((p_lin > floor * low_thr) | flagged) & valid
    runs = _runs(low)
    if not runs:
        return []
    cs = np.concatenate(([0], np.cumsum(flagged)))
    runs = [(lo, hi) for lo, hi in runs if cs[hi + 1] - cs[lo] > 0]
    merged = []
    for lo, hi in runs:
        if merged and lo - merged[-1][1] - 1 <= config.merge_gap_bins and valid[merged[-1][1] + 1:lo].all():
            merged[-1][1] = hi
        else:
            merged.append([lo, hi])
    out = []
    for lo, hi in merged:
        idx = np.arange(lo, hi + 1)
        idx = idx[low[idx]]
        k = int(idx[np.argmax(p_db[idx])])
        w = np.maximum(p_lin[idx] - floor[idx], 0.0)
        center = float(np.sum(freqs_hz[idx] * w) / np.sum(w)) if w.sum() > 0 else float(freqs_hz[k])
        has_base = excess is not None and not np.isnan(excess[k])
        out.append(dict(center_hz=center, bandwidth_hz=_occupied_bandwidth(p_lin[idx] - floor[idx], bin_hz),
                        f_lo_hz=float(freqs_hz[lo] - bin_hz / 2), f_hi_hz=float(freqs_hz[hi] + bin_hz / 2),
                        peak_hz=float(freqs_hz[k]), peak_dbfs=float(p_db[k]), snr_db=float(p_db[k] - floor_db[k]),
                        excess_db=float(excess[k]) if has_base else None,
                        power_dbfs=float(10 * np.log10(np.sum(p_lin[idx]))), bins=idx,
                        baseline_occupancy=float(occ_base[k]) if has_base else None))
    keep = []
    for e in out:
        j = int(round((2 * center_hz - e["peak_hz"] - freqs_hz[0]) / bin_hz))
        if 0 <= j < m and float(np.max(p_db[max(0, j - 1):min(m, j + 2)])) - e["peak_dbfs"] >= config.image_margin_db:
            rejected["image"] += 1
            continue
        keep.append(e)
    return keep


def random_stack(seed, n=12, m=1024):
    rng = np.random.default_rng(seed)
    fs, center = 1.024e6, 446e6
    freqs = center + (np.arange(m) - m // 2) * fs / m
    p = rng.gamma(20.0, 1 / 20.0, size=(n, m)) * 1e-6
    for _ in range(rng.integers(1, 8)):  # emissions: random width, level, frames; some with an image
        c, wdt = int(rng.integers(20, m - 20)), int(rng.integers(1, 15))
        rows = rng.random(n) < 0.6
        level = 10 ** rng.uniform(0.3, 4) * 1e-6
        shape = np.exp(-0.5 * ((np.arange(m) - c) / max(wdt / 2, 0.6)) ** 2)
        p[rows] += level * shape
        if rng.random() < 0.4:
            p[rows] += level * 10 ** (-rng.uniform(8, 25) / 10) * shape[::-1]  # mirror about the center bin
    return freqs, p.astype(np.float32), center


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("with_base", [False, True])
@pytest.mark.parametrize("with_colmax", [False, True])
def test_stack_extraction_matches_the_per_frame_reference(seed, with_base, with_colmax):
    """Also with the stack's max-hold given (a shared floor: odd seeds), where extraction looks
    only at the max-hold's runs that hold a seed: the same emissions, bin for bin."""
    freqs, p_lin, center = random_stack(seed)
    n, m = p_lin.shape
    config = DetectionConfig()
    rng = np.random.default_rng(100 + seed)
    floor = np.broadcast_to(np.full(m, 1e-6, dtype=np.float64), (n, m)) if seed % 2 else \
        np.full((n, m), 1e-6) * rng.uniform(0.9, 1.1, size=(n, 1))
    valid = np.ones(m, dtype=bool)
    valid[:20] = valid[-20:] = False
    valid[m // 2 - 2:m // 2 + 3] = False
    if seed % 3 == 0:
        valid[300:303] = False  # an invalid gap inside the band
    flagged = (p_lin > floor * 3.0) & valid
    low_thr = 1.6
    gain = rng.normal(0, 0.5, size=n)
    high = covered = occ = None
    if with_base:
        high = np.full(m, -58.0)
        covered = valid.copy()
        covered[600:700] = False
        occ = rng.random(m)
    rows = np.flatnonzero(flagged.sum(axis=1))
    bin_hz = float(freqs[1] - freqs[0])
    rej_vec = np.zeros(n, dtype=np.int64)
    shared = seed % 2 == 1
    colmax = p_lin.max(axis=0) if with_colmax and shared else None
    got = _extract_stack(freqs, None, p_lin, floor[:1] if shared else floor, flagged, valid, rows, gain, high, covered,
                         occ, low_thr, bin_hz, center, config, rej_vec, colmax=colmax)
    total = 0
    for i in range(n):
        rej = {"image": 0}
        p_db = 10 * np.log10(np.maximum(p_lin[i].astype(np.float64), 1e-30))
        fl = np.asarray(floor[i], dtype=np.float64)
        excess = np.where(covered, p_db - gain[i] - high, np.nan) if with_base else None
        want = reference_extract(freqs, p_db, p_lin[i].astype(np.float64), fl,
                                 (10 * np.log10(np.maximum(fl, 1e-30))).astype(np.float32), flagged[i], valid, excess,
                                 occ, low_thr, bin_hz, center, config, rej)
        mine = got.get(i, [])
        assert rej["image"] == rej_vec[i]
        assert len(mine) == len(want)
        total += len(want)
        for a, b in zip(mine, want):
            np.testing.assert_array_equal(a.bins, b["bins"])
            for key in ("center_hz", "f_lo_hz", "f_hi_hz", "peak_hz", "peak_dbfs", "snr_db", "power_dbfs"):
                assert getattr(a, key) == pytest.approx(b[key], rel=1e-9, abs=1e-6), key
            assert a.bandwidth_hz == pytest.approx(b["bandwidth_hz"], abs=1e-6)
            if b["excess_db"] is None:
                assert a.excess_db is None and a.baseline_occupancy is None
            else:
                assert a.excess_db == pytest.approx(b["excess_db"], abs=1e-6)
                assert a.baseline_occupancy == pytest.approx(b["baseline_occupancy"])
    assert total > 0


def test_occupied_bandwidth_of_a_flat_block_and_a_single_bin():
    assert _occupied_bandwidth(np.ones(10), 1000.0) == 10000.0
    assert _occupied_bandwidth(np.array([5.0]), 1000.0) == 1000.0
    assert _occupied_bandwidth(np.array([-1.0, -2.0]), 1000.0) == 2000.0


@pytest.mark.parametrize("size", [3, 9, 17])
@pytest.mark.parametrize("q", [0.3, 0.5])
def test_running_rank_is_scipy_percentile_filter(size, q):
    import scipy.ndimage

    from detector.detection._cfar import DetectionCache, _running_rank

    x = np.random.default_rng(size).gamma(3.0, size=(3, 256))
    want = scipy.ndimage.percentile_filter(x, q * 100.0, size=(1, size), mode="mirror")
    np.testing.assert_array_equal(_running_rank(x, size, q, DetectionCache()), want)


@pytest.mark.parametrize("seed", range(6))
def test_count_above_gated_by_the_stack_maximum_equals_the_full_count(seed):
    rng = np.random.default_rng(seed)
    n, m = 12, 700
    p = rng.gamma(10, 0.1, size=(n, m)).astype(np.float32)
    p[:, rng.integers(0, m, 20)] *= rng.uniform(1, 50, size=20).astype(np.float32)
    thr = np.full((1, m), 2.2) * rng.uniform(0.8, 1.2, size=m)
    thr[0, :15] = np.inf
    cols = np.sort(rng.choice(m, 40, replace=False))
    colmax = p.max(axis=0)
    np.testing.assert_array_equal(_count_above(p, thr, colmax), (p > thr).sum(axis=1))
    np.testing.assert_array_equal(_count_above(p, thr, colmax, cols), (p[:, cols] > thr[:, cols]).sum(axis=1))
    per_frame = thr * rng.uniform(0.5, 1.5, size=(n, 1))  # a gain step: one threshold row per frame
    np.testing.assert_array_equal(_count_above(p, per_frame, colmax), (p > per_frame).sum(axis=1))


def test_stack_result_frames_are_the_per_frame_results():
    rng = np.random.default_rng(7)
    n, m, fs = 8, 1024, 1.024e6
    freqs = 433.92e6 + (np.arange(m) - m // 2) * fs / m
    p = rng.gamma(20, 1 / 20, size=(n, m)).astype(np.float32)
    p[2:5, 300:310] *= 200.0  # a burst in frames 2–4
    res = detect_stack(freqs, None, power_lin=p, looks=20, center_hz=433.92e6)
    frames = detect_frames(freqs, None, power_lin=p, looks=20, center_hz=433.92e6)
    assert len(res) == len(frames) == n
    assert sorted(res.emissions) == [2, 3, 4]
    for i, fr in enumerate(frames):
        got = res.frame(i)
        assert got.n_flagged_bins == fr.n_flagged_bins == int(res.n_flagged[i])
        assert got.rejected == fr.rejected
        assert [e.center_hz for e in got.emissions] == [e.center_hz for e in fr.emissions]
        assert (got.floor_db is None) == (fr.floor_db is None) == (i not in (2, 3, 4, n - 1))
    burst = res.emissions[3][0]
    assert abs(burst.center_hz - (freqs[304] + freqs[305]) / 2) < 2 * fs / m
    assert res.frame(-1).floor_db.shape == (m,)
