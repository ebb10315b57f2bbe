"""Running a survey or a detection over a timeline of sources (the glue under the CLI and demo).

A *source* here is anything ``open_source``/``open_all`` returns: an
:class:`~detector.sources.IQSource` (recordings, RTL-SDR, the simulated SDR) or a
:class:`~detector.sources.sweep.SweepFile` of spectra. Sources are read one after another as one
timeline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Iterator

from detector.detection.engine import DetectionEngine
from detector.core.errors import InputError
from detector.core.types import IQBlock, Spectrum
from detector.sources.sweep import SweepFile

__all__ = ["timeline_items", "timeline_frames", "survey_baseline", "run_detection", "total_duration_s"]


def total_duration_s(sources) -> float | None:
    """Sum of the sources' durations (s), or None when one is endless or unknown."""
    total = 0.0
    for s in sources:
        if isinstance(s, SweepFile):
            spectra = s.spectra
            total += (spectra[-1].offset_s + (spectra[-1].duration_s or 0.0)) if spectra else 0.0
            continue
        if s.info.duration_s is None:
            return None
        total += s.info.duration_s
    return total


def timeline_items(sources, engine: DetectionEngine, *, progress: Callable[[float], None] | None = None,
                   max_duration_s: float | None = None) -> Iterator[Spectrum | IQBlock]:
    """Every source's spectra (sweep files, shifted onto the timeline) or IQ blocks, one source
    after another; ``engine.time_offset_s`` advances per source (simulated sources keep their
    scene seconds, which their blocks carry). ``progress`` gets the seconds read so far."""
    done = 0.0
    for src in sources:
        t0 = engine.time_offset_s
        if isinstance(src, SweepFile):
            last = 0.0
            for spec in src.spectra:
                last = spec.offset_s + (spec.duration_s or 0.0)
                yield replace(spec, offset_s=t0 + spec.offset_s)
            engine.time_offset_s = t0 + last
            done += last
            continue
        read = 0.0
        for block in src.blocks():
            yield block
            read += block.duration_s
            if progress:
                progress(done + read)
            if max_duration_s is not None and read >= max_duration_s:
                break
        done += read
        if src.info.kind != "sim":
            engine.time_offset_s = t0 + (src.info.duration_s if src.info.duration_s is not None else read)


def timeline_frames(sources, engine: DetectionEngine, *, progress: Callable[[float], None] | None = None,
                    max_duration_s: float | None = None) -> Iterator[Spectrum]:
    """Frames of every source on one timeline: sweep spectra as they are, IQ blocks framed by ``engine``."""
    for item in timeline_items(sources, engine, progress=progress, max_duration_s=max_duration_s):
        if isinstance(item, Spectrum):
            yield item
        else:
            yield from engine.frames_of_block(item)


def survey_baseline(sources, engine: DetectionEngine, *, site: str, progress=None, max_duration_s=None,
                    source_names: Iterable[str] = ()):
    """Build a :class:`~detector.baseline.SiteBaseline` from every frame of the sources.

    Raises :class:`InputError` when there is no frame or the sources' RBWs differ.
    """
    from detector.baseline import BaselineBuilder

    builder = None
    for spec in timeline_frames(sources, engine, progress=progress, max_duration_s=max_duration_s):
        if builder is None:
            corr = getattr(engine, "correct", None)
            builder = BaselineBuilder(spec.freqs_hz, rbw_hz=spec.rbw_hz, site=site, n_looks=spec.n_looks,
                                      gain_db=None, sources=list(source_names),
                                      calibration_profile=getattr(corr, "correction_id", None))
        elif abs(spec.rbw_hz - builder.rbw_hz) > 0.01 * builder.rbw_hz:
            raise InputError("survey: the sources have different RBWs; survey them separately and merge with --merge")
        try:
            builder.add(spec, crop=True, mixed_looks=True)
        except ValueError as exc:  # another unit or grid: one line, exit 2
            raise InputError(f"survey: {exc}") from None
    if builder is None:
        raise InputError("survey: the sources held no complete frame")
    return builder.build()


def run_detection(sources, engine: DetectionEngine, on_events: Callable[[list[dict]], None], *, progress=None,
                  max_duration_s=None) -> None:
    """Detection and tracking over the sources as one timeline; ``on_events`` gets the events as
    they come (IQ blocks are processed as stacks of frames, sweeps frame by frame)."""
    for item in timeline_items(sources, engine, progress=progress, max_duration_s=max_duration_s):
        ev = engine.process_spectrum(item) if isinstance(item, Spectrum) else engine.process_block(item)
        if ev:
            on_events(ev)
    on_events(engine.finish())
