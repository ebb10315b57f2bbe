"""What a monitor run watched, kept for the report (issue #19): DATA_DIR/runs/<run_id>.json."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np

from detector.app.run_record import RunRecorder, load_runs

T0 = datetime(2026, 6, 7, 1, 0, tzinfo=timezone.utc)

INTERCEPT = {"burst_s": 2.0, "min_on_s": 0.03, "log_s": 3600.0, "dwells": 5000, "receivers": 2, "bands": [
    {"name": "PMR446", "priority": 5, "p_burst_nominal": 1.0, "p_burst_achieved": 0.998, "revisit_nominal_s": 0.0,
     "revisit_achieved_s": None, "revisit_s": 10.0, "dwells": 1},
    {"name": "UHF-400", "priority": 3, "p_burst_nominal": 0.23, "p_burst_achieved": 0.11, "revisit_nominal_s": 9.0,
     "revisit_achieved_s": 19.5, "revisit_s": 30.0, "dwells": 180}]}


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


def health():
    return {"status": "ok", "intercept": INTERCEPT,
            "receivers": [{"name": "rx0", "status": "ok", "source": "rtlsdr:1", "bands": ["PMR446"], "blocks_read": 10},
                          {"name": "rx1", "status": "degraded", "source": "rtlsdr:2", "bands": ["UHF-400"],
                           "blocks_read": 4, "last_error": "cannot open the source: gone"}]}


def test_a_run_record_is_written_at_start_and_at_stop_with_what_was_watched(tmp_path):
    clock = Clock()
    rec = RunRecorder(tmp_path / "runs", "r1", "school-7", health, plan="default-exam", interval_s=3600, clock=clock)
    rec.start()
    d = json.loads(rec.path.read_text())
    assert d["run_id"] == "r1" and d["site"] == "school-7" and d["plan"] == "default-exam"
    assert d["started_at"] == "2026-06-07T01:00:00Z" and d["ended_at"] is None
    assert [b["p_burst_achieved"] for b in d["intercept"]["bands"]] == [0.998, 0.11]
    clock.t = T0 + timedelta(hours=2)
    rec.stop()
    d = json.loads(rec.path.read_text())
    assert d["ended_at"] == "2026-06-07T03:00:00Z" and d["receivers"][1]["status"] == "degraded"
    assert rec.writes == 2
    rec.stop()  # idempotent
    assert rec.writes == 2


def test_a_single_receiver_without_a_plan_is_recorded_too(tmp_path):
    rec = RunRecorder(tmp_path / "runs", "r2", "s", lambda: {"status": "ok", "source": "rec.cu8", "blocks_read": 7},
                      clock=Clock())
    assert rec.write()
    d = json.loads(rec.path.read_text())
    assert d["intercept"] is None and d["receivers"] == [{"name": "rx0", "status": "ok", "source_state": None,
                                                          "source": "rec.cu8",
                                                          "center_hz": None, "sample_rate_hz": None, "blocks_read": 7,
                                                          "frames_processed": None, "frames_dropped": None,
                                                          "reopen_count": None, "retunes": None, "last_error": None,
                                                          "calibration": None}]


def test_an_unwritable_folder_is_logged_not_raised(tmp_path, caplog):
    (tmp_path / "runs").write_text("a file, not a folder")
    rec = RunRecorder(tmp_path / "runs", "r3", "s", health, clock=Clock())
    assert rec.write() is False and rec.write() is False
    assert "cannot write the run record" in rec.last_error
    assert sum("cannot write the run record" in r.message for r in caplog.records) == 1  # once per cause


def test_load_runs_keeps_the_site_s_runs_in_the_range(tmp_path):
    runs = tmp_path / "runs"
    for rid, site, start_h, end_h in (("a", "s", 0, 2), ("b", "s", 5, 6), ("c", "other", 0, 2)):
        clock = Clock()
        clock.t = T0 + timedelta(hours=start_h)
        rec = RunRecorder(runs, rid, site, health, clock=clock)
        rec.write()
        clock.t = T0 + timedelta(hours=end_h)
        rec.write(ended=True)
    (runs / "junk.json").write_text("{not json")
    (runs / "other.json").write_text(json.dumps({"hello": 1}))
    assert [r["run_id"] for r in load_runs(runs, "s")] == ["a", "b"]
    assert [r["run_id"] for r in load_runs(runs, "s", T0 + timedelta(hours=3), T0 + timedelta(hours=7))] == ["b"]
    assert [r["run_id"] for r in load_runs(runs, "s", None, T0 + timedelta(hours=1))] == ["a"]
    assert load_runs(tmp_path / "nowhere", "s") == []


def test_the_report_shows_what_was_watched_and_the_achieved_catch_rate(tmp_path):
    from dashboards.report import collect_report, render_html
    from detector.alerts import open_store

    rec = RunRecorder(tmp_path / "runs", "r1", "s", health, plan="default-exam", clock=Clock())
    rec.write(ended=True)
    with open_store(None, data_dir=tmp_path) as store:
        rep = collect_report(store, "s", runs=load_runs(tmp_path / "runs", "s"))
        html = render_html(rep)
    assert "What was watched" in html and "Run r1" in html and "plan default-exam" in html
    assert "<td>PMR446</td><td>5</td><td>100.0 %</td><td>99.8 %</td>" in html
    # the achieved rate far below the plan's is flagged
    assert '<td>UHF-400</td><td>3</td><td>23.0 %</td><td class="sev-high">11.0 %</td><td>19.5 s</td>' in html
    assert "cannot open the source: gone" in html


def test_a_monitor_app_keeps_its_run_record(tmp_path):
    from detector.app.monitor_app import AppSettings, MonitorApp
    from tests._helpers import recording_of

    x = (np.random.default_rng(0).standard_normal(50_000) * 0.01).astype(np.complex64)
    app = MonitorApp.build(AppSettings(data_dir=tmp_path / "d"), source_factory=recording_of(x, 250e3, 446e6),
                           site="S")
    app.start()
    assert app.monitor.finished.wait(30)
    path = tmp_path / "d" / "runs" / f"{app.run_id}.json"
    assert path.is_file() and json.loads(path.read_text())["ended_at"] is None
    app.stop()
    d = json.loads(path.read_text())
    assert d["ended_at"] is not None and d["site"] == "S" and d["receivers"][0]["blocks_read"] > 0
    assert d["plan"] == "dwell" or d["plan"] is None


def test_examwatch_report_reads_the_run_records_of_its_data_dir(tmp_path):
    from typer.testing import CliRunner

    from detector.alerts import open_store
    from detector.cli import app

    with open_store(None, data_dir=tmp_path) as store:  # a store with one alert of the site
        from tests.push import track_event

        store.apply_event(track_event("T1", 1.0, snr=20.0, center_hz=446.1e6), site="s", run_id="r1")
    RunRecorder(tmp_path / "runs", "r1", "s", health, plan="default-exam", clock=Clock()).write(ended=True)
    RunRecorder(tmp_path / "runs", "r9", "elsewhere", health, clock=Clock()).write(ended=True)
    out = tmp_path / "report.html"
    r = CliRunner().invoke(app, ["report", "--site", "s", "--data-dir", str(tmp_path), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "1 monitor run(s)" in r.output
    html = out.read_text()
    assert "Run r1" in html and "Run r9" not in html and "<td>UHF-400</td>" in html
