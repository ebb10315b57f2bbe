"""Localization: transmitter position from received power at GPS-tagged points (THEORY.md §2).

Pure (numpy, scipy, pymap3d; no files, network or clock). Readings are converted to local ENU
metres (:class:`LocalFrame`), averaged per small cell, and fitted to the log-distance model
P_i = P0 − 10·n·log10(d_i) with P0 unknown (and n unknown unless given), under correlated
shadowing Σ_ij = σ²·exp(−|r_i − r_j|/d_c) (GLS):

* :func:`locate` / :func:`locate_enu` — GLS (Gaussian likelihood, plain least squares) with the
  route-spread prior, multi-start from a grid (``method="gls"``, :data:`DEFAULT_METHOD`, see
  ``_gls.py``); robust multi-start NLS started from a grid maximum likelihood with the weak prior
  (``"nls"``, the default before issue #22), the grid ML with its posterior (``"grid"``), or the
  weighted-centroid baseline (``"centroid"``); optional bearings (:class:`Bearings`) are fused with
  outlier rejection.
* A Gaussian position prior centred on the route: with σ 6 dB shadowing correlated over 30 m, a
  distant transmitter (a plane of power) fits one loop of readings almost as well as a near one (a
  bowl) in most draws; the prior settles that for a transmitter near the route, and a located
  estimate says in ``reason`` when it rests on it. ``"nls"``: isotropic, σ = the route's RMS
  radius (see :class:`PathLossModel`); ``"gls"``: the route's own covariance when the route
  encloses its centre (:func:`route_prior_cov`), else the same as ``"nls"``.
* Uncertainty: the 95 % profile-likelihood region summarised as an ellipse (it follows the real,
  non-elliptic likelihood where the local Fisher information is too optimistic), CEP50, and the
  Cramér–Rao bound for the readings used (:func:`rss_crlb`). Too few readings, one spot (parked),
  one straight street, a near/far ambiguity, or a bound too weak → ``status="not_localizable"``
  with the reason and a coarse answer (the strongest reading and a radius).
* :class:`LocationEstimate` — ``to_dict()`` (the JSON shape of DESIGN.md), ``to_geojson()``;
  :func:`nearest_building` for site footprints.
"""

from detector.localization._estimate import (
    CHI2_2DOF_95,
    LOCATED,
    NOT_LOCALIZABLE,
    BuildingMatch,
    ErrorEllipse,
    LocationEstimate,
    cep50_from_cov,
    ellipse_from_cov,
    nearest_building,
)
from detector.localization._bearings import (
    DEFAULT_DOA_SIGMA_DEG,
    DEFAULT_HEADING_SIGMA_DEG,
    bearing_sigma_deg,
    select_bearings,
    vehicle_bearings,
)
from detector.localization._estimators import BearingsEnu
from detector.localization._frame import LocalFrame
from detector.localization._gls import bayesian_crlb, encloses, route_prior_cov
from detector.localization._locate import (
    DEFAULT_METHOD,
    METHODS,
    Bearings,
    EnuSolution,
    Limits,
    estimate_from_enu,
    locate,
    locate_enu,
    refuse,
)
from detector.localization._timing import ClockOffset, estimate_clock_offset, position_sigma_m, time_resolution_s
from detector.localization._model import (
    Cells,
    PathLossModel,
    bin_readings,
    crlb_from_fisher,
    rss_crlb,
    rss_fisher,
    shadowing_cov,
)

__all__ = [
    "LocationEstimate",
    "ErrorEllipse",
    "BuildingMatch",
    "LOCATED",
    "NOT_LOCALIZABLE",
    "CHI2_2DOF_95",
    "LocalFrame",
    "PathLossModel",
    "Limits",
    "Bearings",
    "BearingsEnu",
    "bearing_sigma_deg",
    "vehicle_bearings",
    "select_bearings",
    "DEFAULT_DOA_SIGMA_DEG",
    "DEFAULT_HEADING_SIGMA_DEG",
    "EnuSolution",
    "Cells",
    "METHODS",
    "DEFAULT_METHOD",
    "route_prior_cov",
    "encloses",
    "bayesian_crlb",
    "locate",
    "locate_enu",
    "estimate_from_enu",
    "bin_readings",
    "shadowing_cov",
    "rss_fisher",
    "rss_crlb",
    "crlb_from_fisher",
    "ellipse_from_cov",
    "cep50_from_cov",
    "nearest_building",
    "refuse",
    "ClockOffset",
    "estimate_clock_offset",
    "position_sigma_m",
    "time_resolution_s",
]
