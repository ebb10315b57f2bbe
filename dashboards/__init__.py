"""Figures drawn with matplotlib (Agg backend): functions that take data and return a Figure.

* :func:`spectrum_summary_figure` — a recording's average and max-hold spectra with peaks
  (``examwatch spectrum --png``).
* :func:`spectrum_baseline_figure` — the live spectrum against the site baseline (median, p99
  band), emissions and alerts labelled, whitelisted channels shaded.
* :func:`waterfall_figure` — spectrogram of the recent minutes with track boxes and alert markers.
* :func:`occupancy_figure` — frequency × time heatmap of a sweep session or survey, with occupancy.
* :func:`site_map_figure` — route, readings by power, estimate with its 95 % region, buildings;
  metres with latitude/longitude ticks, no internet tiles.
* :func:`exam_timeline_figure` — exam sessions and alerts as bars over time.
* :func:`environment_figure` — a site's baseline (median, p90–p99, max, occupancy) with alerts
  marked, for the report.
* :func:`save_figure` (PNG, SVG or PDF by extension) and :func:`figure_bytes` (in memory).

Exports (GeoJSON, KML, evidence packs) are in :mod:`dashboards.exports`, the post-exam report in
:mod:`dashboards.report`. Only this package imports matplotlib.
"""

from dashboards._common import RENDER_LOCK, figure_bytes, save_figure
from dashboards.environment import environment_figure
from dashboards.live_spectrum import spectrum_baseline_figure
from dashboards.occupancy import occupancy_figure, occupancy_stack
from dashboards.site_map import site_map_figure
from dashboards.spectrum import spectrum_summary_figure
from dashboards.timeline import exam_timeline_figure
from dashboards.waterfall import waterfall_figure, waterfall_from_spectra

__all__ = [
    "RENDER_LOCK",
    "environment_figure",
    "exam_timeline_figure",
    "figure_bytes",
    "occupancy_figure",
    "occupancy_stack",
    "save_figure",
    "site_map_figure",
    "spectrum_baseline_figure",
    "spectrum_summary_figure",
    "waterfall_figure",
    "waterfall_from_spectra",
]
