"""WAV IQ recordings with broken or unusual headers (issue #24): each variant is written here,
byte by byte, and what the reader reports is asserted."""

from __future__ import annotations

import json
import logging
import struct
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

from detector.core.errors import InputError
from detector.sources import open_iq
from detector.sources._wav import parse_auxi, parse_wav

FS = 250_000


def _iq(n: int = 5000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, size=(n, 2)).astype("<i2")


def _chunk(cid: bytes, payload: bytes, *, size: int | None = None, pad: bool = True) -> bytes:
    out = cid + struct.pack("<I", len(payload) if size is None else size) + payload
    return out + (b"\0" if pad and len(payload) % 2 else b"")


def _fmt(tag: int = 1, bits: int = 16, channels: int = 2, rate: int = FS) -> bytes:
    align = channels * bits // 8
    return _chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits))


def _auxi(center_hz: int, start: datetime | None, *, long: bool = True) -> bytes:
    st = (struct.pack("<8H", start.year, start.month, 0, start.day, start.hour, start.minute, start.second,
                      start.microsecond // 1000) if start else b"\0" * 16)
    payload = st + b"\0" * 16 + struct.pack("<9I", center_hz, FS, 0, FS, 0, 0, 0, 0, 0)
    if long:
        payload += b"\0" * 96  # SDR#/SDRuno's 164-byte chunk with NextFilename
    return _chunk(b"auxi", payload)


def _riff(*chunks: bytes, riff_size: int | None = None, magic: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return magic + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def _expected(iq: np.ndarray) -> np.ndarray:
    return (iq[:, 0].astype(np.float32) / 32768 + 1j * (iq[:, 1].astype(np.float32) / 32768)).astype(np.complex64)


def _read_all(src) -> np.ndarray:
    return np.concatenate([b.samples for b in src.blocks(1024)])


@pytest.mark.parametrize("size, what", [(0, "is 0"), (0xFFFFFFFF, "is 0xFFFFFFFF"), (10**8, "larger than the file")])
def test_unfinished_data_size_reads_to_the_end_with_one_warning(tmp_path, caplog, size, what):
    iq = _iq()
    p = tmp_path / "stream.wav"
    p.write_bytes(_riff(_fmt(), _chunk(b"data", iq.tobytes(), size=size), riff_size=0 if size == 0 else 0xFFFFFFFF))
    with caplog.at_level(logging.WARNING, logger="examwatch.sources"):
        src = open_iq(str(p), center_hz=433.92e6)
    assert src.info.n_samples == 5000
    np.testing.assert_array_equal(_read_all(src), _expected(iq))
    assert len(src.warnings) == 1 and what in src.warnings[0] and "to the end of the file (20000 bytes)" in src.warnings[0]
    recs = [r for r in caplog.records if r.name == "examwatch.sources"]
    assert len(recs) == 1 and "to the end of the file" in recs[0].getMessage() and "stream.wav" in recs[0].getMessage()


def test_streaming_header_with_a_partial_last_frame_drops_it_and_says_so(tmp_path):
    iq = _iq(100)
    p = tmp_path / "cut.wav"
    p.write_bytes(_riff(_fmt(), _chunk(b"data", iq.tobytes() + b"\x01\x02\x03", size=0xFFFFFFFF, pad=False)))
    src = open_iq(str(p), center_hz=100e6)
    assert src.info.n_samples == 100
    assert any("last 3 bytes" in w and "dropped" in w for w in src.warnings)
    np.testing.assert_array_equal(_read_all(src), _expected(iq))


def test_rf64_with_ds64_sizes(tmp_path):
    iq = _iq(3000)
    data = iq.tobytes()
    ds64 = _chunk(b"ds64", struct.pack("<QQQI", 0, len(data), 3000, 0))
    # a trailing chunk after the data: the ds64 size, not the file end, bounds the samples
    p = tmp_path / "big.wav"
    p.write_bytes(_riff(ds64, _fmt(), _chunk(b"data", data, size=0xFFFFFFFF), _chunk(b"LIST", b"INFOabcd"),
                        riff_size=0xFFFFFFFF, magic=b"RF64"))
    src = open_iq(str(p), center_hz=446e6)
    assert src.layout.container == "RF64" and src.layout.chunks == ["ds64", "fmt ", "data", "LIST"]
    assert src.info.n_samples == 3000 and src.warnings == []
    np.testing.assert_array_equal(_read_all(src), _expected(iq))


def test_rf64_whose_ds64_data_size_was_never_written_reads_to_the_end(tmp_path):
    """An RF64 recorder that stopped before it filled in ds64 (data size 0, the chunk's 0xFFFFFFFF):
    the samples to the end of the file, with the warning, as for an unfinished RIFF header."""
    iq = _iq(2000)
    data = iq.tobytes()
    ds64 = _chunk(b"ds64", struct.pack("<QQQI", 0, 0, 0, 0))
    p = tmp_path / "unfinished_rf64.wav"
    p.write_bytes(_riff(ds64, _fmt(), _chunk(b"data", data, size=0xFFFFFFFF), riff_size=0xFFFFFFFF, magic=b"RF64"))
    src = open_iq(str(p), center_hz=446e6)
    assert src.info.n_samples == 2000
    assert len(src.warnings) == 1 and "WAV data size is 0 (an unfinished header)" in src.warnings[0]
    np.testing.assert_array_equal(_read_all(src), _expected(iq))


def test_extra_chunks_with_odd_sizes_are_skipped_with_padding(tmp_path):
    iq = _iq(500)
    p = tmp_path / "extra.wav"
    p.write_bytes(_riff(_chunk(b"JUNK", b"x" * 27), _fmt(), _chunk(b"LIST", b"INFOISFT\x05\0\0\0SDR#\0"),
                        _chunk(b"fact", struct.pack("<I", 500)), _chunk(b"data", iq.tobytes())))
    src = open_iq(str(p), center_hz=446e6)
    assert src.layout.chunks == ["JUNK", "fmt ", "LIST", "fact", "data"]
    assert src.warnings == []
    np.testing.assert_array_equal(_read_all(src), _expected(iq))


def test_an_odd_chunk_written_without_its_pad_byte_is_still_walked(tmp_path):
    iq = _iq(200)
    p = tmp_path / "nopad.wav"
    p.write_bytes(_riff(_fmt(), _chunk(b"LIST", b"abc", pad=False), _chunk(b"data", iq.tobytes())))
    src = open_iq(str(p), center_hz=446e6)
    assert src.layout.chunks == ["fmt ", "LIST", "data"] and src.info.n_samples == 200


def test_auxi_center_and_start_fill_in_and_center_option_wins(tmp_path):
    iq = _iq(1000)
    t0 = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=timezone.utc)
    p = tmp_path / "SDRSharp_20240506_070809Z_433920000Hz_IQ.wav"
    p.write_bytes(_riff(_fmt(), _auxi(433_920_000, t0), _chunk(b"data", iq.tobytes())))
    src = open_iq(str(p))  # no --center: the auxi chunk's
    assert src.info.center_hz == 433.92e6
    assert src.info.start == t0
    blocks = list(src.blocks(500))
    assert blocks[1].start == datetime(2024, 5, 6, 7, 8, 9, 252000, tzinfo=timezone.utc)  # + 500 samples at 250 kS/s
    assert blocks[0].center_hz == 433.92e6
    assert open_iq(str(p), center_hz=446.1e6).info.center_hz == 446.1e6  # --center wins over auxi


def test_auxi_short_chunk_and_zero_time(tmp_path):
    center, start = parse_auxi(_auxi(868_300_000, None, long=False)[8:])
    assert center == 868.3e6 and start is None
    assert parse_auxi(b"\0" * 10) == (None, None)


def test_without_center_and_without_auxi_the_error_asks_for_center(tmp_path):
    p = tmp_path / "plain.wav"
    p.write_bytes(_riff(_fmt(), _chunk(b"data", _iq(100).tobytes())))
    with pytest.raises(InputError, match="give --center"):
        open_iq(str(p))
    # an rtl_433-style name still gives the center
    q = tmp_path / "g001_433.92M_250k.wav"
    q.write_bytes(p.read_bytes())
    assert open_iq(str(q)).info.center_hz == 433.92e6


def test_float32_wav_counts_nonfinite_samples(tmp_path):
    x = np.full((400, 2), 0.1, dtype="<f4")
    x[10:15, 0] = np.nan
    x[200, 1] = np.inf
    p = tmp_path / "f.wav"
    p.write_bytes(_riff(_fmt(tag=3, bits=32), _chunk(b"data", x.tobytes())))
    src = open_iq(str(p), center_hz=100e6)
    assert src.info.sample_format == "wav-float32"
    _read_all(src)
    assert src.nonfinite_samples == 6


@pytest.mark.parametrize("content, needle", [
    (_riff(_fmt(), _chunk(b"data", b""), magic=b"RIFX"), "RIFX"),
    (b"OggS" + b"\0" * 40, "not a WAV file"),
    (_riff(_chunk(b"data", _iq(10).tobytes())), "no 'fmt ' chunk"),
    (_riff(_fmt()), "no 'data' chunk"),
    (_riff(_fmt(bits=24), _chunk(b"data", b"\0" * 60)), "24-bit is not supported"),
    (_riff(_fmt(channels=1), _chunk(b"data", b"\0" * 60)), "needs 2 channels"),
    (_riff(_fmt(), _chunk(b"data", b"", size=0)), "holds no samples"),
])
def test_unreadable_wavs_are_one_clear_input_error(tmp_path, content, needle):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(InputError, match=needle):
        open_iq(str(p), center_hz=100e6)


def test_parse_wav_reports_layout(tmp_path):
    p = tmp_path / "a.wav"
    p.write_bytes(_riff(_fmt(bits=8), _chunk(b"data", b"\x80" * 64)))
    lay = parse_wav(p)
    assert (lay.dtype, lay.channels, lay.sample_rate_hz, lay.data_offset, lay.n_frames) == (np.dtype("u1"), 2, FS, 44, 32)


def test_spectrum_cli_prints_the_header_warning_once_on_stderr(tmp_path):
    n = 1 << 15
    t = np.arange(n) / FS
    tone = 0.3 * np.exp(2j * np.pi * 50e3 * t)
    iq = np.stack([tone.real, tone.imag], axis=1)
    iq = np.round(iq * 32767).astype("<i2")
    p = tmp_path / "live.wav"
    p.write_bytes(_riff(_fmt(), _auxi(433_920_000, None), _chunk(b"data", iq.tobytes(), size=0xFFFFFFFF), riff_size=0xFFFFFFFF))
    r = subprocess.run([sys.executable, "-m", "detector", "spectrum", str(p), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["center_hz"] == 433.92e6 and out["duration_s"] == pytest.approx(n / FS)
    assert abs(out["peaks"][0]["freq_hz"] - (433.92e6 + 50e3)) < 1e3
    warn = [ln for ln in r.stderr.splitlines() if "warning:" in ln]
    assert len(warn) == 1 and "to the end of the file" in warn[0], r.stderr
    assert "WavFileWarning" not in r.stderr and "Traceback" not in r.stderr
