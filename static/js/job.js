/* Follow a background job shown on the page (an element with data-job-url): poll it, show its progress, and
 * reload the page when it is done or failed, so the server renders the result or the error. */
(() => {
  "use strict";

  const node = document.querySelector("[data-job-url]");
  if (!node) return;
  const status = document.getElementById("job-status");
  const bar = document.getElementById("job-progress");
  const POLL_MS = 1000;

  async function poll() {
    let job;
    try {
      const response = await fetch(node.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      job = await response.json();
    } catch (error) {
      status.textContent = `Lost touch with the server (${error.message}); trying again…`;
      setTimeout(poll, 3 * POLL_MS);
      return;
    }
    node.dataset.status = job.status;
    if (job.status === "done" || job.status === "failed") {
      window.location.reload();
      return;
    }
    status.textContent = job.status === "queued" ? "Queued: waiting for a worker…" : (job.message || "Running…");
    if (job.total) {
      bar.max = job.total;
      bar.value = job.done;
    }
    setTimeout(poll, POLL_MS);
  }

  setTimeout(poll, POLL_MS);
})();
