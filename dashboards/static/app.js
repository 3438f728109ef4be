// Draw every chart described in #chart-data; no data is ever evaluated as code.
(function () {
  "use strict";
  var block = document.getElementById("chart-data");
  if (block && window.Plotly) {
    var spec = JSON.parse(block.textContent || "{}");
    (spec.charts || []).forEach(function (chart) {
      var el = document.getElementById(chart.id);
      if (!el) { return; }
      var layout = Object.assign({
        margin: { l: 50, r: 10, t: 10, b: 40 }, height: 280,
        legend: { orientation: "h" }, font: { size: 11 }
      }, chart.layout || {});
      if (window.innerWidth <= 600 && layout.xaxis && layout.xaxis.type === "date") {
        // A phone: a few level dates, and the legend below them rather than on them.
        layout.xaxis = Object.assign({}, layout.xaxis, { nticks: 4, tickangle: 0 });
        layout.legend = { orientation: "h", y: -0.2, yanchor: "top" };
        layout.margin = Object.assign({}, layout.margin, { b: 80 });
        layout.height = 300;
      }
      // On a phone the tool bar would sit on the chart and catch the finger.
      window.Plotly.newPlot(el, chart.traces, layout, {
        displaylogo: false, responsive: true,
        displayModeBar: window.innerWidth > 600 ? "hover" : false
      });
    });
  }
  // A preset other than "custom" ignores the date inputs; editing a date switches to custom.
  var form = document.getElementById("view-form");
  if (form) {
    var preset = document.getElementById("preset");
    form.querySelectorAll("input[type=date]").forEach(function (input) {
      input.addEventListener("change", function () { preset.value = "custom"; });
    });
    form.addEventListener("submit", function () {
      if (preset.value !== "custom") {
        form.querySelectorAll("input[type=date]").forEach(function (i) { i.disabled = true; });
      }
    });
  }
})();

// Panels that refresh themselves (realtime): the server renders the panel again, escaped as
// the page is; the answer replaces the panel only when it is one.
(function () {
  "use strict";
  document.querySelectorAll("section[data-refresh]").forEach(function (panel) {
    var every = Math.max(5, Number(panel.getAttribute("data-refresh")) || 30) * 1000;
    var current = panel;
    var tick = function () {
      if (document.hidden) { return; }  // a background tab asks nothing
      fetch(current.getAttribute("data-src"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("section[data-refresh]");
          if (fresh && fresh.id === current.id) {
            current.replaceWith(fresh);
            current = fresh;
          }
        })
        .catch(function () { /* the next tick tries again */ });
    };
    setInterval(tick, every);
    // Back on the tab after a while: fresh figures at once, not at the next tick.
    document.addEventListener("visibilitychange", tick);
  });
})();

// The goal form: only the chosen kind's fields are shown (without script, all are, and the
// server reads the chosen kind's).
(function () {
  "use strict";
  var kind = document.getElementById("goal-kind");
  if (!kind) { return; }
  var show = function () {
    document.querySelectorAll("#goal-add fieldset[data-kind]").forEach(function (set) {
      set.hidden = set.getAttribute("data-kind") !== kind.value;
    });
  };
  kind.addEventListener("change", show);
  show();
})();
