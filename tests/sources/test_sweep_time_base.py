"""Sweep CSVs' time base (issue #18 item 6, issue #24 item 3): rows grouped into sweeps by the
frequency wrap-around, not by equal timestamps; local times over the DST changes; nan/-inf values.

Every file here is generated in tmp, in rtl_power's layout (hops of 17 inclusive values sharing
their edges, whole-second local timestamps formatted as each row is written).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detector.sources.sweep import read_sweeps

F0 = 433.800e6  # band start (Hz)
STEP = 1000.0  # bin spacing (Hz)
HOP_BINS = 16  # steps per hop: rows hold 17 values, the last repeated as the next row's first
N_HOPS = 8
BAND_HI = F0 + N_HOPS * HOP_BINS * STEP
CARRIER_HZ = F0 + 6 * HOP_BINS * STEP + 5 * STEP  # in the 7th hop: a partial sweep would miss it
LOOKS = 200


def sweep_rows(walls: list[list[datetime]], *, rng: np.random.Generator, carrier_db: float = 25.0,
               bad: dict[tuple[int, int], str] | None = None, hops: range = range(N_HOPS)) -> str:
    """rtl_power rows: ``walls[i][j]`` is the wall time printed on sweep i's j-th row (of ``hops``).

    Noise is -60 dB with the spread of ``LOOKS`` looks, a steady carrier at CARRIER_HZ;
    ``bad[(i, k)]`` replaces the value of sweep i's bin k (0 … 128) by that token.
    """
    bad = bad or {}
    lines = []
    for i, stamps in enumerate(walls):
        for j, h in zip(range(len(stamps)), hops):
            t = stamps[j]
            freqs = F0 + STEP * (h * HOP_BINS + np.arange(HOP_BINS + 1))
            lin = rng.gamma(LOOKS, 1.0 / LOOKS, freqs.size) * 1e-6
            lin[np.abs(freqs - CARRIER_HZ) < 1.5 * STEP] += 1e-6 * 10 ** (carrier_db / 10)
            db = 10 * np.log10(lin)
            tokens = [f"{v:.2f}" for v in db]
            tokens[-1] = tokens[-2]  # rtl_power prints its last bin twice
            for k in range(HOP_BINS + 1):
                token = bad.get((i, h * HOP_BINS + k))
                if token is not None:
                    tokens[k] = token
            low, high = freqs[0], freqs[-1]
            lines.append(f"{t:%Y-%m-%d}, {t:%H:%M:%S}, {low:.0f}, {high:.0f}, {STEP:.2f}, {LOOKS}, "
                         + ", ".join(tokens))
    return "\n".join(lines) + "\n"


def split_stamp_walls(n: int, t0: datetime, *, period_s: float = 3.0, row_s: float = 0.35) -> list[list[datetime]]:
    """Sweep i starts at t0 + i·period_s; row j is written row_s later each: a sweep of 8 rows
    takes 2.8 s, so its rows carry 3 different whole-second timestamps."""
    out = []
    for i in range(n):
        out.append([t0 + timedelta(seconds=i * period_s + j * row_s) for j in range(N_HOPS)])
    return [[t.replace(microsecond=0) for t in stamps] for stamps in out]


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the clock ticks mid-sweep ------------------------------------------------------------------


def test_rows_of_one_sweep_with_three_timestamps_are_one_sweep(tmp_path: Path) -> None:
    t0 = datetime(2024, 5, 6, 9, 0, 0, 500000)
    walls = split_stamp_walls(20, t0)
    assert all(len({t for t in s}) == 3 for s in walls)  # the clock ticks twice in every sweep
    sweeps = read_sweeps(write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(1))))
    assert len(sweeps) == 20 and sweeps.skipped_rows == 0 and sweeps.warnings == []
    for i, s in enumerate(sweeps.spectra):
        assert s.start == (walls[i][0]).replace(tzinfo=timezone.utc)  # its first row's time
        assert s.offset_s == pytest.approx(3.0 * i)
        assert s.meta["hops"] == N_HOPS and s.meta["timestamps"] == 3
        assert s.freqs_hz.size == N_HOPS * HOP_BINS + 1
        assert s.freqs_hz[0] == F0 and s.freqs_hz[-1] == BAND_HI
        assert np.all(np.isfinite(s.power))


def test_consecutive_sweeps_under_one_timestamp_are_two_sweeps(tmp_path: Path) -> None:
    """Two quick sweeps within the same second (equal timestamps) are still two frames."""
    t = datetime(2024, 5, 6, 9, 0, 0)
    walls = [[t] * N_HOPS, [t] * N_HOPS, [t + timedelta(seconds=1)] * N_HOPS]
    sweeps = read_sweeps(write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(2))))
    assert len(sweeps) == 3
    assert [s.meta["hops"] for s in sweeps] == [N_HOPS] * 3
    assert sweeps.spectra[0].start == sweeps.spectra[1].start


def test_a_file_that_starts_mid_sweep_keeps_the_partial_first_sweep(tmp_path: Path) -> None:
    t0 = datetime(2024, 5, 6, 9, 0, 0)
    rng = np.random.default_rng(3)
    head = sweep_rows([[t0] * 3], rng=rng, hops=range(5, 8))  # the recorder started at the 6th hop
    rest = sweep_rows(split_stamp_walls(4, t0 + timedelta(seconds=1)), rng=rng)
    sweeps = read_sweeps(write(tmp_path, head + rest))
    assert len(sweeps) == 5
    first = sweeps.spectra[0]
    assert first.meta["hops"] == 3 and first.freqs_hz[0] == F0 + 5 * HOP_BINS * STEP
    assert all(s.freqs_hz[0] == F0 and s.freqs_hz[-1] == BAND_HI for s in sweeps.spectra[1:])


# --- local time over the DST changes ------------------------------------------------------------


def _berlin_autumn_walls() -> tuple[list[list[datetime]], list[datetime]]:
    """180 sweeps, one a minute from 01:30 CEST on 2024-10-27: 02:00–02:59 is written twice."""
    berlin = ZoneInfo("Europe/Berlin")
    utc0 = datetime(2024, 10, 26, 23, 30, tzinfo=timezone.utc)
    utcs = [utc0 + timedelta(minutes=i) for i in range(180)]
    walls = [[u.astimezone(berlin).replace(tzinfo=None)] * 2 for u in utcs]
    return walls, utcs


def test_the_repeated_autumn_hour_keeps_both_passes(tmp_path: Path) -> None:
    walls, utcs = _berlin_autumn_walls()
    assert len({w[0] for w in walls}) == 120  # as text, the two passes share 60 timestamps
    path = write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(4), hops=range(2)))
    sweeps = read_sweeps(path, tz="Europe/Berlin")
    assert len(sweeps) == 180
    starts = [s.start for s in sweeps.spectra]
    assert starts == utcs  # each pass at its own UTC time
    assert all(b > a for a, b in zip(starts, starts[1:]))  # strictly increasing
    assert sweeps.repeated_hour_rows == 240 and sweeps.nonexistent_hour_rows == 0
    flags = [s.meta["local_time"] for s in sweeps.spectra]
    assert flags.count("repeated hour, first pass") == 60 and flags.count("repeated hour, second pass") == 60
    assert flags[:30] == [None] * 30 and flags[-30:] == [None] * 30
    (warning,) = sweeps.warnings
    assert "240 rows (lines 61–300)" in warning and "2024-10-27 02:00:00–02:59:00" in warning
    assert "Europe/Berlin repeats" in warning
    assert "120 as the first pass (UTC+02:00), 120 as the second (UTC+01:00)" in warning
    # read as UTC, the second pass goes back in time: said, with the hint to give the zone
    plain = read_sweeps(path)
    assert len(plain) == 180 and plain.repeated_hour_rows == 0
    (warning,) = plain.warnings
    assert "go backwards 1 time in the file (first at line 181: 2024-10-27 02:00:00 after 2024-10-27 02:59:00)" in warning
    assert "--tz" in warning


def test_the_repeated_hour_written_once_is_the_first_pass(tmp_path: Path) -> None:
    walls = [[datetime(2024, 10, 27, 2, 10 + i)] * 2 for i in range(3)]
    sweeps = read_sweeps(write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(5), hops=range(2))),
                         tz="Europe/Berlin")
    assert [s.start for s in sweeps] == [datetime(2024, 10, 27, 0, 10 + i, tzinfo=timezone.utc) for i in range(3)]
    assert "3 as the first pass" not in sweeps.warnings[0] and "6 as the first pass" in sweeps.warnings[0]


def test_times_in_the_spring_gap_are_flagged(tmp_path: Path) -> None:
    """A recorder whose clock did not jump on 2024-03-31 writes 02:00–02:02, which Berlin skips."""
    walls = [[datetime(2024, 3, 31, 1, 58) + timedelta(minutes=i)] * 2 for i in range(5)]
    path = write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(6), hops=range(2)))
    sweeps = read_sweeps(path, tz="Europe/Berlin")
    assert len(sweeps) == 5
    starts = [s.start for s in sweeps]
    # read with the offset before the jump (UTC+01:00): one minute apart throughout
    assert starts == [datetime(2024, 3, 31, 0, 58, tzinfo=timezone.utc) + timedelta(minutes=i) for i in range(5)]
    assert sweeps.nonexistent_hour_rows == 6 and sweeps.repeated_hour_rows == 0
    assert [s.meta["local_time"] for s in sweeps] == [None, None] + ["non-existent hour"] * 3
    (warning,) = sweeps.warnings
    assert "6 rows (lines 5–10)" in warning and "2024-03-31 02:00:00–02:02:00" in warning
    assert "do not exist in Europe/Berlin" in warning


# --- nan and -inf values -----------------------------------------------------------------------


def test_nan_and_inf_values_are_counted_and_named(tmp_path: Path) -> None:
    walls = split_stamp_walls(10, datetime(2024, 5, 6, 9, 0, 0))
    bad = {(3, 20): "nan", (3, 21): "-inf", (4, 20): "-nan", (7, 100): "inf"}
    path = write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(7), bad=bad))
    sweeps = read_sweeps(path)
    assert sweeps.bad_values == 4 and len(sweeps) == 10
    s3 = sweeps.spectra[3]
    k20 = int(np.flatnonzero(s3.freqs_hz == F0 + 20 * STEP)[0])
    assert np.isnan(s3.power[k20]) and np.isnan(s3.power[k20 + 1]) and s3.meta["bad_values"] == 2
    (warning,) = sweeps.warnings
    # sweep 3's 2nd hop is line 26, sweep 4's line 34, sweep 7's 7th hop line 63
    assert "4 values were nan, inf or unparseable, on 3 rows (lines 26, 34, 63;" in warning
    assert f"{walls[3][1]:%Y-%m-%d %H:%M:%S} to {walls[7][6]:%Y-%m-%d %H:%M:%S}" in warning
    assert "missing bins (NaN)" in warning
    assert not any(math.isinf(v) for s in sweeps for v in s.power.tolist())
