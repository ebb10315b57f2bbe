"""First-version emission classifier: rules on a track's bandwidth, bursts and spectrum shape.

Rules (in order) and their limits:

* ``wideband`` — occupied bandwidth ≥ 150 kHz (OFDM, broadcast FM with its sidebands). Any wide
  emission is called so, whatever its modulation.
* ``fsk_data`` — a track whose max-hold spectrum shows two tones of similar level (within 6 dB,
  ≤ 100 kHz apart) either side of a dip ≥ 6 dB at its centroid (OOK has its carrier there), or
  short bursts (< 0.5 s) of a narrow (≤ 30 kHz) signal without the keying sidebands of OOK.
  Only bursts that have ended count as short (here and for ``pulsed``): while the first burst
  is still on the air, a signal without two tones stays ``unknown`` (a voice call's first 50 ms
  look like a data burst's or an OOK burst's).
  Limit: FSK with a deviation smaller than its bit rate shows no dip and falls to the second rule.
* ``pulsed`` — OOK: short bursts (< 1 s) whose spectrum is a carrier with keying sidebands
  (several separate runs in a frame, a span ≥ 4× the occupied bandwidth, or a dominant line at
  the centroid ≥ 10 dB over the level 3 kHz away).
* ``nfm_voice`` — occupied 6–16 kHz with bursts lasting seconds (≥ 1 s).
* ``carrier`` — ≤ 3 kHz (or ≤ 5 bins at coarse resolution: a window's main lobe) occupied, on
  for ≥ 1 s (steady or VOX-stuck).
* ``unknown`` — anything else (too short or too little evidence so far).

The class is re-evaluated as a track grows. These are heuristics on PSD frames at ~1 kHz
resolution; they do not demodulate.
"""

from __future__ import annotations

import numpy as np

from detector.detection._tracking import Track

__all__ = ["classify_track", "CLASSES"]

CLASSES = ("carrier", "nfm_voice", "fsk_data", "pulsed", "wideband", "unknown")


def _spectrum_shape(tr: Track):
    """The track's max-hold spectrum ``s`` (linear, float64) and the power centroid (fractional
    bin, None when nothing rises above the median) of its excess over its median, computed once
    for both spectral rules; None when the spectrum is too short (< 5 bins)."""
    s = tr.spectrum_lin
    if s is None or s.size < 5:
        return None
    w = np.maximum(s - np.median(s), 0.0)
    total = float(w.sum())
    return s, (float(np.sum(np.arange(s.size) * w) / total) if total > 0 else None)


def _two_tones(tr: Track, shape=None) -> bool:
    """Two tones of similar level either side of a dip at the spectrum's centroid (2-FSK).

    OOK puts its carrier at the centroid of its spectrum (the peak); FSK puts a dip there."""
    shape = shape if shape is not None else _spectrum_shape(tr)
    if shape is None or shape[1] is None:
        return False
    s, cf = shape
    bin_hz = tr.spectrum_bin_hz
    c = int(round(cf))
    gap = max(1, int(np.ceil(2000.0 / bin_hz)))
    left, right = s[: max(c - gap + 1, 0)], s[c + gap:]
    if left.size == 0 or right.size == 0:
        return False
    k1, k2 = int(np.argmax(left)), c + gap + int(np.argmax(right))
    p1, p2 = float(left[k1]), float(right[k2 - c - gap])
    if abs(10 * np.log10(p1 / p2)) > 6 or (k2 - k1) * bin_hz > 100e3:
        return False
    centre = float(s[max(c - 1, 0):c + 2].mean())
    return 10 * np.log10(min(p1, p2) / max(centre, 1e-30)) >= 6


def _carrier_line(tr: Track, shape=None) -> bool:
    """A dominant line at the spectrum's centroid, ≥ 10 dB above the level 3 kHz either side
    (a keyed carrier: OOK's line with its keying sidebands)."""
    shape = shape if shape is not None else _spectrum_shape(tr)
    if shape is None:
        return False
    s, cf = shape
    bin_hz = tr.spectrum_bin_hz
    k = int(np.argmax(s))
    c = cf if cf is not None else 0.0
    if abs(k - c) * bin_hz > 1500:
        return False
    d = max(1, int(round(3000.0 / bin_hz)))
    side = [s[k - d]] if k - d >= 0 else []
    side += [s[k + d]] if k + d < s.size else []
    return bool(side) and 10 * np.log10(s[k] / max(max(side), 1e-30)) >= 10


def _median(values) -> float:
    v = sorted(values)
    h = len(v) // 2
    return float(v[h]) if len(v) % 2 else 0.5 * float(v[h - 1] + v[h])


def classify_track(tr: Track) -> str:
    """Class of a track, one of :data:`CLASSES` (rules in the module docstring)."""
    bw = tr.bandwidth_hz
    span = tr.f_hi_hz - tr.f_lo_hz
    all_durations = tr.burst_durations_s or [tr.span_s]
    med_burst = _median(all_durations)
    # "short bursts" needs bursts that have ended: a first burst still on the air is not short yet
    completed = all_durations if tr.ended else all_durations[:len(tr.burst_ends)]
    med_done = _median(completed) if completed else None
    if bw >= 150e3:
        return "wideband"
    shape = _spectrum_shape(tr)
    short = med_done is not None and med_done < 1.0
    keyed = tr.n_runs_max >= 3 or span >= 4 * max(bw, 1.0) or (short and _carrier_line(tr, shape))
    two_tones = _two_tones(tr, shape)
    if short and keyed and not two_tones:
        return "pulsed"
    if two_tones and bw <= 100e3:
        return "fsk_data"
    if med_done is not None and med_done < 0.5 and bw <= 30e3:
        return "fsk_data" if not keyed else "pulsed"
    if 6e3 <= bw <= 16e3 and med_burst >= 1.0:
        return "nfm_voice"
    if bw <= max(3e3, 5 * tr.spectrum_bin_hz) and tr.on_time_s >= 1.0:
        return "carrier"
    return "unknown"
