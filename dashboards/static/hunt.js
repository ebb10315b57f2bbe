/* examwatch hunt page: the last 100 m on foot (issue #22 item 5). No build step, no dependencies.
 *
 * GET /hunt?alert=ID (or ?f_hz=HZ[&bw_hz=HZ]) polls GET /api/v1/hunt/{id}/level (or /hunt/level?f_hz=)
 * about 4 times a second and shows:
 * - the level of the alert's channel (dBm where the dongle is calibrated, else dBFS) in large digits,
 *   a bar from the channel's noise floor up, and a peak hold (reset with a button);
 * - a tone whose pitch rises with the level (Web Audio): PITCH_BASE_HZ at the noise floor, one octave
 *   higher every PITCH_DB_PER_OCTAVE dB above it, clamped to PITCH_MIN_HZ..PITCH_MAX_HZ (4 octaves
 *   over 40 dB); off until the mute button is pressed once (browsers allow sound only after a tap);
 * - the level gradient: the mean of the last GRADIENT_N readings against the GRADIENT_N before them,
 *   "rising" / "falling" beyond GRADIENT_DB, else "steady";
 * - the vehicle's estimate (the alert's location) with the great-circle (haversine) distance and the
 *   initial bearing from the phone's own position (navigator.geolocation);
 * - with a directional antenna and a compass (deviceorientation): a sweep. Turn slowly once around;
 *   the page keeps the level per heading and points to the strongest (sweepBest).
 *
 * The walk the page tells the user (HUNT_RULE, the same functions a headless test walks with, under
 * Node: tests/dashboards/test_hunt_walk.py): sweep, walk toward the strongest heading; sweep again
 * when the gradient says "falling" or after SWEEP_EVERY_M metres, or when the level jumps.
 *
 * The pure functions are exported for the tests (module.exports under Node; window.HuntLogic in
 * the browser). Language: navigator.language (zh* → zh-CN, else en); ?lang= overrides.
 */
(function (root) {
  "use strict";

  // --- pure logic (tested headless) ------------------------------------------------------------
  var PITCH_BASE_HZ = 220, PITCH_DB_PER_OCTAVE = 10, PITCH_MIN_HZ = 220, PITCH_MAX_HZ = 3520;
  var GRADIENT_N = 3, GRADIENT_DB = 2.0, SWEEP_EVERY_M = 15, SWEEP_SMOOTH_DEG = 30;
  var EARTH_RADIUS_M = 6371008.8;

  /** The tone's pitch (Hz) for a level over the channel's noise floor (both dB). */
  function pitchHz(levelDb, floorDb) {
    if (levelDb == null || !isFinite(levelDb)) return PITCH_MIN_HZ;
    var above = levelDb - (floorDb == null || !isFinite(floorDb) ? levelDb - 10 : floorDb);
    var f = PITCH_BASE_HZ * Math.pow(2, above / PITCH_DB_PER_OCTAVE);
    return Math.min(PITCH_MAX_HZ, Math.max(PITCH_MIN_HZ, f));
  }

  /** Peak hold: {peak, at} after a reading (null readings keep the peak). */
  function peakHold(prev, levelDb, atMs) {
    if (levelDb == null || !isFinite(levelDb)) return prev || { peak: null, at: null };
    if (!prev || prev.peak == null || levelDb > prev.peak) return { peak: levelDb, at: atMs };
    return prev;
  }

  function mean(a) { var s = 0; for (var i = 0; i < a.length; i++) s += a[i]; return s / a.length; }

  /** The level gradient of the last readings (oldest first): {trend: rising|falling|steady|unknown, delta_db}. */
  function gradient(levels, n, thresholdDb) {
    n = n || GRADIENT_N;
    thresholdDb = thresholdDb == null ? GRADIENT_DB : thresholdDb;
    var v = levels.filter(function (x) { return x != null && isFinite(x); });
    if (v.length < 2 * n) return { trend: "unknown", delta_db: null };
    var d = mean(v.slice(-n)) - mean(v.slice(-2 * n, -n));
    return { trend: d > thresholdDb ? "rising" : d < -thresholdDb ? "falling" : "steady", delta_db: d };
  }

  function rad(d) { return d * Math.PI / 180; }

  /** Great-circle distance (m) between two WGS84 points (haversine on a sphere of the mean radius). */
  function distanceM(lat1, lon1, lat2, lon2) {
    var p1 = rad(lat1), p2 = rad(lat2), dp = rad(lat2 - lat1), dl = rad(lon2 - lon1);
    var a = Math.sin(dp / 2) * Math.sin(dp / 2) + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) * Math.sin(dl / 2);
    return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  /** Initial bearing (degrees clockwise from true north, 0–360) from point 1 to point 2. */
  function bearingDeg(lat1, lon1, lat2, lon2) {
    var p1 = rad(lat1), p2 = rad(lat2), dl = rad(lon2 - lon1);
    var y = Math.sin(dl) * Math.cos(p2);
    var x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
    return (Math.atan2(y, x) * 180 / Math.PI + 360) % 360;
  }

  function angleDiff(a, b) { var d = ((a - b) % 360 + 540) % 360 - 180; return d; }

  /** The strongest heading of a sweep [{heading_deg, level_db}]: the levels (linear) averaged within
   * ±SWEEP_SMOOTH_DEG of each heading, the best one; null with fewer than 6 readings or less than
   * 270° covered. Returns {heading_deg, level_db, spread_db} (spread: best − worst smoothed, dB). */
  function sweepBest(samples, smoothDeg) {
    smoothDeg = smoothDeg || SWEEP_SMOOTH_DEG;
    var s = samples.filter(function (x) { return x && x.level_db != null && isFinite(x.level_db) && isFinite(x.heading_deg); });
    if (s.length < 6) return null;
    var hs = s.map(function (x) { return ((x.heading_deg % 360) + 360) % 360; }).sort(function (a, b) { return a - b; });
    var gap = 360 - hs[hs.length - 1] + hs[0];
    for (var g = 1; g < hs.length; g++) gap = Math.max(gap, hs[g] - hs[g - 1]);
    if (gap > 90) return null;  // less than 270° covered
    var best = null, worst = null;
    for (var i = 0; i < s.length; i++) {
      var acc = 0, k = 0;
      for (var j = 0; j < s.length; j++) {
        if (Math.abs(angleDiff(s[j].heading_deg, s[i].heading_deg)) <= smoothDeg) { acc += Math.pow(10, s[j].level_db / 10); k++; }
      }
      var lv = 10 * Math.log10(acc / k);
      if (!best || lv > best.level_db) best = { heading_deg: ((s[i].heading_deg % 360) + 360) % 360, level_db: lv };
      if (worst == null || lv < worst) worst = lv;
    }
    best.spread_db = best.level_db - worst;
    return best;
  }

  /** The hunt's advice after a reading (the rule the page shows the user, HUNT_RULE).
   * state: {mode: "sweep"|"walk", walked_m, levels: [...], heading_deg}; reading: {level_db, moved_m}.
   * Returns {state, advice: "sweep"|"walk"|"here"}: "sweep" asks for a turn around (the page then
   * collects the sweep and calls sweepDone), "walk" to keep the heading. */
  function huntStep(state, reading) {
    var st = {
      mode: state.mode || "sweep", walked_m: (state.walked_m || 0) + (reading.moved_m || 0),
      levels: (state.levels || []).concat([reading.level_db]).slice(-4 * GRADIENT_N),
      heading_deg: state.heading_deg == null ? null : state.heading_deg
    };
    if (st.mode === "sweep" || st.heading_deg == null) return { state: st, advice: "sweep" };
    var g = gradient(st.levels);
    if (g.trend === "falling" || st.walked_m >= SWEEP_EVERY_M) {
      st.mode = "sweep";
      return { state: st, advice: "sweep", trend: g.trend };
    }
    return { state: st, advice: "walk", trend: g.trend };
  }

  /** After a sweep: walk toward its strongest heading (the levels' memory restarts there). */
  function sweepDone(state, samples) {
    var best = sweepBest(samples);
    if (!best) return { state: Object.assign({}, state, { mode: "sweep" }), advice: "sweep", best: null };
    return { state: { mode: "walk", walked_m: 0, levels: [], heading_deg: best.heading_deg }, advice: "walk", best: best };
  }

  var HUNT_RULE = "sweep, walk toward the strongest heading, sweep again when the level falls by more than " +
    GRADIENT_DB + " dB (mean of the last " + GRADIENT_N + " readings against the " + GRADIENT_N +
    " before) or every " + SWEEP_EVERY_M + " m";

  var HuntLogic = {
    PITCH_BASE_HZ: PITCH_BASE_HZ, PITCH_DB_PER_OCTAVE: PITCH_DB_PER_OCTAVE, PITCH_MIN_HZ: PITCH_MIN_HZ,
    PITCH_MAX_HZ: PITCH_MAX_HZ, GRADIENT_N: GRADIENT_N, GRADIENT_DB: GRADIENT_DB, SWEEP_EVERY_M: SWEEP_EVERY_M,
    HUNT_RULE: HUNT_RULE, pitchHz: pitchHz, peakHold: peakHold, gradient: gradient, distanceM: distanceM,
    bearingDeg: bearingDeg, angleDiff: angleDiff, sweepBest: sweepBest, huntStep: huntStep, sweepDone: sweepDone
  };
  if (typeof module !== "undefined" && module.exports) { module.exports = HuntLogic; return; }
  root.HuntLogic = HuntLogic;
  if (typeof document === "undefined") return;

  // --- the page --------------------------------------------------------------------------------
  var I18N = {
    en: {
      title: "examwatch — hunt", level: "Level", peak: "peak", reset_peak: "Reset peak", sound_on: "Sound on",
      sound_off: "Mute", snr: "over noise", floor: "noise floor", trend_rising: "▲ rising — keep going",
      trend_falling: "▼ falling — turn, sweep again", trend_steady: "● steady", trend_unknown: "… measuring",
      estimate: "Vehicle's estimate", no_estimate: "no location estimate yet", cep: "CEP50",
      you: "your position", no_fix: "waiting for your position (allow location)", no_geo: "this browser gives no position",
      distance: "distance", bearing: "bearing", sweep: "Sweep (turn around once)", sweep_stop: "Stop sweep",
      sweep_best: "strongest at {h}° — turn {d}", sweep_need: "turn slowly all the way round",
      no_compass: "no compass here: turn and watch the peak hold", conn_off: "server unreachable",
      err_404: "no such alert, or no receiver here", err_401: "the API token was refused (set it on the dashboard)",
      receiver: "receiver", hunting: "hunting", rule: "Rule", left: "left", right: "right", ahead: "ahead"
    },
    "zh-CN": {
      title: "考场无线电监测 — 寻找", level: "电平", peak: "峰值", reset_peak: "重置峰值", sound_on: "打开声音",
      sound_off: "静音", snr: "高于噪声", floor: "噪声底", trend_rising: "▲ 上升 — 继续前进",
      trend_falling: "▼ 下降 — 转向，重新扫描", trend_steady: "● 平稳", trend_unknown: "… 测量中",
      estimate: "监测车的估计位置", no_estimate: "尚无定位估计", cep: "CEP50",
      you: "你的位置", no_fix: "正在获取你的位置（请允许定位）", no_geo: "此浏览器无法提供位置",
      distance: "距离", bearing: "方位", sweep: "扫描（原地转一圈）", sweep_stop: "停止扫描",
      sweep_best: "最强方向 {h}° — {d}", sweep_need: "请慢慢转满一圈",
      no_compass: "没有指南针：转身时观察峰值", conn_off: "无法连接服务器",
      err_404: "没有该告警，或此处没有接收机", err_401: "接口令牌被拒绝（请在主页面设置）",
      receiver: "接收机", hunting: "正在寻找", rule: "规则", left: "向左", right: "向右", ahead: "正前方"
    }
  };

  function pickLang() {
    var q = new URLSearchParams(window.location.search).get("lang");
    var cands = [q].concat(navigator.languages || []).concat([navigator.language]);
    for (var i = 0; i < cands.length; i++) {
      var l = (cands[i] || "").toLowerCase();
      if (!l) continue;
      if (l.indexOf("zh") === 0) return "zh-CN";
      if (l.indexOf("en") === 0) return "en";
      if (q) break;
    }
    return "en";
  }
  var LANG = pickLang(), DICT = I18N[LANG];
  function t(key, vars) {
    var s = DICT[key] !== undefined ? DICT[key] : (I18N.en[key] !== undefined ? I18N.en[key] : key);
    if (vars) Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  }
  document.documentElement.lang = LANG;
  document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });

  var body = document.body;
  var alertId = body.getAttribute("data-alert") || "";
  var fHz = body.getAttribute("data-f-hz") || "";
  var bwHz = body.getAttribute("data-bw-hz") || "";
  var POLL_MS = 1000 * (parseFloat(body.getAttribute("data-poll-s")) || 0.25);
  var url = alertId ? "/api/v1/hunt/" + encodeURIComponent(alertId) + "/level" + (bwHz ? "?bw_hz=" + encodeURIComponent(bwHz) : "")
    : "/api/v1/hunt/level?f_hz=" + encodeURIComponent(fHz) + (bwHz ? "&bw_hz=" + encodeURIComponent(bwHz) : "");
  function $(id) { return document.getElementById(id); }
  function authHeaders() {
    var tok = ""; try { tok = localStorage.getItem("examwatch.token") || ""; } catch (e) { /* private mode */ }
    return tok ? { "Authorization": "Bearer " + tok } : {};
  }

  var hold = null, levels = [], last = null, me = null, heading = null, sweeping = null, best = null;

  // sound
  var audio = null, osc = null, gain = null, muted = true;
  function setSound(on) {
    muted = !on;
    if (on && !audio) {
      var AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      audio = new AC(); osc = audio.createOscillator(); gain = audio.createGain();
      osc.type = "sine"; gain.gain.value = 0; osc.connect(gain); gain.connect(audio.destination); osc.start();
    }
    if (audio && audio.state === "suspended") audio.resume();
    if (gain) gain.gain.setTargetAtTime(muted ? 0 : 0.2, audio.currentTime, 0.05);
    $("mute").textContent = muted ? t("sound_on") : t("sound_off");
  }
  $("mute").addEventListener("click", function () { setSound(muted); });
  $("reset-peak").addEventListener("click", function () { hold = null; $("peak").textContent = "—"; });

  function fmt(v, nd) { return v == null || !isFinite(v) ? "—" : v.toFixed(nd == null ? 1 : nd); }

  function show(d) {
    var lv = d.unit === "dBm" ? d.level_dbm : d.level_dbfs;
    var fl = d.unit === "dBm" ? d.noise_floor_dbm : d.noise_floor_dbfs;
    hold = peakHold(hold, lv, Date.now());
    levels.push(lv); if (levels.length > 40) levels.shift();
    if (sweeping && heading != null) sweeping.push({ heading_deg: heading, level_db: lv });
    $("level").textContent = fmt(lv); $("unit").textContent = d.unit;
    $("peak").textContent = fmt(hold.peak) + " " + d.unit;
    $("snr").textContent = fmt(d.snr_db) + " dB"; $("floor").textContent = fmt(fl) + " " + d.unit;
    var frac = fl == null || lv == null ? 0 : Math.max(0, Math.min(1, (lv - fl) / 60));
    $("bar").style.width = (100 * frac).toFixed(1) + "%";
    if (hold.peak != null && fl != null) $("bar-peak").style.left = (100 * Math.max(0, Math.min(1, (hold.peak - fl) / 60))).toFixed(1) + "%";
    var g = gradient(levels);
    var tr = $("trend"); tr.textContent = t("trend_" + g.trend); tr.setAttribute("data-trend", g.trend);
    $("rx").textContent = t("receiver") + " " + d.receiver + " · " + (d.center_hz / 1e6).toFixed(4) + " MHz";
    if (gain && !muted) osc.frequency.setTargetAtTime(pitchHz(lv, fl), audio.currentTime, 0.05);
    last = d; showEstimate();
  }

  function showEstimate() {
    var loc = last && last.location;
    if (!loc || loc.lat == null) { $("est").textContent = t("no_estimate"); $("est-dist").textContent = "—"; return; }
    $("est").textContent = loc.lat.toFixed(6) + ", " + loc.lon.toFixed(6) + (loc.cep50_m != null ? " · " + t("cep") + " " + Math.round(loc.cep50_m) + " m" : "");
    if (!me) { $("est-dist").textContent = t("no_fix"); return; }
    var dm = distanceM(me.lat, me.lon, loc.lat, loc.lon), b = bearingDeg(me.lat, me.lon, loc.lat, loc.lon);
    $("est-dist").textContent = t("distance") + " " + Math.round(dm) + " m · " + t("bearing") + " " + Math.round(b) + "°" +
      (heading != null ? " (" + turnWord(angleDiff(b, heading)) + ")" : "");
  }
  function turnWord(d) { return Math.abs(d) < 15 ? t("ahead") : (d < 0 ? t("left") : t("right")) + " " + Math.round(Math.abs(d)) + "°"; }

  function poll() {
    fetch(url, { headers: authHeaders(), cache: "no-store" }).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; });
    }).then(function (r) {
      var msg = $("msg");
      if (r.status === 200) { msg.textContent = ""; show(r.body); return; }
      if (gain) gain.gain.setTargetAtTime(0, audio.currentTime, 0.05);
      msg.textContent = r.status === 401 ? t("err_401") : r.status === 404 ? t("err_404") + ": " + r.body.detail : String(r.body.detail);
    }).catch(function () { $("msg").textContent = t("conn_off"); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  if (navigator.geolocation) {
    navigator.geolocation.watchPosition(function (p) {
      me = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy };
      $("me").textContent = me.lat.toFixed(6) + ", " + me.lon.toFixed(6) + " ± " + Math.round(me.acc) + " m";
      showEstimate();
    }, function () { $("me").textContent = t("no_fix"); }, { enableHighAccuracy: true, maximumAge: 1000 });
  } else { $("me").textContent = t("no_geo"); }

  window.addEventListener("deviceorientationabsolute", onOrient, true);
  window.addEventListener("deviceorientation", onOrient, true);
  function onOrient(e) {
    var h = e.webkitCompassHeading != null ? e.webkitCompassHeading : (e.absolute && e.alpha != null ? 360 - e.alpha : null);
    if (h != null) heading = h;
  }
  $("sweep").addEventListener("click", function () {
    if (heading == null) { $("sweep-out").textContent = t("no_compass"); return; }
    if (!sweeping) { sweeping = []; $("sweep").textContent = t("sweep_stop"); $("sweep-out").textContent = t("sweep_need"); return; }
    best = sweepBest(sweeping); sweeping = null; $("sweep").textContent = t("sweep");
    $("sweep-out").textContent = best ? t("sweep_best", { h: Math.round(best.heading_deg), d: turnWord(angleDiff(best.heading_deg, heading)) }) : t("sweep_need");
  });
  $("rule").textContent = HUNT_RULE;
  $("hunting").textContent = t("hunting") + " " + (alertId || (parseFloat(fHz) / 1e6).toFixed(4) + " MHz");
  poll();
})(this);
