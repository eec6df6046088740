// Draws every [data-chart] element with uPlot: {"t": [unix s], "v": [values], "metric": ...,
// "from"/"to": the range asked for, which the time axis spans};
// data-mark, if set, is drawn as a horizontal line (an alert's threshold).
(function () {
  "use strict";
  function draw(box) {
    var data = JSON.parse(box.dataset.chart);
    box.textContent = "";
    if (!data.t.length) { box.textContent = "—"; box.dataset.points = "0"; return; }
    var mark = box.dataset.mark === "" || box.dataset.mark === undefined ? null : Number(box.dataset.mark);
    var series = [data.t, data.v];
    var lines = [{}, { label: data.metric, stroke: "#1565c0", width: 1.5 }];
    if (mark !== null) {
      series.push(data.t.map(function () { return mark; }));
      lines.push({ label: "threshold", stroke: "#c62828", dash: [6, 4], width: 1 });
    }
    var width = Math.max(260, box.clientWidth - 4);
    var x = { time: true };
    if (data.from !== undefined) { x.range = [data.from, data.to]; }
    // The drawn span is kept on the box (once uPlot has set its scales) for tests to read.
    var ready = function (plot) { box.dataset.span = String(plot.scales.x.max - plot.scales.x.min); };
    new uPlot({ width: width, height: 220, series: lines, scales: { x: x }, hooks: { ready: [ready] } },
              series, box);
    box.dataset.points = String(data.t.length);
  }
  document.querySelectorAll("[data-chart]").forEach(draw);
})();
