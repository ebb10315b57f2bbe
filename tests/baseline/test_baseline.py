"""Per-site baseline: statistics against the analytic noise law, merge, save/load, re-gridding.

Synthetic survey frames: a noise bin averaged over L looks is σ²·Gamma(L, 1)/L (THEORY.md §1.1), so
its dB level has known quantiles; a steady carrier sits in one bin and an intermittent channel
(three bins) is on in 30 % of the frames.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from detector.baseline import (
    LEVEL_STEP_DB,
    AlignedBaseline,
    BaselineBuilder,
    RegridError,
    SiteBaseline,
    align,
    build_baseline,
    frame_noise_floor_db,
    load,
    merge,
    occupancy_margin_db,
    save,
)
from detector.core.errors import InputError
from detector.core.types import Spectrum

FS = 250e3
NFFT = 256
BIN = FS / NFFT
RBW = 1.5 * BIN  # Hann ENBW
CENTER = 446.05e6
M = 128
L = 16
NOISE_DB = -90.0
CARRIER_BIN = 40
CARRIER_DB = -70.0
INTER_BINS = np.array([80, 81, 82])
INTER_DB = -75.0
P_ON = 0.30
T0 = datetime(2024, 6, 7, 8, 0, tzinfo=timezone.utc)
FRAME_S = 0.05


def grid(m: int = M, spacing: float = BIN, center: float = CENTER) -> np.ndarray:
    return center + (np.arange(m) - m // 2) * spacing


def noise_lin(rng: np.random.Generator, shape, looks: float, level_db: float = NOISE_DB) -> np.ndarray:
    return 10 ** (level_db / 10) * rng.gamma(looks, 1.0, size=shape) / looks


def survey(seed: int, n: int, *, m: int = M, looks: float = L, signals: bool = True, t0: datetime = T0):
    """``n`` survey frames on the standard grid; returns the spectra and the raw dB matrix (n, m)."""
    rng = np.random.default_rng(seed)
    p = noise_lin(rng, (n, m), looks)
    if signals:
        p[:, CARRIER_BIN] += 10 ** (CARRIER_DB / 10)
        on = rng.random(n) < P_ON
        p[np.ix_(on, INTER_BINS)] += 10 ** (INTER_DB / 10)
    db = (10 * np.log10(p)).astype(np.float32)
    f = grid(m)
    spectra = [
        Spectrum(freqs_hz=f, power=db[i], rbw_hz=RBW, start=t0 + timedelta(seconds=i * FRAME_S),
                 duration_s=FRAME_S, n_looks=looks)
        for i in range(n)
    ]
    return spectra, db


def analytic_db(q: float, looks: float = L) -> float:
    return NOISE_DB + 10 * np.log10(scipy.stats.gamma.ppf(q, looks) / looks)


def analytic_mad(looks: float = L) -> float:
    med = analytic_db(0.5, looks)

    def cdf(x):
        return scipy.stats.gamma.cdf(looks * 10 ** ((x - NOISE_DB) / 10), looks)

    return scipy.optimize.brentq(lambda d: cdf(med + d) - cdf(med - d) - 0.5, 1e-6, 30.0)


NOISE_BINS = np.setdiff1d(np.arange(M), np.r_[CARRIER_BIN - 2 : CARRIER_BIN + 3, 78:85])


@pytest.fixture(scope="module")
def big():
    spectra, db = survey(1, 3000)
    return build_baseline(spectra, site="lycee-a", sources=["survey-1.cu8"]), db


def assert_same_stats(a: SiteBaseline, b: SiteBaseline) -> None:
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.occupied, b.occupied)
    np.testing.assert_allclose(a.sum_lin, b.sum_lin, rtol=1e-12)
    for name in ("median", "p90", "p99", "mad", "max_db", "occupancy"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_allclose(a.mean_db, b.mean_db, rtol=1e-6)


# -- statistics ----------------------------------------------------------------------------------


def test_noise_bins_match_the_analytic_gamma_law(big):
    b, _ = big
    assert b.median.dtype == np.float32 and b.median.shape == (M,)
    assert np.abs(b.median[NOISE_BINS] - analytic_db(0.5)).max() < 0.15
    assert abs(np.median(b.p99[NOISE_BINS]) - analytic_db(0.99)) < 0.3
    assert np.abs(b.p99[NOISE_BINS] - analytic_db(0.99)).max() < 0.5
    assert abs(np.median(b.p90[NOISE_BINS]) - analytic_db(0.9)) < 0.2
    assert np.abs(b.mad[NOISE_BINS] - analytic_mad()).max() < 0.2
    # linear mean of noise is the noise level itself (no dB-averaging bias)
    assert abs(np.median(b.mean_db[NOISE_BINS]) - NOISE_DB) < 0.1


def test_histogram_statistics_match_raw_samples(big):
    b, db = big
    raw = db.astype(np.float64)
    for q, got in ((0.5, b.median), (0.9, b.p90), (0.99, b.p99)):
        np.testing.assert_allclose(got, np.quantile(raw, q, axis=0), atol=LEVEL_STEP_DB)
    med = np.median(raw, axis=0)
    np.testing.assert_allclose(b.mad, np.median(np.abs(raw - med), axis=0), atol=LEVEL_STEP_DB)
    mx = raw.max(axis=0)
    assert np.all(b.max_db >= mx - 1e-4) and np.all(b.max_db <= mx + LEVEL_STEP_DB + 1e-4)
    np.testing.assert_allclose(b.mean_db, 10 * np.log10(np.mean(10 ** (raw / 10), axis=0)), atol=1e-4)


def test_occupancy_carrier_intermittent_noise(big):
    b, _ = big
    occ = b.occupancy
    assert occ[CARRIER_BIN] > 0.99
    assert np.all(np.abs(occ[INTER_BINS] - P_ON) < 0.05)
    assert occ[NOISE_BINS].max() < 0.01
    assert b.margin_db == pytest.approx(10 * np.log10(scipy.stats.gamma.isf(1e-3, L) / L))
    assert b.margin_db == pytest.approx(occupancy_margin_db(L))


def test_metadata_and_readonly(big):
    b, _ = big
    assert b.site == "lycee-a" and b.unit == "dBFS" and b.version == 1
    assert b.rbw_hz == RBW and b.n_looks == L and b.bin_hz == pytest.approx(BIN)
    assert b.first_start == T0 and b.last_end == T0 + timedelta(seconds=3000 * FRAME_S)
    assert b.span_s == pytest.approx(3000 * FRAME_S)
    assert b.sources == ["survey-1.cu8"]
    assert b.hist.dtype == np.int64 and b.frames.dtype == np.int64 and b.covered.all()
    with pytest.raises(ValueError):
        b.hist[0, 0] = 1
    with pytest.raises(ValueError):
        b.quantile(1.5)


def test_frame_noise_floor_estimates_the_noise_mean():
    rng = np.random.default_rng(5)
    p = 10 * np.log10(noise_lin(rng, 8192, L))
    assert frame_noise_floor_db(p, L) == pytest.approx(NOISE_DB, abs=0.1)


def test_nan_bins_and_given_noise_floor():
    f = grid()
    power = np.full(M, -90.0, dtype=np.float32)
    power[10] = np.nan
    power[20] = -80.0
    bld = BaselineBuilder(f, rbw_hz=RBW, site="s", n_looks=L, margin_db=6.0)
    assert bld.add(Spectrum(freqs_hz=f, power=power, rbw_hz=RBW, n_looks=L), noise_floor_db=-90.0) == M - 1
    b = bld.build()
    assert b.frames[10] == 0 and not b.covered[10] and np.isnan(b.median[10]) and np.isnan(b.occupancy[10])
    assert b.occupancy[20] == 1.0 and b.occupancy[0] == 0.0
    assert b.median[0] == pytest.approx(-90.0, abs=LEVEL_STEP_DB)


def test_builder_rejects_bad_frames():
    f = grid()
    bld = BaselineBuilder(f, rbw_hz=RBW, site="s", n_looks=L)
    p = np.full(M, -90.0, dtype=np.float32)
    with pytest.raises(ValueError, match="RBW"):
        bld.add(Spectrum(freqs_hz=f, power=p, rbw_hz=RBW * 1.02, n_looks=L))
    with pytest.raises(ValueError, match="not on the baseline grid"):
        bld.add(Spectrum(freqs_hz=f + 0.3 * BIN, power=p, rbw_hz=RBW, n_looks=L))
    with pytest.raises(ValueError, match="beyond the baseline grid"):
        bld.add(Spectrum(freqs_hz=f + 10 * BIN, power=p, rbw_hz=RBW, n_looks=L))
    with pytest.raises(ValueError, match="dBm"):
        bld.add(Spectrum(freqs_hz=f, power=p, rbw_hz=RBW, n_looks=L, unit="dBm"))
    with pytest.raises(ValueError, match="looks"):
        bld.add(Spectrum(freqs_hz=f, power=p, rbw_hz=RBW, n_looks=2 * L))
    with pytest.raises(ValueError, match="no survey frames"):
        bld.build()
    assert bld.add(Spectrum(freqs_hz=f + 10 * BIN, power=p, rbw_hz=RBW, n_looks=L), crop=True) == M - 10
    assert bld.build().frames.sum() == M - 10


def test_build_baseline_unites_hops_with_a_gap():
    spectra, _ = survey(2, 50)
    f = spectra[0].freqs_hz
    hops = []
    for s in spectra:
        hops.append(Spectrum(freqs_hz=f[:40], power=s.power[:40], rbw_hz=RBW, n_looks=L, start=s.start,
                             duration_s=s.duration_s))
        hops.append(Spectrum(freqs_hz=f[60:], power=s.power[60:], rbw_hz=RBW, n_looks=L, start=s.start,
                             duration_s=s.duration_s))
    b = build_baseline(hops, site="s")
    assert b.n_bins == M
    np.testing.assert_allclose(b.freqs_hz, f, rtol=0, atol=1e-6)
    assert np.array_equal(b.covered, np.r_[np.ones(40, bool), np.zeros(20, bool), np.ones(M - 60, bool)])
    assert np.all(b.frames[b.covered] == 50)
    assert np.isnan(b.median[50]) and np.isfinite(b.median[10])


# -- merge ---------------------------------------------------------------------------------------


def test_merge_of_two_halves_equals_one_survey():
    spectra, _ = survey(3, 600)
    one = build_baseline(spectra, site="s", sources=["all"])
    a = build_baseline(spectra[:250], site="s", sources=["a"])
    b = build_baseline(spectra[250:], site="s", sources=["b"])
    ab = merge(a, b)
    assert_same_stats(ab, one)
    np.testing.assert_array_equal(ab.freqs_hz, one.freqs_hz)
    assert ab.first_start == one.first_start and ab.last_end == one.last_end
    assert ab.span_s == pytest.approx(one.span_s)
    assert ab.sources == ["a", "b"]
    assert_same_stats(merge(b, a), one)


def test_merge_of_partial_ranges_unites_the_grid():
    spectra, _ = survey(4, 300)
    f = spectra[0].freqs_hz
    lo = [Spectrum(freqs_hz=f[:70], power=s.power[:70], rbw_hz=RBW, n_looks=L) for s in spectra]
    hi = [Spectrum(freqs_hz=f[60:], power=s.power[60:], rbw_hz=RBW, n_looks=L) for s in spectra]
    one = build_baseline(lo + hi, site="s")
    ab = merge(build_baseline(lo, site="s"), build_baseline(hi, site="s"))
    assert ab.n_bins == M
    np.testing.assert_allclose(ab.freqs_hz, f, rtol=0, atol=1e-6)
    assert_same_stats(ab, one)
    assert np.all(ab.frames[60:70] == 600) and np.all(ab.frames[:60] == 300)


def test_merge_refuses_incompatible_baselines():
    spectra, _ = survey(5, 40)
    a = build_baseline(spectra, site="s")
    f = spectra[0].freqs_hz
    other_rbw = build_baseline([Spectrum(freqs_hz=f, power=s.power, rbw_hz=2 * RBW, n_looks=L) for s in spectra],
                               site="s")
    with pytest.raises(ValueError, match="RBW"):
        merge(a, other_rbw)
    shifted = build_baseline([Spectrum(freqs_hz=f + 0.3 * BIN, power=s.power, rbw_hz=RBW, n_looks=L)
                              for s in spectra], site="s")
    with pytest.raises(ValueError, match="do not align"):
        merge(a, shifted)
    spaced = build_baseline([Spectrum(freqs_hz=grid(spacing=2 * BIN), power=s.power, rbw_hz=RBW, n_looks=L)
                             for s in spectra], site="s")
    with pytest.raises(ValueError, match="spacing"):
        merge(a, spaced)
    with pytest.raises(ValueError, match="sites"):
        merge(a, build_baseline(spectra, site="elsewhere"))


# -- save / load ---------------------------------------------------------------------------------


def test_save_load_round_trip_writes_exact_path(big, tmp_path):
    b, _ = big
    path = tmp_path / "lycee-a.baseline"
    assert save(b, path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lycee-a.baseline"]
    c = load(path)
    assert_same_stats(c, b)
    np.testing.assert_array_equal(c.sum_lin, b.sum_lin)
    np.testing.assert_array_equal(c.freqs_hz, b.freqs_hz)
    for attr in ("site", "rbw_hz", "n_looks", "unit", "margin_db", "first_start", "last_end", "span_s",
                 "gain_db", "calibration_profile", "sources", "version"):
        assert getattr(c, attr) == getattr(b, attr), attr
    assert path.stat().st_size < 200_000  # compact: not 128 × 1800 × 8 bytes
    save(b, tmp_path / "x.npz")
    assert (tmp_path / "x.npz").is_file() and not (tmp_path / "x.npz.npz").exists()


def _rewrite_meta(src, dst, **changes):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    meta.update(changes)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)


def test_load_errors_name_the_file(big, tmp_path):
    b, _ = big
    missing = tmp_path / "nope.baseline"
    with pytest.raises(InputError, match="nope.baseline") as ei:
        load(missing)
    assert ei.value.exit_code == 2
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(InputError, match="notes.txt"):
        load(text)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(InputError, match="other.npz.*not an examwatch baseline"):
        load(other)
    bare = tmp_path / "bare.npy"
    np.save(bare, np.arange(3))
    with pytest.raises(InputError, match="bare.npy"):
        load(bare)
    good = tmp_path / "good.baseline"
    save(b, good)
    newer = tmp_path / "newer.baseline"
    _rewrite_meta(good, newer, version=2)
    with pytest.raises(InputError, match="newer.baseline.*newer"):
        load(newer)
    foreign = tmp_path / "foreign.baseline"
    _rewrite_meta(good, foreign, format="something-else")
    with pytest.raises(InputError, match="foreign.baseline"):
        load(foreign)


# -- align ---------------------------------------------------------------------------------------


def test_align_same_grid_is_identity(big):
    b, _ = big
    a = align(b, b.freqs_hz, b.rbw_hz)
    assert isinstance(a, AlignedBaseline) and a.method == "direct" and a.level_offset_db == 0.0
    for mine, theirs in (("median_db", "median"), ("p90_db", "p90"), ("p99_db", "p99"), ("mad_db", "mad"),
                         ("max_db", "max_db"), ("occupancy", "occupancy")):
        got = getattr(a, mine)
        assert got.dtype == np.float32 and got.shape == (M,)
        np.testing.assert_array_equal(got, getattr(b, theirs))
    assert a.covered.dtype == bool and a.covered.all()
    hop = align(b, b.freqs_hz[30:70], b.rbw_hz * 1.005)
    assert hop.method == "direct"
    np.testing.assert_array_equal(hop.p99_db, b.p99[30:70])


def test_align_shifted_grid_interpolates(big):
    b, _ = big
    live = b.freqs_hz + 0.37 * BIN
    a = align(b, live, RBW)
    assert a.method == "interpolated"
    assert not a.covered[-1] and a.covered[:-1].all()
    for mine, theirs in (("median_db", "median"), ("p99_db", "p99"), ("mad_db", "mad"), ("occupancy", "occupancy")):
        want = np.interp(live[:-1], b.freqs_hz, getattr(b, theirs).astype(np.float64))
        np.testing.assert_allclose(getattr(a, mine)[:-1], want, rtol=0, atol=1e-4, err_msg=mine)
    assert np.isnan(a.median_db[-1])
    hi = align(b, live, RBW, interpolation="max")
    assert np.all(hi.p99_db[:-1] >= a.p99_db[:-1] - 1e-5)


def test_align_wider_live_rbw_compares_right(big):
    b, _ = big
    k = 4
    live_f = grid(M // k, k * BIN)
    a = align(b, live_f, k * RBW)
    assert a.method == "aggregated" and a.level_offset_db == pytest.approx(10 * np.log10(k))
    # a noise-only live frame at 4× the RBW (and 4× the looks for the same frame length)
    rng = np.random.default_rng(9)
    live = 10 * np.log10(noise_lin(rng, M // k, k * L, NOISE_DB + 10 * np.log10(k)))
    quiet = a.covered & (a.occupancy < 0.05)
    assert quiet.sum() >= 20
    assert abs(np.median(live[quiet]) - np.median(a.median_db[quiet])) < 0.5
    # never under-estimates: the live bin holding the carrier keeps at least the carrier's level
    j = int(np.argmin(np.abs(live_f - b.freqs_hz[CARRIER_BIN])))
    assert a.median_db[j] >= b.median[CARRIER_BIN] and a.occupancy[j] > 0.99
    # a live bin whose response (± one RBW) leaves the baseline's range is not covered
    pos = (live_f - b.freqs_hz[0]) / BIN
    half = k * RBW / BIN
    expected = (pos - half >= -0.5) & (pos + half <= M - 0.5)
    assert not expected[0] and expected[M // k // 2]
    np.testing.assert_array_equal(a.covered, expected)


def test_align_narrower_live_rbw_refuses(big):
    b, _ = big
    live_f = grid(2 * M, BIN / 2)
    with pytest.raises(RegridError, match=r"coarser than the live RBW .*survey again") as ei:
        align(b, live_f, RBW / 2)
    assert isinstance(ei.value, InputError)
    a = align(b, live_f, RBW / 2, allow_coarser=True)
    assert a.method == "nearest_coarser" and a.level_offset_db == 0.0
    near = np.rint((live_f - b.freqs_hz[0]) / BIN).astype(int)
    ok = (near >= 0) & (near < M)
    np.testing.assert_array_equal(a.p99_db[ok], b.p99[near[ok]])
    with pytest.raises(RegridError, match="dBm"):
        align(b, b.freqs_hz, RBW, unit="dBm")


def test_align_partial_coverage_mask():
    spectra, _ = survey(6, 60)
    f = grid()
    hop = [Spectrum(freqs_hz=f[:60], power=s.power[:60], rbw_hz=RBW, n_looks=L) for s in spectra]
    b = build_baseline(hop, site="s", grid_hz=f)
    assert np.array_equal(b.covered, np.arange(M) < 60)
    a = align(b, f, RBW)
    np.testing.assert_array_equal(a.covered, np.arange(M) < 60)
    assert np.all(np.isnan(a.median_db[60:])) and np.all(np.isfinite(a.median_db[:60]))
    beyond = align(b, f + 100 * BIN, RBW)  # overlaps only bins 100..127 of the grid: all uncovered
    assert not beyond.covered.any()
    out = align(b, f - 100 * BIN, RBW)  # live bins 100..127 are grid bins 0..27
    np.testing.assert_array_equal(out.covered, (np.arange(M) >= 100))
    np.testing.assert_array_equal(out.median_db[100:], b.median[:28])


def test_a_plan_whose_hops_the_baseline_does_not_cover_is_a_warning(big):
    from detector.baseline.check import check_plan_coverage

    base, _ = big
    f0, f1 = float(base.freqs_hz[0]), float(base.freqs_hz[-1])
    mid = (f0 + f1) / 2
    assert check_plan_coverage(base, [mid], 100e3) == []
    assert check_plan_coverage(base, [f1 + 50e3], 100e3) == []  # overlaps the edge: partly covered
    (w,) = check_plan_coverage(base, [mid, 100.25e6, 100.75e6], 0.45e6)
    assert "covers none of 2 of the 3 watched hop(s) (100.250 MHz, 100.750 MHz)" in w and "CFAR-only" in w
