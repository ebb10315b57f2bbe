import numpy as np
import pytest

from detector.dsp import cf32_to_complex64, cs8_to_complex64, cs16_to_complex64, cu8_to_complex64


def test_cu8_zero_level_and_full_scale():
    raw = np.array([0, 255, 127, 128], dtype=np.uint8)
    x = cu8_to_complex64(raw)
    assert x.dtype == np.complex64 and x.shape == (2,)
    assert x[0] == pytest.approx(-1 + 1j)
    assert x[1].real == pytest.approx(-0.5 / 127.5, rel=1e-4) and x[1].imag == pytest.approx(0.5 / 127.5, rel=1e-4)


def test_cs8_cs16_cf32():
    assert cs8_to_complex64(np.array([-128, 64], dtype=np.int8))[0] == pytest.approx(-1 + 0.5j)
    assert cs16_to_complex64(np.array([16384, -32768], dtype=np.int16))[0] == pytest.approx(0.5 - 1j)
    assert cf32_to_complex64(np.array([0.25, -0.5], dtype=np.float32))[0] == pytest.approx(0.25 - 0.5j)


def test_odd_length_and_wrong_dtype_rejected():
    with pytest.raises(ValueError):
        cu8_to_complex64(np.zeros(3, dtype=np.uint8))
    with pytest.raises(TypeError):
        cu8_to_complex64(np.zeros(4, dtype=np.int8))
