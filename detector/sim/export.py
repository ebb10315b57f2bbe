"""Export a window of a scene as a SigMF recording (cu8) whose annotations carry the truth."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from detector.sim.sdr import SimSDR
from detector.sim.truth import CLASS_OF_MODULATION
from detector.core.timefmt import utc_iso

__all__ = ["export_sigmf"]


def export_sigmf(sdr: SimSDR, path: str | Path, *, start_s: float, duration_s: float, progress=None) -> tuple[Path, Path]:
    """Write ``duration_s`` of IQ from scene second ``start_s`` as ``PATH.sigmf-data``/``.sigmf-meta``.

    ``path`` may end in ``.sigmf-meta``, ``.sigmf-data`` or have no SigMF suffix. Each emitter's
    on-air intervals inside the window become annotations (``core:label`` = emitter id,
    ``core:freq_lower_edge``/``upper_edge`` from its observed frequency and bandwidth,
    ``examwatch:class``, ``examwatch:modulation``, ``examwatch:rx_power_dbm``).
    """
    from sigmf import SigMFFile

    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".sigmf-meta", ".sigmf-data") else p
    data_path = Path(f"{base}.sigmf-data")
    meta_path = Path(f"{base}.sigmf-meta")
    fs = sdr.sample_rate_hz
    sdr.t = start_s
    sdr.t_end = start_s + duration_s
    written = 0
    from detector.sim._synth import cu8_bytes

    with open(data_path, "wb") as fh:
        for block in sdr.blocks(1 << 18):
            # the block is already cu8-quantized; re-encoding its values is exact
            cu8_bytes(block.samples).tofile(fh)
            written += block.samples.size
            if progress:
                progress(written / fs)
    meta = SigMFFile(data_file=str(data_path), global_info={
        "core:datatype": "cu8", "core:sample_rate": fs, "core:version": "1.0.0",
        "core:description": f"examwatch simulated scene {sdr.scene.name} (seed {sdr.seed}), scene seconds {start_s}–{start_s + duration_s}",
        "core:recorder": "examwatch sim export", "core:hw": "simulated RTL-SDR (R820T2/RTL2832U model)",
    })
    meta.add_capture(0, metadata={"core:frequency": sdr.center_hz,
                                  "core:datetime": utc_iso(datetime(2026, 6, 7, 9, 0, tzinfo=timezone.utc))})
    for e in sdr.scene.emitters:
        for a, b in sdr.intervals[e.id]:
            lo, hi = max(a, start_s), min(b, start_s + duration_s)
            if hi <= lo or not sdr.in_band(e, lo):
                continue
            f = sdr.observed_hz(e, lo)
            powers = [pw for t, eid, pw in sdr.truth_power if eid == e.id and lo <= t <= hi]
            first = int((lo - start_s) * fs)
            if first >= written:
                continue
            count = min(max(1, int((hi - lo) * fs)), written - first)  # within the samples written
            meta.add_annotation(first, count, metadata={
                "core:label": e.id, "core:freq_lower_edge": f - e.bandwidth_hz / 2, "core:freq_upper_edge": f + e.bandwidth_hz / 2,
                "examwatch:class": e.kind, "examwatch:modulation": e.modulation,
                "examwatch:expected_class": CLASS_OF_MODULATION[e.modulation],
                "examwatch:f_c_hz": e.f_c_hz, "examwatch:rx_power_dbm": round(float(np.mean(powers)), 2) if powers else None,
            })
    meta.tofile(str(meta_path), overwrite=True)
    return data_path, meta_path
