"""Helpers shared by several test packages (plain functions; the fixtures are in ``conftest.py``):
a free loopback port, NMEA sentences, synthetic IQ through the detection engine, an IQ survey."""

from __future__ import annotations

import socket
from functools import reduce
from typing import Iterable, Iterator

import numpy as np


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nmea(body: str) -> str:
    """An NMEA sentence ``$body*CS`` with its checksum."""
    cs = reduce(lambda a, b: a ^ b, body.encode(), 0)
    return f"${body}*{cs:02X}"


def as_cu8(x, dc=(0.0, 0.0)):
    """``x`` through RTL-SDR cu8 quantization (with a DC offset in LSB) and back to complex64."""
    from detector.dsp import cu8_to_complex64
    from detector.sim import cu8_bytes

    return cu8_to_complex64(cu8_bytes(x, dc_lsb=dc))


def iq_blocks(x, fs_hz: float, center_hz: float, *, block: int = 1 << 16, t0_s: float = 0.0) -> Iterator:
    """``x`` as consecutive :class:`~detector.core.types.IQBlock`\\ s of ``block`` samples (the first retuned)."""
    from detector.core.types import IQBlock

    for i in range(0, x.size, block):
        yield IQBlock(x[i:i + block], center_hz, fs_hz, offset_s=t0_s + i / fs_hz, retuned=i == 0)


def recording_of(x, fs_hz: float, center_hz: float):
    """A finite source class (a recording) of the samples ``x`` for :class:`~detector.pipeline.Monitor`:
    ``info``/``blocks``/``close`` only (the monitor adapts it), blocks on demand, never paced."""
    from detector.sources import SourceInfo

    class Recording:
        info = SourceInfo(kind="raw", name="rec", center_hz=center_hz, sample_rate_hz=fs_hz, n_samples=x.size)

        def blocks(self, bs):
            return iq_blocks(x, fs_hz, center_hz, block=bs)

        def close(self):
            pass

    return Recording


def run_iq(engine, x, fs_hz: float, center_hz: float, *, block: int = 1 << 16, finish: bool = True) -> list[dict]:
    """The events of ``engine.process_block`` over ``x`` in blocks, then of ``finish()`` unless told
    not to, as their JSON objects (``TrackEvent.to_json``)."""
    events: list = []
    for b in iq_blocks(x, fs_hz, center_hz, block=block):
        events += engine.process_block(b)
    if finish:
        events += engine.finish()
    return [e.to_json() for e in events]


def survey_blocks(blocks: Iterable, *, engine=None, site: str = "s1"):
    """A :class:`~detector.baseline.SiteBaseline` of the frames ``engine`` (default: a default
    :class:`~detector.detection.engine.DetectionEngine`) cuts from ``blocks``."""
    from detector.baseline import BaselineBuilder
    from detector.detection.engine import DetectionEngine

    engine = engine or DetectionEngine()
    builder = None
    for b in blocks:
        for spec in engine.frames_of_block(b):
            if builder is None:
                builder = BaselineBuilder(spec.freqs_hz, rbw_hz=spec.rbw_hz, site=site, n_looks=spec.n_looks)
            builder.add(spec)
    assert builder is not None, "no frame to survey"
    return builder.build()


def survey_iq(x, fs_hz: float, center_hz: float, *, engine=None, site: str = "s1"):
    """:func:`survey_blocks` of ``x`` cut into blocks."""
    return survey_blocks(iq_blocks(np.asarray(x), fs_hz, center_hz), engine=engine, site=site)
