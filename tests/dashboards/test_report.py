"""The post-exam report: one self-contained HTML file per site (figures as base64 PNG), sessions,
every alert with its figures, location and handling; the ``examwatch report`` command; PDF."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

import detector.cli.report  # noqa: F401  (registers the command until detector/cli/__init__.py imports it)
from dashboards.report import collect_report, render_html
from detector.alerts import open_store
from detector.cli import app
from tests.dashboards import SITE, located_event, no_warnings, sim_drive_readings, sim_run, target_alert

runner = CliRunner()
IMG_RE = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
T0 = datetime(2026, 6, 7, 1, 0, tzinfo=timezone.utc)  # 09:00 Asia/Shanghai

SITE_TOML = """
name = "school-7"
lat = 50.0
lon = 10.0
timezone = "Asia/Shanghai"
buildings = [[[49.99987, 9.99958], [50.00013, 9.99958], [50.00013, 10.00042], [49.99987, 10.00042]]]

[[session]]
name = "Chinese"
start = "2026-06-07T09:00:00+08:00"
end = "2026-06-07T11:30:00+08:00"

[[session]]
name = "Mathematics"
start = "2026-06-07T15:00:00+08:00"
end = "2026-06-07T17:00:00+08:00"
"""


def _images(html: str) -> dict[str, bytes]:
    out = {}
    for alt, b64 in IMG_RE.findall(html):
        data = base64.b64decode(b64)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        out[alt] = data
    return out


def _self_contained(html: str) -> None:
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(r.startswith(("data:", "#")) for r in refs), refs
    assert "<script" not in html and "<link" not in html


def _wall_clock_store(tmp_path):
    """Alerts of site school-7: two in the Chinese session (one acknowledged then closed), one in
    Mathematics, one in the lunch break."""
    store = open_store(None, data_dir=tmp_path / "data")
    loc = sim_drive_readings().estimate.to_dict()

    def ev(tid, minutes, dur, **kw):
        return located_event(tid, first_seen_utc=(T0 + timedelta(minutes=minutes)).isoformat(),
                             last_seen_utc=(T0 + timedelta(minutes=minutes + dur)).isoformat(), **kw)

    a = store.apply_event(ev("T1", 12, 20, location=loc), site="school-7", run_id="r1")
    b = store.apply_event(ev("T2", 40, 2, center_hz=433.92e6, classification="pulsed", severity="medium"), site="school-7", run_id="r1")
    c = store.apply_event(ev("T3", 200, 3, center_hz=446.00625e6), site="school-7", run_id="r1")   # 12:20 local: break
    d = store.apply_event(ev("T4", 380, 10, center_hz=446.09375e6), site="school-7", run_id="r1")  # 15:20 local
    store.apply_event(ev("T9", 30, 1), site="other-site", run_id="r1")
    store.set_status(a.id, "acknowledged", "team 2 sent to building A", actor="crew")
    store.set_status(a.id, "closed", "transmitter found in room 204", actor="crew")
    return store, (a, b, c, d)


class TestHtml:
    def test_sim_run_report_with_baseline(self):
        run = sim_run()
        with no_warnings():
            rep = collect_report(run.store, run.site, baseline=run.baseline)
            html = render_html(rep)
        alerts, _ = run.store.list(site=SITE)
        assert len(rep.sections) == 1 and rep.sections[0].name == "exam session 1"
        assert {a["id"] for a in rep.alerts} == {a.id for a in alerts}
        _self_contained(html)
        imgs = _images(html)
        assert "timeline of exam session 1" in imgs and "environment against the baseline" in imgs
        for a in alerts:
            assert f'id="{a.id}"' in html and f"spectrum of {a.id}" in imgs and f"waterfall of {a.id}" in imgs
        t1 = target_alert(run)
        assert f"map of {t1.id}" in imgs  # it carries a (coarse) location
        assert f"{t1.center_hz / 1e6:.4f} MHz nfm_voice" in html
        assert "survey at this frequency" in html and "Site baseline (survey)" in html
        for e in t1.evidence:
            assert e["sha256"] in html

    def test_sessions_outside_alerts_history_and_zone(self, tmp_path):
        store, (a, b, c, d) = _wall_clock_store(tmp_path)
        from detector.config.site import load_site

        (tmp_path / "school-7.toml").write_text(SITE_TOML)
        site = load_site(tmp_path / "school-7.toml")
        with no_warnings():
            rep = collect_report(store, site)
            html = render_html(rep)
        names = [s.name for s in rep.sections]
        assert names == ["Chinese", "Mathematics", "outside the exam sessions"]
        assert [[x["id"] for x in s.alerts] for s in rep.sections] == [[a.id, b.id], [d.id], [c.id]]
        assert "other-site" not in html
        imgs = _images(html)
        assert {"timeline of Chinese", "timeline of Mathematics", f"map of {a.id}"} <= set(imgs)
        assert "transmitter found in room 204" in html and "team 2 sent to building A" in html
        assert "2026-06-07 09:12:00 CST" in html  # first seen of T1 in the site's zone
        assert "No baseline was given" in html
        _self_contained(html)
        store.close()


class TestCli:
    def _setup(self, tmp_path):
        store, alerts = _wall_clock_store(tmp_path)
        store.close()
        sites = tmp_path / "sites"
        sites.mkdir()
        (sites / "school-7.toml").write_text(SITE_TOML)
        return alerts

    def test_report_html(self, tmp_path):
        a, b, c, d = self._setup(tmp_path)
        out = tmp_path / "report.html"
        r = runner.invoke(app, ["report", "--site", "school-7", "--sites-dir", str(tmp_path / "sites"),
                                "--data-dir", str(tmp_path / "data"), "-o", str(out)])
        assert r.exit_code == 0, r.output
        html = out.read_text()
        for x in (a, b, c, d):
            assert f'id="{x.id}"' in html
        assert len(_images(html)) >= 4
        assert "wrote" in r.stderr and r.stdout == ""

    def test_time_range_and_db_url(self, tmp_path):
        a, b, c, d = self._setup(tmp_path)
        out = tmp_path / "morning.html"
        r = runner.invoke(app, ["report", "--site", str(tmp_path / "sites" / "school-7.toml"),
                                "--db", f"sqlite:///{tmp_path / 'data' / 'examwatch.db'}",
                                "--from", "2026-06-07T09:00:00+08:00", "--to", "2026-06-07T11:30:00+08:00", "-o", str(out)])
        assert r.exit_code == 0, r.output
        html = out.read_text()
        assert f'id="{a.id}"' in html and f'id="{b.id}"' in html
        assert f'id="{c.id}"' not in html and f'id="{d.id}"' not in html

    def test_pdf(self, tmp_path):
        self._setup(tmp_path)
        out = tmp_path / "report.pdf"
        r = runner.invoke(app, ["report", "--site", "school-7", "--sites-dir", str(tmp_path / "sites"),
                                "--data-dir", str(tmp_path / "data"), "-o", str(out), "--pdf"])
        assert r.exit_code == 0, r.output
        data = out.read_bytes()
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
        # summary + 2 session timelines + the outside timeline + 4 alert pages + 1 map
        assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type /Page>") >= 9 or \
            len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 9

    @pytest.mark.parametrize("args, message", [
        (["--from", "2026-06-07T09:00:00"], "needs a zone"),
        (["--from", "yesterday"], "ISO 8601"),
        (["--from", "2026-06-07T12:00:00Z", "--to", "2026-06-07T09:00:00Z"], "after --to"),
    ])
    def test_bad_times_exit_2(self, tmp_path, monkeypatch, capsys, args, message):
        self._setup(tmp_path)
        code, err = _main(monkeypatch, capsys, ["report", "--site", "school-7", "--sites-dir", str(tmp_path / "sites"),
                                                 "--data-dir", str(tmp_path / "data"), "-o", str(tmp_path / "r.html"), *args])
        assert code == 2 and message in err
        assert not (tmp_path / "r.html").exists()

    def test_missing_store_exit_2(self, tmp_path, monkeypatch, capsys):
        code, err = _main(monkeypatch, capsys, ["report", "--site", "x", "--data-dir", str(tmp_path / "none"),
                                                 "-o", str(tmp_path / "r.html")])
        assert code == 2 and "no alert store" in err
        assert not (tmp_path / "r.html").exists() and not (tmp_path / "none").exists()


    def test_a_mistyped_sqlite_db_is_refused_and_creates_nothing(self, tmp_path, monkeypatch, capsys):
        self._setup(tmp_path)
        url = f"sqlite:///{tmp_path / 'nosuch.db'}"
        code, err = _main(monkeypatch, capsys, ["report", "--site", "school-7", "--sites-dir", str(tmp_path / "sites"),
                                                 "--db", url, "-o", str(tmp_path / "r.html")])
        assert code == 2 and "no SQLite store at" in err
        assert not (tmp_path / "nosuch.db").exists() and not (tmp_path / "r.html").exists()

    def test_a_site_with_no_alert_in_the_store_is_a_warning_naming_the_sites_there(self, tmp_path):
        self._setup(tmp_path)
        (tmp_path / "sites" / "school-9.toml").write_text('name = "school-9"\n')
        r = runner.invoke(app, ["report", "--site", "school-9", "--sites-dir", str(tmp_path / "sites"),
                                "--data-dir", str(tmp_path / "data"), "-o", str(tmp_path / "r.html")])
        assert r.exit_code == 0, r.output
        assert "no alert of site 'school-9'" in " ".join(r.output.split()) and "school-7" in r.output


def _main(monkeypatch, capsys, args) -> tuple[int, str]:
    """The console-script entry point in-process: its exit code and stderr (one line per error)."""
    import sys

    from detector.cli import main

    monkeypatch.setattr(sys, "argv", ["examwatch", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, " ".join(capsys.readouterr().err.split())
