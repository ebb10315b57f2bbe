"""Local ENU metres around an origin (pymap3d, WGS84); the only place geodetic ↔ metric happens."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


class LocalFrame:
    """East/north metres around ``(lat0, lon0)`` (degrees, WGS84) on the ellipsoid at height ``h0``.

    Heights are ignored (all points at ``h0``): over a few kilometres the horizontal error of that is
    far below GPS noise.
    """

    def __init__(self, lat0: float, lon0: float, h0: float = 0.0) -> None:
        if not (np.isfinite(lat0) and np.isfinite(lon0) and -90 <= lat0 <= 90 and -180 <= lon0 <= 180):
            raise ValueError(f"LocalFrame origin {lat0}, {lon0} is not a valid position")
        self.lat0, self.lon0, self.h0 = float(lat0), float(lon0), float(h0)

    @classmethod
    def around(cls, lat: ArrayLike, lon: ArrayLike) -> "LocalFrame":
        """A frame at the centre of the positions' bounding box (longitudes unwrapped)."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        ref = lon.flat[0]
        lon_u = (lon - ref + 180.0) % 360.0 - 180.0 + ref
        lon_c = (0.5 * (lon_u.min() + lon_u.max()) + 180.0) % 360.0 - 180.0
        return cls(0.5 * (lat.min() + lat.max()), lon_c)

    def to_enu(self, lat: ArrayLike, lon: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        import pymap3d

        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        e, n, _ = pymap3d.geodetic2enu(lat, lon, np.full(lat.shape, self.h0), self.lat0, self.lon0, self.h0)
        return np.asarray(e, dtype=float), np.asarray(n, dtype=float)

    def to_geodetic(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        import pymap3d

        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        lat, lon, _ = pymap3d.enu2geodetic(x, y, np.zeros(x.shape), self.lat0, self.lon0, self.h0)
        return np.asarray(lat, dtype=float), (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0

    def __repr__(self) -> str:
        return f"LocalFrame({self.lat0:.7f}, {self.lon0:.7f})"
