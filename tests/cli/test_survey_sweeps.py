"""``examwatch survey`` / ``replay`` of generated sweep CSVs: split timestamps, partial first sweeps,
the DST hours and nan/-inf values (issue #18 item 6, issue #24 item 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from detector.cli import app
from tests.sources.test_sweep_time_base import (BAND_HI, CARRIER_HZ, F0, STEP, _berlin_autumn_walls, split_stamp_walls,
                                                sweep_rows, write)

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())  # the console wraps long lines


def survey(path: Path, out: Path, *extra: str):
    r = runner.invoke(app, ["survey", str(path), "--site", "s", "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    from detector.baseline import load

    return load(out), r


def replay_events(path: Path, base: Path, *extra: str) -> tuple[list[dict], str]:
    r = runner.invoke(app, ["replay", str(path), "--site", "s", "--baseline", str(base), "--jsonl", *extra])
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()], r.stderr


def test_split_stamp_sweeps_survey_the_whole_band_and_replay_quietly(tmp_path: Path) -> None:
    """Rows of one sweep carry three timestamps; the survey covers the whole band with one frame
    per sweep, and a replay of the same file raises no alert on the surveyed carrier."""
    walls = split_stamp_walls(40, datetime(2024, 5, 6, 9, 0, 0, 500000))
    path = write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(11)))
    base, _ = survey(path, tmp_path / "b.npz")
    assert base.freqs_hz[0] == F0 and base.freqs_hz[-1] == BAND_HI
    assert np.all(base.frames == 40)  # every bin of every sweep
    k = int(np.argmin(np.abs(base.freqs_hz - CARRIER_HZ)))
    assert base.occupancy[k] > 0.9
    events, _ = replay_events(path, tmp_path / "b.npz")
    near = [ev for ev in events if abs(ev["center_hz"] - CARRIER_HZ) < 10 * STEP]
    assert not [ev for ev in near if ev["alert"]], near


def test_a_partial_first_sweep_does_not_drop_the_band(tmp_path: Path) -> None:
    """The recorder started mid-sweep: the first sweep holds the top three hops only; the
    baseline still spans the band, and the carrier in the lower hops is surveyed (no alert)."""
    rng = np.random.default_rng(12)
    t0 = datetime(2024, 5, 6, 9, 0, 0)
    text = sweep_rows([[t0] * 3], rng=rng, hops=range(5, 8)) + sweep_rows(split_stamp_walls(30, t0 + timedelta(seconds=1)), rng=rng)
    path = write(tmp_path, text)
    base, _ = survey(path, tmp_path / "b.npz")
    assert base.freqs_hz[0] == F0 and base.freqs_hz[-1] == BAND_HI
    assert int(base.frames.max()) == 31 and int(base.frames.min()) == 30
    events, _ = replay_events(path, tmp_path / "b.npz")
    assert not [ev for ev in events if ev["alert"] and abs(ev["center_hz"] - CARRIER_HZ) < 10 * STEP]
    assert not any("no baseline" in reason for ev in events for reason in ev["reasons"])


def test_the_repeated_autumn_hour_is_surveyed_whole_and_said(tmp_path: Path) -> None:
    walls, _ = _berlin_autumn_walls()
    path = write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(13), hops=range(2)))
    base, r = survey(path, tmp_path / "b.npz", "--tz", "Europe/Berlin")
    assert int(base.frames.max()) == 180
    assert base.span_s >= 179 * 60 - 1  # 01:30 CEST to 03:29 CET: 180 minutes less one
    err = flat(r.stderr)
    assert "warning:" in err and "2024-10-27 02:00:00–02:59:00" in err and "Europe/Berlin repeats" in err


def test_a_spring_gap_time_is_warned_on_replay(tmp_path: Path) -> None:
    walls = [[datetime(2024, 3, 31, 1, 58) + timedelta(minutes=i)] * 2 for i in range(5)]
    path = write(tmp_path, sweep_rows(walls, rng=np.random.default_rng(14), hops=range(2)))
    r = runner.invoke(app, ["replay", str(path), "--site", "s", "--tz", "Europe/Berlin"])
    assert r.exit_code == 0, r.output
    assert "do not exist in Europe/Berlin" in flat(r.stderr) and "2024-03-31 02:00:00–02:02:00" in flat(r.stderr)


def test_nan_and_inf_values_stay_out_of_the_baseline_and_the_detection(tmp_path: Path) -> None:
    """rtl_power's nan/-inf bins: counted and named on stderr by survey and replay; the baseline
    skips them (finite statistics, fewer frames there), and the replay finds nothing there."""
    n = 40
    walls = split_stamp_walls(n, datetime(2024, 5, 6, 9, 0, 0))
    rng = np.random.default_rng(15)
    survey_bad = {(i, k): tok for i in range(0, n, 3) for k, tok in ((20, "nan"), (21, "-inf"), (22, "-nan"))}
    survey_bad |= {(i, 60): "-inf" for i in range(n)}  # a bin that never measured
    path = write(tmp_path, sweep_rows(walls, rng=rng, bad=survey_bad), "survey.csv")
    base, r = survey(path, tmp_path / "b.npz")
    err = flat(r.stderr)
    n_bad, n_rows = len(survey_bad), n + len(range(0, n, 3))  # bins 20–22 in the 2nd hop, 60 in the 4th
    assert f"{n_bad} values were nan, inf or unparseable, on {n_rows} rows" in err and "missing bins (NaN)" in err
    f = base.freqs_hz
    k20, k60 = (int(np.flatnonzero(f == F0 + k * STEP)[0]) for k in (20, 60))
    assert base.frames[k20] == n - len(range(0, n, 3)) and base.frames[k20 + 3] == n
    assert base.frames[k60] == 0 and not base.covered[k60]  # a missing bin, not a -inf level
    covered = base.covered
    for stat in (base.median, base.occupancy, base.mad):
        assert np.all(np.isfinite(np.asarray(stat)[covered]))
    assert np.all(np.isfinite(base.sum_lin)) and np.all(base.hist.sum(axis=1) == base.frames)
    # the exam: other sweeps with nan/-inf at the same and at other bins
    exam_bad = {(i, k): tok for i in range(1, n, 2) for k, tok in ((20, "-inf"), (45, "nan"), (60, "-inf"))}
    exam = write(tmp_path, sweep_rows(walls, rng=rng, bad=exam_bad), "exam.csv")
    events, err = replay_events(exam, tmp_path / "b.npz")
    assert f"{len(exam_bad)} values were nan, inf or unparseable" in flat(err)
    for k in (20, 21, 22, 45, 60):
        assert not [ev for ev in events if abs(ev["center_hz"] - (F0 + k * STEP)) <= 3 * STEP], k
    assert not [ev for ev in events if ev["alert"] and abs(ev["center_hz"] - CARRIER_HZ) < 10 * STEP]


def test_a_sweep_file_without_a_usable_row_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "2024-05-06, 09:00:00, 100\nnot, a, sweep\n", "bad.csv")
    r = subprocess.run([sys.executable, "-m", "detector", "survey", str(path), "--site", "s", "--out",
                        str(tmp_path / "b.npz")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "none of its 2 lines is an rtl_power sweep row" in flat(r.stderr)
