"""Each figure from real recordings and from a simulated run: what the Figure holds (axes ranges,
marked alerts, labels), rendered without a warning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboards import (
    exam_timeline_figure,
    figure_bytes,
    occupancy_figure,
    save_figure,
    site_map_figure,
    spectrum_baseline_figure,
    spectrum_summary_figure,
    waterfall_figure,
    waterfall_from_spectra,
)
from tests.dashboards import SITE, by_gid, no_warnings, real_iq_run, sim_drive_readings, sim_run, target_alert, texts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _render(fig) -> bytes:
    data = figure_bytes(fig, "png")
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    return data


def _entry(manifest, name):
    return next(e for e in manifest["iq"] if name in e["file"])


# --- spectrum vs baseline -------------------------------------------------------------------------
class TestSpectrumBaseline:
    def test_sim_live_spectrum_with_baseline_alerts_and_whitelist(self):
        run = sim_run()
        snap = run.monitor.latest_spectrum()
        alerts, _ = run.store.list(site=SITE)
        f = np.asarray(snap["freqs_hz"])
        in_band = [a for a in alerts if f[0] <= a.center_hz <= f[-1]]
        assert snap["baseline"] is not None and in_band
        with no_warnings():
            fig = spectrum_baseline_figure(snap, alerts=alerts, whitelist=run.monitor.engine.whitelist)
            _render(fig)
        ax = fig.axes[0]
        assert ax.get_xlim() == pytest.approx((f[0] / 1e6, f[-1] / 1e6))
        assert ax.get_xlabel() == "frequency (MHz)" and "dBFS" in ax.get_ylabel()
        assert len(by_gid(fig, "psd")) == 1 and len(by_gid(fig, "baseline-median")) == 1
        assert len(by_gid(fig, "baseline-p99-band")) == 1
        assert len(by_gid(fig, "alert-marker")) == len(in_band)
        labels = [t.get_text() for t in by_gid(fig, "alert-label")]
        assert len(labels) == len(in_band)
        t1 = target_alert(run)
        want = f"{t1.center_hz / 1e6:.4f} MHz nfm_voice +{t1.excess_db:.1f} dB"
        assert any(want in s for s in labels), (want, labels)
        # the whitelisted repeater (445.9 MHz) is shaded and named
        shades = by_gid(fig, "whitelist")
        assert len(shades) == 1
        x0, x1 = shades[0].get_x(), shades[0].get_x() + shades[0].get_width()
        assert x0 < 445.9 < x1
        assert any("LMR-R" in t.get_text() for t in by_gid(fig, "whitelist-label"))
        # the y range holds the spectrum and leaves room for the labels
        lo, hi = ax.get_ylim()
        p = np.asarray(snap["power"], dtype=float)
        assert lo < np.nanpercentile(p, 1) and hi > np.nanmax(p)

    def test_real_sweep_against_a_baseline_of_earlier_sweeps(self, real_dir, manifest):
        from detector.baseline import BaselineBuilder
        from detector.detection.engine import DetectionEngine, EngineConfig
        from detector.sources.sweep import read_sweeps

        entry = manifest["sweeps"][0]
        sweeps = read_sweeps(real_dir / entry["file"])
        first = sweeps.spectra[0]
        b = BaselineBuilder(first.freqs_hz, rbw_hz=first.rbw_hz, site="osaka", n_looks=first.n_looks)
        for s in sweeps.spectra[:150]:
            b.add(s)
        base = b.build()
        live = sweeps.spectra[-1]
        eng = DetectionEngine(EngineConfig(), baseline=base)
        eng.process_spectrum(live)
        carrier = entry["carriers_hz"][0]
        alert = {"id": "A-real", "center_hz": carrier, "classification": "wideband", "excess_db": 4.2, "severity": "medium"}
        with no_warnings():
            fig = spectrum_baseline_figure(live, baseline=base, emissions=eng.last_result.emissions, alerts=[alert],
                                           title="cocolo3 last sweep")
            _render(fig)
        ax = fig.axes[0]
        assert ax.get_xlim() == pytest.approx((live.freqs_hz[0] / 1e6, live.freqs_hz[-1] / 1e6))
        assert len(by_gid(fig, "baseline-p99-band")) == 1
        assert [t.get_text() for t in by_gid(fig, "alert-label")] == [f"ALERT {carrier / 1e6:.4f} MHz wideband +4.2 dB"]
        assert len(by_gid(fig, "emission")) == len(eng.last_result.emissions)

    def test_real_iq_spectrum_without_baseline(self, real_dir, manifest):
        run = real_iq_run(real_dir, _entry(manifest, "PT2262-01"))
        avg = run.frames[len(run.frames) // 2]
        with no_warnings():
            fig = spectrum_baseline_figure(avg, alerts=run.alerts)
            _render(fig)
        assert len(by_gid(fig, "baseline-median")) == 0
        assert len(by_gid(fig, "alert-label")) == len(run.alerts) >= 1
        assert any("433.8369" in s or "433.83" in s for s in texts(fig))  # the −83 kHz remote

    def test_summary_figure_still_works(self, real_dir, manifest):
        from detector.app.analysis import summarize_source
        from detector.app.sources import open_source

        e = _entry(manifest, "PT2262-01")
        src = open_source(str(real_dir / e["file"]), sample_format=e["dtype"], sample_rate_hz=e["sample_rate_hz"],
                          center_hz=e["center_hz"])
        try:
            summary = summarize_source(src)
        finally:
            src.close()
        with no_warnings():
            fig = spectrum_summary_figure(summary)
            _render(fig)
        ax = fig.axes[0]
        f_mhz = summary.freqs_hz / 1e6
        assert ax.get_xlim() == pytest.approx((f_mhz[0], f_mhz[-1]))
        assert ax.get_xlabel() == "frequency (MHz)" and f"{summary.rbw_hz:.0f} Hz RBW" in ax.get_ylabel()
        assert ax.get_title() == f"{e['center_hz'] / 1e6:.3f} MHz, {summary.duration_s:.2f} s"
        # the three curves are the summary's arrays; max-hold is never below the average
        curves = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
        assert set(curves) == {"max-hold", "average", "noise floor"}
        for label, y in (("max-hold", summary.maxhold_dbfs), ("average", summary.avg_dbfs), ("noise floor", summary.floor_dbfs)):
            assert np.asarray(curves[label].get_ydata()) == pytest.approx(np.asarray(y, dtype=float), abs=1e-4)
        assert np.all(summary.maxhold_dbfs >= summary.avg_dbfs - 1e-3)
        # one numbered marker per peak (at most 10), the first the strongest; the remote's carrier is marked
        n = min(len(summary.peaks), 10)
        marks = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
        assert n >= 1 and len(marks) == n
        assert [a.get_text() for a in ax.texts] == [str(k) for k in range(1, n + 1)]
        assert [p.snr_db for p in summary.peaks[:n]] == sorted((p.snr_db for p in summary.peaks[:n]), reverse=True)
        marked_hz = [float(ln.get_xdata()[0]) * 1e6 - e["center_hz"] for ln in marks]
        bin_hz = summary.sample_rate_hz / summary.freqs_hz.size
        assert min(abs(f - e["carriers_offset_hz"][0]) for f in marked_hz) <= 3 * bin_hz, marked_hz
        lo, hi = ax.get_ylim()
        assert lo < float(np.min(summary.floor_dbfs)) and hi > float(np.max(summary.maxhold_dbfs))


# --- waterfall ------------------------------------------------------------------------------------
class TestWaterfall:
    def test_sim_waterfall_with_tracks_and_alerts(self):
        run = sim_run()
        wf = run.monitor.waterfall(300)
        from detector.detection.engine import track_event

        tracks = [track_event("update", tr).to_json() for tr in run.monitor.engine.all_tracks.values() if tr.confirmed]
        alerts, _ = run.store.list(site=SITE)
        with no_warnings():
            fig = waterfall_figure(wf, tracks=tracks, alerts=alerts)
            _render(fig)
        ax = fig.axes[0]
        f, t = wf["freqs_hz"], wf["times_s"]
        x0, x1 = ax.get_xlim()
        assert x0 < f[0] / 1e6 < f[-1] / 1e6 < x1 and (x1 - x0) * 1e6 == pytest.approx(f[-1] - f[0], rel=0.01)
        y0, y1 = ax.get_ylim()
        assert y0 == pytest.approx(t[0]) and y1 >= t[-1] and 200 < y0 < 210 and 225 < y1 < 230
        assert len(by_gid(fig, "waterfall")) == 1
        assert len(by_gid(fig, "track-box")) == len(tracks) >= 2
        shown = [a for a in alerts if f[0] <= a.center_hz <= f[-1]]
        assert len(by_gid(fig, "alert-marker")) == len(shown) >= 1
        t1 = target_alert(run)
        assert any(f"{t1.center_hz / 1e6:.4f} MHz nfm_voice" in s for s in (x.get_text() for x in by_gid(fig, "alert-label")))
        assert fig.axes[1].get_ylabel() == "power (dBFS per bin)"  # the colour bar

    def test_real_iq_waterfall(self, real_dir, manifest):
        e = _entry(manifest, "PT2262-01")
        run = real_iq_run(real_dir, e)
        wf = waterfall_from_spectra(run.frames)
        with no_warnings():
            fig = waterfall_figure(wf, tracks=run.tracks, alerts=run.alerts, title=e["file"])
            _render(fig)
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        assert lo == pytest.approx((e["center_hz"] - e["sample_rate_hz"] / 2) / 1e6, abs=0.002)
        assert hi == pytest.approx((e["center_hz"] + e["sample_rate_hz"] / 2) / 1e6, abs=0.002)
        assert ax.get_ylim()[1] == pytest.approx(run.frames[-1].offset_s + run.frames[-1].duration_s, abs=0.02)
        assert len(by_gid(fig, "track-box")) == len(run.tracks)
        assert len(by_gid(fig, "alert-marker")) == len(run.alerts) >= 1
        # the remote's bursts (−83 kHz, manifest) are inside an alerting box
        boxes = [b for b in by_gid(fig, "track-box") if b.get_edgecolor()[0] > 0.9 and b.get_edgecolor()[1] < 0.5]
        f83 = (e["center_hz"] - 83e3) / 1e6
        assert any(b.get_x() <= f83 <= b.get_x() + b.get_width() for b in boxes)


# --- occupancy ------------------------------------------------------------------------------------
class TestOccupancy:
    def test_real_sweep_csv(self, real_dir, manifest):
        from detector.sources.sweep import read_sweeps

        for entry in manifest["sweeps"]:
            sweeps = read_sweeps(real_dir / entry["file"])
            with no_warnings():
                fig = occupancy_figure(sweeps)
                _render(fig)
            ax, ax_occ = fig.axes[0], fig.axes[1]
            f = sweeps.spectra[0].freqs_hz
            x0, x1 = ax_occ.get_xlim()
            assert x0 < f[0] / 1e6 < f[-1] / 1e6 < x1
            starts = np.array([(s.start - sweeps.spectra[0].start).total_seconds() for s in sweeps.spectra])
            step = float(np.median(np.diff(starts))) if starts.size > 1 else 1.0
            assert ax.get_ylim() == pytest.approx((0.0, starts[-1] + step))  # every sweep is one row of its interval
            line = by_gid(fig, "occupancy")[0]
            occ = line.get_ydata()
            assert line.get_xdata().size == f.size and np.nanmax(occ) <= 100 and np.nanmin(occ) >= 0
            if entry.get("carriers_hz"):  # the broadcast carrier is the most occupied part of the band
                peak_f = line.get_xdata()[int(np.nanargmax(occ))] * 1e6
                assert abs(peak_f - entry["carriers_hz"][0]) < 0.25 * (f[-1] - f[0])
            assert ax_occ.get_ylabel() == "occupancy (%)" and f"{len(sweeps)} frames" in ax.get_title()

    def test_sim_survey_frames_with_baseline(self):
        from detector.sim.sdr import SimPsd

        run = sim_run()
        psd = SimPsd(run.scene, nfft=1024, segments_per_frame=19, window="survey")
        psd.t_end = 3.0
        frames = list(psd.frames())
        with no_warnings():
            fig = occupancy_figure(frames, baseline=run.baseline)
            _render(fig)
        occ = by_gid(fig, "occupancy")[0]
        x, y = occ.get_xdata(), occ.get_ydata()
        beacon = int(np.argmin(np.abs(x - 445.6)))  # the steady beacon, 445.6 MHz
        assert np.nanmax(y[max(0, beacon - 3):beacon + 4]) > 80
        assert np.nanmedian(y) < 10  # mostly noise
        assert len(by_gid(fig, "baseline-occupancy")) == 1


# --- the map --------------------------------------------------------------------------------------
class TestMap:
    def test_sim_located_estimate_with_ellipse_route_and_buildings(self):
        run = sim_run()
        drive = sim_drive_readings()
        est = drive.estimate
        assert est.status == "located"
        alert = {"id": "A-sim", "center_hz": 446.08125e6, "classification": "nfm_voice", "excess_db": 30.0,
                 "severity": "high", "location": est.to_dict()}
        with no_warnings():
            fig = site_map_figure(route=drive.route, readings=drive.readings, alert=alert, buildings=run.site.buildings,
                                  origin=(run.site.lat, run.site.lon), truth=drive.truth)
            _render(fig)
        ax = fig.axes[0]
        assert ax.get_xlabel() == "east (m)" and ax.get_ylabel() == "north (m)"
        # the route is the 240 × 180 m loop around the site (route [-120, 120] × [-90, 90] m)
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        assert x0 < -120 and x1 > 120 and y0 < -90 and y1 > 90 and (x1 - x0) < 800
        assert len(by_gid(fig, "building")) == len(run.site.buildings) == 2
        assert len(by_gid(fig, "readings")) == 1 and by_gid(fig, "readings")[0].get_offsets().shape[0] == len(drive.readings)
        ell = by_gid(fig, "ellipse-95")
        assert len(ell) == 1
        e = alert["location"]["error_ellipse_m"]
        assert ell[0].width == pytest.approx(2 * e["semi_major"]) and ell[0].height == pytest.approx(2 * e["semi_minor"])
        assert ell[0].angle == pytest.approx(90 - e["angle_deg"])
        star = by_gid(fig, "estimate")[0]
        truth = by_gid(fig, "truth")[0]
        d = math.hypot(star.get_xdata()[0] - truth.get_xdata()[0], star.get_ydata()[0] - truth.get_ydata()[0])
        assert d < 60  # the estimate is near the hidden transmitter
        # latitude/longitude on the secondary axes
        labels = texts(fig)
        assert "latitude (°N)" in labels and "longitude (°E)" in labels
        assert any(s.startswith("50.00") for s in labels) and any(s.startswith("10.00") for s in labels)
        assert any("CEP50" in s for s in labels)

    def test_ellipse_bearing_is_clockwise_from_north(self):
        loc = {"lat": 50.0, "lon": 10.0, "status": "located", "cep50_m": 20.0,
               "error_ellipse_m": {"semi_major": 100.0, "semi_minor": 20.0, "angle_deg": 90.0}}  # major axis east–west
        with no_warnings():
            fig = site_map_figure(location=loc)
            _render(fig)
        e = by_gid(fig, "ellipse-95")[0]
        verts = e.get_patch_transform().transform(e.get_path().vertices)
        assert np.ptp(verts[:, 0]) == pytest.approx(200.0, rel=1e-6) and np.ptp(verts[:, 1]) == pytest.approx(40.0, rel=1e-6)

    def test_sim_monitor_track_readings_not_localizable(self):
        run = sim_run()
        a = target_alert(run)
        tr = run.monitor.engine.all_tracks[a.track_id]
        with no_warnings():
            fig = site_map_figure(readings=tr.readings, alert=a, buildings=run.site.buildings,
                                  origin=(run.site.lat, run.site.lon))
            _render(fig)
        assert len(by_gid(fig, "readings")) == 1
        if a.location and a.location["status"] == "located":
            assert len(by_gid(fig, "ellipse-95")) == 1
        else:
            assert len(by_gid(fig, "coarse-region")) == (1 if a.location else 0)

    def test_real_gpx_route(self, real_dir):
        from detector.sources.gps import read_gpx

        fixes, _ = read_gpx(real_dir / "gps" / "around-visnjan-with-car.gpx")
        with no_warnings():
            fig = site_map_figure(route=fixes, title="Visnjan drive")
            _render(fig)
        route = by_gid(fig, "route")[0]
        assert route.get_xdata().size == len(fixes)
        assert "Visnjan drive" == fig.axes[0].get_title()


# --- the exam timeline ----------------------------------------------------------------------------
class TestTimeline:
    def test_sim_session_seconds_and_alerts(self):
        run = sim_run()
        alerts, _ = run.store.list(site=SITE)
        sessions = [(a, b, f"exam session {i + 1}") for i, (a, b) in enumerate(run.site.session_seconds)]
        with no_warnings():
            fig = exam_timeline_figure(sessions, alerts)
            _render(fig)
        ax = fig.axes[0]
        assert len(by_gid(fig, "alert-bar")) == len(alerts) >= 2
        assert len(by_gid(fig, "session")) == 1
        lo, hi = ax.get_xlim()
        assert lo < 150 and hi > 390
        assert "exam session 1" in texts(fig)
        t1 = target_alert(run)
        assert any(f"{t1.center_hz / 1e6:.4f} MHz nfm_voice" in s for s in texts(fig))

    def test_real_recording_alerts_over_its_span(self, real_dir, manifest):
        e = _entry(manifest, "PT2262-01")
        run = real_iq_run(real_dir, e)
        end = run.frames[-1].offset_s + run.frames[-1].duration_s
        with no_warnings():
            fig = exam_timeline_figure([(0.0, end, e["file"])], run.alerts)
            _render(fig)
        assert len(by_gid(fig, "alert-bar")) == len(run.alerts) >= 1
        bars = by_gid(fig, "alert-bar")
        spans = sorted((b.get_x(), b.get_x() + b.get_width()) for b in bars)
        firsts = sorted(float(a["first_seen_s"]) for a in run.alerts)
        assert [s[0] for s in spans] == pytest.approx(firsts)
        assert all(0.0 <= s[0] <= end for s in spans)

    def test_wall_clock_sessions_with_zone(self, tmp_path):
        from datetime import datetime, timedelta, timezone
        from zoneinfo import ZoneInfo

        from detector.alerts import open_store
        from tests.dashboards import located_event

        store = open_store(None, data_dir=tmp_path)
        t0 = datetime(2026, 6, 7, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
        for i, minutes in enumerate((10, 45, 170)):
            store.apply_event(located_event(f"T{i}", 446.0e6 + i * 12.5e3, first_seen_utc=(t0 + timedelta(minutes=minutes)).isoformat(),
                                            last_seen_utc=(t0 + timedelta(minutes=minutes + 3)).isoformat()), site="S", run_id="r")
        alerts, _ = store.list()
        sessions = [{"start": t0, "end": t0 + timedelta(hours=2, minutes=30), "name": "Chinese"}]
        with no_warnings():
            fig = exam_timeline_figure(sessions, alerts, tz=ZoneInfo("Asia/Shanghai"))
            _render(fig)
        store.close()
        assert len(by_gid(fig, "alert-bar")) == 3 and "Chinese" in " ".join(texts(fig))
        assert fig.axes[0].get_xlabel() == "time (Asia/Shanghai)"
        assert any(s.startswith("09:") or s.startswith("10:") for s in texts(fig))


# --- saving ---------------------------------------------------------------------------------------
def test_save_png_and_svg(tmp_path):
    run = sim_run()
    with no_warnings():
        fig = spectrum_baseline_figure(run.monitor.latest_spectrum())
        png = save_figure(fig, tmp_path / "s.png")
        svg = save_figure(fig, tmp_path / "s.svg")
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "live spectrum" in text
    with pytest.raises(ValueError, match="png, .svg or .pdf"):
        save_figure(fig, tmp_path / "s.jpg")
    assert not (tmp_path / "s.jpg").exists()
