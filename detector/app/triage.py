"""What a recording or an alert shows, for the device library (#23 items 3 and 4): the burst's
symbol rate and modulation (``detector.triage``), the decoders' models (``app.decoders``) and
the library comparison (``config.devices``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.app.decoders import DecodeResult, multimon_decode_iq, rtl433_decode_iq
from detector.config.devices import DeviceLibrary, LibraryTerm, Observation, library_term
from detector.core.errors import InputError
from detector.triage import SymbolEstimate, estimate_symbols

__all__ = ["Triage", "triage_samples", "triage_recording", "triage_alert", "extract_channel", "MAX_SECONDS"]

MAX_SECONDS = 30.0
CHANNEL_RATE_HZ = 250e3  # rtl_433's own rate; its decoders' timings are tuned there
EVIDENCE_NAMES = (("snippet.sigmf-meta", "snippet.sigmf-data"), ("iq.sigmf-meta", "iq.sigmf-data"))
_CLASS_MODULATION = {"nfm_voice": "NFM", "fsk_data": "FSK", "pulsed": "OOK"}
PAGER_BANDS_HZ = ((137e6, 175e6), (929e6, 932e6))


@dataclass(frozen=True)
class Triage:
    """The observation compared, the symbol estimate (None without IQ), the decoder results and
    the library term."""

    subject: str
    observation: Observation
    symbols: SymbolEstimate | None
    decodes: tuple[DecodeResult, ...]
    term: LibraryTerm

    def to_json(self) -> dict:
        o = self.observation
        return {"subject": self.subject,
                "observation": {"center_hz": o.center_hz, "bandwidth_hz": o.bandwidth_hz, "modulation": o.modulation,
                                "symbol_rate_baud": o.symbol_rate_baud, "burst": o.burst,
                                "burst_period_s": o.burst_period_s, "models": list(o.models)},
                "symbols": None if self.symbols is None else self.symbols.to_json(),
                "decoders": [d.to_json() for d in self.decodes],
                "score_term": {"library": self.term.value}, "reason": self.term.reason,
                "whitelisted": self.term.whitelisted,
                "entries": [c.to_json() for c in self.term.comparisons]}


def extract_channel(iq: np.ndarray, sample_rate_hz: float, offset_hz: float, bandwidth_hz: float | None,
                    out_rate_hz: float = CHANNEL_RATE_HZ) -> tuple[np.ndarray, float]:
    """The emission at ``offset_hz`` from the IQ's 0 Hz, mixed to 0 Hz, low-passed to ±max(1.5 ×
    bandwidth / 2, 0.2 × out rate) and decimated to about ``out_rate_hz`` when the input is faster.
    Returns (complex samples, their rate in Hz)."""
    from fractions import Fraction

    from scipy import signal

    x = np.asarray(iq, dtype=np.complex128).ravel()
    x = x * np.exp(-2j * np.pi * offset_hz * np.arange(x.size) / sample_rate_hz)
    if sample_rate_hz <= out_rate_hz * 1.01:
        return x, sample_rate_hz
    ratio = Fraction(out_rate_hz / sample_rate_hz).limit_denominator(64)
    y = signal.resample_poly(x, ratio.numerator, ratio.denominator)
    fs = sample_rate_hz * ratio.numerator / ratio.denominator
    cutoff = max(0.75 * (bandwidth_hz or 0.0), 0.2 * fs)
    if cutoff < 0.45 * fs:
        y = signal.sosfiltfilt(signal.butter(4, cutoff, fs=fs, output="sos"), y)
    return y, fs


def _decode(iq: np.ndarray, fs: float, center_hz: float, timeout_s: float) -> tuple[DecodeResult, ...]:
    out = [rtl433_decode_iq(iq, fs, center_hz, timeout_s=timeout_s)]
    if any(lo <= center_hz <= hi for lo, hi in PAGER_BANDS_HZ):
        out.append(multimon_decode_iq(iq, fs, timeout_s=timeout_s))
    return tuple(out)


def triage_samples(subject: str, iq: np.ndarray, sample_rate_hz: float, center_hz: float, library: DeviceLibrary, *,
                   decode: bool = True, timeout_s: float = 30.0, bandwidth_hz: float | None = None,
                   burst: str | None = None, burst_period_s: float | None = None,
                   modulation: str | None = None) -> Triage:
    """Symbols, decoders and the library term of IQ samples (complex, shape (n,)) tuned to ``center_hz``."""
    sym = estimate_symbols(iq, sample_rate_hz)
    decodes = _decode(iq, sample_rate_hz, center_hz, timeout_s) if decode else ()
    models = tuple(dict.fromkeys(m for d in decodes for m in d.models))
    f = center_hz + (float(np.mean(sym.tone_offsets_hz)) if sym.tone_offsets_hz else 0.0)
    mod = modulation or (sym.modulation if sym.modulation in ("OOK", "FSK") else None)
    rate = sym.symbol_rate_baud if math.isfinite(sym.symbol_rate_baud) and mod in ("OOK", "FSK") else None
    if burst is None and sym.modulation in ("OOK", "FSK"):
        burst = "bursts"
    obs = Observation(f, bandwidth_hz, mod, rate, burst, burst_period_s, models)
    return Triage(subject, obs, sym, decodes, library_term(obs, library))


def triage_recording(path: str, library: DeviceLibrary, *, center_hz: float | None = None, sample_rate_hz: float | None = None,
                     sample_format: str | None = None, start_s: float = 0.0, duration_s: float | None = None,
                     decode: bool = True, timeout_s: float = 30.0, bandwidth_hz: float | None = None) -> Triage:
    """Triage of ``duration_s`` (at most ``MAX_SECONDS``) of a recording from ``start_s``."""
    from detector.sources import open_iq

    src = open_iq(path, sample_format=sample_format, sample_rate_hz=sample_rate_hz, center_hz=center_hz)
    try:
        fs = src.info.sample_rate_hz
        fc = src.info.center_hz
        if fc is None:
            raise InputError(f"{path}: give --center (the recording's centre frequency)")
        want = int(min(duration_s if duration_s is not None else MAX_SECONDS, MAX_SECONDS) * fs)
        skip = int(max(0.0, start_s) * fs)
        chunks, got = [], 0
        for block in src.blocks(1 << 18):
            chunks.append(block.samples)
            got += block.samples.size
            if got >= skip + want:
                break
    finally:
        src.close()
    x = np.concatenate(chunks)[skip:skip + want] if chunks else np.zeros(0, np.complex64)
    if x.size < 64:
        raise InputError(f"{path}: fewer than 64 samples from {start_s:g} s")
    return triage_samples(Path(path).name, x, fs, fc, library, decode=decode, timeout_s=timeout_s, bandwidth_hz=bandwidth_hz)


def triage_alert(store, alert_id: str, library: DeviceLibrary, *, decode: bool = True, timeout_s: float = 30.0) -> Triage:
    """Triage of a stored alert: its frequency, bandwidth, class and bursts, and, when it has IQ
    evidence (the monitor's ``snippet.sigmf-meta``/``-data``, or ``iq.sigmf-*``), the symbols and
    decoders on the alert's channel of that snippet (:func:`extract_channel`)."""
    a = store.get(alert_id)
    if a is None:
        raise InputError(f"no alert {alert_id!r} in the store")
    track = store.track_summary(alert_id) or {}
    period = track.get("burst_period_s") if isinstance(track, dict) else None
    mod = _CLASS_MODULATION.get(a.classification or "")
    burst = "continuous" if a.classification == "nfm_voice" and a.bursts <= 1 else (
        "periodic" if period else ("bursts" if a.bursts > 1 else None))
    for meta_name, data_name in EVIDENCE_NAMES:
        meta, data = store.evidence(alert_id, meta_name), store.evidence(alert_id, data_name)
        if meta is None or data is None:
            continue
        m = json.loads(meta[0])
        fs = float(m["global"]["core:sample_rate"])
        fc = float(m["captures"][0].get("core:frequency", a.center_hz))
        raw = np.frombuffer(data[0], dtype=np.uint8).astype(np.float32)
        raw = raw[: raw.size // 2 * 2]
        iq = ((raw[0::2] - 127.5) + 1j * (raw[1::2] - 127.5)) / 127.5
        # the snippet is the receiver's whole band: the alert's channel, at rtl_433's rate
        ch, ch_fs = extract_channel(iq, fs, a.center_hz - fc, a.bandwidth_hz)
        return triage_samples(alert_id, ch, ch_fs, a.center_hz, library, decode=decode, timeout_s=timeout_s,
                              bandwidth_hz=a.bandwidth_hz, burst=burst, burst_period_s=period,
                              modulation=mod if mod == "NFM" else None)
    obs = Observation(a.center_hz, a.bandwidth_hz, mod, None, burst, period, ())
    return Triage(alert_id, obs, None, (), library_term(obs, library))
