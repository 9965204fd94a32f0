// The experiment dashboard on top of figures.js: figures arriving in an htmx swap (the live training curves)
// are drawn too, and a click on a point of a figure whose layout.meta.click_url is set opens the point's
// customdata[0] (the per-hand view: a hand's frames).
(() => {
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };

  function linkClicks(element) {
    if (element.dataset.linked || !element.on || !element.layout || !(element.layout.meta || {}).click_url) return;
    element.dataset.linked = "1";
    element.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && point.customdata && point.customdata[0]) window.location.href = point.customdata[0];
    });
  }

  function drawIn(root) {
    for (const element of root.querySelectorAll("[data-figure]")) {
      if (!element.classList.contains("js-plotly-plot")) {
        const source = document.getElementById(element.dataset.figure);
        if (!source) continue;
        const figure = JSON.parse(source.textContent);
        window.Plotly.newPlot(element, figure.data, figure.layout, CONFIG).then(() => linkClicks(element));
      } else {
        linkClicks(element);
      }
    }
  }

  document.addEventListener("htmx:afterSettle", (event) => drawIn(event.target));
  // figures.js draws the page's figures first (both scripts are deferred, figures.js before this one).
  window.addEventListener("load", () => drawIn(document));
})();
