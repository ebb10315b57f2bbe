/* examwatch live spectrum and waterfall (canvas; no build step, no dependencies).
 *
 * Reads GET /api/v1/spectrum/stream (Server-Sent Events read with fetch, so the read token can be
 * sent): `grid` (f0_hz, bin_hz, n, unit), `row` (8-bit levels: dB = offset_db + step_db·byte, 255 =
 * none; base64 of the zlib stream, inflated with DecompressionStream, or of the bytes), `baseline`
 * (p50, p99 on the same grid, once per grid key) and `tracks` (open tracks: f_lo_hz, f_hi_hz, alert, classification).
 *
 * - Spectrum: the current row, baseline p50 and p99, the noise floor; track bands.
 * - Waterfall: the last rows, scrolling down, with track boxes (red: alert) in frequency × time.
 * - Wheel zooms and drag (mouse or finger) pans in frequency; the stream is asked again for the visible span
 *   (f_lo_hz, f_hi_hz), so a zoom gets the engine's finer bins. "Full span" resets.
 * - Hover: frequency, level with its unit, excess over the baseline p99. Click: the track under the
 *   cursor (its alert card is highlighted) or a frequency.
 * - While the stream runs the PNG figures of the spectrum and waterfall are hidden and not fetched;
 *   when it does not answer they come back, and the stream is retried.
 * Labels come from dashboard.js (window.examwatch.t), English or Chinese.
 */
(function () {
  "use strict";

  var box = document.getElementById("live");
  var ex = window.examwatch;
  if (!box || !ex || !window.fetch || !window.ReadableStream || !window.TextDecoder) return;
  var t = ex.t;
  var specCv = document.getElementById("spec-canvas");
  var wfCv = document.getElementById("wf-canvas");
  var readout = document.getElementById("live-readout");
  var selectedEl = document.getElementById("live-selected");
  var stateEl = document.getElementById("live-state");
  var WF_ROWS = 240;            // rows kept and shown (48 s at 5 rows/s)
  var SPEC_H = 230, WF_H = WF_ROWS;
  var PAD_L = 58, PAD_B = 26;   // spectrum axes (labels in 13 px)
  var canDeflate = typeof DecompressionStream !== "undefined";

  var S = {
    grid: null, unit: "dBFS", cur: null, curT: null, floor: null, p50: null, p99: null, tracks: [], runId: null,
    history: [],               // newest first: {t, f0, bin, n, lv: Float32Array}
    view: null,                // {lo, hi} Hz shown; null: the whole grid
    full: null,                // {lo, hi} of the engine's whole grid
    trackMap: {}, baseCache: {}, key: null,              // every track seen, by id (boxes stay while their rows are shown)
    selTrack: null, selHz: null, rows: 0, total: 0, bytes: 0, since: performance.now(), live: false
  };
  window.examwatch.live = S;
  // where frequency hz is drawn, in CSS pixels from the left of canvas id (for tests and tools)
  S.cssX = function (id, hz) {
    var cv = document.getElementById(id), pw = cv.width - PAD_L - 6;
    return hzToX(hz, PAD_L, pw) * cv.getBoundingClientRect().width / cv.width;
  };

  // --- colour map (dark blue → cyan → yellow → red → white), 256 entries -----------------------
  var LUT = (function () {
    var stops = [[0, 0, 0, 20], [0.25, 20, 40, 150], [0.45, 0, 170, 200], [0.65, 240, 230, 40], [0.85, 240, 60, 20], [1, 255, 255, 255]];
    var lut = new Uint8ClampedArray(256 * 3);
    for (var i = 0; i < 256; i++) {
      var x = i / 255, k = 1;
      while (k < stops.length - 1 && stops[k][0] < x) k++;
      var a = stops[k - 1], b = stops[k], u = (x - a[0]) / (b[0] - a[0]);
      for (var c = 0; c < 3; c++) lut[3 * i + c] = a[c + 1] + u * (b[c + 1] - a[c + 1]);
    }
    return lut;
  })();

  // --- decoding --------------------------------------------------------------------------------
  function b64bytes(s) {
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function inflate(bytes) {
    var ds = new DecompressionStream("deflate");
    return new Response(new Blob([bytes]).stream().pipeThrough(ds)).arrayBuffer().then(function (b) { return new Uint8Array(b); });
  }
  function levels(obj, enc) {
    if (!obj) return Promise.resolve(null);
    var raw = b64bytes(obj.q);
    return (enc === "deflate" ? inflate(raw) : Promise.resolve(raw)).then(function (q) {
      var lv = new Float32Array(q.length);
      for (var i = 0; i < q.length; i++) lv[i] = q[i] === 255 ? NaN : obj.offset_db + obj.step_db * q[i];
      return lv;
    });
  }

  // --- geometry --------------------------------------------------------------------------------
  function fitCanvas(cv, h) {
    var w = Math.max(200, Math.floor(cv.parentElement.clientWidth - 8));
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; return true; }
    return false;
  }
  function view() { return S.view || S.full || { lo: 0, hi: 1 }; }
  function xToHz(x, x0, w) { var v = view(); return v.lo + (x - x0) / w * (v.hi - v.lo); }
  function hzToX(f, x0, w) { var v = view(); return x0 + (f - v.lo) / (v.hi - v.lo) * w; }
  function binOf(row, f) { var k = Math.round((f - row.f0) / row.bin); return k >= 0 && k < row.n ? k : -1; }
  // the max of a row over the bins that fall in pixel column x (NaN where none)
  function columnMax(row, lv, fa, fb) {
    var ka = Math.max(0, Math.round((fa - row.f0) / row.bin)), kb = Math.min(row.n - 1, Math.round((fb - row.f0) / row.bin));
    if (kb < ka) { var k = Math.round(((fa + fb) / 2 - row.f0) / row.bin); if (k < 0 || k >= row.n) return NaN; return lv[k]; }
    var m = NaN;
    for (var i = ka; i <= kb; i++) { var v = lv[i]; if (v === v && !(v <= m)) m = v; }
    return m;
  }
  function levelRange() {
    var lo = S.floor != null ? S.floor - 8 : -120, hi = lo + 70;
    if (S.cur) { var m = -Infinity; for (var i = 0; i < S.cur.length; i++) if (S.cur[i] > m) m = S.cur[i]; if (m + 5 > hi) hi = m + 5; }
    return { lo: lo, hi: hi };
  }
  function niceStep(span, target) {
    var raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
  }

  // --- spectrum --------------------------------------------------------------------------------
  function drawSpectrum() {
    fitCanvas(specCv, SPEC_H);
    var c = specCv.getContext("2d"), W = specCv.width, H = specCv.height;
    var pw = W - PAD_L - 6, ph = H - PAD_B - 6;
    c.fillStyle = "#0b0d10"; c.fillRect(0, 0, W, H);
    if (!S.grid || !S.cur) return;
    var r = levelRange(), v = view();
    var yOf = function (db) { return 6 + (r.hi - db) / (r.hi - r.lo) * ph; };
    c.font = "13px sans-serif"; c.fillStyle = "#b8c0c8"; c.strokeStyle = "#2a323c"; c.lineWidth = 1;
    var ds = niceStep(r.hi - r.lo, 6);
    for (var d = Math.ceil(r.lo / ds) * ds; d <= r.hi; d += ds) {
      var y = yOf(d); c.beginPath(); c.moveTo(PAD_L, y); c.lineTo(W - 6, y); c.stroke();
      if (y > 26) c.fillText(d.toFixed(0), 4, y + 4);  // the unit is written at the top
    }
    c.fillText(S.unit, 4, 16);
    var fs = niceStep(v.hi - v.lo, Math.max(3, Math.floor(pw / 110)));
    for (var f = Math.ceil(v.lo / fs) * fs; f <= v.hi; f += fs) {
      var x = hzToX(f, PAD_L, pw); c.beginPath(); c.moveTo(x, 6); c.lineTo(x, 6 + ph); c.stroke();
      c.fillText((f / 1e6).toFixed(fs < 1e3 ? 4 : fs < 1e4 ? 3 : 2), x - 26, H - 8);
    }
    // tracks: bands
    S.tracks.forEach(function (tr) {
      var xa = hzToX(tr.f_lo_hz, PAD_L, pw), xb = hzToX(tr.f_hi_hz, PAD_L, pw);
      c.fillStyle = tr.id === S.selTrack ? "rgba(255,255,255,.25)" : tr.alert ? "rgba(255,77,77,.22)" : "rgba(255,166,43,.15)";
      c.fillRect(xa, 6, Math.max(2, xb - xa), ph);
    });
    var row = S.grid;
    function line(lv, colour, dash, width) {
      if (!lv) return;
      c.strokeStyle = colour; c.setLineDash(dash); c.lineWidth = width; c.beginPath();
      var pen = false;
      for (var x = 0; x < pw; x++) {
        var val = columnMax(row, lv, xToHz(x, 0, pw), xToHz(x + 1, 0, pw));
        if (val !== val) { pen = false; continue; }
        var y = Math.max(6, Math.min(6 + ph, yOf(val)));
        if (pen) c.lineTo(PAD_L + x, y); else { c.moveTo(PAD_L + x, y); pen = true; }
      }
      c.stroke(); c.setLineDash([]);
    }
    line(S.p50, "#9aa4ae", [5, 4], 1.5);
    line(S.p99, "#ffa62b", [], 1.5);
    if (S.floor != null) {
      c.strokeStyle = "#3ddc84"; c.setLineDash([2, 3]); c.lineWidth = 1.5; c.beginPath();
      c.moveTo(PAD_L, yOf(S.floor)); c.lineTo(W - 6, yOf(S.floor)); c.stroke(); c.setLineDash([]);
    }
    line(S.cur, "#5ad1ff", [], 1.2);
    if (S.selHz != null) {
      var xs = hzToX(S.selHz, PAD_L, pw); c.strokeStyle = "#ffe066"; c.lineWidth = 2;
      c.beginPath(); c.moveTo(xs, 6); c.lineTo(xs, 6 + ph); c.stroke();
    }
    // legend
    c.font = "13px sans-serif";
    [["#5ad1ff", t("live_now")], ["#9aa4ae", t("live_p50")], ["#ffa62b", t("live_p99")], ["#3ddc84", t("live_floor")]].forEach(function (l, i) {
      var x = PAD_L + 10 + i * 130; c.fillStyle = l[0]; c.fillRect(x, 12, 18, 3); c.fillText(l[1], x + 24, 17);
    });
    if (!S.p99) { c.fillStyle = "#b8c0c8"; c.fillText(t("live_no_baseline"), W - 110, 17); }
  }

  // --- waterfall -------------------------------------------------------------------------------
  var wfImg = null;  // ImageData of the plot area, row 0 = newest
  function paintRow(img, y, row, pw) {
    var r = levelRange(), d = img.data, off = y * pw * 4;
    for (var x = 0; x < pw; x++) {
      var val = columnMax(row, row.lv, xToHz(x, 0, pw), xToHz(x + 1, 0, pw)), i = off + 4 * x;
      if (val !== val) { d[i] = d[i + 1] = d[i + 2] = 0; d[i + 3] = 255; continue; }
      var k = Math.max(0, Math.min(255, Math.round((val - r.lo) / (r.hi - r.lo) * 255)));
      d[i] = LUT[3 * k]; d[i + 1] = LUT[3 * k + 1]; d[i + 2] = LUT[3 * k + 2]; d[i + 3] = 255;
    }
  }
  function repaintWaterfall() {
    fitCanvas(wfCv, WF_H);
    var pw = wfCv.width - PAD_L - 6;
    wfImg = wfCv.getContext("2d").createImageData(pw, WF_ROWS);
    for (var y = 0; y < S.history.length && y < WF_ROWS; y++) paintRow(wfImg, y, S.history[y], pw);
    drawWaterfall();
  }
  function pushWaterfallRow() {
    if (fitCanvas(wfCv, WF_H) || !wfImg) { repaintWaterfall(); return; }
    var pw = wfImg.width;
    wfImg.data.copyWithin(pw * 4, 0, pw * 4 * (WF_ROWS - 1));  // scroll down one row
    paintRow(wfImg, 0, S.history[0], pw);
    drawWaterfall();
  }
  function yOfTime(ts) {  // the waterfall row of stream time ts (rows newest first)
    var h = S.history;
    for (var y = 0; y < h.length; y++) if (h[y].t <= ts) return y;
    return h.length;
  }
  function trackBox(tr, pw) {
    var y0 = yOfTime(tr.last_seen_s != null ? tr.last_seen_s : Infinity), y1 = yOfTime(tr.first_seen_s != null ? tr.first_seen_s : -Infinity);
    var xa = hzToX(tr.f_lo_hz, PAD_L, pw), xb = hzToX(tr.f_hi_hz, PAD_L, pw);
    return { x: Math.min(xa, xb - 3), y: y0, w: Math.max(4, xb - xa), h: Math.max(3, Math.min(WF_ROWS, y1 + 1) - y0) };
  }
  function drawWaterfall() {
    var c = wfCv.getContext("2d"), W = wfCv.width, H = wfCv.height;
    c.fillStyle = "#0b0d10"; c.fillRect(0, 0, W, H);
    if (!wfImg) return;
    c.putImageData(wfImg, PAD_L, 0);
    var pw = wfImg.width;
    c.font = "13px sans-serif"; c.fillStyle = "#b8c0c8";
    for (var y = 0; y < S.history.length; y += 50) {
      c.fillText(y ? "−" + (S.history[0].t - S.history[y].t).toFixed(0) + " s" : t("live_now"), 4, y + 12);
    }
    S.tracks.forEach(function (tr) {
      var b = trackBox(tr, pw);
      c.strokeStyle = tr.id === S.selTrack ? "#ffffff" : tr.alert ? "#ff4d4d" : "#ffa62b";
      c.lineWidth = tr.id === S.selTrack ? 3 : 2;
      c.strokeRect(b.x, b.y, b.w, b.h);
      if (tr.alert) { c.fillStyle = "#ff4d4d"; c.fillText(tr.id, b.x + b.w + 3, b.y + 12); }
    });
    if (S.selHz != null) {
      var xs = hzToX(S.selHz, PAD_L, pw); c.strokeStyle = "#ffe066"; c.lineWidth = 1; c.setLineDash([4, 4]);
      c.beginPath(); c.moveTo(xs, 0); c.lineTo(xs, H); c.stroke(); c.setLineDash([]);
    }
  }
  function redraw() { drawSpectrum(); repaintWaterfall(); }

  // --- hover, click, zoom, pan -----------------------------------------------------------------
  function plotX(cv, ev) { var rc = cv.getBoundingClientRect(); return { x: (ev.clientX - rc.left) * cv.width / rc.width, y: (ev.clientY - rc.top) * cv.height / rc.height }; }
  function fmtHz(f) { return (f / 1e6).toFixed(5) + " MHz"; }
  function hoverText(cv, p) {
    if (!S.grid || !S.cur) return "";
    var pw = cv.width - PAD_L - 6, f = xToHz(p.x, PAD_L, pw);
    var row = cv === wfCv && S.history[Math.floor(p.y)] ? S.history[Math.floor(p.y)] : { f0: S.grid.f0, bin: S.grid.bin, n: S.grid.n, lv: S.cur };
    var k = binOf(row, f), lv = k >= 0 ? row.lv[k] : NaN;
    var txt = fmtHz(f);
    if (lv === lv) txt += " · " + (lv < 0 ? "−" : "") + Math.abs(lv).toFixed(1) + " " + S.unit;
    var g = S.grid, kb = binOf(g, f);
    if (S.p99 && kb >= 0 && lv === lv && S.p99[kb] === S.p99[kb]) {
      var e = lv - S.p99[kb]; txt += " · " + (e >= 0 ? "+" : "−") + Math.abs(e).toFixed(1) + " dB " + t("live_over_p99");
    }
    var tr = trackAt(cv, p);
    if (tr) txt += " · " + t("live_track") + " " + tr.id;
    return txt;
  }
  function trackAt(cv, p) {
    var pw = cv.width - PAD_L - 6, hit = null;
    S.tracks.forEach(function (tr) {
      if (cv === wfCv) {
        var b = trackBox(tr, pw);
        if (p.x >= b.x - 3 && p.x <= b.x + b.w + 3 && p.y >= b.y - 3 && p.y <= b.y + b.h + 3) hit = tr;
      } else {
        var xa = hzToX(tr.f_lo_hz, PAD_L, pw), xb = hzToX(tr.f_hi_hz, PAD_L, pw);
        if (p.x >= xa - 3 && p.x <= xb + 3) hit = tr;
      }
    });
    return hit;
  }
  function selectAt(cv, p) {
    var tr = trackAt(cv, p);
    document.querySelectorAll(".alert-card.selected").forEach(function (el) { el.classList.remove("selected"); });
    if (tr) {
      S.selTrack = tr.id; S.selHz = null;
      var card = null;
      document.querySelectorAll('.alert-card[data-track="' + tr.id + '"]').forEach(function (el) {
        if (!card && (!S.runId || !el.getAttribute("data-run") || el.getAttribute("data-run") === S.runId)) card = el;
      });
      if (card) { card.classList.add("selected"); card.scrollIntoView({ block: "nearest" }); }
      selectedEl.textContent = t("live_selected") + ": " + t("live_track") + " " + tr.id + " · " + fmtHz((tr.f_lo_hz + tr.f_hi_hz) / 2) +
        " · " + t("cls_" + (tr.classification || "unknown")) + " · " + (tr.alert ? t("live_alert") : t("live_no_alert"));
      selectedEl.setAttribute("data-track", tr.id);
    } else {
      S.selTrack = null; S.selHz = xToHz(p.x, PAD_L, cv.width - PAD_L - 6);
      selectedEl.textContent = t("live_selected") + ": " + fmtHz(S.selHz);
      selectedEl.removeAttribute("data-track");
    }
    drawSpectrum(); drawWaterfall();
  }
  var drag = null, reTimer = null;
  function setView(lo, hi) {
    var full = S.full; if (!full) return;
    var span = Math.max(hi - lo, 20 * (S.grid ? S.grid.bin / (S.grid.dec || 1) : 1));
    span = Math.min(span, full.hi - full.lo);
    lo = Math.max(full.lo, Math.min(lo, full.hi - span));
    S.view = (span >= full.hi - full.lo) ? null : { lo: lo, hi: lo + span };
    redraw();
    if (reTimer) clearTimeout(reTimer);
    reTimer = setTimeout(function () { reTimer = null; connect(0); }, 350);  // ask for the visible span
  }
  [specCv, wfCv].forEach(function (cv) {
    // pointer events: a mouse, a pen or a finger (drag pans; a tap selects)
    cv.addEventListener("pointermove", function (ev) {
      var p = plotX(cv, ev);
      if (drag) {
        var pw = cv.width - PAD_L - 6, v = drag.v, df = (p.x - drag.x) / pw * (v.hi - v.lo);
        if (Math.abs(p.x - drag.x) > 3) drag.moved = true;
        if (drag.moved) setView(v.lo - df, v.hi - df);
        return;
      }
      readout.textContent = hoverText(cv, p);
    });
    cv.addEventListener("pointerdown", function (ev) {
      drag = { x: plotX(cv, ev).x, v: view(), moved: false };
      if (cv.setPointerCapture && ev.pointerId !== undefined) { try { cv.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ } }
    });
    cv.addEventListener("pointerup", function (ev) {
      var d = drag; drag = null;
      if (d && !d.moved) selectAt(cv, plotX(cv, ev));
    });
    cv.addEventListener("pointercancel", function () { drag = null; });
    cv.addEventListener("pointerleave", function () { drag = null; });
    cv.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = plotX(cv, ev), pw = cv.width - PAD_L - 6, v = view(), f = xToHz(p.x, PAD_L, pw);
      var k = ev.deltaY < 0 ? 1 / 1.4 : 1.4;
      setView(f - (f - v.lo) * k, f + (v.hi - f) * k);
    }, { passive: false });
  });
  document.getElementById("live-reset").addEventListener("click", function () { S.view = null; redraw(); connect(0); });
  window.addEventListener("resize", function () { if (S.live) redraw(); });

  // --- the stream ------------------------------------------------------------------------------
  var chain = Promise.resolve(), gen = 0, enc = "raw", abort = null;
  function useCanvas(on) {
    box.classList.toggle("hidden", !on);
    ["spectrum", "waterfall"].forEach(function (n) {
      var el = document.getElementById("fig-" + n);
      if (!el) return;
      if (on) { el.setAttribute("data-replaced", "1"); el.classList.add("hidden"); } else { el.removeAttribute("data-replaced"); el.classList.remove("hidden"); }
    });
  }
  function handle(name, d) {
    if (name === "hello") { enc = d.encoding; return; }
    if (name === "grid") {
      S.grid = { f0: d.f0_hz, bin: d.bin_hz, n: d.n, dec: d.decimation };
      if (d.unit !== S.unit) S.history = [];  // levels of another unit do not share a colour scale
      S.unit = d.unit; S.full = { lo: d.full_f_lo_hz, hi: d.full_f_hi_hz + d.bin_hz / d.decimation };
      S.key = d.key;
      chain = chain.then(function () {  // the baseline of this grid, if one came before (a hop back)
        var b = S.baseCache[d.key]; S.p50 = b ? b[0] : null; S.p99 = b ? b[1] : null;
      });
      return;
    }
    if (name === "tracks") {
      if (d.run_id !== S.runId) S.trackMap = {};
      S.runId = d.run_id;
      d.data.forEach(function (tr) { S.trackMap[tr.id] = tr; });
      var oldest = S.history.length ? S.history[S.history.length - 1].t : -Infinity;
      S.tracks = Object.keys(S.trackMap).map(function (k) { return S.trackMap[k]; }).filter(function (tr) {
        return tr.last_seen_s == null || tr.last_seen_s >= oldest;
      });
      drawSpectrum(); drawWaterfall();
      return;
    }
    if (name === "baseline") {
      chain = chain.then(function () { return Promise.all([levels(d.p50, enc), levels(d.p99, enc)]); })
        .then(function (b) { S.baseCache[d.key] = b; if (d.key === S.key) { S.p50 = b[0]; S.p99 = b[1]; } });
      return;
    }
    if (name === "row") {
      var g = S.grid;
      chain = chain.then(function () { return levels(d, enc); }).then(function (lv) {
        S.cur = lv; S.curT = d.t_s; S.floor = d.floor_db; S.rows++;
        S.history.unshift({ t: d.t_s, f0: g.f0, bin: g.bin, n: g.n, lv: lv, unit: S.unit });
        if (S.history.length > WF_ROWS) S.history.length = WF_ROWS;
        if (!S.live) { S.live = true; useCanvas(true); redraw(); } else { drawSpectrum(); pushWaterfallRow(); }
        S.total++;
        box.setAttribute("data-rows", String(S.total));
      });
    }
  }
  function connect(attempt) {
    var my = ++gen;
    if (abort) abort.abort();  // the previous span's stream
    abort = window.AbortController ? new AbortController() : null;
    var v = S.view, q = "?bins=4096&rate_hz=5&encoding=" + (canDeflate ? "deflate" : "raw");
    if (v) q += "&f_lo_hz=" + Math.floor(v.lo) + "&f_hi_hz=" + Math.ceil(v.hi);
    fetch("/api/v1/spectrum/stream" + q, { headers: Object.assign({ "Accept": "text/event-stream" }, ex.authHeaders()), cache: "no-store",
                                                 signal: abort ? abort.signal : undefined })
      .then(function (r) {
        var ct = r.headers.get("content-type") || "";
        if (!r.ok || ct.indexOf("text/event-stream") < 0 || !r.body) throw new Error("no stream");
        var reader = r.body.getReader(), dec = new TextDecoder(), buf = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (my !== gen) { reader.cancel(); return; }  // a newer request (zoom) replaced this one
            if (chunk.done) throw new Error("stream ended");
            S.bytes += chunk.value.length;
            buf += dec.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
            var i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              var block = buf.slice(0, i), name = "message", data = null;
              buf = buf.slice(i + 2);
              block.split("\n").forEach(function (line) {
                if (line.indexOf("event:") === 0) name = line.slice(6).trim();
                else if (line.indexOf("data:") === 0) data = line.slice(5).trim();
              });
              if (data) handle(name, JSON.parse(data));
            }
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        if (my !== gen) return;
        if (!S.live) { useCanvas(false); stateEl.textContent = ""; }
        S.live = false;
        setTimeout(function () { if (my === gen) connect(attempt + 1); }, attempt ? 15000 : 3000);
      });
  }
  setInterval(function () {
    var s = (performance.now() - S.since) / 1000;
    if (S.live && s > 0) stateEl.textContent = t("live_rate", { r: (S.rows / s).toFixed(1), k: (S.bytes / s / 1000).toFixed(1) });
    if (s > 10) { S.since = performance.now(); S.rows = 0; S.bytes = 0; }
  }, 1000);
  stateEl.textContent = t("live_waiting");
  connect(0);
})();
