"""Lines of bearing from a direction finder, in geodetic form (:class:`Bearings`), and their
conversion to the local frame the estimators work in (THEORY §2.4–2.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detector.localization._estimators import BearingsEnu
from detector.localization._frame import LocalFrame


@dataclass(frozen=True)
class Bearings:
    """Lines of bearing (a direction finder): where they were taken (lat, lon, degrees), the bearing
    (degrees clockwise from true north) and its standard deviation (degrees)."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    bearing_deg: NDArray[np.float64]
    sigma_deg: NDArray[np.float64] | float = 5.0

    def to_enu(self, frame: LocalFrame) -> BearingsEnu:
        lat = np.atleast_1d(np.asarray(self.lat, float))
        x, y = frame.to_enu(lat, np.atleast_1d(np.asarray(self.lon, float)))
        b = np.radians(np.atleast_1d(np.asarray(self.bearing_deg, float)))
        s = np.radians(np.broadcast_to(np.asarray(self.sigma_deg, float), lat.shape).astype(float))
        ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(b) & (s > 0)
        return BearingsEnu(x[ok], y[ok], b[ok], s[ok])
