"""The simulated world: the vehicle on its route, GPS errors, propagation to the vehicle.

* Route (``SCENES.md`` §3.5): the loop's waypoints at ``speed_mps`` with a stop at each corner,
  repeated during the survey and the exam; parked at ``route.park`` outside them.
* GPS at 1 Hz: truth + a random-walk bias (first-order Gauss–Markov, σ and τ from the scene) +
  white noise; reported positions are interpolated between fixes.
* Propagation (§3.4): PL(d) = FSPL(1 m, f) + 10·n·log10(d) + building entry loss (indoor
  emitters, with a per-facade offset) + shadowing + fast fading. Shadowing is a Gaussian random
  field on a 5 m grid with exponential correlation (d_c), drawn once per emitter, so that the same
  place always has the same shadowing. Fast fading is Rice (K = 3 dB) or Rayleigh, one value per
  0.5 λ of the distance driven (a fixed sequence per emitter), averaged over the stretch driven
  during a block: independent of block sizes, constant while parked.

Simplifications (said in the README): flat earth (SCENES' spherical ENU formula), no antenna
height gain, the facade offset chosen by the side of the building facing the vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detector.core.geo import M_PER_DEG_LAT, enu_to_llh, llh_to_enu, m_per_deg_lon  # noqa: F401 - re-exported
from detector.sim.scene import Emitter, Scene

__all__ = ["Vehicle", "ShadowField", "World", "enu_to_llh", "llh_to_enu", "fspl_1m_db"]

C = 299_792_458.0


def fspl_1m_db(f_hz: float) -> float:
    """Free-space path loss at 1 m: 20·log10(4πf/c) (25.4 dB at 446 MHz)."""
    return float(20 * np.log10(4 * np.pi * f_hz / C))


class Vehicle:
    """True and GPS-reported vehicle positions over scene time."""

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        r = scene.route
        wp = np.asarray(r.waypoints, dtype=float)
        seg = np.diff(wp, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        # one lap: drive each segment then stop
        times, points = [0.0], [wp[0]]
        t = 0.0
        for i in range(len(seg)):
            t += seg_len[i] / r.speed_mps
            times.append(t)
            points.append(wp[i + 1])
            t += r.stop_s
            times.append(t)
            points.append(wp[i + 1])
        self._lap_t = np.asarray(times)
        self._lap_xy = np.asarray(points)
        self.lap_s = t
        steps = np.hypot(*np.diff(self._lap_xy, axis=0).T)
        self._lap_d = np.concatenate(([0.0], np.cumsum(steps)))
        self.lap_m = float(self._lap_d[-1])
        self.park = np.asarray(r.park, dtype=float)
        self.windows = [tuple(scene.timeline.survey), *[tuple(w) for w in scene.timeline.exam]]
        # GPS error: Gauss–Markov bias at 1 Hz + white noise, over the whole scene
        g = scene.gps
        end = max(b for _, b in self.windows) + 60.0
        n = int(end * g.rate_hz) + 2
        a = np.exp(-1.0 / (g.bias_tau_s * g.rate_hz))
        bias = np.zeros((n, 2))
        w = rng.standard_normal((n, 2)) * g.bias_sigma_m * np.sqrt(1 - a * a)
        bias[0] = rng.standard_normal(2) * g.bias_sigma_m
        for i in range(1, n):
            bias[i] = a * bias[i - 1] + w[i]
        self._gps_t = np.arange(n) / g.rate_hz
        self._gps_err = bias + rng.standard_normal((n, 2)) * g.noise_sigma_m

    def true_xy(self, t_s) -> NDArray[np.float64]:
        """True ENU position(s) at scene time(s) ``t_s``: shape (..., 2)."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        out = np.tile(self.park, (t.size, 1))
        for a, b in self.windows:
            inside = (t >= a) & (t < b)
            if inside.any():
                u = np.mod(t[inside] - a, self.lap_s)
                out[inside, 0] = np.interp(u, self._lap_t, self._lap_xy[:, 0])
                out[inside, 1] = np.interp(u, self._lap_t, self._lap_xy[:, 1])
        return out if np.ndim(t_s) else out[0]

    def distance_m(self, t_s) -> NDArray[np.float64]:
        """Distance driven (m) at scene time(s) ``t_s``: windows and laps add up, parked adds nothing."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        out = np.zeros(t.size)
        done = 0.0
        for a, b in self.windows:
            full = b - a
            laps_full = np.floor(full / self.lap_s)
            window_total = laps_full * self.lap_m + np.interp(full - laps_full * self.lap_s, self._lap_t, self._lap_d)
            u = np.clip(t - a, 0.0, full)
            laps = np.floor(u / self.lap_s)
            d = laps * self.lap_m + np.interp(u - laps * self.lap_s, self._lap_t, self._lap_d)
            out += np.where(t >= a, d, 0.0)
            done += window_total
        return out if np.ndim(t_s) else out[0]

    def reported_xy(self, t_s) -> NDArray[np.float64]:
        """GPS-reported ENU position(s): the last 1 Hz fix's error applied to the truth."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        k = np.clip(np.floor(t * (len(self._gps_t) / max(self._gps_t[-1], 1))).astype(int), 0, len(self._gps_t) - 1)
        out = self.true_xy(t) + self._gps_err[k]
        return out if np.ndim(t_s) else out[0]

    def speed_mps(self, t_s: float) -> float:
        a = self.true_xy(t_s)
        b = self.true_xy(t_s + 0.5)
        return float(np.hypot(*(b - a)) / 0.5)


class ShadowField:
    """Gaussian random field with exponential correlation exp(−r/d_c) on a regular grid.

    Drawn by circulant embedding with FFTs (Dietrich & Newsam 1997) over a square of ``extent_m``
    around the origin; values between grid points are bilinearly interpolated, outside clamped.
    """

    def __init__(self, sigma_db: float, dc_m: float, grid_m: float, extent_m: float, rng: np.random.Generator) -> None:
        n = int(np.ceil(2 * extent_m / grid_m)) + 1
        N = 2 * n
        idx = np.fft.fftfreq(N, d=1.0 / N) * grid_m
        rx, ry = np.meshgrid(idx, idx, indexing="ij")
        cov = np.exp(-np.hypot(rx, ry) / dc_m)
        lam = np.maximum(np.real(np.fft.fft2(cov)), 0.0)
        z = rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N))
        field = np.real(np.fft.fft2(np.sqrt(lam / (N * N)) * z))[:n, :n]
        self.values = (sigma_db * field).astype(np.float64)
        self.grid_m = grid_m
        self.x0 = -extent_m

    def at(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        xy = np.atleast_2d(xy)
        n = self.values.shape[0]
        gx = np.clip((xy[:, 0] - self.x0) / self.grid_m, 0, n - 1.000001)
        gy = np.clip((xy[:, 1] - self.x0) / self.grid_m, 0, n - 1.000001)
        i, j = gx.astype(int), gy.astype(int)
        fx, fy = gx - i, gy - j
        v = self.values
        return ((1 - fx) * (1 - fy) * v[i, j] + fx * (1 - fy) * v[i + 1, j]
                + (1 - fx) * fy * v[i, j + 1] + fx * fy * v[i + 1, j + 1])


@dataclass
class _EmitterState:
    emitter: Emitter
    shadow: ShadowField
    facade_db: NDArray[np.float64]  # offsets for the 4 sides (E, N, W, S)
    bel_db: float


class World:
    """Received power of each emitter at the vehicle (dBm, before noise), per scene time."""

    def __init__(self, scene: Scene, seed_seq: np.random.SeedSequence) -> None:
        self.scene = scene
        ss_vehicle, ss_shadow, ss_fade = seed_seq.spawn(3)
        self.vehicle = Vehicle(scene, np.random.default_rng(ss_vehicle))
        p = scene.propagation
        extent = max(400.0, max(np.abs(w).max() for w in [np.asarray(scene.route.waypoints)]) + 100.0)
        self.emitters: dict[str, _EmitterState] = {}
        for e, ss in zip(scene.emitters, ss_shadow.spawn(len(scene.emitters))):
            rng = np.random.default_rng(ss)
            field = ShadowField(p.shadow_sigma_db, p.shadow_dc_m, p.shadow_grid_m, extent, rng)
            bel = float(np.clip(p.building_loss_db + rng.normal(0, 4.0), 4.0, 22.0)) if e.indoor else 0.0
            self.emitters[e.id] = _EmitterState(e, field, rng.normal(0, 3.0, 4) if e.indoor else np.zeros(4), bel)
        self._fade_seed = ss_fade
        self._fade_cache: dict = {}
        self._ripple_phase = float(np.random.default_rng(ss_fade).uniform(0, 2 * np.pi))

    def emitter_xy(self, e: Emitter, t_s) -> NDArray[np.float64]:
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        return np.asarray(e.position)[None, :] + t[:, None] * np.asarray(e.velocity_mps)[None, :]

    def fading_gain(self, emitter_id: str, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Linear fast-fading power gain at scene times ``t_s`` (one value per 0.5 λ of the path,
        fixed per emitter: a parked vehicle sees a constant value; mean 1)."""
        st = self.emitters[emitter_id]
        e = st.emitter
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        if self.scene.propagation.fast_fading == "none":
            return np.ones(t.size)
        d = self.vehicle.distance_m(t)
        if np.any(e.velocity_mps):
            d = d + float(np.hypot(*e.velocity_mps)) * t
        k = np.floor(d / (0.5 * C / e.f_c_hz)).astype(np.int64)
        out = np.empty(t.size)
        chunk = 4096
        for c in np.unique(k // chunk):
            sel = (k // chunk) == c
            out[sel] = self._fade_chunk(emitter_id, int(c))[k[sel] - c * chunk]
        return out

    def _fade_chunk(self, emitter_id: str, c: int) -> NDArray[np.float64]:
        key = (emitter_id, c)
        h = self._fade_cache.get(key)
        if h is None:
            seed = int.from_bytes(emitter_id.encode()[:8].ljust(8, b"\0"), "little")
            rng = np.random.default_rng([self._fade_seed.entropy & 0xFFFFFFFF, seed & 0xFFFFFFFF, c])
            g = rng.standard_normal((4096, 2))
            if self.scene.propagation.fast_fading == "rice":
                K = 10 ** (self.scene.propagation.rice_k_db / 10)
                z = np.sqrt(K / (K + 1)) + np.sqrt(1 / (2 * (K + 1))) * (g[:, 0] + 1j * g[:, 1])
            else:
                z = np.sqrt(0.5) * (g[:, 0] + 1j * g[:, 1])
            h = np.abs(z) ** 2
            if len(self._fade_cache) > 256:
                self._fade_cache.clear()
            self._fade_cache[key] = h
        return h

    def rx_power_dbm(self, emitter_id: str, t_s, *, fading_span_s: tuple[float, float] | None = None) -> NDArray[np.float64]:
        """Received power (dBm) of an emitter at scene times ``t_s`` (shape (k,)), including
        shadowing, building entry loss and antenna ripple, and fast fading averaged over the path
        driven during ``fading_span_s`` (start, end) when given."""
        st = self.emitters[emitter_id]
        e = st.emitter
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        rx = self.vehicle.true_xy(t)
        tx = self.emitter_xy(e, t)
        d = np.maximum(np.hypot(*(rx - tx).T), 1.0)
        pl = fspl_1m_db(e.f_c_hz) + 10 * e.path_loss_exponent * np.log10(d)
        pl = pl - st.shadow.at(rx)
        if e.indoor:
            ang = np.arctan2(rx[:, 1] - tx[:, 1], rx[:, 0] - tx[:, 0])
            side = (np.round(ang / (np.pi / 2)).astype(int)) % 4
            pl = pl + st.bel_db + st.facade_db[side]
        # azimuth gain ripple of the roof antenna, fixed to the vehicle frame
        heading = np.arctan2(*(self.vehicle.true_xy(t + 0.5) - rx).T[::-1])
        bearing = np.arctan2(tx[:, 1] - rx[:, 1], tx[:, 0] - rx[:, 0])
        ripple = self.scene.route.antenna_ripple_db * np.sin(2 * (bearing - heading) + self._ripple_phase)
        p = e.eirp_dbm - pl + ripple
        if fading_span_s is not None:
            # mean fast-fading gain over the span, from the same per-distance sequence the IQ uses
            span = np.linspace(fading_span_s[0], fading_span_s[1], 33)
            p = p + 10 * np.log10(np.mean(self.fading_gain(emitter_id, span)))
        return p
