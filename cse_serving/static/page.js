// cse web page: calls the same API as any client, with the token kept in this tab's sessionStorage. Its
// read-only views (/leaderboard, /klines, /scorecard) answer without a token when the server runs in public
// mode (the page's <meta name="cse-public-page">); the forecast itself (/predict) always needs a token.
"use strict";
(function () {
  const TOKEN_KEY = "cse.token";
  const $ = (id) => document.getElementById(id);
  const state = { series: [], charts: {}, publicPage: false };

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  async function api(path, body) {
    const init = { headers: { Accept: "application/json" } };
    if (token()) init.headers.Authorization = "Bearer " + token();
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
    if (err.status === 401 && !token()) return "This server needs an API token to show " + what + ": enter it above.";
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
    const date = new Date(typeof value === "string" && /^\d{4}-\d\d-\d\d \d\d:\d\d$/.test(value) ? value.replace(" ", "T") + "Z" : value);
    return isNaN(date) ? String(value) : UTC.format(date) + " UTC";
  }
  function quote(symbol) {
    const m = /(USDT|USDC|BUSD|USD|EUR|BTC|ETH)$/.exec(symbol);
    return m ? m[1] : "quote currency";
  }
  const missing = (v) => v === null || v === undefined || !isFinite(v);
  function num(value, digits) { return missing(value) ? "—" : Number(value).toFixed(digits); }
  function price(value, unit) {
    if (missing(value)) return "—";
    const digits = Math.abs(value) >= 1 ? { minimumFractionDigits: 2, maximumFractionDigits: 2 } : { maximumSignificantDigits: 6 };
    return Number(value).toLocaleString("en-US", digits) + (unit ? " " + unit : "");
  }
  function pct(value, digits) { return missing(value) ? "—" : num(100 * value, digits) + " %"; }
  function signedPct(value) {
    if (missing(value)) return "—";
    return (value > 0 ? "▲ +" : value < 0 ? "▼ " : "") + num(100 * value, 1) + " %";
  }

  function fill(el, pairs) {
    el.replaceChildren();
    for (const [term, value, cls] of pairs) {
      const dt = document.createElement("dt"); dt.textContent = term;
      const dd = document.createElement("dd"); dd.textContent = value;
      if (cls) dd.className = cls;
      el.append(dt, dd);
    }
  }
  function row(tbody, cells, cls) {
    const tr = document.createElement("tr");
    if (cls) tr.className = cls;
    for (const [text, tdClass, span] of cells) {
      const td = document.createElement("td"); td.textContent = text;
      if (tdClass) td.className = tdClass;
      if (span) td.colSpan = span;
      tr.append(td);
    }
    tbody.append(tr);
  }

  async function loadSeries() {
    fail("");
    say("Loading models…");
    let boards;
    try {
      boards = await api("/leaderboard");
    } catch (err) {
      fail(explain(err, "the models"));
      if (err.status === 401) sessionStorage.removeItem(TOKEN_KEY);  // a refused token is not sent again
      say(err.status === 401 ? "Enter your API token to load the models." : "");
      return;
    }
    state.series = boards.series;
    const select = $("series");
    const previous = select.value;
    select.replaceChildren();
    for (const s of state.series) {
      const option = document.createElement("option");
      option.value = s.symbol + " " + s.interval;
      option.textContent = s.symbol + " · " + s.interval;
      select.append(option);
    }
    if (state.series.some((s) => s.symbol + " " + s.interval === previous)) select.value = previous;
    select.disabled = $("refresh").disabled = state.series.length === 0;
    if (!state.series.length) {
      say("");
      fail("No model is loaded on this server: publish one to the model store (or ask its operator).");
      return;
    }
    await showSeries();
  }

  function selected() {
    return state.series.find((s) => s.symbol + " " + s.interval === $("series").value);
  }

  const path = (kind, s, limit) =>
    "/" + kind + "/" + encodeURIComponent(s.symbol) + "/" + encodeURIComponent(s.interval) + "?limit=" + limit;

  async function showSeries() {
    const series = selected();
    if (!series) return;
    fail("");
    say("Loading " + series.symbol + " " + series.interval + "…");
    const asked = token() ? api("/predict", { symbol: series.symbol, interval: series.interval }) : Promise.resolve(null);
    const [klines, scorecard, answer] = await Promise.allSettled([
      api(path("klines", series, 120)), api(path("scorecard", series, 48)), asked,
    ]);
    const problems = [];
    if (klines.status === "rejected") problems.push(explain(klines.reason, "the recent candles"));
    if (scorecard.status === "rejected") problems.push(explain(scorecard.reason, "the live scorecard"));
    if (answer.status === "rejected") problems.push(explain(answer.reason, "the forecast"));
    fail(problems.join(" "));
    const candles = klines.status === "fulfilled" ? klines.value.klines : [];
    const predicted = answer.status === "fulfilled" ? answer.value : null;
    drawCandles(series, narrow() ? candles.slice(-NARROW_CANDLES) : candles, predicted);
    showCard(series, predicted);
    showLeaderboard(series);
    showLive(series, scorecard.status === "fulfilled" ? scorecard.value : null);
    showModel(series);
    say("Showing " + series.symbol + " " + series.interval + (predicted ? ", forecast for the candle opening " + utc(predicted.as_of) :
      token() ? "" : " (public view: enter an API token to see the forecast)") + ".");
  }

  const narrow = () => window.innerWidth < 600;
  const NARROW_CANDLES = 48;  // two days of hourly candles stay readable on a phone

  function replaceChart(name, make) {
    if (state.charts[name]) { state.charts[name].destroy(); delete state.charts[name]; }
    if (typeof uPlot !== "undefined" && make) state.charts[name] = make();
  }

  function forecastGlyph(predicted) {
    const card = predicted && predicted.forecast;
    if (!card) return null;
    return {
      x: Date.parse(predicted.as_of) / 1000,
      close: card.close,
      lower: card.interval ? card.interval.lower : null,
      upper: card.interval ? card.interval.upper : null,
      volatility: card.volatility,
      probabilities: card.direction ? card.direction.probabilities : null,
    };
  }

  function drawCandles(series, candles, predicted) {
    const el = $("chart");
    const unit = quote(series.symbol);
    const glyph = forecastGlyph(predicted);
    const last = candles.length ? candles[candles.length - 1] : null;
    el.dataset.points = String(candles.length);
    el.dataset.symbol = series.symbol;
    for (const span of document.querySelectorAll(".unit")) span.textContent = unit;
    el.dataset.lastClose = last ? String(last.close) : "";
    el.setAttribute("aria-label", last
      ? series.symbol + " " + series.interval + " candles: " + candles.length + " to " + utc(last.open_time ?? last.timestamp) +
        ", last close " + price(last.close, unit) + (glyph && glyph.close !== null ? "; predicted next close " + price(glyph.close, unit) +
        (glyph.lower !== null ? " in " + price(glyph.lower) + " – " + price(glyph.upper, unit) : "") : "")
      : "No candles: the server has no kline source configured");
    replaceChart("candles", candles.length && (() => cseCharts.candles(el, candles, glyph, unit, narrow())));
  }

  function showCard(series, predicted) {
    const card = predicted && predicted.forecast;
    const unit = quote(series.symbol);
    const direction = $("direction");
    direction.hidden = true;
    if (!predicted) {
      fill($("card"), [["Forecast", token() ? "unavailable" : "needs an API token: this public view shows history only"]]);
      return;
    }
    if (!card) {
      fill($("card"), [["Prediction", JSON.stringify(predicted.prediction)], ["For candle opening", utc(predicted.as_of)]]);
      return;
    }
    const change = card.close !== null ? card.close - card.last_close : null;
    fill($("card"), [
      ["For candle opening", utc(predicted.as_of)],
      ["Last close", price(card.last_close, unit)],
      ["Next close", card.close === null ? "withheld (price head not published)" :
        price(card.close, unit) + " (" + (change >= 0 ? "▲ +" : "▼ ") + price(change, unit) + ", " + pct(card["return"], 2) + " log return)",
        change === null ? "" : change >= 0 ? "up" : "down"],
      ["Interval", card.interval ? price(card.interval.lower) + " – " + price(card.interval.upper, unit) +
        " (" + pct(card.interval.level, 0) + " coverage)" : "withheld (interval head not published)"],
      ["Volatility", card.volatility === null ? "withheld (volatility head not published)" :
        pct(card.volatility, 2) + " expected high–low range (log)"],
      // heads without a field of their own (HeadSpec.render "values"): their numbers, output by output
      ...Object.entries(card.other || {}).map(([head, values]) => [head, values.map((v) => v.toPrecision(4)).join(" / ")]),
      ["Model version", predicted.model_version],
    ]);
    if (!card.direction) return;
    direction.hidden = false;
    const p = card.direction.probabilities;
    $("direction-label").textContent = "Direction: " + card.direction["class"] + " — " +
      ["sell", "hold", "buy"].map((k) => k + " " + pct(p[k], 0)).join(", ");
    for (const name of ["sell", "hold", "buy"]) $("bar-" + name).style.width = 100 * (p[name] || 0) + "%";
  }

  const PRICED_HEADS = new Set(["price", "interval"]);

  function verdict(head) {
    if (head.publish) return "✔ published" + (head.forced ? " (forced: " + head.reason + ")" : "");
    return "✘ withheld — " + head.reason;
  }

  function showLeaderboard(series) {
    const tbody = $("leaderboard").querySelector("tbody");
    tbody.replaceChildren();
    const unit = quote(series.symbol);
    for (const head of series.heads) {
      head.rows.forEach((r, i) => {
        const kind = r.kind + (r.name === head.reference ? " (reference)" : "");
        const error = missing(r.value) ? "—" :
          r.metric.toUpperCase() + " " + (PRICED_HEADS.has(head.head) ? price(r.value, unit) : num(r.value, 4));
        const classes = [i === 0 ? "head-start" : "", r.published ? "published" : "", r.kind === "baseline" ? "baseline" : ""];
        row(tbody, [
          [head.head],
          [(r.published ? "★ " : "") + r.name],
          [kind],
          [r.name === head.reference ? "0 (by definition)" : signedPct(r.skill), "num"],
          [error, "num"],
          [num(r.p_value, 3), "num"],
          [r.published ? verdict(head) : r.kind === "baseline" ? "naive baseline" : "not published", "reason"],
        ], classes.filter(Boolean).join(" "));
      });
      if (!head.complete) {
        row(tbody, [[head.head], ["Only the reference baseline is recorded for this head; its error follows from the model's skill.", "reason", 6]], "note");
      }
    }
    if (!series.heads.length) row(tbody, [["no per-head verdicts (not a forecast model)", "", 7]]);
    $("weights").textContent = weightsText(series);
  }

  function shares(weights) {
    return Object.entries(weights).map(([name, w]) => name + " " + pct(w, 0)).join(", ");
  }

  // An ensemble's weights per head ("all" when one set serves every head); a single model's members with
  // their weights (1 for the published one).
  function weightsText(series) {
    const e = series.ensemble;
    if (e) {
      const heads = Object.entries(e.weights || {});
      return "Published ensemble " + (e.name || "") + " (" + (e.method || "method not recorded") + ")" +
        (heads.length ? " — weights: " + heads.map(([head, w]) => (head === "all" ? "" : head + ": ") + shares(w)).join("; ") : "") +
        "." + (e.reason ? " Why the ensemble: " + e.reason + "." : "");
    }
    const members = series.member_weights || {};
    return Object.keys(members).length > 1 ? "Members and weights: " + shares(members) + "." : "";
  }

  function showLive(series, scorecard) {
    const tbody = $("live").querySelector("tbody");
    tbody.replaceChildren();
    const unit = quote(series.symbol);
    const windows = scorecard ? scorecard.windows : {};
    for (const [name, s] of Object.entries(windows)) {
      row(tbody, [
        [name], [String(s.n), "num"], [price(s.mae, unit), "num"], [price(s.mae_persistence, unit), "num"],
        [signedPct(s.skill), "num"], [signedPct(s.walk_forward_skill), "num"],
        [missing(s.coverage) ? "—" : pct(s.coverage, 0) + (s.coverage_level ? " of " + pct(s.coverage_level, 0) : ""), "num"],
        [pct(s.direction_accuracy, 0), "num"],
        [s.degraded ? "▼ degraded" : "ok", s.degraded ? "down" : ""],
      ]);
    }
    if (!Object.keys(windows).length) {
      row(tbody, [[scorecard && !scorecard.enabled ? "the scorecard is off on this server" : "no live predictions scored yet", "", 9]]);
    }
    const el = $("live-chart");
    const points = scorecard ? scorecard.points : [];
    el.dataset.points = String(points.length);
    el.setAttribute("aria-label", points.length
      ? points.length + " scored predictions of " + series.symbol + " to " + utc(points[points.length - 1].target_ms) +
        ": last predicted " + price(points[points.length - 1].close, unit) + ", realized " + price(points[points.length - 1].realized_close, unit)
      : "No scored predictions yet");
    el.hidden = !points.length;
    $("live-chart-heading").textContent = "Predicted vs realized closes" + (points.length ? "" : ": none scored yet");
    replaceChart("live", points.length && (() => cseCharts.live(el, points, unit, narrow())));
  }

  function flatMetrics(metrics, prefix, out) {
    for (const [k, v] of Object.entries(metrics || {})) {
      if (!prefix && (k === "leaderboards" || k === "data_range")) continue;  // shown as the leaderboard and the range
      if (v !== null && typeof v === "object" && !Array.isArray(v)) flatMetrics(v, prefix + k + ".", out);
      else out.push([prefix + k, typeof v === "number" ? num(v, 4) : String(v)]);
    }
    return out;
  }

  function showModel(series) {
    const range = series.data_range;
    fill($("model"), [
      ["Series", series.symbol + " " + series.interval],
      ["Version", series.version],
      ["Trained (published)", utc(series.created_at)],
      ["Data range", range ? utc(range[0]) + " → " + utc(range[1]) : "not recorded in the manifest"],
      ["Task", series.task + (series.selected ? ", selected model " + series.selected : "")],
      ["Features", series.feature_set + ", window " + series.seq_len + " candles, horizon " + series.horizon],
      ...flatMetrics(series.metrics, "", []),
    ]);
  }

  function resizeCharts() {
    for (const [name, chart] of Object.entries(state.charts)) {
      const el = $(name === "live" ? "live-chart" : "chart");
      const size = cseCharts.chartSize(el, narrow());
      chart.setSize(name === "live" ? { width: size.width, height: narrow() ? 200 : 240 } : size);
    }
  }

  function start() {
    const meta = document.querySelector('meta[name="cse-public-page"]');
    state.publicPage = !!meta && meta.content === "on";
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      $("token").value = "";
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      loadSeries();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      say("Token forgotten." + (state.publicPage ? " The public view stays; forecasts need a token." : ""));
    });
    $("series").addEventListener("change", showSeries);
    $("refresh").addEventListener("click", showSeries);
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(resizeCharts, 100); });
    if (token() || state.publicPage) loadSeries();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
