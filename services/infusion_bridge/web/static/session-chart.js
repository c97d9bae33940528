/* Infusion Bridge: draws the vitals chart of one session with its event markers.
 *
 * Reads the JSON embedded by the server in <script id="session-data"> and draws two stacked
 * Chart.js panels that share the time axis: blood pressure + heart rate on top, SpO2 +
 * temperature below. Event markers (infusion start, rate changes, pauses, reactions, infusion
 * end, stop, discharge) are drawn by the small "eventMarkers" plugin below as vertical lines
 * on both panels, with labels above the top one. The time during which the infusion ran is
 * shaded. Nothing is loaded from the network.
 *
 * When done, the figure gets data-points (vitals sets drawn) and data-markers (markers drawn),
 * and window.__chart holds a summary, so that tests can check what was drawn.
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("session-data");
  var figure = document.getElementById("vitals-chart");
  if (!dataEl || !figure || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(dataEl.textContent);
  var vitals = data.vitals || [];
  var markers = data.markers || [];

  var COLORS = {
    systolic: "#b4232a",
    diastolic: "#d9626a",
    heart_rate: "#1f5fbf",
    spo2: "#0f7b6c",
    temperature: "#c26a00",
    grid: "#e5e8ec",
    axis: "#5b6470",
    band: "rgba(31, 95, 191, 0.07)"
  };
  var MARKER_COLORS = {
    "infusion-start": "#17803d",
    "rate-change": "#7a5af5",
    "pause": "#b7791f",
    "resume": "#17803d",
    "reaction": "#c81e1e",
    "infusion-end": "#334155",
    "stop": "#c81e1e",
    "discharge": "#0b5cab"
  };
  var FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
  var LABEL_ROW_HEIGHT = 17;
  var LABEL_ROWS = 3;
  var AXIS_WIDTH = 58;

  Chart.defaults.font.family = FONT;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = COLORS.axis;

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  /* minutes since the first event -> chair-side clock "HH:MM" (independent of the
     browser's time zone: the page shows the clock of the infusion chair). */
  function clock(minutes) {
    var ms = data.t0_ms + minutes * 60000 + data.utc_offset_minutes * 60000;
    var d = new Date(ms);
    return pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  }

  function series(key) {
    var out = [];
    vitals.forEach(function (v) {
      if (v[key] !== null && v[key] !== undefined) {
        out.push({ x: v.t, y: v[key] });
      }
    });
    return out;
  }

  // x range: all vitals and all markers, with a little room on both sides
  var xs = vitals.map(function (v) { return v.t; }).concat(markers.map(function (m) { return m.t; }));
  var xMin = Math.min.apply(null, xs);
  var xMax = Math.max.apply(null, xs);
  var span = Math.max(xMax - xMin, 30);
  var margin = Math.max(span * 0.03, 3);
  xMin -= margin;
  xMax += margin;
  var step = [5, 10, 15, 30, 60, 120, 240].find(function (s) { return span / s <= 12; }) || 480;

  // the infusion band: first start to first end/stop (or the last point if still running)
  var band = null;
  var startM = markers.find(function (m) { return m.type === "infusion-start"; });
  if (startM) {
    var endM = markers.find(function (m) { return m.type === "infusion-end" || m.type === "stop"; });
    band = { from: startM.t, to: endM ? endM.t : xMax };
  }

  var drawnMarkers = {};

  /* Inline plugin: the infusion band behind the data, marker lines and labels over it. */
  var eventMarkers = {
    id: "eventMarkers",
    beforeDatasetsDraw: function (chart) {
      if (!band) { return; }
      var area = chart.chartArea;
      var x = chart.scales.x;
      var ctx = chart.ctx;
      var left = Math.max(x.getPixelForValue(band.from), area.left);
      var right = Math.min(x.getPixelForValue(band.to), area.right);
      ctx.save();
      ctx.fillStyle = COLORS.band;
      ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
      ctx.restore();
    },
    afterDatasetsDraw: function (chart, _args, opts) {
      var area = chart.chartArea;
      var x = chart.scales.x;
      var ctx = chart.ctx;
      var placed = [];
      var rowsRight = [];
      for (var r = 0; r < LABEL_ROWS; r++) { rowsRight.push(-Infinity); }
      ctx.save();
      markers.forEach(function (m, i) {
        var px = x.getPixelForValue(m.t);
        if (px < area.left - 1 || px > area.right + 1) { return; }
        var color = MARKER_COLORS[m.type] || "#334155";
        ctx.strokeStyle = color;
        ctx.lineWidth = m.type === "reaction" || m.type === "stop" ? 2 : 1.25;
        ctx.setLineDash(m.type === "rate-change" || m.type === "resume" || m.type === "pause" ? [4, 3] : []);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        if (opts.labels) {
          ctx.font = "600 11px " + FONT;
          var text = m.label;
          var w = ctx.measureText(text).width + 10;
          var left = Math.min(Math.max(px - w / 2, area.left - 20), chart.width - w - 2);
          var row = 0;
          while (row < LABEL_ROWS - 1 && rowsRight[row] + 4 > left) { row++; }
          rowsRight[row] = left + w;
          var top = area.top - (row + 1) * LABEL_ROW_HEIGHT;
          // connector from the label down to the line
          ctx.strokeStyle = color;
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(px, top + LABEL_ROW_HEIGHT - 3);
          ctx.lineTo(px, area.top);
          ctx.stroke();
          ctx.fillStyle = "#ffffff";
          ctx.beginPath();
          if (ctx.roundRect) { ctx.roundRect(left, top, w, LABEL_ROW_HEIGHT - 3, 3); } else { ctx.rect(left, top, w, LABEL_ROW_HEIGHT - 3); }
          ctx.fill();
          ctx.stroke();
          ctx.fillStyle = color;
          ctx.textBaseline = "middle";
          ctx.fillText(text, left + 5, top + (LABEL_ROW_HEIGHT - 3) / 2 + 0.5);
          placed.push({ type: m.type, t: m.t, label: m.label, x: Math.round(px), row: row });
          drawnMarkers[i] = placed[placed.length - 1];
        } else if (!drawnMarkers[i]) {
          drawnMarkers[i] = { type: m.type, t: m.t, label: m.label, x: Math.round(px), row: null };
        }
      });
      ctx.restore();
    }
  };

  function xScale(showTicks) {
    return {
      type: "linear",
      min: xMin,
      max: xMax,
      grid: { color: COLORS.grid },
      border: { color: "#9aa3ad" },
      ticks: {
        stepSize: step,
        display: showTicks,
        maxRotation: 0,
        callback: function (value) { return clock(value); }
      },
      afterBuildTicks: function (scale) {
        // ticks on round clock times
        var first = Math.ceil((xMin + data.utc_offset_minutes + data.t0_ms / 60000) / step) * step
          - data.utc_offset_minutes - data.t0_ms / 60000;
        var ticks = [];
        for (var v = first; v <= xMax; v += step) { ticks.push({ value: v }); }
        scale.ticks = ticks;
      },
      title: { display: showTicks, text: "Chair-side time (" + data.tz + ")", color: COLORS.axis }
    };
  }

  function line(label, key, color, opts) {
    var ds = {
      label: label,
      data: series(key),
      borderColor: color,
      backgroundColor: color,
      borderWidth: 2,
      pointRadius: 4,
      pointHoverRadius: 6,
      tension: 0,
      spanGaps: true,
      clip: 8 // points at the edge of the scale (e.g. SpO2 100 %) are drawn whole
    };
    Object.keys(opts || {}).forEach(function (k) { ds[k] = opts[k]; });
    return ds;
  }

  function tooltip(unitOf) {
    return {
      callbacks: {
        title: function (items) { return items.length ? clock(items[0].parsed.x) : ""; },
        label: function (item) { return item.dataset.label + ": " + item.formattedValue + " " + unitOf(item); }
      }
    };
  }

  function common(showTicks, withLabels, extra) {
    var options = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: true,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      layout: { padding: { top: withLabels ? LABEL_ROWS * LABEL_ROW_HEIGHT + 4 : 6, right: 8 } },
      plugins: {
        legend: { display: false },
        eventMarkers: { labels: withLabels }
      },
      scales: { x: xScale(showTicks) }
    };
    Object.keys(extra.scales).forEach(function (k) { options.scales[k] = extra.scales[k]; });
    // both panels share the time axis: fixed axis widths keep their plot areas aligned
    if (!options.scales.y2) {
      options.scales.y2 = {
        position: "right", display: true, grid: { drawOnChartArea: false }, border: { display: false },
        ticks: { display: false }
      };
    }
    ["y", "y2"].forEach(function (k) {
      options.scales[k].afterFit = function (scale) { scale.width = AXIS_WIDTH; };
    });
    options.plugins.tooltip = extra.tooltip;
    return options;
  }

  var bp = new Chart(document.getElementById("chart-bp"), {
    type: "line",
    data: {
      datasets: [
        line("Systolic BP", "systolic", COLORS.systolic, { pointStyle: "triangle", rotation: 180, pointRadius: 5 }),
        line("Diastolic BP", "diastolic", COLORS.diastolic, {
          pointStyle: "triangle", pointRadius: 5, fill: "-1", backgroundColor: "rgba(180, 35, 42, 0.06)",
          pointBackgroundColor: COLORS.diastolic
        }),
        line("Heart rate", "heart_rate", COLORS.heart_rate, { pointStyle: "circle" })
      ]
    },
    options: common(false, true, {
      scales: {
        y: {
          suggestedMin: 50, suggestedMax: 150, grid: { color: COLORS.grid },
          title: { display: true, text: "mmHg · beats/min" }
        }
      },
      tooltip: tooltip(function (item) { return item.datasetIndex === 2 ? "/min" : "mmHg"; })
    }),
    plugins: [eventMarkers]
  });

  var low = new Chart(document.getElementById("chart-spo2"), {
    type: "line",
    data: {
      datasets: [
        line("SpO₂", "spo2", COLORS.spo2, { pointStyle: "rect", yAxisID: "y" }),
        line("Temperature", "temperature", COLORS.temperature, { pointStyle: "rectRot", yAxisID: "y2", pointRadius: 5 })
      ]
    },
    options: common(true, false, {
      scales: {
        y: {
          suggestedMin: 90, max: 100, grace: 0, grid: { color: COLORS.grid },
          title: { display: true, text: "SpO₂ %", color: COLORS.spo2 },
          ticks: { color: COLORS.spo2 }
        },
        y2: {
          position: "right", suggestedMin: 35.5, suggestedMax: 38.5, grid: { drawOnChartArea: false },
          title: { display: true, text: "°C", color: COLORS.temperature },
          ticks: { color: COLORS.temperature }
        }
      },
      tooltip: tooltip(function (item) { return item.datasetIndex === 0 ? "%" : "°C"; })
    }),
    plugins: [eventMarkers]
  });
  var charts = [bp, low];
  /* Printing: the browser does not resize canvases for the page; draw them at the size of
     an A4 column (about 700 CSS px) before, and back to the screen size after. */
  var PRINT_SIZES = [[700, 320], [700, 210]];
  function forPrint(on) {
    charts.forEach(function (c, i) {
      if (on) { c.resize(PRINT_SIZES[i][0], PRINT_SIZES[i][1]); } else { c.resize(); }
    });
  }
  window.addEventListener("beforeprint", function () { forPrint(true); });
  window.addEventListener("afterprint", function () { forPrint(false); });
  if (window.matchMedia) {
    var printQuery = window.matchMedia("print");
    if (printQuery.addEventListener) {
      printQuery.addEventListener("change", function (e) { forPrint(e.matches); });
    }
  }

  var summary = {
    sessionId: data.session_id,
    points: vitals.length,
    series: {
      systolic: series("systolic").map(function (p) { return p.y; }),
      diastolic: series("diastolic").map(function (p) { return p.y; }),
      heart_rate: series("heart_rate").map(function (p) { return p.y; }),
      spo2: series("spo2").map(function (p) { return p.y; }),
      temperature: series("temperature").map(function (p) { return p.y; })
    },
    markers: Object.keys(drawnMarkers).sort(function (a, b) { return a - b; }).map(function (k) { return drawnMarkers[k]; }),
    canvases: charts.map(function (c) { return { id: c.canvas.id, width: c.width, height: c.height }; })
  };
  figure.setAttribute("data-points", String(summary.points));
  figure.setAttribute("data-markers", String(summary.markers.length));
  figure.classList.add("is-drawn");
  window.__chart = summary;
})();
