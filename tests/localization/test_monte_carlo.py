"""Monte Carlo of RSS localization on the inner loop of SCENES.md (issue 5, "Show"), with the
``"nls"`` estimator (robust GLS, the weak route-radius prior). The scene and its bound are in
``tests/localization/_scene.py`` (THEORY §2.2: 420 readings, n = 3, σ = 6 dB, d_c = 30 m, 1 dB fast
fading; the CRLB with P0 unknown for exactly that generator); the ``"gls"`` estimator, the default
since issue #22, has its figures in ``test_gls.py`` and ``bench/localization.py``.

Measured with this estimator (the seed below was fixed before any run): 400 draws → RMSE 37.2 m
(1.32 × CRLB 28.2 m), coverage 0.960, building hit 0.815. With 1000 draws at seeds 1 and 2: RMSE
1.26/1.28 × CRLB, coverage 0.954/0.964, building hit 0.799/0.801. The hit-rate target (≥ 0.80)
is at the edge of what RSS alone gives here: even an unbiased Gaussian estimator at the CRLB
would reach only 0.83 in this box, so another seed can fall just below 0.80. The excess over the
CRLB is a 2 % tail of far-field estimates (120–220 m off, a plane of power fitted for the bowl of
a near transmitter); without that tail RMSE is 1.01 × CRLB.
"""

from __future__ import annotations

import pytest

from tests.localization._scene import SEED, run

N_DRAWS = 400


@pytest.fixture(scope="module")
def monte_carlo():
    return run("nls", N_DRAWS, SEED)


def test_crlb_matches_theory(monte_carlo):
    """THEORY §2.2: ≈ 27.5 m for this scene (P0 unknown, n known); n unknown adds 1–3 %."""
    assert 26.0 < monte_carlo["crlb_rmse"] < 30.0
    assert 1.0 < monte_carlo["crlb_n_rmse"] / monte_carlo["crlb_rmse"] < 1.05


def test_monte_carlo_targets(monte_carlo):
    """Issue 5 targets: RMSE ≤ 1.5 × CRLB, 95 % region coverage in [0.90, 0.98], estimate inside
    the building footprint + 15 m (x ∈ [−45, 45], y ∈ [−30, 30]) in ≥ 80 % of draws."""
    mc = monte_carlo
    print(f"\nMC {N_DRAWS} draws: RMSE {mc['rmse']:.1f} m (median {mc['median_error']:.1f} m), CRLB {mc['crlb_rmse']:.1f} m "
          f"(ratio {mc['rmse'] / mc['crlb_rmse']:.2f}), coverage {mc['coverage']:.3f}, building hit {mc['hit']:.3f}, "
          f"located {mc['located']:.3f}")
    assert mc["located"] >= 0.95
    assert mc["rmse"] <= 1.5 * mc["crlb_rmse"]
    assert 0.90 <= mc["coverage"] <= 0.98
    assert mc["hit"] >= 0.80
    # The bound reported with each estimate (model Σ, at the estimate) is close to the exact one.
    assert 0.8 * mc["crlb_rmse"] < mc["reported_crlb"] < 1.25 * mc["crlb_rmse"]
