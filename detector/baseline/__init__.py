"""Per-site baseline of a survey: per-bin level statistics, merging, storage and re-gridding.

``DESIGN.md`` ("Baseline and detection"): a site's baseline holds, per frequency bin on a fixed
grid, robust statistics of the survey — median, p90, p99, MAD, max, occupancy — and how many frames
were seen; baselines can be merged, saved, loaded and versioned. Statistics follow THEORY.md §1.4;
occupancy follows ITU-R SM.1880-2 / Report ITU-R SM.2256 with a statistically set margin (§1.5).

* :class:`BaselineBuilder` / :func:`build_baseline` — accumulate survey :class:`~detector.core.types.Spectrum` frames.
* :class:`SiteBaseline` — per-bin level histograms and the statistics computed from them.
* :func:`merge` — exact combination of two surveys (union of frequency ranges).
* :func:`save` / :func:`load` — one compressed ``.npz`` file, format ``examwatch-baseline`` v1.
* :func:`align` — the statistics on a live spectrum's grid and RBW, or a :class:`RegridError`.

Only :func:`save` and :func:`load` touch files; everything else is pure numpy/scipy.
"""

from detector.baseline._io import FORMAT_NAME, load, save
from detector.baseline._builder import BaselineBuilder, build_baseline
from detector.baseline._levels import (
    LEVEL_MAX_DB,
    LEVEL_MIN_DB,
    LEVEL_STEP_DB,
    N_LEVELS,
    OCCUPANCY_PFA,
    frame_noise_floor_db,
    level_edges_db,
    occupancy_margin_db,
)
from detector.baseline._merge import merge
from detector.baseline._model import FORMAT_VERSION, SiteBaseline
from detector.baseline._regrid import AlignedBaseline, RegridError, align

__all__ = [
    "SiteBaseline",
    "BaselineBuilder",
    "build_baseline",
    "merge",
    "save",
    "load",
    "align",
    "AlignedBaseline",
    "RegridError",
    "occupancy_margin_db",
    "frame_noise_floor_db",
    "level_edges_db",
    "LEVEL_MIN_DB",
    "LEVEL_MAX_DB",
    "LEVEL_STEP_DB",
    "N_LEVELS",
    "OCCUPANCY_PFA",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]
