import pytest

from detector.core.errors import InputError
from detector.core.units import format_hz, parse_hz


@pytest.mark.parametrize(
    "text, hz",
    [("433.92M", 433.92e6), ("250k", 250e3), ("2.4e6", 2.4e6), ("1G", 1e9), ("12.5kHz", 12500.0), ("100", 100.0), ("2.4m", 2.4e6)],
)
def test_parse_hz(text, hz):
    assert parse_hz(text) == pytest.approx(hz)


@pytest.mark.parametrize("text", ["", "abc", "12Q", "nan", "1e999"])
def test_parse_hz_rejects(text):
    with pytest.raises(InputError):
        parse_hz(text, name="--center")


def test_format_hz():
    assert format_hz(433.92e6) == "433.920000 MHz"
    assert format_hz(250e3) == "250.000 kHz"
