"""Evidence files: SigMF IQ snippets (cu8) and NFM audio as WAV."""

from __future__ import annotations

import hashlib
import io
import json
import wave
from datetime import datetime, timezone

import numpy as np
import pytest

from detector.alerts import cu8_quantize, nfm_audio_wav, sigmf_snippet
from detector.core.errors import InputError


def nfm_signal(*, fs=256_000.0, offset_hz=40_000.0, tone_hz=1000.0, deviation_hz=2500.0, duration_s=0.5,
               snr_db=25.0, seed=1) -> np.ndarray:
    """A 1 kHz tone frequency-modulated at ±2.5 kHz on a carrier ``offset_hz`` from the center, in noise."""
    rng = np.random.default_rng(seed)
    n = int(fs * duration_s)
    t = np.arange(n) / fs
    inst_f = offset_hz + deviation_hz * np.sin(2 * np.pi * tone_hz * t)
    phase = 2 * np.pi * np.cumsum(inst_f) / fs
    amp = 0.3
    x = amp * np.exp(1j * phase)
    noise_sigma = amp / np.sqrt(2) * 10 ** (-snr_db / 20)
    x = x + noise_sigma * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    # a strong neighbour 60 kHz away that the channel filter must remove
    x = x + 0.3 * np.exp(2j * np.pi * (offset_hz - 60_000.0) * t)
    return x.astype(np.complex64)


def read_wav(data: bytes) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(data), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return rate, pcm.astype(np.float64) / 32768.0


def dominant_hz(audio: np.ndarray, rate: int) -> float:
    a = audio[len(audio) // 10: -len(audio) // 10]  # skip filter edges
    spec = np.abs(np.fft.rfft((a - a.mean()) * np.hanning(a.size), n=8 * a.size))
    freqs = np.fft.rfftfreq(8 * a.size, 1 / rate)
    return float(freqs[np.argmax(spec)])


@pytest.mark.parametrize("fs, offset", [(256_000.0, 40_000.0), (1_024_000.0, -93_750.0), (250_000.0, 0.0)])
def test_nfm_tone_demodulates_to_1khz(fs, offset):
    x = nfm_signal(fs=fs, offset_hz=offset)
    data = nfm_audio_wav(x, sample_rate_hz=fs, offset_hz=offset)
    rate, audio = read_wav(data)
    assert rate == 16000
    assert abs(audio.size - 0.5 * rate) <= 2
    assert abs(dominant_hz(audio, rate) - 1000.0) <= 20.0
    assert 0.8 <= np.max(np.abs(audio)) <= 0.91  # normalised
    # the tone dominates: most of the audio power is within ±50 Hz of 1 kHz
    a = audio[800:-800]
    spec = np.abs(np.fft.rfft(a * np.hanning(a.size))) ** 2
    f = np.fft.rfftfreq(a.size, 1 / rate)
    assert spec[np.abs(f - 1000) < 50].sum() / spec.sum() > 0.8


def test_nfm_options_and_errors():
    x = nfm_signal()
    rate, audio = read_wav(nfm_audio_wav(x, sample_rate_hz=256e3, offset_hz=40e3, audio_rate_hz=8000, deemphasis_us=750))
    assert rate == 8000 and abs(dominant_hz(audio, rate) - 1000.0) <= 20.0
    with pytest.raises(InputError):
        nfm_audio_wav(x, sample_rate_hz=256e3, offset_hz=200e3)
    with pytest.raises(InputError):
        nfm_audio_wav(np.zeros(0, np.complex64), sample_rate_hz=256e3, offset_hz=0.0)
    with pytest.raises(InputError):
        nfm_audio_wav(x.real, sample_rate_hz=256e3, offset_hz=0.0)
    # silence (a bare carrier) gives a valid, quiet WAV
    rate, audio = read_wav(nfm_audio_wav(np.full(25600, 0.5, np.complex64), sample_rate_hz=256e3, offset_hz=0.0))
    assert rate == 16000 and audio.size > 0


def test_cu8_quantisation_is_the_rtl_one():
    x = np.array([0, 1, -1, 0.5 - 0.5j, 2 + 2j, -2 - 2j], dtype=np.complex64)
    q = np.frombuffer(cu8_quantize(x), np.uint8)
    assert q.tolist() == [128, 128, 255, 128, 0, 128, 191, 64, 255, 255, 0, 0]


def test_sigmf_snippet_round_trips(tmp_path):
    from sigmf import sigmffile

    rng = np.random.default_rng(3)
    n = 50_000
    x = (0.3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    start = datetime(2026, 6, 7, 9, 3, 30, 500000, tzinfo=timezone.utc)
    anns = [{"sample_start": 1000, "sample_count": 20_000, "label": "A-1234567890ab", "freq_lower_edge": 446.0e6,
             "freq_upper_edge": 446.011e6, "alert_id": "A-1234567890ab", "classification": "nfm_voice",
             "snr_db": np.float64(23.5)},
             {"comment": "whole snippet"}]
    meta, data = sigmf_snippet(x, sample_rate_hz=1.024e6, center_hz=446.5e6, start=start, annotations=anns)
    assert len(data) == 2 * n
    assert np.array_equal(np.frombuffer(data, np.uint8), np.frombuffer(cu8_quantize(x), np.uint8))
    md = json.loads(meta)
    assert md["global"]["core:sha512"] == hashlib.sha512(data).hexdigest()
    assert md["captures"][0]["core:datetime"] == "2026-06-07T09:03:30.500000Z"

    (tmp_path / "snip.sigmf-meta").write_bytes(meta)
    (tmp_path / "snip.sigmf-data").write_bytes(data)
    f = sigmffile.fromfile(str(tmp_path / "snip.sigmf-meta"))  # also checks the sha512
    assert f.sample_count == n
    assert f.get_global_field("core:sample_rate") == 1.024e6
    assert f.get_global_field("core:datatype") == "cu8"
    assert f.get_captures()[0]["core:frequency"] == 446.5e6
    got = f.read_samples()
    assert got.shape == (n,)
    # sigmf scales cu8 to ±1 around its own zero; the waveform matches within a quantisation step
    corr = np.abs(np.vdot(got - got.mean(), x)) / (np.linalg.norm(got - got.mean()) * np.linalg.norm(x))
    assert corr > 0.99
    a0, a1 = f.get_annotations()
    assert a0["core:sample_start"] == 0 and a0["core:sample_count"] == n and a0["core:comment"] == "whole snippet"
    assert a1["core:sample_start"] == 1000 and a1["core:sample_count"] == 20_000
    assert a1["core:label"] == "A-1234567890ab" and a1["examwatch:classification"] == "nfm_voice"
    assert a1["examwatch:snr_db"] == 23.5
    assert f.get_global_field("core:extensions")[0]["name"] == "examwatch"


def test_sigmf_snippet_errors_and_minimal():
    x = np.ones(10, np.complex64) * 0.1
    meta, data = sigmf_snippet(x, sample_rate_hz=2.4e6, center_hz=433.92e6, start=None, annotations=[])
    md = json.loads(meta)
    assert "core:datetime" not in md["captures"][0] and md["annotations"] == [] and len(data) == 20
    with pytest.raises(InputError):
        sigmf_snippet(x, sample_rate_hz=0, center_hz=1e6, start=None, annotations=[])
    with pytest.raises(InputError):
        sigmf_snippet(np.zeros((2, 2), np.complex64), sample_rate_hz=1e6, center_hz=1e6, start=None, annotations=[])
