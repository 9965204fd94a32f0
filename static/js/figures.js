// Draws every figure on the page: each [data-figure] element names the JSON script tag (json_script) holding
// the figure the server built (studyapp/dashboards/figures.py); plotly.js comes from the project's static files.
(() => {
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };

  function draw() {
    for (const element of document.querySelectorAll("[data-figure]")) {
      const source = document.getElementById(element.dataset.figure);
      if (!source) continue;
      const figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(element, figure.data, figure.layout, CONFIG);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
