"""Figures of an alert's own evidence: the spectrum and the waterfall of its SigMF IQ snippet.

After the exam only the store is left; the snippet (about one second of IQ around the detection,
``cu8``) is the alert's spectral record. :func:`snippet_frames` turns it into framed spectra with
:mod:`detector.dsp` (the same Welch framing as the detector), :func:`alert_evidence_figures` into
the spectrum (against the baseline when one is given) and the waterfall with the alert marked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dashboards._common import alert_dict

__all__ = ["snippet_frames", "alert_evidence_figures", "SNIPPET_META_SUFFIX", "SNIPPET_DATA_SUFFIX"]

SNIPPET_META_SUFFIX = ".sigmf-meta"
SNIPPET_DATA_SUFFIX = ".sigmf-data"
_FRAME_S = 0.01


def _to_complex(data: bytes, datatype: str) -> np.ndarray:
    from detector.dsp import cf32_to_complex64, cs8_to_complex64, cs16_to_complex64, cu8_to_complex64

    conv = {"cu8": (cu8_to_complex64, np.uint8), "ci8": (cs8_to_complex64, np.int8),
            "ci16_le": (cs16_to_complex64, "<i2"), "cf32_le": (cf32_to_complex64, "<f4")}
    if datatype not in conv:
        raise ValueError(f"SigMF datatype {datatype!r} is not supported here (cu8, ci8, ci16_le, cf32_le)")
    fn, dt = conv[datatype]
    raw = np.frombuffer(data, dtype=dt)
    return fn(raw[: raw.size // 2 * 2].astype(np.dtype(dt).newbyteorder("=")))


def snippet_frames(meta: bytes | str | Mapping, data: bytes, *, frame_s: float = _FRAME_S) -> tuple[Any, dict]:
    """The snippet's max-hold :class:`~detector.core.types.Spectrum` over frames of ``frame_s`` seconds
    (dBFS; a burst in a part of the snippet keeps its level) and its waterfall dict (``times_s``,
    ``freqs_hz``, ``power_db``) of those frames."""
    from detector.dsp import default_nfft, frame_psd_stack, make_plan, power_to_db, welch_psd
    from detector.core.types import Spectrum

    m = json.loads(meta) if isinstance(meta, (bytes, str)) else dict(meta)
    glob = m.get("global", {})
    fs = float(glob["core:sample_rate"])
    caps = m.get("captures") or [{}]
    center = float(caps[0].get("core:frequency", 0.0))
    x = _to_complex(data, glob.get("core:datatype", "cu8"))
    nfft = default_nfft(fs)
    plan = make_plan(fs, nfft=nfft)
    if x.size < nfft:
        raise ValueError(f"the snippet holds {x.size} samples, fewer than one {nfft}-point segment")
    freqs = center + plan.offsets_hz
    spf = max(1, int(round(frame_s * fs / plan.step)))
    stack = frame_psd_stack(x, plan, spf)
    if stack.shape[0] == 0:
        stack = welch_psd(x, plan)[None, :].astype(np.float32)
        spf = max(1, plan.segments_in(x.size))
    times = np.arange(stack.shape[0]) * spf * plan.step / fs
    maxhold = Spectrum(freqs_hz=freqs, power=power_to_db(stack.max(axis=0)), rbw_hz=plan.rbw_hz, unit="dBFS",
                       duration_s=x.size / fs, n_looks=spf * plan.looks_per_segment, center_hz=center)
    return maxhold, {"times_s": times, "freqs_hz": freqs, "power_db": power_to_db(stack)}


def alert_evidence_figures(store: Any, alert: Any, *, baseline: Any = None) -> dict[str, Figure]:
    """``{"spectrum": Figure, "waterfall": Figure}`` from the alert's SigMF snippet in the store
    (empty when it has none or it cannot be read)."""
    a = alert_dict(alert)
    names = [e["name"] if isinstance(e, Mapping) else e.name for e in a.get("evidence") or []]
    meta_name = next((n for n in names if n.endswith(SNIPPET_META_SUFFIX)), None)
    if meta_name is None:
        return {}
    data_name = meta_name[: -len(SNIPPET_META_SUFFIX)] + SNIPPET_DATA_SUFFIX
    meta, data = store.evidence(a["id"], meta_name), store.evidence(a["id"], data_name)
    if meta is None or data is None:
        return {}
    try:
        avg, wf = snippet_frames(meta[0], data[0], frame_s=_FRAME_S)
    except (ValueError, KeyError, TypeError):
        return {}
    from dashboards.live_spectrum import spectrum_baseline_figure
    from dashboards.waterfall import waterfall_figure

    frame_s = _FRAME_S
    # the snippet's timeline starts at 0: place the alert's track at the end of it
    dur = float(wf["times_s"][-1]) + (float(wf["times_s"][1] - wf["times_s"][0]) if wf["times_s"].size > 1 else 0.0)
    bw = float(a.get("bandwidth_hz") or 12500.0)
    track = {"track_id": a.get("track_id"), "f_lo_hz": a["center_hz"] - bw / 2, "f_hi_hz": a["center_hz"] + bw / 2,
             "first_seen_s": 0.0, "last_seen_s": dur, "alert": True}
    spec = spectrum_baseline_figure(avg, baseline=baseline, alerts=[a],
                                    spectrum_label=f"max-hold of the snippet ({frame_s * 1e3:.0f} ms frames)",
                                    title=f"{a['id']}: spectrum of the evidence snippet ({avg.duration_s:.2f} s of IQ)")
    wfall = waterfall_figure(wf, tracks=[track], title=f"{a['id']}: waterfall of the evidence snippet")
    return {"spectrum": spec, "waterfall": wfall}
