/* examwatch live dashboard (no build step, no dependencies).
 *
 * - Open alerts: live from the SSE stream GET /api/v1/alerts/stream (read with fetch, so any event
 *   name works and the token can be sent); where the stream does not answer, polling
 *   GET /api/v1/alerts?status=new&status=updated&status=located every few seconds.
 * - Figures: PNGs of /api/v1/figures/{name}.png, refreshed every few seconds; a 404 shows its reason.
 *   On a vehicle the spectrum and waterfall are drawn live by spectrum.js (canvas, from
 *   GET /api/v1/spectrum/stream) while its stream runs; the PNGs come back when it does not.
 * - Acknowledge / dismiss: PATCH /api/v1/alerts/{id} {"status", "reason"} with the bearer token,
 *   asked once and kept in localStorage; a 401 says so clearly.
 * - Receivers: GET /api/v1/health → receivers (shown when a vehicle has several): state, tuning, bands.
 * - Catch rate: GET /api/v1/health → intercept (a vehicle whose plan hops), per band the plan's
 *   P(one burst) beside the one achieved by the hops actually made, every few seconds.
 * - Language: navigator.language (zh* → zh-CN, else en); ?lang=zh-CN or ?lang=en overrides.
 */
(function () {
  "use strict";

  var I18N = {
    en: {
      title: "examwatch — live", conn_wait: "connecting…", conn_live: "live", conn_poll: "polling every {s} s",
      conn_off: "server unreachable", token_button: "API token", token_title: "API token",
      token_help: "Acknowledging and dismissing alerts needs the API write token (from the monitor's data folder). It is kept in this browser.",
      token_placeholder: "paste the token", token_save: "Save token", token_clear: "Forget token", close: "Close",
      token_saved: "A token is saved in this browser.", token_none: "No token saved yet.",
      token_needed: "Enter the API token first, then press the button again.",
      open_alerts: "Open alerts", acknowledged_alerts: "Acknowledged", no_alerts: "No open alert.", updated: "Updated",
      kml: "KML (Google Earth)", geojson: "GeoJSON", acknowledge: "Acknowledge", dismiss: "Dismiss", evidence: "Evidence (zip)",
      reason_placeholder: "reason (optional)", loading: "loading…", no_data: "No data yet",
      fig_spectrum: "Spectrum vs baseline", fig_waterfall: "Waterfall", fig_map: "Map", fig_timeline: "Exam timeline",
      footer: "changes need the API write token",
      footer_center: "command center: alerts are acknowledged and dismissed on their vehicle",
      token_help_center: "This command center needs a token for reads only when it was started with --read-token-file. It is kept in this browser.",
      err_401: "The API token was refused (401). Enter the correct token with the “API token” button.",
      err_409: "This alert cannot change that way: {detail}", err_404: "The alert no longer exists.",
      err_other: "The change failed ({status}): {detail}", err_network: "No connection to the server.",
      done_acknowledged: "Alert {id} acknowledged.", done_dismissed: "Alert {id} dismissed.",
      first_seen: "first", last_seen: "last", excess: "over baseline", snr: "SNR",
      located: "located", not_localizable: "coarse position", no_location: "no location yet", cep: "CEP50",
      sev_high: "high", sev_medium: "medium", sev_low: "low",
      st_new: "new", st_updated: "updated", st_located: "located", st_acknowledged: "acknowledged", st_dismissed: "dismissed", st_closed: "closed",
      cls_nfm_voice: "NFM voice", cls_fsk_data: "FSK data", cls_ook_pulses: "OOK pulses", cls_pulsed: "pulsed", cls_carrier: "carrier",
      cls_wideband: "wideband", cls_unknown: "unknown",
      catch_title: "Catch rate", catch_band: "band", catch_nominal: "plan", catch_achieved: "achieved",
      catch_revisit: "revisit s", catch_note: "P(a {d} s burst on a random channel is seen long enough to detect), over the last {m} min of hops",
      rx_title: "Receivers", rx_name: "receiver", rx_state: "state", rx_tuned: "tuned MHz", rx_bands: "bands",
      inc_title: "Incidents across sites", inc_freq: "MHz", inc_class: "class", inc_sites: "sites",
      hunt: "Hunt on foot",
      inc_onsets: "onsets within s", inc_note: "The same emission (frequency, onset, class) at several sites: an organised group.",
      live_title: "Live spectrum and waterfall", live_hint: "wheel: zoom · drag: pan · click: select a track or a frequency",
      live_reset: "Full span", live_over_p99: "over baseline p99", live_p50: "baseline p50", live_p99: "baseline p99",
      live_floor: "noise floor", live_now: "now", live_track: "track", live_alert: "alert", live_no_alert: "no alert",
      live_selected: "selected", live_rate: "{r} rows/s · {k} kB/s", live_waiting: "waiting for the live stream…",
      live_no_baseline: "no baseline"
    },
    "zh-CN": {
      title: "考场无线电监测 — 实时", conn_wait: "正在连接…", conn_live: "实时", conn_poll: "每 {s} 秒刷新",
      conn_off: "无法连接服务器", token_button: "接口令牌", token_title: "接口令牌",
      token_help: "确认和排除告警需要接口写入令牌（在监测程序的数据目录中）。令牌保存在本浏览器中。",
      token_placeholder: "粘贴令牌", token_save: "保存令牌", token_clear: "清除令牌", close: "关闭",
      token_saved: "本浏览器已保存令牌。", token_none: "尚未保存令牌。",
      token_needed: "请先输入接口令牌，然后再按一次按钮。",
      open_alerts: "未处理告警", acknowledged_alerts: "已确认", no_alerts: "没有未处理的告警。", updated: "更新时间",
      kml: "KML（谷歌地球）", geojson: "GeoJSON", acknowledge: "确认", dismiss: "排除", evidence: "证据包（zip）",
      reason_placeholder: "原因（可选）", loading: "正在加载…", no_data: "暂无数据",
      fig_spectrum: "频谱与基线对比", fig_waterfall: "瀑布图", fig_map: "地图", fig_timeline: "考试时间线",
      footer: "修改需要接口写入令牌",
      footer_center: "指挥中心：告警在其所属的监测车上确认和排除",
      token_help_center: "仅当指挥中心以 --read-token-file 启动时，查看才需要令牌。令牌保存在本浏览器中。",
      err_401: "接口令牌被拒绝（401）。请点击“接口令牌”按钮输入正确的令牌。",
      err_409: "该告警不能这样修改：{detail}", err_404: "该告警已不存在。",
      err_other: "修改失败（{status}）：{detail}", err_network: "无法连接服务器。",
      done_acknowledged: "告警 {id} 已确认。", done_dismissed: "告警 {id} 已排除。",
      first_seen: "首次", last_seen: "最近", excess: "高于基线", snr: "信噪比",
      located: "已定位", not_localizable: "粗略位置", no_location: "尚未定位", cep: "CEP50",
      sev_high: "高", sev_medium: "中", sev_low: "低",
      st_new: "新告警", st_updated: "已更新", st_located: "已定位", st_acknowledged: "已确认", st_dismissed: "已排除", st_closed: "已关闭",
      cls_nfm_voice: "窄带调频语音", cls_fsk_data: "FSK 数据", cls_ook_pulses: "OOK 脉冲", cls_pulsed: "脉冲", cls_carrier: "载波",
      cls_wideband: "宽带", cls_unknown: "未知",
      catch_title: "截获概率", catch_band: "频段", catch_nominal: "计划", catch_achieved: "实际",
      catch_revisit: "重访 秒", catch_note: "随机信道上 {d} 秒突发被检测到的概率（最近 {m} 分钟的跳频）",
      rx_title: "接收机", rx_name: "接收机", rx_state: "状态", rx_tuned: "调谐 MHz", rx_bands: "频段",
      inc_title: "跨考点事件", inc_freq: "MHz", inc_class: "类型", inc_sites: "考点", inc_onsets: "起始相差 秒",
      inc_note: "多个考点同时出现的同一发射（频率、起始时间、类型相同）：可能是有组织的作弊。",
      live_title: "实时频谱与瀑布图", live_hint: "滚轮：缩放 · 拖动：平移 · 点击：选择信号轨迹或频率",
      live_reset: "全频段", live_over_p99: "高于基线 p99", live_p50: "基线 p50", live_p99: "基线 p99",
      live_floor: "噪底", live_now: "现在", live_track: "轨迹", live_alert: "告警", live_no_alert: "无告警",
      live_selected: "已选择", live_rate: "每秒 {r} 行 · {k} kB/s", live_waiting: "正在等待实时数据流…",
      live_no_baseline: "无基线",
      hunt: "步行寻找"
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
      if (q) break;  // an explicit but unknown ?lang= falls back to English
    }
    return "en";
  }

  var LANG = pickLang();
  var DICT = I18N[LANG];

  function t(key, vars) {
    var s = DICT[key] !== undefined ? DICT[key] : (I18N.en[key] !== undefined ? I18N.en[key] : key);
    if (vars) Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  }

  function applyI18n() {
    document.documentElement.lang = LANG;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) { el.placeholder = t(el.getAttribute("data-i18n-placeholder")); });
  }

  var body = document.body;
  var POLL_MS = 1000 * (parseFloat(body.getAttribute("data-poll-s")) || 3);
  var REFRESH_MS = 1000 * (parseFloat(body.getAttribute("data-refresh-s")) || 5);
  var TOKEN_KEY = "examwatch.token";
  var OPEN_URL = "/api/v1/alerts?status=new&status=updated&status=located&limit=200";
  var ACKED_URL = "/api/v1/alerts?status=acknowledged&limit=200";
  var site = body.getAttribute("data-site");
  var siteQ = site ? "&site=" + encodeURIComponent(site) : "";

  function getToken() { try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }
  function setToken(v) { try { if (v) localStorage.setItem(TOKEN_KEY, v); else localStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ } }
  function authHeaders() { var tok = getToken(); return tok ? { "Authorization": "Bearer " + tok } : {}; }

  // --- messages -------------------------------------------------------------------------------
  var msgEl = document.getElementById("message");
  var msgTimer = null;
  function showMessage(text, kind) {
    msgEl.textContent = text;
    msgEl.className = "message " + (kind || "info");
    msgEl.setAttribute("data-kind", kind || "info");
    if (msgTimer) clearTimeout(msgTimer);
    if (kind !== "error") msgTimer = setTimeout(function () { msgEl.className = "message hidden"; }, 6000);
  }

  // --- token panel ----------------------------------------------------------------------------
  var panel = document.getElementById("token-panel");
  var tokenInput = document.getElementById("token-input");
  function refreshTokenState() {
    document.getElementById("token-state").textContent = getToken() ? t("token_saved") : t("token_none");
  }
  function openTokenPanel() { panel.classList.remove("hidden"); refreshTokenState(); tokenInput.focus(); }
  document.getElementById("token-open").addEventListener("click", openTokenPanel);
  document.getElementById("token-close").addEventListener("click", function () { panel.classList.add("hidden"); });
  document.getElementById("token-save").addEventListener("click", function () {
    var v = tokenInput.value.trim();
    if (v) { setToken(v); tokenInput.value = ""; panel.classList.add("hidden"); msgEl.className = "message hidden"; }
    refreshTokenState();
  });
  tokenInput.addEventListener("keydown", function (ev) { if (ev.key === "Enter") document.getElementById("token-save").click(); });
  document.getElementById("token-clear").addEventListener("click", function () { setToken(""); refreshTokenState(); });

  // --- connection state -----------------------------------------------------------------------
  var connEl = document.getElementById("conn");
  function setConn(state) {
    connEl.className = "conn conn-" + state;
    connEl.setAttribute("data-state", state);
    connEl.textContent = state === "live" ? t("conn_live") : state === "poll" ? t("conn_poll", { s: POLL_MS / 1000 }) :
      state === "off" ? t("conn_off") : t("conn_wait");
  }

  // --- alerts ---------------------------------------------------------------------------------
  var known = {};
  var firstLoad = true;

  function fmtMHz(hz) { return hz == null ? "?" : (hz / 1e6).toFixed(4) + " MHz"; }
  function fmtTime(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString(LANG, { hour12: false });
  }

  function renderAlert(a, tpl) {
    var li = tpl.content.firstElementChild.cloneNode(true);
    li.setAttribute("data-id", a.id);
    li.setAttribute("data-status", a.status);
    if (a.track_id) li.setAttribute("data-track", a.track_id);  // the live waterfall selects alerts by track
    if (a.run_id) li.setAttribute("data-run", a.run_id);
    li.classList.add("sev-" + (a.severity || "medium"));
    li.querySelector(".sev").textContent = t("sev_" + (a.severity || "medium"));
    li.querySelector(".freq").textContent = fmtMHz(a.center_hz);
    li.querySelector(".cls").textContent = t("cls_" + (a.classification || "unknown")) +
      (a.vehicle_id ? " · " + a.vehicle_id : "");  // on the command center: the vehicle that raised it
    var ex = a.excess_db != null ? "+" + a.excess_db.toFixed(1) + " dB " + t("excess") :
      (a.snr_db != null ? t("snr") + " " + a.snr_db.toFixed(1) + " dB" : "");
    li.querySelector(".excess").textContent = ex;
    li.querySelector(".status").textContent = t("st_" + a.status);
    li.querySelector(".times").textContent = t("first_seen") + " " + fmtTime(a.first_seen) + " · " + t("last_seen") + " " + fmtTime(a.last_seen);
    var loc = a.location, locText;
    if (loc && loc.lat != null) {
      locText = (loc.status === "located" ? t("located") : t("not_localizable")) + ": " + loc.lat.toFixed(6) + ", " + loc.lon.toFixed(6) +
        (loc.cep50_m != null ? " · " + t("cep") + " " + Math.round(loc.cep50_m) + " m" : "");
    } else {
      locText = t("no_location");
    }
    li.querySelector(".alert-loc").textContent = locText;
    li.querySelector(".alert-reasons").textContent = (a.reasons || []).slice(0, 3).join(" · ");
    li.querySelector(".reason").placeholder = t("reason_placeholder");
    li.querySelector(".ack").textContent = t("acknowledge");
    li.querySelector(".dismiss").textContent = t("dismiss");
    var ev = li.querySelector(".evidence");
    ev.textContent = t("evidence");
    ev.href = "/api/v1/alerts/" + encodeURIComponent(a.id) + "/evidence.zip";
    if (body.getAttribute("data-role") === "vehicle") {  // the hunt page of the alert (a receiver is here)
      var hunt = document.createElement("a");
      hunt.className = "hunt"; hunt.href = "/hunt?alert=" + encodeURIComponent(a.id); hunt.textContent = t("hunt");
      ev.parentNode.insertBefore(hunt, ev.nextSibling);
    }
    li.querySelector(".ack").addEventListener("click", function () { changeStatus(a.id, "acknowledged", li); });
    li.querySelector(".dismiss").addEventListener("click", function () { changeStatus(a.id, "dismissed", li); });
    if (!firstLoad && !known[a.id]) li.classList.add("fresh");
    return li;
  }

  function renderList(listEl, alerts, countEl) {
    // redraw only when something changed (keeps focus, typing and the fresh-alert flash)
    var sig = JSON.stringify(alerts.map(function (a) { return [a.id, a.version, a.status]; })) + "|" + LANG;
    if (listEl.getAttribute("data-sig") === sig) return;
    listEl.setAttribute("data-sig", sig);
    var tpl = document.getElementById("alert-template");
    // keep what the user is typing in a reason field across refreshes
    var typed = {};
    listEl.querySelectorAll(".alert-card").forEach(function (li) {
      var v = li.querySelector(".reason").value;
      if (v) typed[li.getAttribute("data-id")] = v;
    });
    var frag = document.createDocumentFragment();
    alerts.forEach(function (a) {
      var li = renderAlert(a, tpl);
      if (typed[a.id]) li.querySelector(".reason").value = typed[a.id];
      frag.appendChild(li);
    });
    listEl.replaceChildren(frag);
    countEl.textContent = String(alerts.length);
  }

  var loading = false;
  function loadAlerts() {
    if (loading) return Promise.resolve();
    loading = true;
    var h = { headers: authHeaders(), cache: "no-store" };
    return Promise.all([fetch(OPEN_URL + siteQ, h), fetch(ACKED_URL + siteQ, h)]).then(function (rs) {
      if (!rs[0].ok) throw new Error("HTTP " + rs[0].status);
      return Promise.all([rs[0].json(), rs[1].ok ? rs[1].json() : { data: [] }]);
    }).then(function (bodies) {
      var open = bodies[0].data, acked = bodies[1].data;
      renderList(document.getElementById("alerts"), open, document.getElementById("alert-count"));
      renderList(document.getElementById("acked"), acked, document.getElementById("acked-count"));
      document.getElementById("no-alerts").classList.toggle("hidden", open.length > 0);
      known = {};
      open.concat(acked).forEach(function (a) { known[a.id] = true; });
      firstLoad = false;
      document.getElementById("updated-at").textContent = new Date().toLocaleTimeString(LANG, { hour12: false });
      if (connEl.getAttribute("data-state") === "off") setConn(streamLive ? "live" : "poll");
    }).catch(function () {
      setConn("off");
    }).then(function () { loading = false; });
  }

  function changeStatus(id, status, li) {
    if (!getToken()) {
      showMessage(t("token_needed"), "error");
      openTokenPanel();
      return;
    }
    var buttons = li.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    var reason = li.querySelector(".reason").value || "";
    fetch("/api/v1/alerts/" + encodeURIComponent(id), {
      method: "PATCH",
      headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
      body: JSON.stringify({ status: status, reason: reason })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) { return { r: r, b: b }; });
    }).then(function (x) {
      var detail = (x.b && x.b.detail) ? (typeof x.b.detail === "string" ? x.b.detail : JSON.stringify(x.b.detail)) : "";
      if (x.r.ok) {
        showMessage(t(status === "acknowledged" ? "done_acknowledged" : "done_dismissed", { id: id }), "info");
      } else if (x.r.status === 401) {
        showMessage(t("err_401"), "error");
        openTokenPanel();
      } else if (x.r.status === 409) {
        showMessage(t("err_409", { detail: detail }), "error");
      } else if (x.r.status === 404) {
        showMessage(t("err_404"), "error");
      } else {
        showMessage(t("err_other", { status: x.r.status, detail: detail }), "error");
      }
    }).catch(function () {
      showMessage(t("err_network"), "error");
    }).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      loadAlerts();
    });
  }

  // --- live updates: SSE stream, else polling -------------------------------------------------
  var streamLive = false;
  var pollTimer = null;
  var refreshSoon = null;
  function scheduleRefresh() {
    if (refreshSoon) return;
    refreshSoon = setTimeout(function () { refreshSoon = null; loadAlerts(); }, 250);
  }
  function startPolling() {
    if (pollTimer) return;
    setConn("poll");
    pollTimer = setInterval(loadAlerts, POLL_MS);
  }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  function connectStream(attempt) {
    if (!window.fetch || !window.ReadableStream || !window.TextDecoder) { startPolling(); return; }
    fetch("/api/v1/alerts/stream" + (site ? "?site=" + encodeURIComponent(site) : ""),
          { headers: Object.assign({ "Accept": "text/event-stream" }, authHeaders()), cache: "no-store" }).then(function (r) {
      var ct = r.headers.get("content-type") || "";
      if (!r.ok || ct.indexOf("text/event-stream") < 0 || !r.body) throw new Error("no stream");
      streamLive = true;
      stopPolling();
      setConn("live");
      loadAlerts();
      var reader = r.body.getReader();
      var dec = new TextDecoder();
      var buf = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error("stream ended");
          buf += dec.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
          var i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (/^data:/m.test(block)) scheduleRefresh();  // comments (": ping") do not count
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      var wasLive = streamLive;
      streamLive = false;
      startPolling();
      // a stream that worked is retried soon; one that never answered, rarely
      var delay = wasLive ? 2000 : Math.min(60000, 15000 * Math.pow(2, Math.min(attempt, 2)));
      setTimeout(function () { connectStream(wasLive ? 0 : attempt + 1); }, delay);
    });
  }

  // --- figures --------------------------------------------------------------------------------
  var figBusy = {};
  function loadFigure(name) {
    if (figBusy[name]) return;
    figBusy[name] = true;
    var img = document.querySelector('[data-figure-img="' + name + '"]');
    var empty = document.querySelector('[data-figure-empty="' + name + '"]');
    fetch("/api/v1/figures/" + name + ".png?t=" + Date.now(), { headers: authHeaders(), cache: "no-store" }).then(function (r) {
      if (r.ok) {
        return r.blob().then(function (b) {
          var url = URL.createObjectURL(b);
          var old = img.getAttribute("data-url");
          img.onload = function () { if (old) URL.revokeObjectURL(old); };
          img.src = url;
          img.setAttribute("data-url", url);
          img.classList.remove("hidden");
          empty.classList.add("hidden");
        });
      }
      return r.json().catch(function () { return {}; }).then(function (b) {
        empty.textContent = t("no_data") + (b && b.detail ? ": " + b.detail : " (" + r.status + ")");
        empty.classList.remove("hidden");
        img.classList.add("hidden");
      });
    }).catch(function () { /* the alerts list reports the connection */ }).then(function () { figBusy[name] = false; });
  }
  // a click on a figure widens it to the whole column (and back)
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    el.addEventListener("click", function () { el.classList.toggle("wide"); });
  });
  function loadFigures() {
    if (document.hidden) return;
    // figures the live canvases replace (spectrum.js sets data-replaced while its stream runs) are not fetched
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      if (!el.hasAttribute("data-replaced")) loadFigure(el.getAttribute("data-figure"));
    });
  }

  // --- catch rate (GET /api/v1/health → intercept) ---------------------------------------------
  function pct(p) { return p === null || p === undefined ? "—" : (100 * p).toFixed(p < 0.1 ? 1 : 0) + " %"; }
  function loadCatch() {
    if (document.hidden) return;
    var box = document.getElementById("catch");
    if (!box) return;
    fetch("/api/v1/health", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (h) {
      showReceivers(h && h.receivers);
      var ic = h && h.intercept;
      if (!ic || !ic.bands) { box.classList.add("hidden"); return; }
      var rows = document.getElementById("catch-rows");
      rows.textContent = "";
      ic.bands.forEach(function (b) {
        var tr = document.createElement("tr");
        [b.name, pct(b.p_burst_nominal), pct(b.p_burst_achieved),
         b.revisit_achieved_s === null || b.revisit_achieved_s === undefined ? "—" : b.revisit_achieved_s.toFixed(1)
        ].forEach(function (v, i) {
          var td = document.createElement("td");
          td.textContent = v;
          if (i === 2 && b.p_burst_achieved !== null && b.p_burst_achieved < 0.8 * b.p_burst_nominal) td.className = "low";
          tr.appendChild(td);
        });
        rows.appendChild(tr);
      });
      document.getElementById("catch-note").textContent = t("catch_note", { d: ic.burst_s, m: Math.round((ic.log_s || 0) / 60) });
      box.classList.remove("hidden");
    }).catch(function () { /* the alerts list reports the connection */ });
  }

  // --- receivers (GET /api/v1/health → receivers: a vehicle with several) -----------------------
  function showReceivers(list) {
    var box = document.getElementById("receivers");
    if (!box) return;
    if (!list || list.length < 2) { box.classList.add("hidden"); return; }
    var rows = document.getElementById("receiver-rows");
    rows.textContent = "";
    list.forEach(function (r) {
      var tr = document.createElement("tr");
      [r.name, r.status === "ok" ? r.source_state : (r.last_error || r.status),
       typeof r.center_hz === "number" ? (r.center_hz / 1e6).toFixed(3) : "—", (r.bands || []).join(", ")
      ].forEach(function (v, i) {
        var td = document.createElement("td");
        td.textContent = v;
        if (i === 1 && r.status !== "ok") td.className = "low";
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    box.classList.remove("hidden");
  }

  // --- incidents across sites (GET /api/v1/incidents; the command center's page only) ----------
  function loadIncidents() {
    var box = document.getElementById("incidents");
    if (!box || document.hidden) return;
    fetch("/api/v1/incidents", { cache: "no-store", headers: authHeaders() }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (page) {
      if (!page) return;
      var rows = document.getElementById("incident-rows");
      rows.textContent = "";
      page.data.forEach(function (inc) {
        var tr = document.createElement("tr");
        [(inc.center_hz / 1e6).toFixed(5), inc.classification || "—", inc.sites.join(", "), inc.onset_spread_s.toFixed(1)
        ].forEach(function (v) {
          var td = document.createElement("td");
          td.textContent = v;
          tr.appendChild(td);
        });
        rows.appendChild(tr);
      });
      document.getElementById("incident-count").textContent = String(page.count);
      box.classList.toggle("hidden", page.count === 0);
    }).catch(function () { /* the alerts list reports the connection */ });
  }

  // --- start ----------------------------------------------------------------------------------
  applyI18n();
  setConn("wait");
  refreshTokenState();
  window.examwatch = { lang: LANG, t: t, reload: loadAlerts, authHeaders: authHeaders, fmtMHz: fmtMHz };
  loadAlerts();
  startPolling();
  connectStream(0);
  loadFigures();
  setInterval(loadFigures, REFRESH_MS);
  loadCatch();
  setInterval(loadCatch, 2 * REFRESH_MS);
  loadIncidents();
  setInterval(loadIncidents, 2 * REFRESH_MS);
  setInterval(function () { if (streamLive) loadAlerts(); }, 15000);  // safety net while live
  document.addEventListener("visibilitychange", loadFigures);
})();
