// headwater report: draws each chart the page's data describes (Chart.js, inlined above).
// Text from the data reaches the page only through Chart.js' canvas text and tooltips,
// never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("hw-report-data").textContent);

  function number(value) {
    if (value === null || value === undefined) return "";
    var size = Math.abs(value);
    if (size >= 1e4) return Math.round(value).toLocaleString("en-US");
    if (size >= 100 || value === Math.round(value)) return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
    return value.toLocaleString("en-US", { maximumSignificantDigits: 3 });
  }

  function share(value) {
    return value === null || value === undefined ? "" : (value * 100).toFixed(1) + "%";
  }

  function config(spec) {
    var format = spec.y === "share" ? share : number;
    var datasets = spec.datasets;
    var x = spec.x === "linear"
      ? { type: "linear", ticks: { callback: number, maxTicksLimit: 8 } }
      : { type: "category", ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 6 } };
    return {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: x,
          y: {
            beginAtZero: spec.type === "bar",
            min: spec.y === "share" ? 0 : undefined,
            ticks: { callback: format, maxTicksLimit: 6 }
          }
        },
        plugins: {
          legend: { display: datasets.length > 1, labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                var y = item.parsed.y;
                return (item.dataset.label || "") + ": " + format(y);
              },
              footer: function (items) {
                var notes = [];
                items.forEach(function (item) {
                  var said = item.dataset.notes && item.dataset.notes[item.dataIndex];
                  if (said) notes.push(said);
                });
                return notes;
              }
            }
          }
        }
      }
    };
  }

  var drawn = 0;
  data.charts.forEach(function (spec) {
    var canvas = document.querySelector('canvas[data-chart="' + spec.id + '"]');
    if (!canvas) return;
    new Chart(canvas, config(spec));
    drawn += 1;
  });
  document.body.dataset.charts = String(drawn);
})();
