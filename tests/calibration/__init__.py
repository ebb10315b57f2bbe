"""Tests of ``calibration/`` and ``examwatch calibrate``; helpers to build calibration scenes.

The scenes start from ``sim:default`` with the emitters replaced by what a test needs, placed
20 km away (so the vehicle's loop changes their level by < 0.1 dB), with no shadowing, no fast
fading, no antenna ripple and no dropped USB buffers.
"""

from __future__ import annotations

from detector.sim.scene import Emitter, Scene, scene_from_spec

__all__ = ["far_emitter", "calibration_scene"]


def far_emitter(id: str, f_c_hz: float, modulation: str, eirp_dbm: float, **kw) -> Emitter:
    """A continuous emitter 20 km east of the site (n = 2.5: 60 dBm EIRP at 446 MHz arrives at −73 dBm, −31 dBFS at gain 20 dB)."""
    return Emitter(id=id, f_c_hz=f_c_hz, modulation=modulation, eirp_dbm=eirp_dbm, position=(20000.0, 0.0),
                   height_m=100.0, path_loss_exponent=2.5, schedule=[(0.0, 1e5)], **kw)


def calibration_scene(emitters: list[Emitter], *, center_hz: float = 446e6, sample_rate_hz: float = 1.024e6,
                      ppm: float = -37.0, drift_ppm: float = 0.0, drift_tau_s: float = 600.0,
                      iq_gain_db: float = 0.3, iq_phase_deg: float = 2.0, gain_db: float = 20.0,
                      dc_offset_lsb: tuple[float, float] = (1.5, -1.0), end_s: float = 700.0) -> Scene:
    """``sim:default`` with ``emitters`` and the given receiver; survey 0–``end_s`` s, exam after it."""
    base = scene_from_spec("sim:default")
    rx = base.receiver.model_copy(update=dict(
        center_hz=center_hz, sample_rate_hz=sample_rate_hz, ppm=ppm, drift_ppm=drift_ppm, drift_tau_s=drift_tau_s,
        drop_probability=0.0, gain_db=gain_db, iq_gain_db=iq_gain_db, iq_phase_deg=iq_phase_deg,
        dc_offset_lsb=dc_offset_lsb))
    prop = base.propagation.model_copy(update=dict(shadow_sigma_db=0.0, fast_fading="none"))
    route = base.route.model_copy(update=dict(antenna_ripple_db=0.0))
    timeline = base.timeline.model_copy(update=dict(survey=(0.0, end_s), exam=[(end_s, end_s + 10.0)]))
    return base.model_copy(update=dict(receiver=rx, propagation=prop, route=route, timeline=timeline,
                                       emitters=emitters))
