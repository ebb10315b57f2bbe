"""The dashboard router: the page, its static files, figure PNGs, GeoJSON/KML and evidence zips over
HTTP — and a real browser (headless Chromium driven by Selenium) acknowledging an alert."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from detector.alerts import open_store
from detector.api import ApiContext, create_app
from detector.api.dashboard import FIGURES, STATIC_FILES, build_dashboard_router
from tests.dashboards import RUN_ID, SITE, located_event, sim_drive_readings, sim_run, target_alert

TOKEN = "dash-token-123"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
PNG = b"\x89PNG\r\n\x1a\n"


def _app(store, *, monitor=None, site=None, **kw):
    return create_app(ApiContext(store=store, token=TOKEN, monitor=monitor, site=site,
                                 extra_routers=[build_dashboard_router()], **kw))


def _two_alerts(store):
    """The hidden transmitter (located) and a pulsed 433 MHz device, on the simulated run's timeline."""
    a = store.apply_event(located_event("T00004", 446.0798e6, location=sim_drive_readings().estimate.to_dict(),
                                        first_seen_s=209.99, last_seen_s=224.0), site=SITE, run_id=RUN_ID)
    b = store.apply_event(located_event("T00001", 445.7443e6, classification="pulsed", severity="medium", excess_db=15.5,
                                        first_seen_s=205.0, last_seen_s=212.0, bandwidth_hz=101000.0), site=SITE, run_id=RUN_ID)
    return a, b


# --- HTTP ----------------------------------------------------------------------------------------
class TestRoutes:
    def test_page_and_static_files(self, tmp_path):
        store = open_store(None, data_dir=tmp_path)
        with TestClient(_app(store)) as c:
            r = c.get("/dashboard")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            html = r.text
            assert '<script src="/dashboard/static/dashboard.js">' in html and "/dashboard/static/dashboard.css" in html
            assert "http://" not in html and "https://" not in html  # nothing from a CDN
            assert "spectrum.js" not in html and "spec-canvas" not in html  # no capture loop, no live spectrum
            # no capture loop behind this app (as on a center): the map and the timeline only
            for name in FIGURES:
                assert (f'data-figure="{name}"' in html) == (name in ("map", "timeline")), name
            for name, media in STATIC_FILES.items():
                s = c.get(f"/dashboard/static/{name}")
                assert s.status_code == 200 and s.headers["content-type"] == media and len(s.content) > 1000
                assert b"http://" not in s.content and b"https://" not in s.content
            js = c.get("/dashboard/static/dashboard.js").text
            assert '"zh-CN"' in js and "navigator.language" in js and "/api/v1/alerts/stream" in js
            for bad in ("dashboard.html", "..%2Ftemplates%2Fdashboard.html", "x.js", "..%2F..%2Fpyproject.toml"):
                assert c.get(f"/dashboard/static/{bad}").status_code == 404
        store.close()

    def test_every_ui_string_in_english_and_chinese(self):
        import re

        js = (REPO / "dashboards" / "static" / "dashboard.js").read_text()
        en = js[js.index("en: {"):js.index('"zh-CN": {')]
        zh = js[js.index('"zh-CN": {'):js.index("function pickLang")]
        keys = lambda block: set(re.findall(r"\b([a-z][a-z0-9_]*): \"", block))  # noqa: E731
        assert keys(en) == keys(zh) and len(keys(en)) > 50
        html = (REPO / "dashboards" / "templates" / "dashboard.html").read_text()
        used = set(re.findall(r'data-i18n(?:-placeholder)?="([a-z0-9_{} ]+)"', html))
        used = {u for u in used if "{" not in u} | {f"fig_{n}" for n in FIGURES}
        assert used <= keys(en), used - keys(en)

    def test_figures_404_with_a_reason_before_data(self, tmp_path):
        store = open_store(None, data_dir=tmp_path)
        with TestClient(_app(store)) as c:
            for name in FIGURES:
                r = c.get(f"/api/v1/figures/{name}.png")
                assert r.status_code == 404, name
                assert r.json()["detail"] and ("no " in r.json()["detail"] or "nothing" in r.json()["detail"])
            assert "capture loop" in c.get("/api/v1/figures/spectrum.png").json()["detail"]
            assert c.get("/api/v1/figures/bogus.png").status_code == 404
            assert c.get("/api/v1/figures/waterfall.png", params={"seconds": 1}).status_code == 422
            store.apply_event(located_event(), site="S", run_id="r")
            r = c.get("/api/v1/figures/timeline.png")  # a command center: alerts, no sessions
            assert r.status_code == 200 and r.content.startswith(PNG)
        store.close()

    def test_timeline_of_todays_wall_clock_sessions(self, tmp_path):
        from datetime import datetime, timedelta, timezone

        from detector.config.site import SiteConfig

        now = datetime.now(timezone.utc).replace(microsecond=0)
        site = SiteConfig.model_validate({"name": "S", "lat": 50.0, "lon": 10.0, "session": [
            {"name": "today", "start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()},
            {"name": "last year", "start": (now - timedelta(days=365)).isoformat(),
             "end": (now - timedelta(days=365, hours=-2)).isoformat()}]})
        store = open_store(None, data_dir=tmp_path)
        store.apply_event(located_event(), site="S", run_id="r")
        with TestClient(_app(store, site=site)) as c:
            r = c.get("/api/v1/figures/timeline.png")
            assert r.status_code == 200 and r.content.startswith(PNG)
            assert c.get("/api/v1/figures/map.png").status_code == 404  # no location, no route, no buildings
        store.close()

    def test_figures_from_a_running_monitor(self):
        run = sim_run()
        with TestClient(_app(run.store, monitor=run.monitor, site=run.site)) as c:
            html = c.get("/dashboard").text
            assert 'data-role="vehicle"' in html and all(f'data-figure="{name}"' in html for name in FIGURES)
            # the live canvases and their script (a center's page has neither)
            assert '<script src="/dashboard/static/spectrum.js">' in html and 'id="spec-canvas"' in html
            for name in FIGURES:
                r = c.get(f"/api/v1/figures/{name}.png")
                assert r.status_code == 200, (name, r.text[:300])
                assert r.headers["content-type"] == "image/png" and r.content.startswith(PNG) and len(r.content) > 20_000
                assert r.headers["cache-control"] == "no-store"
            t1 = target_alert(run)
            assert c.get("/api/v1/figures/map.png", params={"alert": t1.id}).status_code == 200
            assert c.get("/api/v1/figures/map.png", params={"alert": "A-none"}).status_code == 404
            assert c.get("/api/v1/figures/waterfall.png", params={"seconds": 10}).status_code == 200

    def test_exports_and_evidence_zip(self):
        run = sim_run()
        t1 = target_alert(run)
        with TestClient(_app(run.store, monitor=run.monitor, site=run.site)) as c:
            g = c.get("/api/v1/alerts.geojson", params={"site": SITE})
            assert g.status_code == 200 and g.headers["content-type"] == "application/geo+json"
            body = g.json()
            assert body["type"] == "FeatureCollection"
            assert t1.id in {f["id"] for f in body["features"]}
            k = c.get("/api/v1/alerts.kml")
            assert k.status_code == 200 and k.headers["content-type"] == "application/vnd.google-earth.kml+xml"
            assert t1.id.encode() in k.content
            assert c.get("/api/v1/alerts.geojson", params={"status": "closed"}).json()["features"] == []
            z = c.get(f"/api/v1/alerts/{t1.id}/evidence.zip")
            assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
            assert f'filename="{t1.id}-evidence.zip"' in z.headers["content-disposition"]
            names = {n.split("/", 1)[1] for n in zipfile.ZipFile(io.BytesIO(z.content)).namelist()}
            assert {"alert.json", "snippet.sigmf-meta", "snippet.sigmf-data", "spectrum.png", "waterfall.png", "map.png",
                    "readings.csv", "MANIFEST.sha256"} <= names
            rows = zipfile.ZipFile(io.BytesIO(z.content)).read(f"{t1.id}/readings.csv").decode().splitlines()
            assert rows[0] == "t_s,lat,lon,power_db" and len(rows) > 100
            assert c.get("/api/v1/alerts/A-none/evidence.zip").status_code == 404

    def test_reads_open_writes_need_the_token(self, tmp_path):
        store = open_store(None, data_dir=tmp_path)
        a = store.apply_event(located_event(), site="S", run_id="r")
        with TestClient(_app(store)) as c:
            assert c.get("/api/v1/alerts.kml").status_code == 200
            assert c.patch(f"/api/v1/alerts/{a.id}", json={"status": "acknowledged"}).status_code == 401
        with TestClient(_app(store, read_token="reader")) as c:
            assert c.get("/api/v1/alerts.geojson").status_code == 401
            assert c.get("/api/v1/alerts.geojson", headers={"Authorization": "Bearer reader"}).status_code == 200
            assert c.get("/dashboard").status_code == 200  # the page itself is outside /api/
        store.close()


# --- the browser ---------------------------------------------------------------------------------
def _browser_or_skip() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        chromium = None
    if not (chromium and driver):
        msg = "headless browser test needs Debian's chromium and chromium-driver and selenium (.ci/install-browser)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return chromium, driver


class _Server:
    """uvicorn on a free loopback port, in a thread (the socket is bound before the thread starts)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def _chrome(chromium: str, driver_path: str, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                "--window-size=1600,1000", "--lang=en-US"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


#: count of non-background pixels of the live spectrum and waterfall canvases
_LIT_PIXELS = """
function lit(id) {
  var c = document.getElementById(id), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, n = 0;
  for (var i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 11) + Math.abs(d[i + 1] - 13) + Math.abs(d[i + 2] - 16) > 30) n++;
  return n;
}
return {spec: lit("spec-canvas"), wf: lit("wf-canvas")};
"""


def _click(drv, alert_id: str, cls: str, *, keys: str | None = None) -> None:
    """Click (or type into) an element of an alert card, finding it afresh (the list is redrawn when
    alerts change)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(5):
        try:
            el = drv.find_element(By.CSS_SELECTOR, f'.alert-card[data-id="{alert_id}"] .{cls}')
            el.send_keys(keys) if keys is not None else el.click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"cannot reach .{cls} of alert {alert_id}")


def test_browser_lists_alerts_and_acknowledges(tmp_path):
    chromium, driver_path = _browser_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    run = sim_run()  # a monitor with a spectrum and a waterfall, so that every figure has data
    store = open_store(None, data_dir=tmp_path / "store")
    a, b = _two_alerts(store)
    app = _app(store, monitor=run.monitor, site=run.site)
    ARTIFACTS.mkdir(exist_ok=True)
    with _Server(app) as base:
        drv = _chrome(chromium, driver_path, tmp_path / "profile")
        try:
            wait = WebDriverWait(drv, 20)
            drv.get(base + "/dashboard")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#alerts .alert-card")) == 2)
            cards = {c.get_attribute("data-id"): c for c in drv.find_elements(By.CSS_SELECTOR, "#alerts .alert-card")}
            assert set(cards) == {a.id, b.id}
            assert "446.0798 MHz" in cards[a.id].find_element(By.CLASS_NAME, "freq").text
            assert cards[a.id].find_element(By.CLASS_NAME, "cls").text == "NFM voice"
            assert "located" in cards[a.id].find_element(By.CLASS_NAME, "alert-loc").text
            assert drv.execute_script("return window.examwatch.lang") == "en"
            # no SSE stream on this server yet: the page polls
            wait.until(lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "poll")

            # acknowledge without a token: the page asks for it
            _click(drv, a.id, "ack")
            wait.until(EC.visibility_of_element_located((By.ID, "token-panel")))
            assert "token" in drv.find_element(By.ID, "message").text.lower()
            # a wrong token: a clear 401 message
            drv.find_element(By.ID, "token-input").send_keys("wrong-token")
            drv.find_element(By.ID, "token-save").click()
            _click(drv, a.id, "ack")
            wait.until(lambda d: "401" in d.find_element(By.ID, "message").text)
            assert store.get(a.id).status == a.status == "located"
            # the right token, kept in localStorage
            drv.find_element(By.ID, "token-input").send_keys(TOKEN)
            drv.find_element(By.ID, "token-save").click()
            assert drv.execute_script("return localStorage.getItem('examwatch.token')") == TOKEN
            _click(drv, a.id, "reason", keys="team 2 on the way")
            _click(drv, a.id, "ack")
            deadline = time.monotonic() + 15
            while store.get(a.id).status != "acknowledged":
                assert time.monotonic() < deadline, "the alert was not acknowledged"
                time.sleep(0.1)
            # the API shows it acknowledged, with the reason
            with TestClient(app) as c:
                got = c.get(f"/api/v1/alerts/{a.id}").json()
                hist = c.get(f"/api/v1/alerts/{a.id}/history").json()["data"]
            assert got["status"] == "acknowledged" and hist[-1]["reason"] == "team 2 on the way"
            assert store.get(b.id).status == b.status
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#acked .alert-card[data-id="{a.id}"]'))
            assert [c.get_attribute("data-id") for c in drv.find_elements(By.CSS_SELECTOR, "#alerts .alert-card")] == [b.id]
            # the map and the timeline load as images; the spectrum and the waterfall are live canvases
            # fed by the spectrum stream, their PNGs hidden and not fetched
            wait.until(lambda d: all(d.execute_script(
                f"var i = document.querySelector('[data-figure-img=\"{n}\"]'); return i.complete && i.naturalWidth > 300 && "
                f"!i.classList.contains('hidden')") for n in ("map", "timeline")))
            wait.until(lambda d: int(d.find_element(By.ID, "live").get_attribute("data-rows")) >= 1)
            assert drv.find_element(By.ID, "live").is_displayed()
            for name in ("spectrum", "waterfall"):
                assert not drv.find_element(By.ID, f"fig-{name}").is_displayed(), name
            lit = drv.execute_script(_LIT_PIXELS)
            assert lit["spec"] > 2000 and lit["wf"] > 500, lit  # drawn: lines and labels, a coloured row
            # hover: frequency, level with its unit, excess over the baseline p99
            spec = drv.find_element(By.ID, "spec-canvas")
            from selenium.webdriver.common.action_chains import ActionChains

            ActionChains(drv).move_to_element_with_offset(spec, 40, 0).perform()
            wait.until(lambda d: "MHz" in d.find_element(By.ID, "live-readout").text)
            text = drv.find_element(By.ID, "live-readout").text
            assert re.search(r"4\d\d\.\d{5} MHz · −?\d+\.\d (dBFS|dBm) · [+−]\d+\.\d dB over baseline p99", text), text
            # a click where no track is selects that frequency
            ActionChains(drv).click().perform()
            wait.until(lambda d: "MHz" in d.find_element(By.ID, "live-selected").text)
            assert drv.execute_script("return window.examwatch.live.selHz") > 4e8
            # the wheel zooms in around the cursor; the stream is asked again for the visible span
            n_full = drv.execute_script("return window.examwatch.live.grid.n")
            drv.execute_script("var c = document.getElementById('spec-canvas'), r = c.getBoundingClientRect();"
                               "for (var i = 0; i < 3; i++) c.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, bubbles: true,"
                               " cancelable: true, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2}));")
            wait.until(lambda d: d.execute_script("var s = window.examwatch.live; return s.view !== null && s.grid.n < arguments[0]",
                                                  n_full))
            v, g = drv.execute_script("var s = window.examwatch.live; return [s.view, s.grid]")
            assert v["lo"] - g["bin"] <= g["f0"] and g["f0"] + (g["n"] - 1) * g["bin"] <= v["hi"] + g["bin"], (v, g)
            assert g["n"] == pytest.approx((v["hi"] - v["lo"]) / g["bin"], abs=3)
            # a drag to the left pans to higher frequencies, the span kept, and the stream follows
            ActionChains(drv).move_to_element(spec).click_and_hold().move_by_offset(-60, 0).move_by_offset(-60, 0) \
                .release().perform()
            wait.until(lambda d: d.execute_script("return window.examwatch.live.view.lo") > v["lo"] + 1e3)
            v2 = drv.execute_script("return window.examwatch.live.view")
            assert v2["hi"] - v2["lo"] == pytest.approx(v["hi"] - v["lo"], rel=1e-6)
            wait.until(lambda d: d.execute_script("return window.examwatch.live.grid.f0") >= v2["lo"] - 1e3)
            time.sleep(0.3)
            drv.save_screenshot(str(ARTIFACTS / "dashboard.png"))

            # the same page in Chinese (the browser's language, emulated; ?lang= also works)
            drv.execute_cdp_cmd("Emulation.setLocaleOverride", {"locale": "zh-CN"})
            drv.get(base + "/dashboard")
            lang = drv.execute_script("return window.examwatch.lang")
            if lang != "zh-CN":  # a Chromium whose locale override does not reach navigator.language
                drv.get(base + "/dashboard?lang=zh-CN")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts .alert-card"))
            assert drv.execute_script("return document.documentElement.lang") == "zh-CN"
            assert drv.find_element(By.CSS_SELECTOR, "h1 span").text == "考场无线电监测 — 实时"
            assert drv.find_element(By.CSS_SELECTOR, "#alerts .ack").text == "确认"
            assert drv.find_element(By.CSS_SELECTOR, "#alerts .dismiss").text == "排除"
            wait.until(lambda d: d.find_element(By.ID, "live").is_displayed())  # shown with its first row
            assert drv.find_element(By.CSS_SELECTOR, "#live .live-head span").text == "实时频谱与瀑布图"
            drv.save_screenshot(str(ARTIFACTS / "dashboard-zh.png"))
        finally:
            drv.quit()
    store.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 50_000


def test_browser_live_waterfall_of_a_running_monitor_selects_the_alert_of_a_track(tmp_path):
    """A monitor running on a paced source (noise and a carrier the baseline has not seen): the
    page's rows arrive at the stream's rate, the waterfall boxes the alerting track, and a click on
    the box highlights its alert card."""
    chromium, driver_path = _browser_or_skip()
    import numpy as np
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from detector.detection.engine import DetectionEngine, EngineConfig
    from detector.sim import awgn
    from tests._helpers import survey_iq
    from tests.api.test_spectrum_stream import BIN_HZ, CENTER, FS, TONE_HZ, _monitor

    noise = awgn(1 << 18, -45.0, np.random.default_rng(9)).astype(np.complex64)
    baseline = survey_iq(noise, FS, CENTER, engine=DetectionEngine(EngineConfig(bin_hz=BIN_HZ)), site="S")
    store = open_store(None, data_dir=tmp_path / "store")
    mon = _monitor(store, baseline=baseline)
    mon.start()
    try:
        with _Server(_app(store, monitor=mon)) as base:
            drv = _chrome(chromium, driver_path, tmp_path / "profile")
            try:
                wait = WebDriverWait(drv, 20)
                drv.get(base + "/dashboard")
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#alerts .alert-card[data-track="T00001"]'))
                n0 = int(drv.find_element(By.ID, "live").get_attribute("data-rows"))
                time.sleep(2.0)
                n1 = int(drv.find_element(By.ID, "live").get_attribute("data-rows"))
                assert n1 - n0 >= 8, (n0, n1)  # 5 rows/s drawn
                wait.until(lambda d: d.execute_script("return window.examwatch.live.tracks.length") >= 1)
                tr = drv.execute_script("return window.examwatch.live.tracks[0]")
                assert tr["id"] == "T00001" and tr["alert"] and tr["f_lo_hz"] <= CENTER + TONE_HZ <= tr["f_hi_hz"]
                wf = drv.find_element(By.ID, "wf-canvas")
                x = drv.execute_script("return window.examwatch.live.cssX('wf-canvas', arguments[0])", CENTER + TONE_HZ)
                rect = drv.execute_script("var r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", wf)
                ActionChains(drv).move_to_element_with_offset(wf, int(round(x - rect[0] / 2)), int(-rect[1] / 2 + 4)).perform()
                wait.until(lambda d: "T00001" in d.find_element(By.ID, "live-readout").text)
                ActionChains(drv).click().perform()
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#alerts .alert-card.selected[data-track="T00001"]'))
                assert drv.find_element(By.ID, "live-selected").get_attribute("data-track") == "T00001"
                assert "alert" in drv.find_element(By.ID, "live-selected").text
                drv.save_screenshot(str(ARTIFACTS / "dashboard-live.png"))
            finally:
                drv.quit()
    finally:
        mon.stop()
        store.close()
