"""First-version emission classifier: rules on a track's bandwidth, bursts and spectrum shape.

Rules (in order) and their limits:

* ``wideband`` — occupied bandwidth ≥ 150 kHz (OFDM, broadcast FM with its sidebands). Any wide
  emission is called so, whatever its modulation.
* ``fsk_data`` — a track whose max-hold spectrum shows two separate tones of similar level
  (within 6 dB, 4–100 kHz apart, with a dip ≥ 6 dB between), or short bursts (< 0.5 s) of a
  narrow (≤ 30 kHz) signal without the keying sidebands of OOK. Limit: a FM voice burst with a
  strong CTCSS-free tone pair is rare but would be called FSK.
* ``pulsed`` — OOK: short bursts (< 1 s) whose spectrum is a carrier with keying sidebands
  (several separate runs in a frame, or a span ≥ 4× the median occupied bandwidth).
* ``nfm_voice`` — occupied 6–16 kHz with bursts lasting seconds (≥ 1 s).
* ``carrier`` — ≤ 3 kHz occupied, on for ≥ 1 s (steady or VOX-stuck).
* ``unknown`` — anything else (too short or too little evidence so far).

The class is re-evaluated as a track grows. These are heuristics on PSD frames at ~1 kHz
resolution; they do not demodulate.
"""

from __future__ import annotations

import numpy as np

from detector.detection._tracking import Track

__all__ = ["classify_track", "CLASSES"]

CLASSES = ("carrier", "nfm_voice", "fsk_data", "pulsed", "wideband", "unknown")


def _two_tones(tr: Track) -> bool:
    s = tr.spectrum_lin
    if s is None or s.size < 5:
        return False
    db = 10 * np.log10(np.maximum(s, 1e-30))
    k1 = int(np.argmax(db))
    bin_hz = tr.spectrum_bin_hz
    far = np.abs(np.arange(db.size) - k1) * bin_hz >= 4000
    if not far.any():
        return False
    cand = np.where(far, db, -np.inf)
    k2 = int(np.argmax(cand))
    if db[k1] - db[k2] > 6 or abs(k2 - k1) * bin_hz > 100e3:
        return False
    lo, hi = sorted((k1, k2))
    dip = float(np.min(db[lo:hi + 1]))
    return db[k2] - dip >= 6


def classify_track(tr: Track) -> str:
    """Class of a track, one of :data:`CLASSES` (rules in the module docstring)."""
    bw = tr.bandwidth_hz
    span = tr.f_hi_hz - tr.f_lo_hz
    durations = tr.burst_durations_s or [tr.span_s]
    med_burst = float(np.median(durations))
    if bw >= 150e3:
        return "wideband"
    keyed = tr.n_runs_max >= 3 or span >= 4 * max(bw, 1.0)
    if med_burst < 1.0 and keyed and not _two_tones(tr):
        return "pulsed"
    if _two_tones(tr) and bw <= 100e3:
        return "fsk_data"
    if med_burst < 0.5 and bw <= 30e3:
        return "fsk_data" if not keyed else "pulsed"
    if 6e3 <= bw <= 16e3 and med_burst >= 1.0:
        return "nfm_voice"
    if bw <= 3e3 and tr.on_time_s >= 1.0:
        return "carrier"
    return "unknown"
