"""Running a survey or a detection over a timeline of sources (the glue under the CLI and demo).

A *source* here is anything ``open_source``/``open_all`` returns: an
:class:`~detector.sources.IQSource` (recordings, RTL-SDR, the simulated SDR) or a
:class:`~detector.sources.sweep.SweepFile` of spectra. Sources are read one after another as one
timeline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Iterator

import numpy as np

from detector.detection.engine import DetectionEngine
from detector.core.errors import InputError
from detector.core.types import IQBlock, Spectrum
from detector.sources.sweep import SweepFile

__all__ = ["timeline_items", "timeline_frames", "sweep_grid", "survey_baseline", "run_detection", "total_duration_s"]


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


def sweep_grid(sources) -> Spectrum | None:
    """The survey grid of sweep files: one frame whose ``freqs_hz`` span every sweep of every
    :class:`SweepFile` among ``sources`` (None when the first source is not a sweep file).

    The grid is anchored on the sweep with the most bins (the first such one, a whole sweep even
    when the file starts mid-sweep) and extended at its spacing to the lowest and highest bin of
    any sweep, so that no partial sweep decides the band. Its ``rbw_hz`` and ``n_looks`` are the
    anchor's. A non-uniform anchor is returned as it is (the builder then says why it cannot be a
    grid).
    """
    if not sources or not isinstance(sources[0], SweepFile):
        return None
    spectra = [spec for src in sources if isinstance(src, SweepFile) for spec in src.spectra if spec.freqs_hz.size]
    if not spectra:
        return None
    anchor = max(spectra, key=lambda spec: spec.freqs_hz.size)  # max keeps the first of equals
    f0 = np.asarray(anchor.freqs_hz, dtype=np.float64)
    if f0.size < 2:
        return anchor
    steps = np.diff(f0)
    step = float(np.median(steps))
    if not step > 0 or np.max(np.abs(steps - step)) > 0.01 * step:
        return anchor
    lo = min(float(spec.freqs_hz[0]) for spec in spectra)
    hi = max(float(spec.freqs_hz[-1]) for spec in spectra)
    k_lo = min(0, int(np.rint((lo - f0[0]) / step)))
    k_hi = max(f0.size - 1, int(np.rint((hi - f0[0]) / step)))
    if k_lo == 0 and k_hi == f0.size - 1:
        return anchor
    grid = f0[0] + step * np.arange(k_lo, k_hi + 1, dtype=np.float64)
    grid[-k_lo:-k_lo + f0.size] = f0
    return replace(anchor, freqs_hz=grid, power=np.full(grid.size, np.nan, dtype=np.float32))


def survey_baseline(sources, engine: DetectionEngine, *, site: str, progress=None, max_duration_s=None,
                    source_names: Iterable[str] = ()):
    """Build a :class:`~detector.baseline.SiteBaseline` from every frame of the sources.

    The grid is the first frame's; when the first source is a sweep file, it spans every sweep
    of the sweep files (:func:`sweep_grid`), so that a partial first sweep cannot drop the band.

    Raises :class:`InputError` when there is no frame or the sources' RBWs differ.
    """
    from detector.baseline import BaselineBuilder

    builder = None
    grid = sweep_grid(sources)
    for spec in timeline_frames(sources, engine, progress=progress, max_duration_s=max_duration_s):
        if builder is None:
            corr = getattr(engine, "correct", None)
            ref = grid if grid is not None else spec
            builder = BaselineBuilder(ref.freqs_hz, rbw_hz=ref.rbw_hz, site=site, n_looks=ref.n_looks,
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
