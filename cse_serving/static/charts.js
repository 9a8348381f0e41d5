// cse web page charts, drawn with the vendored uPlot: recent candles with the forecast card on them, and the
// live scorecard's predicted vs realized closes. uPlot has no candlestick series: its series carry the
// OHLC values (cursor legend, scales) with no paths of their own, and a draw hook paints the candles and the
// forecast onto its canvas, as uPlot's own candlestick demo does.
"use strict";
window.cseCharts = (function () {
  // Okabe–Ito colours, distinguishable with every common colour-vision deficiency; up and down candles
  // also differ by shape (up hollow, down filled), so they survive greyscale too.
  const COLOURS = {
    up: "#0072b2", down: "#d55e00", forecast: "#000000", band: "#cc79a7", range: "#009e73",
    sell: "#d55e00", hold: "#999999", buy: "#0072b2", realized: "#0072b2", predicted: "#d55e00",
  };

  const utcDate = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
  const TICK_TIME = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit" });
  const TICK_DAY = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", day: "numeric", month: "short" });
  // Time ticks in UTC, day-first on two lines ("06:00" over "10 Jun"), whatever the browser's locale.
  const timeAxis = (label) => ({
    label,
    space: 70,
    values: (u, splits) => splits.map((ts) => TICK_TIME.format(ts * 1000) + "\n" + TICK_DAY.format(ts * 1000)),
  });

  function chartSize(el, narrow) {
    return { width: Math.max(280, el.clientWidth), height: narrow ? 240 : 320 };
  }

  function finite(values) { return values.filter((v) => v !== null && v !== undefined && isFinite(v)); }

  function paddedRange(values) {
    const vs = finite(values);
    if (!vs.length) return [0, 1];
    const lo = Math.min(...vs), hi = Math.max(...vs);
    const pad = (hi - lo) * 0.06 || Math.abs(hi) * 0.01 || 1;
    return [lo - pad, hi + pad];
  }

  // The forecast glyph: the expected high–low range of the next candle (its volatility, a log range
  // centred on the predicted close) as a dashed box, the interval band as a whisker with caps, the
  // predicted close as a dot; and the Sell/Hold/Buy probabilities as a bar in the plot's top-left corner.
  function drawForecast(u, f, x, half) {
    const ctx = u.ctx;
    const y = (v) => u.valToPos(v, "y", true);
    if (f.close !== null && f.volatility !== null) {
      const top = y(f.close * Math.exp(f.volatility / 2)), bottom = y(f.close * Math.exp(-f.volatility / 2));
      ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
      ctx.strokeStyle = COLOURS.range;
      ctx.lineWidth = 1.5 * uPlot.pxRatio;
      ctx.strokeRect(x - half * 1.6, top, half * 3.2, bottom - top);
      ctx.setLineDash([]);
    }
    if (f.lower !== null && f.upper !== null) {
      const top = y(f.upper), bottom = y(f.lower);
      ctx.fillStyle = "rgba(204, 121, 167, 0.18)";
      ctx.fillRect(x - half, top, half * 2, bottom - top);
      ctx.strokeStyle = COLOURS.band;
      ctx.lineWidth = 2 * uPlot.pxRatio;
      ctx.beginPath();
      ctx.moveTo(x, top); ctx.lineTo(x, bottom);
      ctx.moveTo(x - half, top); ctx.lineTo(x + half, top);
      ctx.moveTo(x - half, bottom); ctx.lineTo(x + half, bottom);
      ctx.stroke();
    }
    if (f.close !== null) {
      ctx.fillStyle = COLOURS.forecast;
      ctx.beginPath();
      ctx.arc(x, y(f.close), Math.max(4 * uPlot.pxRatio, half * 0.8), 0, 2 * Math.PI);
      ctx.fill();
    }
    if (f.probabilities) drawDirectionBar(u, f.probabilities);
  }

  function drawDirectionBar(u, p) {
    const ctx = u.ctx, r = uPlot.pxRatio;
    const left = u.bbox.left + 8 * r, top = u.bbox.top + 8 * r, width = Math.min(220 * r, u.bbox.width / 2);
    const height = 16 * r;
    ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
    ctx.fillRect(left - 4 * r, top - 4 * r, width + 8 * r, height + 26 * r);
    let at = left;
    for (const name of ["sell", "hold", "buy"]) {
      const w = width * (p[name] || 0);
      ctx.fillStyle = COLOURS[name];
      ctx.fillRect(at, top, w, height);
      at += w;
    }
    ctx.strokeStyle = "#333";
    ctx.lineWidth = r;
    ctx.strokeRect(left, top, width, height);
    ctx.fillStyle = "#111";
    ctx.font = 12 * r + "px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    const pct = (v) => Math.round(100 * (v || 0)) + "%";
    ctx.fillText("Sell " + pct(p.sell) + " · Hold " + pct(p.hold) + " · Buy " + pct(p.buy), left, top + height + 3 * r);
  }

  function drawCandles(u, el, forecast) {
    const [xs, open, high, low, close] = u.data;
    const ctx = u.ctx, r = uPlot.pxRatio;
    const step = xs.length > 1 ? Math.abs(u.valToPos(xs[1], "x", true) - u.valToPos(xs[0], "x", true)) : 10 * r;
    const half = Math.max(1 * r, Math.min(step * 0.35, 8 * r));
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    let drawn = 0;
    for (let i = 0; i < xs.length; i++) {
      if (open[i] === null || close[i] === null) continue;
      const x = u.valToPos(xs[i], "x", true);
      const up = close[i] >= open[i];
      const colour = up ? COLOURS.up : COLOURS.down;
      const yOpen = u.valToPos(open[i], "y", true), yClose = u.valToPos(close[i], "y", true);
      ctx.strokeStyle = colour;
      ctx.lineWidth = r;
      ctx.beginPath();
      ctx.moveTo(x, u.valToPos(high[i], "y", true));
      ctx.lineTo(x, Math.min(yOpen, yClose));
      ctx.moveTo(x, Math.max(yOpen, yClose));
      ctx.lineTo(x, u.valToPos(low[i], "y", true));
      ctx.stroke();
      const bodyTop = Math.min(yOpen, yClose), bodyHeight = Math.max(Math.abs(yClose - yOpen), r);
      if (up) {
        ctx.fillStyle = "#ffffff";
        ctx.fillRect(x - half, bodyTop, half * 2, bodyHeight);
        ctx.lineWidth = 1.5 * r;
        ctx.strokeRect(x - half, bodyTop, half * 2, bodyHeight);
      } else {
        ctx.fillStyle = colour;
        ctx.fillRect(x - half, bodyTop, half * 2, bodyHeight);
      }
      drawn++;
    }
    if (forecast) drawForecast(u, forecast, u.valToPos(forecast.x, "x", true), half);
    ctx.restore();
    el.dataset.candles = String(drawn);
    el.dataset.forecast = forecast ? "drawn" : "none";
  }

  // candles(el, candles, forecast, unit, narrow): `candles` as /klines serves them; `forecast` null or
  // {x (unix s), close, lower, upper, volatility, probabilities} with nulls for withheld heads.
  function candles(el, rows, forecast, unit, narrow) {
    const xs = rows.map((k) => (k.open_time ?? k.timestamp) / 1000);
    const cols = ["open", "high", "low", "close"].map((key) => rows.map((k) => k[key]));
    const fc = [xs.map(() => null), xs.map(() => null), xs.map(() => null)];
    if (forecast) {
      xs.push(forecast.x);
      for (const col of cols) col.push(null);
      fc[0].push(forecast.close); fc[1].push(forecast.lower); fc[2].push(forecast.upper);
    }
    const step = xs.length > 1 ? xs[1] - xs[0] : 3600;
    xs.push(xs[xs.length - 1] + step);  // an empty slot: room for the forecast glyph at the right edge
    for (const col of [...cols, ...fc]) col.push(null);
    const extremes = [...cols[1], ...cols[2], ...fc[0], ...fc[1], ...fc[2]];
    if (forecast && forecast.close !== null && forecast.volatility !== null) {
      extremes.push(forecast.close * Math.exp(forecast.volatility / 2), forecast.close * Math.exp(-forecast.volatility / 2));
    }
    const hidden = { paths: () => null, points: { show: false } };
    const opts = {
      ...chartSize(el, narrow),
      tzDate: utcDate,
      legend: { show: !narrow },  // cursor values: no hover on a phone
      scales: { x: { time: true }, y: { range: () => paddedRange(extremes) } },
      axes: [timeAxis("Time (UTC)"), { label: "Price (" + unit + ")", size: 80 }],
      series: [
        { label: "Time (UTC)" },
        { label: "Open", stroke: COLOURS.up, ...hidden },
        { label: "High", stroke: COLOURS.up, ...hidden },
        { label: "Low", stroke: COLOURS.down, ...hidden },
        { label: "Close", stroke: COLOURS.up, ...hidden },
        { label: "Forecast close", stroke: COLOURS.forecast, ...hidden },
        { label: "Band low", stroke: COLOURS.band, ...hidden },
        { label: "Band high", stroke: COLOURS.band, ...hidden },
      ],
      hooks: { draw: [(u) => drawCandles(u, el, forecast)] },
    };
    return new uPlot(opts, [xs, ...cols, ...fc], el);
  }

  // live(el, points, unit, narrow): the scorecard's points (oldest first) as realized vs predicted closes.
  function live(el, points, unit, narrow) {
    const xs = points.map((p) => p.target_ms / 1000);
    const realized = points.map((p) => p.realized_close);
    const predicted = points.map((p) => p.close);
    const lower = points.map((p) => p.lower), upper = points.map((p) => p.upper);
    const opts = {
      width: chartSize(el, narrow).width,
      height: narrow ? 200 : 240,
      tzDate: utcDate,
      legend: { show: !narrow },  // cursor values: no hover on a phone
      scales: { x: { time: true }, y: { range: () => paddedRange([...realized, ...predicted, ...lower, ...upper]) } },
      axes: [timeAxis("Candle opening (UTC)"), { label: "Close (" + unit + ")", size: 80 }],
      series: [
        { label: "Time (UTC)" },
        { label: "Realized close", stroke: COLOURS.realized, width: 2, points: { show: true, size: 6 } },
        { label: "Predicted close", stroke: COLOURS.predicted, width: 2, dash: [6, 4], points: { show: true, size: 7, fill: COLOURS.predicted } },
        { label: "Band low", stroke: COLOURS.band, width: 1, dash: [2, 3] },
        { label: "Band high", stroke: COLOURS.band, width: 1, dash: [2, 3] },
      ],
    };
    return new uPlot(opts, [xs, realized, predicted, lower, upper], el);
  }

  return { candles, live, chartSize };
})();
