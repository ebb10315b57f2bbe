"""IQ file sources: real recordings load with the right sample counts; format round trips."""

from __future__ import annotations

import json
import wave
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.dsp import make_plan, power_to_db, welch_psd
from detector.core.errors import InputError
from detector.app.sources import open_source
from detector.sources._names import format_from_extension, metadata_from_name

FS = 250e3


def read_all(src, block=4096):
    return np.concatenate([b.samples for b in src.blocks(block)])


def test_every_real_iq_file_loads_with_the_right_sample_count(real_dir, manifest):
    for entry in manifest["iq"]:
        path = real_dir / entry["file"]
        src = open_source(str(path), sample_format=entry["dtype"], sample_rate_hz=entry["sample_rate_hz"],
                          center_hz=entry["center_hz"])
        bytes_per = {"cu8": 2, "cs8": 2, "cs16": 4, "cf32": 8}[entry["dtype"]]
        expected = (path.stat().st_size - entry["header_bytes"]) // bytes_per
        assert src.info.n_samples == expected, entry["file"]
        n = sum(b.samples.size for b in src.blocks(1 << 16))
        assert n == expected, entry["file"]
        assert src.info.sample_rate_hz == entry["sample_rate_hz"]
        assert src.info.center_hz == entry["center_hz"]


def test_wav_reads_header_whatever_format_says(real_dir):
    path = real_dir / "iq" / "Model_GT-WT03_Id_175_434037000_250000_02_03_2021_12_2_52_STEREO.wav"
    src = open_source(str(path), sample_format="cu8", center_hz=434.037e6)
    assert src.info.kind == "wav" and src.info.sample_rate_hz == 250000.0
    x = read_all(src, 50_000)
    assert x.size == 131072 and x.dtype == np.complex64
    # float32 WAV: values are already full scale
    raw = np.fromfile(path, dtype="<f4", offset=44)
    np.testing.assert_allclose(x[:10], raw[:20:2] + 1j * raw[1:20:2])
    with pytest.raises(InputError, match="--rate"):
        open_source(str(path), sample_rate_hz=1e6, center_hz=434e6)
    with pytest.raises(InputError, match="--center"):
        open_source(str(path))


def test_rtl433_names_give_rate_and_center(tmp_path):
    assert metadata_from_name("g001_433.92M_250k.cu8") == {"center_hz": 433.92e6, "sample_rate_hz": 250e3}
    assert metadata_from_name("tech_868.3M_1024k.cs16") == {"center_hz": 868.3e6, "sample_rate_hz": 1.024e6}
    assert metadata_from_name("gfile001.data") == {}
    p = tmp_path / "g001_433.92M_250k.cu8"
    np.full(2000, 127, np.uint8).tofile(p)
    src = open_source(str(p))
    assert (src.info.center_hz, src.info.sample_rate_hz, src.info.sample_format) == (433.92e6, 250e3, "cu8")
    assert format_from_extension("x.complex16u") == "cu8"


def test_missing_metadata_names_the_option(tmp_path):
    p = tmp_path / "capture.cu8"
    np.full(2000, 127, np.uint8).tofile(p)
    with pytest.raises(InputError, match="--rate"):
        open_source(str(p), center_hz=433e6)
    with pytest.raises(InputError, match="--center"):
        open_source(str(p), sample_rate_hz=250e3)
    q = tmp_path / "capture.data"
    np.full(2000, 127, np.uint8).tofile(q)
    with pytest.raises(InputError, match="--format"):
        open_source(str(q), sample_rate_hz=250e3, center_hz=433e6)
    r = tmp_path / "capture.xyz"
    r.write_bytes(b"\0\0")
    with pytest.raises(InputError, match="unknown extension"):
        open_source(str(r), sample_rate_hz=250e3, center_hz=433e6)


@pytest.mark.parametrize("rate", [0.0, -250e3])
def test_non_positive_rate(tmp_path, rate):
    p = tmp_path / "x_433.92M.cu8"
    np.full(20, 127, np.uint8).tofile(p)
    with pytest.raises(InputError, match="rate"):
        open_source(str(p), sample_rate_hz=rate)


def test_empty_and_truncated_files(tmp_path):
    e = tmp_path / "empty_433.92M_250k.cu8"
    e.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_source(str(e))
    t = tmp_path / "trunc_433.92M_250k.cs16"
    t.write_bytes(b"\0" * 10)  # 2.5 samples of 4 bytes
    with pytest.raises(InputError, match="truncated"):
        open_source(str(t))
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "missing.cu8"))


# --- round trips: write a tone in each format, read it back, find it at the right frequency/level


def encode(x: np.ndarray, fmt: str) -> np.ndarray:
    inter = np.empty(2 * x.size, dtype=np.float64)
    inter[0::2], inter[1::2] = x.real, x.imag
    if fmt == "cu8":
        return np.clip(np.round(inter * 127.5 + 127.5), 0, 255).astype(np.uint8)
    if fmt == "cs8":
        return np.clip(np.round(inter * 128), -128, 127).astype(np.int8)
    if fmt == "cs16":
        return np.clip(np.round(inter * 32768), -32768, 32767).astype("<i2")
    return inter.astype("<f4")


def measure_tone(x: np.ndarray, fs: float):
    plan = make_plan(fs, nfft=1024)
    p = power_to_db(welch_psd(x, plan))
    k = int(np.argmax(p))
    return plan.offsets_hz[k], float(p[k])


tone_cases = st.tuples(
    st.sampled_from(["cu8", "cs8", "cs16", "cf32"]),
    st.integers(min_value=-480, max_value=480).filter(lambda k: abs(k) > 8),  # bin index, away from DC
    st.floats(min_value=-20.0, max_value=-3.0),  # level dBFS
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=tone_cases)
def test_raw_round_trip(tmp_path, case):
    fmt, k, level_db = case
    f0 = k * FS / 1024
    n = 32768
    amp = 10 ** (level_db / 20)
    x = amp * np.exp(2j * np.pi * f0 * np.arange(n) / FS)
    path = tmp_path / f"tone_433.92M_250k.{fmt}"
    encode(x, fmt).tofile(path)
    got = read_all(open_source(str(path)), 5000)
    assert got.size == n
    f_hat, p_hat = measure_tone(got, FS)
    assert f_hat == pytest.approx(f0, abs=1.0)
    assert p_hat == pytest.approx(level_db, abs=0.5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=tone_cases)
def test_sigmf_round_trip(tmp_path, case):
    from sigmf import SigMFFile

    fmt, k, level_db = case
    datatype = {"cu8": "cu8", "cs8": "ci8", "cs16": "ci16_le", "cf32": "cf32_le"}[fmt]
    f0 = k * FS / 1024
    n = 16384
    x = 10 ** (level_db / 20) * np.exp(2j * np.pi * f0 * np.arange(n) / FS)
    base = tmp_path / f"rt_{fmt}"
    encode(x, fmt).tofile(f"{base}.sigmf-data")
    meta = SigMFFile(data_file=f"{base}.sigmf-data", global_info={
        "core:datatype": datatype, "core:sample_rate": FS, "core:version": "1.0.0"})
    meta.add_capture(0, metadata={"core:frequency": 446.00625e6, "core:datetime": "2026-06-07T09:00:00Z"})
    meta.tofile(f"{base}.sigmf-meta", overwrite=True)
    src = open_source(f"{base}.sigmf-meta")
    assert src.info.center_hz == 446.00625e6 and src.info.sample_rate_hz == FS
    assert src.info.start == datetime(2026, 6, 7, 9, 0, tzinfo=timezone.utc)
    blocks = list(src.blocks(5000))
    assert blocks[1].start == datetime(2026, 6, 7, 9, 0, 0, 20000, tzinfo=timezone.utc)
    got = np.concatenate([b.samples for b in blocks])
    assert got.size == n
    f_hat, p_hat = measure_tone(got, FS)
    assert f_hat == pytest.approx(f0, abs=1.0)
    assert p_hat == pytest.approx(level_db, abs=0.5)


def test_sigmf_errors(tmp_path):
    meta = tmp_path / "bad.sigmf-meta"
    meta.write_text(json.dumps({"global": {"core:datatype": "ri16_le", "core:version": "1.0.0"}, "captures": [], "annotations": []}))
    (tmp_path / "bad.sigmf-data").write_bytes(b"\0" * 8)
    with pytest.raises(InputError, match="not supported"):
        open_source(str(meta))
    meta.write_text("{not json")
    with pytest.raises(InputError, match="not valid SigMF"):
        open_source(str(meta))


def test_wav_int16_mono_rejected(tmp_path):
    p = tmp_path / "mono.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"\0\0" * 100)
    with pytest.raises(InputError, match="2 channels"):
        open_source(str(p), center_hz=100e6)
    q = tmp_path / "iq.wav"
    with wave.open(str(q), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(np.array([16384, -16384] * 50, dtype="<i2").tobytes())
    x = read_all(open_source(str(q), center_hz=100e6))
    assert x.size == 50 and x[0] == pytest.approx(0.5 - 0.5j)
