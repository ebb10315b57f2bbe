"""The hunt route (issue #22 item 5): the level of an alert's channel now, from a running monitor on a
recording with an emitter; 404, the not-tuned 409, several receivers; and the page ``GET /hunt``."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.app.monitor_app import AppSettings, MonitorApp, ReceiverSpec
from detector.sim import awgn, gate, nfm
from tests.pipeline.test_receivers import FS, Recording

UHF = 446.05e6
VHF = 150.1e6


def emitter(offset_hz, seconds=2.0, seed=1, level_db=-22.0):
    """Noise of −30 dBFS over 250 kHz (−43 dBFS in 12.5 kHz) and an NFM emitter from 0.5 s to the end."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    return awgn(n, -30.0, rng) + gate(nfm(n, FS, offset_hz, level_db, rng), FS, [(0.5, seconds)])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two receivers (UHF with an emitter at +20 kHz, VHF with one at −40 kHz) that have run to the end of
    their recordings; the client, the app and the UHF emitter's alert."""
    d = tmp_path_factory.mktemp("hunt")
    a, b = emitter(20e3, seed=1), emitter(-40e3, seed=2)
    specs = [ReceiverSpec("uhf", lambda: Recording(a, UHF, "uhf"), bands=("PMR446",)),
             ReceiverSpec("vhf", lambda: Recording(b, VHF, "vhf"), bands=("VHF",))]
    app = MonitorApp.build(AppSettings(data_dir=d / "d"), source_factory=None, site="S", receivers=specs)
    app.start()
    try:
        assert app.monitor.finished.wait(30)
        alerts, _ = app.store.list(site="S")
        uhf = [x for x in alerts if abs(x.center_hz - (UHF + 20e3)) < 3e3]
        assert uhf, [x.center_hz for x in alerts]
        with TestClient(app.api) as c:
            yield c, app, uhf[0]
    finally:
        app.stop()


def test_the_level_at_the_emitter_stands_over_the_level_elsewhere(served):
    c, _, alert = served
    r = c.get(f"/api/v1/hunt/{alert.id}/level")
    assert r.status_code == 200, r.text
    on = r.json()
    assert on["alert_id"] == alert.id and on["center_hz"] == alert.center_hz and on["receiver"] == "uhf"
    assert on["unit"] == "dBFS" and on["level_dbm"] is None and on["tuned_center_hz"] == UHF
    assert on["bandwidth_hz"] == pytest.approx(alert.bandwidth_hz or 12.5e3)
    off = c.get("/api/v1/hunt/level", params={"f_hz": UHF - 60e3, "bw_hz": on["bandwidth_hz"]}).json()
    assert off["alert_id"] is None and off["receiver"] == "uhf"
    assert on["level_dbfs"] - off["level_dbfs"] > 15.0, (on, off)
    # the emitter's channel power is its own (−22 dBFS) plus the channel's noise; the empty channel
    # reads the noise density × width, and its noise floor says the same within the floor's bias
    assert on["level_dbfs"] == pytest.approx(-22.0, abs=1.0)
    noise = -30 + 10 * math.log10(off["bandwidth_hz"] / FS)
    assert off["level_dbfs"] == pytest.approx(noise, abs=1.0)
    assert off["noise_floor_dbfs"] == pytest.approx(noise, abs=2.0) and on["snr_db"] > 15


def test_several_receivers_the_one_tuned_to_the_channel_answers(served):
    c, *_ = served
    r = c.get("/api/v1/hunt/level", params={"f_hz": VHF - 40e3})
    assert r.status_code == 200 and r.json()["receiver"] == "vhf" and r.json()["tuned_center_hz"] == VHF
    assert r.json()["snr_db"] > 15


def test_not_tuned_is_a_409_that_says_where_the_receivers_are(served):
    c, *_ = served
    r = c.get("/api/v1/hunt/level", params={"f_hz": 433.92e6})
    assert r.status_code == 409
    body = r.json()
    assert "433.9200 MHz" in body["detail"] and "tuned to 446.0500 MHz" in body["detail"] and "150.1000" in body["detail"]
    assert {t["receiver"]: t["center_hz"] for t in body["tuned"]} == {"uhf": UHF, "vhf": VHF}
    # a channel half outside the band is not covered either
    assert c.get("/api/v1/hunt/level", params={"f_hz": UHF + 124e3, "bw_hz": 12.5e3}).status_code == 409


def test_unknown_alert_and_bad_queries(served):
    c, *_ = served
    r = c.get("/api/v1/hunt/A-000000000000/level")
    assert r.status_code == 404 and "A-000000000000" in r.json()["detail"]
    assert c.get("/api/v1/hunt/level").status_code == 422
    assert c.get("/api/v1/hunt/level", params={"f_hz": -1}).status_code == 422


def test_no_capture_loop_and_no_frame_yet(tmp_path):
    from detector.alerts import open_store
    from detector.api import ApiContext, create_app
    from detector.api.routes.hunt import hunt_level
    from fastapi import HTTPException

    store = open_store(None, data_dir=tmp_path)
    try:
        with TestClient(create_app(ApiContext(store=store, token="t" * 32))) as c:
            r = c.get("/api/v1/hunt/level", params={"f_hz": 446e6})
            assert r.status_code == 404 and "capture loop" in r.json()["detail"]
    finally:
        store.close()

    class Idle:
        latest = None

    with pytest.raises(HTTPException) as exc:
        hunt_level(Idle(), 446e6, 12.5e3)
    assert exc.value.status_code == 503 and "no spectrum yet" in exc.value.detail


# --- the page ------------------------------------------------------------------------------------
def test_the_hunt_page_of_an_alert_and_its_script(served):
    c, _, alert = served
    r = c.get("/hunt", params={"alert": alert.id})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert f'data-alert="{alert.id}"' in html and '<script src="/dashboard/static/hunt.js"></script>' in html
    assert 'data-poll-s="0.25"' in html and "width=device-width" in html
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    js = c.get("/dashboard/static/hunt.js")
    assert js.status_code == 200 and js.headers["content-type"] == "text/javascript; charset=utf-8"
    text = js.text
    assert "/api/v1/hunt/" in text and "navigator.geolocation" in text and "AudioContext" in text and '"zh-CN"' in text
    assert "http://" not in text and "https://" not in text
    by_freq = c.get("/hunt", params={"f_hz": 446.07e6, "bw_hz": 12500})
    assert by_freq.status_code == 200 and 'data-f-hz="446070000.0"' in by_freq.text and 'data-alert=""' in by_freq.text
    assert c.get("/hunt", params={"alert": "A-000000000000"}).status_code == 404
    assert c.get("/hunt").status_code == 422
    # the dashboard links each alert to its hunt page
    assert '"/hunt?alert="' in c.get("/dashboard/static/dashboard.js").text


def test_every_hunt_string_in_english_and_chinese():
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    js = (repo / "dashboards" / "static" / "hunt.js").read_text()
    en = js[js.index("    en: {"):js.index('"zh-CN": {')]
    zh = js[js.index('"zh-CN": {'):js.index("function pickLang")]
    keys = lambda block: set(re.findall(r"\b([a-z][a-z0-9_]*): \"", block))  # noqa: E731
    assert keys(en) == keys(zh) and len(keys(en)) > 30
    html = (repo / "dashboards" / "templates" / "hunt.html").read_text()
    used = set(re.findall(r'data-i18n="([a-z0-9_]+)"', html))
    assert used and used <= keys(en), used - keys(en)
    used_js = set(re.findall(r'\bt\("([a-z0-9_]*[a-z0-9])"', js)) | {f"trend_{x}" for x in ("rising", "falling", "steady", "unknown")}
    assert used_js <= keys(en), used_js - keys(en)


def test_the_hunt_page_in_a_browser_shows_the_level_and_its_gradient(served, tmp_path):
    """Headless Chromium on the page of the served alert: the level digits, the unit, the receiver, the
    peak hold and the gradient hint fill in from the level route; ``?lang=zh-CN`` switches the labels."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.dashboards.test_dashboard_page import _browser_or_skip, _chrome, _Server

    chromium, driver_path = _browser_or_skip()
    _, app, alert = served
    with _Server(app.api) as base:
        drv = _chrome(chromium, driver_path, tmp_path / "profile")
        try:
            wait = WebDriverWait(drv, 20)
            drv.get(f"{base}/hunt?alert={alert.id}&lang=en")
            wait.until(lambda d: d.find_element(By.ID, "level").text not in ("", "—"))
            level = float(drv.find_element(By.ID, "level").text)
            direct = float(httpx.get(f"{base}/api/v1/hunt/{alert.id}/level").json()["level_dbfs"])
            assert level == pytest.approx(direct, abs=0.05)  # the recording has ended: the last frame stays
            assert drv.find_element(By.ID, "unit").text == "dBFS"
            assert "uhf" in drv.find_element(By.ID, "rx").text and "446.0700" in drv.find_element(By.ID, "rx").text
            assert drv.find_element(By.ID, "peak").text == f"{level:.1f} dBFS"
            # six readings of the same frame: the gradient is measured, and steady
            wait.until(lambda d: d.find_element(By.ID, "trend").get_attribute("data-trend") == "steady")
            assert float(drv.find_element(By.ID, "bar").value_of_css_property("width").rstrip("px")) > 0
            assert drv.find_element(By.ID, "msg").text == ""
            drv.get(f"{base}/hunt?alert={alert.id}&lang=zh-CN")
            wait.until(lambda d: d.find_element(By.ID, "mute").text == "打开声音")
            assert drv.execute_script("return document.documentElement.lang") == "zh-CN"
            drv.get(f"{base}/hunt?f_hz=433920000&lang=en")  # no receiver there: the 409's reason is shown
            wait.until(lambda d: "tuned to 446.0500 MHz" in d.find_element(By.ID, "msg").text)
        finally:
            drv.quit()
