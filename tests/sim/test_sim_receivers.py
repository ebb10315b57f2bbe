"""Several simulated receivers in one vehicle (issue #19): one world, each dongle its own noise and impairments."""

from __future__ import annotations

import numpy as np
import pytest

from detector.sim.scene import scene_from_spec
from detector.sim.sdr import SimSDR


def test_receivers_share_the_world_but_not_their_noise_or_crystal():
    scene = scene_from_spec("sim:default")
    a = SimSDR(scene, window="exam", receiver=0)
    b = SimSDR(scene, window="exam", receiver=1)
    c = SimSDR(scene, window="exam", receiver=0)
    assert a.intervals == b.intervals  # the same transmitters on and off
    t = a.t_start + 30.0
    assert a.position(t) == b.position(t)  # one vehicle
    assert a.scene.receiver.ppm == scene.receiver.ppm
    assert b.scene.receiver.ppm != pytest.approx(scene.receiver.ppm, abs=1.0)  # its own crystal
    xa, xb, xc = a.read(4096).samples, b.read(4096).samples, c.read(4096).samples
    assert np.array_equal(xa, xc)  # receiver 0 is exactly the scene's own receiver
    assert not np.array_equal(xa, xb)
    # the same scene at about the same level (its own DC offset and IQ imbalance: within 1.5 dB)
    pa, pb = 10 * np.log10(np.mean(np.abs(xa) ** 2)), 10 * np.log10(np.mean(np.abs(xb) ** 2))
    assert abs(pa - pb) < 1.5
    assert "receiver 1" in b.info.name and "receiver" not in a.info.name
