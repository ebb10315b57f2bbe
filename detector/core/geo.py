"""Site-local metric coordinates (ENU) ↔ WGS84 (lat, lon) on a sphere, as SCENES.md §3.1 defines them.

The simulation draws its world in metres about the site's reference point; the site's buildings
and the scorer convert with the same formula, so that a position means the same thing on both
sides. Localization itself uses :class:`detector.localization.LocalFrame` (pymap3d's ENU).
"""

from __future__ import annotations

import numpy as np

__all__ = ["M_PER_DEG_LAT", "m_per_deg_lon", "enu_to_llh", "llh_to_enu"]

M_PER_DEG_LAT = 111194.93


def m_per_deg_lon(lat0: float) -> float:
    return M_PER_DEG_LAT * np.cos(np.deg2rad(lat0))


def enu_to_llh(x, y, lat0: float, lon0: float):
    """ENU metres → (lat, lon) degrees (SCENES.md §3.1 spherical formula, < 1 m error within 2 km)."""
    return lat0 + np.asarray(y) / M_PER_DEG_LAT, lon0 + np.asarray(x) / m_per_deg_lon(lat0)


def llh_to_enu(lat, lon, lat0: float, lon0: float):
    return (np.asarray(lon) - lon0) * m_per_deg_lon(lat0), (np.asarray(lat) - lat0) * M_PER_DEG_LAT
