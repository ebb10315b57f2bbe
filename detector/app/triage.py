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

__all__ = ["Triage", "triage_samples", "triage_recording", "triage_alert", "MAX_SECONDS"]

MAX_SECONDS = 30.0
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
    """Triage of a stored alert: its frequency, bandwidth, class and bursts, and, when it has the
    ``iq.sigmf-data``/``iq.sigmf-meta`` evidence, the symbols and decoders on that snippet."""
    a = store.get(alert_id)
    if a is None:
        raise InputError(f"no alert {alert_id!r} in the store")
    track = store.track_summary(alert_id) or {}
    period = track.get("burst_period_s") if isinstance(track, dict) else None
    mod = _CLASS_MODULATION.get(a.classification or "")
    burst = "continuous" if a.classification == "nfm_voice" and a.bursts <= 1 else (
        "periodic" if period else ("bursts" if a.bursts > 1 else None))
    data, meta = store.evidence(alert_id, "iq.sigmf-data"), store.evidence(alert_id, "iq.sigmf-meta")
    if data is not None and meta is not None:
        m = json.loads(meta[0])
        fs = float(m["global"]["core:sample_rate"])
        fc = float(m["captures"][0].get("core:frequency", a.center_hz))
        raw = np.frombuffer(data[0], dtype=np.uint8).astype(np.float32)
        iq = ((raw[0::2] - 127.5) + 1j * (raw[1::2] - 127.5)) / 127.5
        t = triage_samples(alert_id, iq, fs, fc, library, decode=decode, timeout_s=timeout_s, bandwidth_hz=a.bandwidth_hz,
                           burst=burst, burst_period_s=period, modulation=mod if mod == "NFM" else None)
        return t
    obs = Observation(a.center_hz, a.bandwidth_hz, mod, None, burst, period, ())
    return Triage(alert_id, obs, None, (), library_term(obs, library))
