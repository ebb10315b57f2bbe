"""Evidence files of an alert, built in memory (pure: numpy, scipy, sigmf and wave; no file I/O).

* :func:`sigmf_snippet` — the IQ around a detection as a SigMF recording: metadata JSON bytes and
  ``cu8`` data bytes (quantised the RTL-SDR way: ``v·127.5 + 127.5``, rounded, clipped to 0–255).
* :func:`nfm_audio_wav` — the narrow-band FM demodulated audio of one channel as a 16-bit mono WAV.

The caller stores them with :meth:`AlertStore.add_evidence`, e.g. as ``iq.sigmf-meta``,
``iq.sigmf-data`` (``application/octet-stream``) and ``audio.wav`` (``audio/wav``).
"""

from __future__ import annotations

import hashlib
import io
import wave
from datetime import datetime
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike
from scipy import signal

from detector.core.errors import InputError
from detector.core.timefmt import utc_iso

__all__ = ["cu8_quantize", "sigmf_snippet", "nfm_audio_wav", "EXTENSION_NAMESPACE"]

#: namespace of the non-core annotation keys written by :func:`sigmf_snippet`
EXTENSION_NAMESPACE = "examwatch"
_CORE_ANNOTATION = {"comment", "freq_upper_edge", "freq_lower_edge", "generator", "label", "latitude", "longitude", "uuid"}


def cu8_quantize(samples: ArrayLike) -> bytes:
    """Interleaved unsigned 8-bit IQ (RTL-SDR ``cu8``) of complex samples (full scale = 1.0)."""
    x = np.nan_to_num(np.asarray(samples).ravel(), nan=0.0, posinf=0.0, neginf=0.0)
    inter = np.empty(2 * x.size, dtype=np.float64)
    inter[0::2] = x.real * 127.5 + 127.5
    inter[1::2] = x.imag * 127.5 + 127.5
    return np.clip(np.round(inter), 0, 255).astype(np.uint8).tobytes()


def _geolocation(position) -> dict | None:
    """The SigMF ``core:geolocation`` GeoJSON Point of a position (None when unknown or not finite)."""
    if position is None:
        return None
    lat, lon = float(position.lat), float(position.lon)
    if not (np.isfinite(lat) and np.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    coords = [lon, lat]
    alt = getattr(position, "alt_m", None)
    if alt is not None and np.isfinite(alt):
        coords.append(float(alt))
    return {"type": "Point", "coordinates": coords}


def _samples(samples: ArrayLike) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"evidence needs a non-empty 1-D array of IQ samples, not shape {x.shape}.")
    if not np.iscomplexobj(x):
        raise InputError("evidence needs complex IQ samples.")
    if not np.isfinite(x).all():  # NaN/inf samples of a bad driver: the zero level, not garbage
        x = np.where(np.isfinite(x), x, 0)
    return x


def sigmf_snippet(
    samples: ArrayLike,
    *,
    sample_rate_hz: float,
    center_hz: float,
    start: datetime | None = None,
    annotations: list[dict] | None = None,
    description: str | None = None,
    position=None,
) -> tuple[bytes, bytes]:
    """A SigMF recording of ``samples``: ``(meta JSON bytes, cu8 data bytes)``.

    Each annotation dict may give ``sample_start`` (default 0) and ``sample_count`` (default: to
    the end), with or without the ``core:`` prefix; its other keys are metadata: names with a
    namespace are kept, bare core names (``label``, ``comment``, ``freq_lower_edge``,
    ``freq_upper_edge``, ``generator``, ``uuid``, ``latitude``, ``longitude``) get ``core:``, any
    other bare name ``examwatch:`` (the extension is then declared in ``core:extensions``). The
    global ``core:sha512`` is the hash of the data bytes. ``start`` (UTC) dates sample 0.
    ``position`` (an object with ``lat``, ``lon`` in degrees and optionally ``alt_m``, such as
    :class:`detector.core.types.Position`) gives the global ``core:geolocation``, a GeoJSON Point
    ``{"type": "Point", "coordinates": [lon, lat(, alt)]}`` as the SigMF specification asks.
    Non-finite samples are written as 0 (the zero level, 127.5 → 128 in cu8).
    """
    from sigmf import SigMFFile, __specification__

    x = _samples(samples)
    if not (sample_rate_hz > 0 and np.isfinite(sample_rate_hz)) or not np.isfinite(center_hz):
        raise InputError(f"bad sample rate {sample_rate_hz!r} or center frequency {center_hz!r} for a SigMF snippet.")
    data = cu8_quantize(x)
    n = x.size
    glob = {
        "core:datatype": "cu8",
        "core:sample_rate": float(sample_rate_hz),
        "core:version": __specification__,
        "core:num_channels": 1,
        "core:sha512": hashlib.sha512(data).hexdigest(),
        "core:recorder": "examwatch",
        "core:description": description or "IQ snippet around an examwatch alert",
    }
    meta = SigMFFile(global_info=glob)
    capture = {"core:frequency": float(center_hz)}
    if start is not None:
        capture["core:datetime"] = utc_iso(start)
    geo = _geolocation(position)
    if geo is not None:
        meta.set_global_field("core:geolocation", geo)
    meta.add_capture(0, metadata=capture)
    uses_ext = False
    for ann in annotations or []:
        ann = dict(ann)
        s0 = int(ann.pop("sample_start", ann.pop("core:sample_start", 0)))
        cnt = ann.pop("sample_count", ann.pop("core:sample_count", None))
        s0 = min(max(s0, 0), n)
        cnt = n - s0 if cnt is None else max(0, min(int(cnt), n - s0))
        md = {}
        for k, v in ann.items():
            if ":" in k:
                key = k
            elif k in _CORE_ANNOTATION:
                key = f"core:{k}"
            else:
                key = f"{EXTENSION_NAMESPACE}:{k}"
            if not key.startswith("core:"):
                uses_ext = True
            md[key] = v.item() if isinstance(v, np.generic) else v
        meta.add_annotation(s0, cnt, metadata=md)
    if uses_ext:
        meta.set_global_field("core:extensions", [{"name": EXTENSION_NAMESPACE, "version": "0.1.0", "optional": True}])
    meta.validate()
    return meta.dumps(pretty=True).encode("utf-8"), data


def nfm_audio_wav(
    samples: ArrayLike,
    *,
    sample_rate_hz: float,
    offset_hz: float,
    bandwidth_hz: float = 12.5e3,
    audio_rate_hz: int = 16000,
    deemphasis_us: float | None = None,
) -> bytes:
    """Narrow-band FM audio of the channel at ``offset_hz`` from the tuned center, as WAV bytes.

    The channel is shifted to 0 Hz and resampled to an intermediate rate ≥ 2 × ``bandwidth_hz``
    (a multiple of ``audio_rate_hz``), low-passed to ±``bandwidth_hz``/2 (FIR), demodulated by the
    discriminator ``angle(x[n]·conj(x[n−1]))``, optionally de-emphasised (single pole,
    ``deemphasis_us`` µs, e.g. 750 for PMR), DC-removed, resampled to ``audio_rate_hz``
    (``resample_poly``) and normalised to a 0.9 full-scale peak: 16-bit mono PCM WAV.
    """
    x = _samples(samples).astype(np.complex128)
    fs = float(sample_rate_hz)
    if not (fs > 0 and np.isfinite(fs)):
        raise InputError(f"bad sample rate {sample_rate_hz!r} for NFM audio.")
    if not (abs(offset_hz) < fs / 2):
        raise InputError(f"channel offset {offset_hz} Hz is outside the ±{fs / 2:.0f} Hz band.")
    if not (0 < bandwidth_hz <= fs):
        raise InputError(f"channel bandwidth {bandwidth_hz!r} Hz must be positive and within the sample rate.")
    audio_rate_hz = int(audio_rate_hz)
    if not 1000 <= audio_rate_hz <= 192000:
        raise InputError(f"audio rate {audio_rate_hz} Hz must be between 1 and 192 kHz.")

    t = np.arange(x.size) / fs
    x = x * np.exp(-2j * np.pi * offset_hz * t)
    k = max(1, int(np.ceil(2.0 * bandwidth_hz / audio_rate_hz)))
    ratio = Fraction(k * audio_rate_hz / fs).limit_denominator(1000)
    if ratio != 1:
        x = signal.resample_poly(x, ratio.numerator, ratio.denominator)
    fs_if = fs * ratio.numerator / ratio.denominator
    cutoff = min(bandwidth_hz / 2, 0.45 * fs_if)
    taps = signal.firwin(129, cutoff, fs=fs_if)
    x = np.convolve(x, taps, mode="same")
    if x.size < 2:
        raise InputError("too few samples for NFM audio.")
    inst = np.angle(x[1:] * np.conj(x[:-1]))  # radians per sample, ∝ instantaneous frequency
    if deemphasis_us:
        a = np.exp(-1.0 / (fs_if * deemphasis_us * 1e-6))
        inst = signal.lfilter([1 - a], [1, -a], inst)
    inst = inst - inst.mean()
    ratio_a = Fraction(audio_rate_hz / fs_if).limit_denominator(1000)
    audio = signal.resample_poly(inst, ratio_a.numerator, ratio_a.denominator) if ratio_a != 1 else inst
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (0.9 / peak)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio_rate_hz)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()
