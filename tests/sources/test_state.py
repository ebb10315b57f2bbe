"""The source interface: states, read(), ended, tune, close — the same for files, the SDRs and legacy objects."""

from __future__ import annotations

import numpy as np
import pytest

from detector.core.errors import InputError, SourceEnded
from detector.core.types import IQBlock
from detector.sources import IQSource, RawIQFile, SourceInfo, SourceState, as_source


def _raw(tmp_path, n=1000):
    p = tmp_path / "x.cf32"
    (np.arange(2 * n, dtype=np.float32)).tofile(p)
    return RawIQFile(p, sample_format="cf32", sample_rate_hz=1e3, center_hz=1e6)


def test_a_recording_reads_block_by_block_to_its_end(tmp_path):
    src = _raw(tmp_path)
    assert src.state is SourceState.OPENED and not src.readable and not src.tunable and not src.ended
    sizes = []
    while True:
        try:
            sizes.append(src.read(400).samples.size)
        except SourceEnded:
            break
        assert src.state is SourceState.RUNNING
    assert sizes == [400, 400, 200]
    assert src.state is SourceState.ENDED and src.ended
    with pytest.raises(InputError, match="cannot be tuned"):
        src.tune(2e6)
    src.close()
    assert src.state is SourceState.CLOSED


def test_a_failing_read_degrades_and_a_good_one_recovers():
    class Flaky(IQSource):
        readable = True
        info = SourceInfo(kind="fake", name="flaky", center_hz=1e6, sample_rate_hz=1e3)
        fail = False

        def _read_block(self, n):
            if self.fail:
                raise OSError("gone")
            return IQBlock(np.zeros(n, np.complex64), 1e6, 1e3)

    s = Flaky()
    assert s.read(8).samples.size == 8 and s.state is SourceState.RUNNING
    s.fail = True
    with pytest.raises(OSError):
        s.read(8)
    assert s.state is SourceState.DEGRADED
    s.fail = False
    s.read(16)
    assert s.state is SourceState.RUNNING
    assert [b.samples.size for b, _ in zip(s.blocks(4), range(3))] == [4, 4, 4]


def test_the_simulated_sdr_ends_at_its_window_and_is_tunable():
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR

    sdr = SimSDR(scene_from_spec("sim:default"), window="exam")
    assert sdr.readable and sdr.tunable and sdr.state is SourceState.OPENED
    sdr.t = sdr.t_end - 0.01
    n = int(0.02 * sdr.sample_rate_hz)
    b = sdr.read(n)  # a read is never cut at the end of the window
    assert b.samples.size == n and sdr.ended and sdr.state is SourceState.ENDED
    sdr.tune(446.1e6)
    assert sdr.info.center_hz == 446.1e6


def test_a_legacy_object_with_only_blocks_is_adapted():
    class Old:
        info = SourceInfo(kind="raw", name="old", center_hz=1e6, sample_rate_hz=1e3, n_samples=20)
        closed = False

        def blocks(self, bs):
            for i in range(0, 20, bs):
                yield IQBlock(np.zeros(min(bs, 20 - i), np.complex64), 1e6, 1e3, offset_s=i / 1e3)

        def close(self):
            Old.closed = True

    s = as_source(Old())
    assert isinstance(s, IQSource) and as_source(s) is s and s.info.name == "old"
    assert [s.read(8).samples.size for _ in range(3)] == [8, 8, 4]
    with pytest.raises(SourceEnded):
        s.read(8)
    assert s.ended
    s.close()
    assert Old.closed and s.state is SourceState.CLOSED
