"""rtl_power / hackrf_sweep CSV sweeps: the real files, the quirks, and a write/read round trip."""

from __future__ import annotations

import csv
import json
import math
import os
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from detector.core.errors import InputError
from detector.sources.sweep import SweepFile, iter_sweeps, read_sweeps, write_sweeps
from detector.core.types import Spectrum

DATA = Path(os.environ.get("EXAMWATCH_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
SWEEPS = DATA / "real" / "sweeps"
KNOWN = ["cocolo3.csv", "fm802-3.csv", "fmosaka-3.csv", "small.csv", "small3.csv", "sweep.csv"]


@pytest.fixture(scope="module")
def sweeps_dir() -> Path:
    if not SWEEPS.is_dir():
        msg = f"real sweep files not found under {SWEEPS} (set EXAMWATCH_DATA)"
        if os.environ.get("EXAMWATCH_REQUIRE_DATA") == "1" or os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SWEEPS


@lru_cache(maxsize=None)
def _read(path: Path) -> SweepFile:
    return read_sweeps(path)


def _timestamps(path: Path) -> list[tuple[str, str]]:
    """Distinct (date, time) of the file's data rows, counted with the csv module."""
    with open(path, newline="") as fh:
        return sorted({(row[0].strip(), row[1].strip()) for row in csv.reader(fh) if len(row) >= 7})


# --- real files --------------------------------------------------------------------------------


def test_every_real_file_loads_one_spectrum_per_timestamp(sweeps_dir: Path) -> None:
    files = sorted(sweeps_dir.glob("*.csv"))
    assert {p.name for p in files} >= set(KNOWN)
    for path in files:
        sweeps = _read(path)
        stamps = _timestamps(path)
        assert len(sweeps.spectra) == len(stamps), path.name
        assert sweeps.skipped_rows == 0 and sweeps.bad_values == 0, path.name
        assert sweeps.n_rows == sum(1 for line in path.read_text().splitlines() if line.strip())
        starts = [s.start for s in sweeps.spectra]
        assert starts == sorted(starts)
        for spectrum in sweeps.spectra:
            f = spectrum.freqs_hz
            assert f.dtype == np.float64 and spectrum.power.dtype == np.float32
            assert np.all(np.diff(f) > 0), path.name  # strictly increasing, so no duplicate bins
            assert np.unique(f).size == f.size
            assert spectrum.start.tzinfo is not None and spectrum.start.utcoffset() == timedelta(0)
            assert spectrum.unit == "dBFS" and spectrum.center_hz is None
            assert np.all(np.isfinite(spectrum.power))


def test_cocolo3_is_299_sweeps_of_129_bins(sweeps_dir: Path) -> None:
    sweeps = _read(sweeps_dir / "cocolo3.csv")
    assert len(sweeps.spectra) == 299
    for s in sweeps.spectra:
        assert s.freqs_hz.size == 129
        assert s.freqs_hz[0] == pytest.approx(76.45e6, abs=1e-3)
        assert s.freqs_hz[-1] == pytest.approx(76.55e6, abs=1e-3)
        assert s.rbw_hz == pytest.approx(781.25)
        assert np.allclose(np.diff(s.freqs_hz), 781.25)
    first, last = sweeps.spectra[0], sweeps.spectra[-1]
    assert first.start == datetime(2018, 11, 18, 12, 40, 7, tzinfo=timezone.utc)
    assert first.n_looks == 12480 and first.duration_s == 1.0
    assert first.power[0] == pytest.approx(-27.68) and first.power[1] == pytest.approx(-26.39)
    assert last.offset_s == 298.0 and last.duration_s == 0.0
    assert sweeps.spectra[2].n_looks == 12544


def test_small3_is_13_sweeps_over_1050_to_1150_mhz(sweeps_dir: Path) -> None:
    sweeps = _read(sweeps_dir / "small3.csv")
    assert len(sweeps.spectra) == 13
    for s in sweeps.spectra:
        step = s.rbw_hz
        assert step == pytest.approx(86805.5, abs=0.01)
        assert abs(s.freqs_hz[0] - 1050e6) <= step and abs(s.freqs_hz[-1] - 1150e6) <= step
        assert s.freqs_hz.size == 72 * 16 + 1  # 72 hops of 17 values sharing their edges
        assert s.meta["hops"] == 72


def test_small_is_30_sweeps_and_keeps_the_hop_that_starts_at_a_shared_edge(sweeps_dir: Path) -> None:
    sweeps = _read(sweeps_dir / "small.csv")
    assert len(sweeps.spectra) == 30
    s = sweeps.spectra[0]
    assert s.freqs_hz.size == 8 * 16 + 1
    assert s.freqs_hz[0] == 890e6 and s.freqs_hz[-1] == 900e6
    # Row 1 ends "..., -24.99, -24.99" (rtl_power prints its last bin twice); row 2 starts at
    # 891.25 MHz with -24.95, the real measurement there.
    edge = int(np.flatnonzero(s.freqs_hz == 891.25e6)[0])
    assert s.power[edge] == pytest.approx(-24.95)
    assert s.power[edge - 1] == pytest.approx(-24.99)


def test_hackrf_sweep_file_is_one_sweep_over_2300_to_2500_mhz(sweeps_dir: Path) -> None:
    sweeps = _read(sweeps_dir / "sweep.csv")
    assert len(sweeps.spectra) == 1
    s = sweeps.spectra[0]
    assert s.freqs_hz.size == 40 * 51  # hackrf_sweep rows hold [low, high), no shared edges
    assert s.freqs_hz[0] == 2300e6 and abs(s.freqs_hz[-1] - 2500e6) <= s.rbw_hz + 1e-3
    assert s.rbw_hz == pytest.approx(98039.22, abs=0.01)
    assert s.start == datetime(2019, 7, 8, 13, 22, 53, 532179, tzinfo=timezone.utc)
    assert s.n_looks == 1.0 and s.meta["layout"] == "hackrf_sweep"
    # its hops are interleaved in the file (2300, 2310, 2305, ...): the first row is at 2300 MHz
    assert s.power[0] == pytest.approx(-58.75)


@pytest.mark.parametrize("name", ["cocolo3.csv", "fm802-3.csv", "fmosaka-3.csv"])
def test_fm_carrier_is_where_the_manifest_says(sweeps_dir: Path, name: str) -> None:
    manifest = json.loads((sweeps_dir.parent / "manifest.json").read_text())
    (carrier,) = next(e["carriers_hz"] for e in manifest["sweeps"] if e["file"] == f"sweeps/{name}")
    sweeps = _read(sweeps_dir / name)
    f = sweeps.spectra[0].freqs_hz
    mean_db = np.mean([s.power for s in sweeps.spectra], axis=0, dtype=np.float64)
    # The broadcast shows as a flat-topped hump ~1.5 dB high and ~±10 kHz wide: the excess
    # power's centroid marks the carrier, while the single strongest bin wanders over the flat top
    # (measured: +3.1 kHz for cocolo3, -5.5 kHz for fmosaka-3).
    linear = 10 ** (mean_db / 10)
    excess = np.clip(linear - np.median(linear), 0, None)
    centroid = float(np.sum(f * excess) / np.sum(excess))
    assert abs(centroid - carrier) <= 2e3
    assert abs(f[np.argmax(mean_db)] - carrier) <= 8e3


# --- synthetic quirks ----------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_nan_inf_and_garbage_tokens_become_nan_and_are_counted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2020-01-01, 00:00:00, 100, 108, 1.00, 10, -1.00, nan, -nan, -inf, inf, foo, 1.#QNAN, , -9.00\n",
    )
    sweeps = read_sweeps(path)
    (s,) = sweeps.spectra
    assert sweeps.bad_values == 7 and sweeps.skipped_rows == 0
    assert np.array_equal(np.isnan(s.power), [False, True, True, True, True, True, True, True, False])
    assert s.power[0] == -1.0 and s.power[-1] == -9.0
    assert np.array_equal(s.freqs_hz, np.arange(100.0, 109.0))
    assert any("NaN" in w for w in sweeps.warnings)


def test_blank_short_and_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "\n"
        "# rtl_power -f 100:108:1 -i 1\n"
        "2020-01-01, 00:00:00, 100, 104, 1.00, 10, 1, 2, 3, 4, 5\n"
        "   \n"
        "2020-01-01, 00:00:01, 100, 104\n"
        "2020-13-45, 00:00:01, 100, 104, 1.00, 10, 1, 2, 3, 4, 5\n"
        "2020-01-01, 00:00:02, 100, abc, 1.00, 10, 1, 2, 3, 4, 5\n"
        "2020-01-01, 00:00:03, 100, 104, 0, 10, 1, 2, 3, 4, 5\n"
        "2020-01-01, 00:00:04, 100, 104, 1.00, 10, 6, 7, 8, 9, 10, \n",
    )
    sweeps = read_sweeps(path)
    assert sweeps.n_rows == 7 and sweeps.skipped_rows == 5
    assert len(sweeps.spectra) == 2
    assert sweeps.spectra[1].power.tolist() == [6, 7, 8, 9, 10]  # a trailing ", " is not a value
    assert sweeps.spectra[0].duration_s == 4.0 and sweeps.spectra[1].offset_s == 4.0
    assert sum("skipped" in w for w in sweeps.warnings) == 5


def test_rows_with_another_bin_count(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        # truncated: 3 of the 5 values of 100–104 Hz; kept at low + k*step
        "2020-01-01, 00:00:00, 100, 104, 1.00, 10, 1, 2, 3\n"
        # too long: 7 values for 110–114 Hz; the two above Hz high are dropped
        "2020-01-01, 00:00:00, 110, 114, 1.00, 10, 11, 12, 13, 14, 15, 16, 17\n",
    )
    sweeps = read_sweeps(path)
    (s,) = sweeps.spectra
    assert s.freqs_hz.tolist() == [100, 101, 102, 110, 111, 112, 113, 114]
    assert s.power.tolist() == [1, 2, 3, 11, 12, 13, 14, 15]
    assert sweeps.skipped_rows == 0 and len(sweeps.warnings) == 2
    assert "line 2" in sweeps.warnings[1] and "dropped" in sweeps.warnings[1]


def test_hops_out_of_order_and_a_duplicated_edge(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2020-01-01, 00:00:00, 108, 112, 1.00, 10, 30, 31, 32, 33, 34\n"
        "2020-01-01, 00:00:00, 104, 108, 1.00, 10, 20, 21, 22, 23, 29\n"
        "2020-01-01, 00:00:00, 100, 104, 1.00, 10, 10, 11, 12, 13, 19\n",
    )
    (s,) = read_sweeps(path).spectra
    assert s.freqs_hz.tolist() == list(range(100, 113))
    # at 104 and 108 Hz the value of the hop that starts there is kept, not the repeated last bin
    assert s.power.tolist() == [10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33, 34]
    assert s.meta["hops"] == 3 and s.rbw_hz == 1.0 and s.n_looks == 10


def test_edge_value_from_the_earlier_hop_fills_a_nan(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2020-01-01, 00:00:00, 100, 102, 1.00, 10, 1, 2, 3\n"
        "2020-01-01, 00:00:00, 102, 104, 1.00, 10, nan, 5, 6\n",
    )
    (s,) = read_sweeps(path).spectra
    assert s.freqs_hz.tolist() == [100, 101, 102, 103, 104]
    assert s.power.tolist() == [1, 2, 3, 5, 6]


def test_timestamps_in_a_time_zone(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2020-01-01, 12:00:00, 100, 104, 1.00, 10, 1, 2, 3, 4, 5\n"
        "2020-01-01, 12:00:01.250000, 100, 104, 1.00, 10, 1, 2, 3, 4, 5\n",
    )
    utc = read_sweeps(path).spectra
    shanghai = read_sweeps(path, tz="Asia/Shanghai").spectra
    assert utc[0].start == datetime(2020, 1, 1, 12, tzinfo=timezone.utc)
    assert shanghai[0].start == datetime(2020, 1, 1, 4, tzinfo=timezone.utc)
    assert shanghai[0].start.tzinfo == timezone.utc
    assert shanghai[1].start - shanghai[0].start == timedelta(seconds=1.25)
    assert shanghai[1].offset_s == 1.25 and shanghai[0].duration_s == 1.25
    with pytest.raises(InputError, match="time zone"):
        read_sweeps(path, tz="Mars/Olympus_Mons")


def test_an_explicit_offset_wins_over_tz(tmp_path: Path) -> None:
    path = _write(tmp_path, "2020-01-01, 12:00:00+02:00, 100, 104, 1.00, 10, 1, 2, 3, 4, 5\n")
    (s,) = read_sweeps(path, tz="Asia/Shanghai").spectra
    assert s.start == datetime(2020, 1, 1, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text, match",
    [("", "empty"), ("\n  \n\n", "empty"), ("hello, world\nfoo\n", "none of its 2 lines")],
)
def test_empty_or_unusable_file_is_an_input_error(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path, text, "bad.csv")
    with pytest.raises(InputError, match=match) as err:
        read_sweeps(path)
    assert "bad.csv" in str(err.value)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such sweep file"):
        read_sweeps(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no such sweep file"):
        next(iter_sweeps(tmp_path / "nope.csv"))
    with pytest.raises(InputError, match="not a file"):
        read_sweeps(tmp_path)


# --- writing -------------------------------------------------------------------------------------


def _spectrum(start: datetime, freqs: np.ndarray, power: np.ndarray, n_looks: float = 12.0) -> Spectrum:
    return Spectrum(freqs.astype(np.float64), power.astype(np.float32), rbw_hz=float(freqs[1] - freqs[0]),
                    start=start, n_looks=n_looks)


def _assert_same(a: list[Spectrum], b: list[Spectrum]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.freqs_hz.shape == y.freqs_hz.shape
        assert np.max(np.abs(x.freqs_hz - y.freqs_hz)) <= 1e-3
        assert np.array_equal(np.isnan(x.power), np.isnan(y.power))
        ok = ~np.isnan(x.power)
        assert np.max(np.abs(x.power[ok] - y.power[ok])) <= 0.01
        assert x.start == y.start
        assert x.n_looks == y.n_looks


@pytest.mark.parametrize("hop_hz", [None, 10e3, 1.0])
def test_write_then_read_round_trip(tmp_path: Path, hop_hz: float | None) -> None:
    rng = np.random.default_rng(7)
    t0 = datetime(2024, 6, 7, 1, 2, 3, tzinfo=timezone.utc)
    grid_a = 76.45e6 + 781.25 * np.arange(129)  # whole-Hz edges
    grid_b = 433.9e6 + 1234.5678 * np.arange(50)  # fractional Hz everywhere
    power_b = rng.normal(-60, 5, grid_b.size)
    power_b[[0, 7, 49]] = np.nan
    # each spectrum starts at or below the one before: a sweep begins where the frequency wraps around
    spectra = [
        _spectrum(t0, grid_b, power_b, n_looks=3),
        _spectrum(t0 + timedelta(seconds=1), grid_a, rng.normal(-30, 3, grid_a.size)),
        _spectrum(t0 + timedelta(seconds=2, microseconds=500), grid_a, rng.normal(-30, 3, grid_a.size)),
    ]
    path = tmp_path / "rt.csv"
    n = write_sweeps(path, spectra, hop_hz=hop_hz)
    lines = path.read_text().splitlines()
    assert len(lines) == n
    assert lines[0].startswith("2024-06-07, 01:02:03, 433900000, ")
    assert lines[2 if hop_hz is None else -1].startswith("2024-06-07, 01:02:05.000500, ")
    back = read_sweeps(path)
    assert back.skipped_rows == 0 and back.warnings == [w for w in back.warnings if "NaN" in w]
    _assert_same(spectra, back.spectra)
    assert back.spectra[1].rbw_hz == pytest.approx(781.25)
    assert back.spectra[0].rbw_hz == pytest.approx(1234.5678, abs=1e-6)
    if hop_hz == 10e3:
        # 128 steps of 781.25 Hz in hops of at most 12 steps (9.375 kHz): 11 hops
        assert back.spectra[1].meta["hops"] == 11


def test_round_trip_of_a_real_multi_hop_file(sweeps_dir: Path, tmp_path: Path) -> None:
    original = _read(sweeps_dir / "small3.csv").spectra
    path = tmp_path / "small3.csv"
    write_sweeps(path, original, hop_hz=1388888)
    back = read_sweeps(path)
    _assert_same(original, back.spectra)
    assert back.spectra[0].meta["hops"] == 72


def test_write_rejects_what_the_format_cannot_hold(tmp_path: Path) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    grid = np.arange(5.0)
    s = _spectrum(t0, grid, grid)
    with pytest.raises(InputError, match="same timestamp|share the timestamp"):
        write_sweeps(tmp_path / "a.csv", [s, s])
    with pytest.raises(InputError, match="no start"):
        write_sweeps(tmp_path / "a.csv", [Spectrum(grid, grid.astype(np.float32), rbw_hz=1.0)])
    with pytest.raises(InputError, match="hop_hz"):
        write_sweeps(tmp_path / "a.csv", [s], hop_hz=0)
    higher = _spectrum(t0 + timedelta(seconds=1), grid + 10, grid)
    with pytest.raises(InputError, match="part of the previous sweep"):
        write_sweeps(tmp_path / "a.csv", [s, higher])


def test_a_non_uniform_grid_is_written_as_uniform_hops(tmp_path: Path) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    freqs = np.array([100.0, 101.0, 102.0, 110.0, 112.0, 114.0])
    s = _spectrum(t0, freqs, -freqs)
    path = tmp_path / "g.csv"
    assert write_sweeps(path, [s]) == 3  # 100–102 at 1 Hz, 102–110 at 8 Hz, 110–114 at 2 Hz
    (back,) = read_sweeps(path).spectra
    assert back.freqs_hz.tolist() == freqs.tolist()
    assert back.power.tolist() == (-freqs).tolist()
    assert math.isclose(back.rbw_hz, 1.0) or math.isclose(back.rbw_hz, 2.0)
