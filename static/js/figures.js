// Draws every figure on the page: each [data-figure] element names the JSON script tag (json_script) holding
// the figure the server built (studyapp/dashboards/figures.py); plotly.js comes from the project's static files.
// A section with data-live-url is polled while runs train: its figures are redrawn in place (Plotly.react).
// A point whose customdata is a URL (a hand) opens it when clicked.
(() => {
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };
  const LIVE_INTERVAL_MS = 5000;

  function openLinkedPoint(event) {
    const target = event.points && event.points[0] && event.points[0].customdata;
    if (typeof target === "string" && target.startsWith("/")) window.location.assign(target);
  }

  function draw() {
    for (const element of document.querySelectorAll("[data-figure]")) {
      const source = document.getElementById(element.dataset.figure);
      if (!source) continue;
      const figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(element, figure.data, figure.layout, CONFIG).then(() => {
        element.on("plotly_click", openLinkedPoint);
      });
    }
  }

  function poll(section) {
    const timer = window.setInterval(async () => {
      let reply;
      try {
        const response = await fetch(section.dataset.liveUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        reply = await response.json();
      } catch (error) {
        return; // a missed poll: the next one tries again
      }
      const status = document.getElementById("run-status");
      if (status && reply.status) {
        status.textContent = reply.status.map((s) => `${s.model}: ${s.status} ${s.epochs_done}/${s.epochs}`).join(" · ");
      }
      for (const [id, figure] of Object.entries(reply.figures)) {
        const element = document.querySelector(`[data-figure="${id}"]`);
        if (element) window.Plotly.react(element, figure.data, figure.layout, CONFIG);
      }
      if (!reply.active) {
        window.clearInterval(timer);
        window.location.reload(); // the runs ended: the results sections appear
      }
    }, LIVE_INTERVAL_MS);
  }

  function start() {
    draw();
    for (const section of document.querySelectorAll("[data-live-url]")) poll(section);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
