// cse web page: calls the same API as any client, with the token kept in this tab's sessionStorage.
"use strict";
(function () {
  const TOKEN_KEY = "cse.token";
  const $ = (id) => document.getElementById(id);
  const state = { models: [], live: {}, chart: null };

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  async function api(path, body) {
    const init = { headers: { Authorization: "Bearer " + token(), Accept: "application/json" } };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, "the server could not be reached (" + err.message + ")");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
    return data;
  }

  function explain(err, what) {
    if (err.status === 401) return "The token was refused (401): it is unknown or revoked. Enter a valid API token.";
    if (err.status === 429) return "Too many requests (429): wait a moment and try again.";
    return "Could not load " + what + " (" + (err.status || "network") + "): " + err.message;
  }

  function say(text) { $("message").textContent = text; }
  function fail(text) { const e = $("error"); e.textContent = text; e.hidden = !text; }

  const UTC = new Intl.DateTimeFormat("en-GB", {
    timeZone: "UTC", year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  function utc(value) {
    if (value === null || value === undefined) return "—";
    const date = new Date(value);
    return isNaN(date) ? String(value) : UTC.format(date) + " UTC";
  }
  function quote(symbol) {
    const m = /(USDT|USDC|BUSD|USD|EUR|BTC|ETH)$/.exec(symbol);
    return m ? m[1] : "";
  }
  function num(value, digits) {
    return value === null || value === undefined || !isFinite(value) ? "—" : Number(value).toFixed(digits);
  }
  function pct(value, digits) { return value === null || value === undefined ? "—" : num(100 * value, digits) + " %"; }

  function fill(el, pairs) {
    el.replaceChildren();
    for (const [term, value, cls] of pairs) {
      const dt = document.createElement("dt"); dt.textContent = term;
      const dd = document.createElement("dd"); dd.textContent = value;
      if (cls) dd.className = cls;
      el.append(dt, dd);
    }
  }
  function row(tbody, cells) {
    const tr = document.createElement("tr");
    for (const [text, cls] of cells) {
      const td = document.createElement("td"); td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    tbody.append(tr);
  }

  async function loadModels() {
    fail("");
    say("Loading models…");
    let list;
    try {
      list = await api("/models");
    } catch (err) {
      fail(explain(err, "the models"));
      say(err.status === 401 ? "Enter your API token to load the models." : "");
      return;
    }
    state.models = list.models.filter((m) => m.version);
    const select = $("series");
    select.replaceChildren();
    for (const m of state.models) {
      const option = document.createElement("option");
      option.value = m.symbol + " " + m.interval;
      option.textContent = m.symbol + " · " + m.interval;
      select.append(option);
    }
    select.disabled = $("refresh").disabled = state.models.length === 0;
    if (!state.models.length) {
      say("");
      fail("No model is loaded on this server: publish one to the model store (or ask its operator).");
      return;
    }
    try {
      const deep = await api("/metrics/deep_learning");
      state.live = {};
      for (const m of deep.models) state.live[m.symbol + " " + m.interval] = m.live || {};
    } catch (err) {
      state.live = {};
      fail(explain(err, "the live scorecard"));
    }
    await showSeries();
  }

  function selected() {
    return state.models.find((m) => m.symbol + " " + m.interval === $("series").value);
  }

  async function showSeries() {
    const model = selected();
    if (!model) return;
    fail("");
    say("Loading " + model.symbol + " " + model.interval + "…");
    const [klines, answer] = await Promise.allSettled([
      api("/klines/" + encodeURIComponent(model.symbol) + "/" + encodeURIComponent(model.interval) + "?limit=120"),
      api("/predict", { symbol: model.symbol, interval: model.interval }),
    ]);
    const problems = [];
    if (klines.status === "rejected") problems.push(explain(klines.reason, "the recent candles"));
    if (answer.status === "rejected") problems.push(explain(answer.reason, "the forecast"));
    fail(problems.join(" "));
    const candles = klines.status === "fulfilled" ? klines.value.klines : [];
    const predicted = answer.status === "fulfilled" ? answer.value : null;
    drawChart(model, candles, predicted);
    showCard(model, predicted);
    showLeaderboard(model);
    showLive(model);
    showModel(model);
    say("Showing " + model.symbol + " " + model.interval + (predicted ? ", forecast for " + utc(predicted.as_of) : "") + ".");
  }

  function drawChart(model, candles, predicted) {
    const el = $("chart");
    const xs = candles.map((k) => (k.open_time ?? k.timestamp) / 1000);
    const closes = candles.map((k) => k.close);
    const forecast = closes.map(() => null);
    const lower = closes.map(() => null);
    const upper = closes.map(() => null);
    const card = predicted && predicted.forecast;
    if (card && card.close !== null) {
      const at = Date.parse(predicted.as_of) / 1000;
      if (xs.length) forecast[forecast.length - 1] = closes[closes.length - 1];
      xs.push(at); closes.push(null); forecast.push(card.close);
      lower.push(card.interval ? card.interval.lower : null);
      upper.push(card.interval ? card.interval.upper : null);
    }
    el.dataset.points = String(xs.length);
    el.dataset.symbol = model.symbol;
    el.dataset.lastClose = candles.length ? String(candles[candles.length - 1].close) : "";
    el.setAttribute("aria-label", candles.length
      ? model.symbol + " closes, " + candles.length + " candles to " + utc(xs[candles.length - 1] * 1000) +
        ", last close " + num(candles[candles.length - 1].close, 2) + " " + quote(model.symbol) +
        (card && card.close !== null ? ", forecast next close " + num(card.close, 2) : "")
      : "No candles: the server has no kline source configured");
    if (state.chart) { state.chart.destroy(); state.chart = null; }
    if (!xs.length || typeof uPlot === "undefined") return;
    const unit = quote(model.symbol);
    const opts = {
      width: Math.max(280, el.clientWidth),
      height: window.innerWidth < 600 ? 240 : 320,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      axes: [{}, { label: "Price (" + unit + ")", size: 70 }],
      series: [
        { label: "Time (UTC)" },
        { label: "Close", stroke: "#0072b2", width: 2 },
        { label: "Forecast", stroke: "#d55e00", width: 2, points: { show: true, size: 8, fill: "#d55e00" } },
        { label: "Band low", stroke: "#e69f00", dash: [6, 4], points: { show: true, size: 7 } },
        { label: "Band high", stroke: "#e69f00", dash: [6, 4], points: { show: true, size: 7 } },
      ],
    };
    state.chart = new uPlot(opts, [xs, closes, forecast, lower, upper], el);
  }

  function showCard(model, predicted) {
    const card = predicted && predicted.forecast;
    const unit = quote(model.symbol);
    const direction = $("direction");
    if (!predicted) { fill($("card"), [["Forecast", "unavailable"]]); direction.hidden = true; return; }
    if (!card) {
      fill($("card"), [["Prediction", JSON.stringify(predicted.prediction)], ["For candle opening", utc(predicted.as_of)]]);
      direction.hidden = true;
      return;
    }
    const change = card.close !== null ? card.close - card.last_close : null;
    const trend = change === null ? "" : change >= 0 ? "up" : "down";
    fill($("card"), [
      ["For candle opening", utc(predicted.as_of)],
      ["Last close", num(card.last_close, 2) + " " + unit],
      ["Next close", card.close === null ? "withheld (price head not published)" :
        num(card.close, 2) + " " + unit + " (" + (change >= 0 ? "▲ +" : "▼ ") + num(change, 2) + ", " +
        pct(card["return"], 2) + " log return)", trend],
      ["Interval", card.interval ? num(card.interval.lower, 2) + " – " + num(card.interval.upper, 2) + " " + unit +
        " (" + pct(card.interval.level, 0) + " coverage)" : "withheld (interval head not published)"],
      ["Volatility", card.volatility === null ? "withheld (volatility head not published)" :
        pct(card.volatility, 2) + " expected high–low range (log)"],
      ["Model version", predicted.model_version],
    ]);
    if (!card.direction) { direction.hidden = true; return; }
    direction.hidden = false;
    const p = card.direction.probabilities;
    $("direction-label").textContent = "Direction: " + card.direction["class"] + " — " +
      Object.entries(p).map(([k, v]) => k + " " + pct(v, 0)).join(", ");
    for (const name of ["sell", "hold", "buy"]) $("bar-" + name).style.width = 100 * (p[name] || 0) + "%";
  }

  function showLeaderboard(model) {
    const tbody = $("leaderboard").querySelector("tbody");
    tbody.replaceChildren();
    for (const h of model.heads || []) {
      row(tbody, [
        [h.name, h.publish ? "published" : ""],
        [h.skill === null ? "—" : pct(h.skill, 1), h.skill !== null && h.skill > 0 ? "up" : ""],
        [h.reference || "—"],
        [num(h.p_value, 3)],
        [h.publish ? "✔ published" + (h.forced ? " (forced)" : "") : "✘ withheld", h.publish ? "published" : ""],
        [h.reason || "", "reason"],
      ]);
    }
    if (!(model.heads || []).length) row(tbody, [["no per-head verdicts (not a forecast model)"]]);
    const weights = model.metrics && (model.metrics.weights || (model.metrics.ensemble && model.metrics.ensemble.weights));
    $("members").textContent = (model.members && model.members.length ? "Ensemble members: " + model.members.join(", ") + ". " : "") +
      (weights ? "Weights: " + JSON.stringify(weights) : "");
  }

  function showLive(model) {
    const tbody = $("live").querySelector("tbody");
    tbody.replaceChildren();
    const windows = state.live[model.symbol + " " + model.interval] || {};
    const names = Object.keys(windows);
    for (const w of names) {
      const s = windows[w];
      row(tbody, [
        [w], [String(s.n)], [num(s.mae, 4)], [num(s.mae_persistence, 4)],
        [s.skill === null ? "—" : pct(s.skill, 1)], [s.walk_forward_skill === null ? "—" : pct(s.walk_forward_skill, 1)],
        [s.coverage === null ? "—" : pct(s.coverage, 0) + (s.coverage_level ? " of " + pct(s.coverage_level, 0) : "")],
        [s.direction_accuracy === null ? "—" : pct(s.direction_accuracy, 0)],
        [s.degraded ? "▼ degraded" : "ok", s.degraded ? "down" : ""],
      ]);
    }
    if (!names.length) row(tbody, [["no live predictions scored yet (or the scorecard is off)"]]);
  }

  function flatMetrics(metrics, prefix, out) {
    for (const [k, v] of Object.entries(metrics || {})) {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) flatMetrics(v, prefix + k + ".", out);
      else out.push([prefix + k, typeof v === "number" ? num(v, 4) : String(v)]);
    }
    return out;
  }

  function showModel(model) {
    fill($("model"), [
      ["Series", model.symbol + " " + model.interval],
      ["Version", model.version],
      ["Trained (created)", utc(model.created_at)],
      ["Loaded", utc(model.loaded_at)],
      ["Task", model.task || "—"],
      ["Features", (model.feature_set || "—") + ", window " + model.seq_len + " candles"],
      ["Pinned", model.pinned ? "yes" : "no"],
      ...flatMetrics(model.metrics, "", []),
    ]);
  }

  function start() {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      $("token").value = "";
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      loadModels();
    });
    $("forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); say("Token forgotten."); });
    $("series").addEventListener("change", showSeries);
    $("refresh").addEventListener("click", showSeries);
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        if (state.chart) state.chart.setSize({ width: Math.max(280, $("chart").clientWidth), height: window.innerWidth < 600 ? 240 : 320 });
      }, 100);
    });
    if (token()) loadModels();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
