/* ROI and outline annotation of one clip's frames (templates/clips/annotate.html).
 *
 * Everything goes through the REST API with the session cookie and the CSRF token. Saves run one at a
 * time (a queue), each sending the version it has, so a fast typist never trips over their own edits;
 * a 409 from the server (someone else changed the ROI) is shown and the stored ROI reloaded, never
 * overwritten. Coordinates sent to the server are pixels of the frame.
 */
(() => {
  "use strict";

  const configNode = document.getElementById("annotate-config");
  if (!configNode) return;
  const cfg = JSON.parse(configNode.textContent);
  const frames = cfg.frames;
  const $ = (id) => document.getElementById(id);

  const root = $("annotate");
  const canvas = $("frame-canvas");
  const ctx = canvas.getContext("2d");
  const wrap = $("canvas-wrap");
  const slider = $("frame-slider");
  const strip = $("strip");

  const COLORS = { keyframe: "#ffd21f", proposed: "#ff9f1a", confirmed: "#2ee06f", preview: "rgba(255,255,255,.55)",
                   outlineOwn: "#19d3ff", outlineOther: "#ff5ad1", draft: "#19d3ff", calib: "#ffe14d" };
  const STATUS_TEXT = { keyframe: "keyframe (placed by you)", proposed: "proposed", confirmed: "confirmed" };

  const state = {
    pos: 0, // position in `frames` (not the frame's index in the source clip)
    rois: new Map(), // frame id -> the signed-in user's ROI
    outlines: new Map(), // frame id -> [outline]
    spacing: cfg.spacing, // [row, col] mm/px, or null until calibrated
    mode: cfg.spacing ? "roi" : "calibrate",
    draft: [], // outline points being traced
    calib: [], // calibration points
    pointer: null, // {start, pos, centre0, moved} while the mouse button is down
    placing: null, // {frameId, box}: a placement on its way to the server, drawn until it answers
    hover: null,
    pending: 0,
  };

  // ---------------------------------------------------------------- server

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : cfg.csrf;
  }

  async function api(method, url, body) {
    const options = { method, credentials: "same-origin",
                      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    if (response.status !== 204) {
      const text = await response.text();
      try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    }
    return { ok: response.ok, status: response.status, data };
  }

  function errorText(result) {
    const data = result.data;
    if (data === null || data === undefined || data === "") return `The server answered ${result.status}.`;
    if (typeof data === "string") return data.length > 300 ? `The server answered ${result.status}.` : data;
    if (data.detail) return String(data.detail);
    const flatten = (value) => Array.isArray(value) ? value.map(flatten).join(" ")
      : (value && typeof value === "object") ? Object.values(value).map(flatten).join(" ") : String(value);
    return flatten(data);
  }

  let chain = Promise.resolve();
  /** Run `task` after every earlier one; it reads the state when it runs, so versions are current. */
  function enqueue(task) {
    setPending(+1);
    const run = chain.then(task).catch((error) => {
      showBanner("error", `Something went wrong talking to the server (${error.message}). Reload the page if it persists.`);
    }).finally(() => { setPending(-1); refresh(); });
    chain = run;
    return run;
  }

  function setPending(delta) {
    state.pending += delta;
    root.dataset.pending = String(state.pending);
    $("saving").hidden = state.pending === 0;
  }

  async function getAll(url) {
    const items = [];
    let next = url;
    while (next) {
      const result = await api("GET", next);
      if (!result.ok) throw new Error(errorText(result));
      if (Array.isArray(result.data)) return result.data;
      items.push(...result.data.results);
      next = result.data.next;
    }
    return items;
  }

  async function loadRois() {
    const list = await getAll(`${cfg.api.annotations}?frame__clip=${cfg.clipId}&mine=1`);
    state.rois = new Map(list.map((roi) => [roi.frame, roi]));
  }

  async function loadOutlines() {
    // Blinded raters load only their own outlines (the API also hides others' from them).
    const list = await getAll(`${cfg.api.outlines}?frame__clip=${cfg.clipId}${cfg.blinded ? "&mine=1" : ""}`);
    state.outlines = new Map();
    for (const outline of list) {
      if (!state.outlines.has(outline.frame)) state.outlines.set(outline.frame, []);
      state.outlines.get(outline.frame).push(outline);
    }
  }

  // ---------------------------------------------------------------- messages

  let bannerTimer = null;
  function showBanner(kind, text) {
    const banner = $("banner");
    banner.className = `banner ${kind}`;
    banner.dataset.kind = kind;
    $("banner-text").textContent = text;
    banner.hidden = false;
    clearTimeout(bannerTimer);
    if (kind === "info") bannerTimer = setTimeout(hideBanner, 6000);
  }
  function hideBanner() { $("banner").hidden = true; }
  function say(text) { $("status-line").textContent = text; }

  // ---------------------------------------------------------------- geometry

  const current = () => frames[state.pos];

  function boxSize(frame) {
    const [row, col] = state.spacing;
    return [Math.min(frame.width, Math.max(1, Math.floor(cfg.cropSizeMm / col + 0.5))),
            Math.min(frame.height, Math.max(1, Math.floor(cfg.cropSizeMm / row + 0.5)))];
  }

  /** The box the server will store for a centre (same rounding and clamping as mlworker.media.crop_box). */
  function boxAround(frame, cx, cy) {
    const [w, h] = boxSize(frame);
    const x = Math.min(Math.max(Math.floor(cx - w / 2 + 0.5), 0), frame.width - w);
    const y = Math.min(Math.max(Math.floor(cy - h / 2 + 0.5), 0), frame.height - h);
    return { x, y, w, h };
  }

  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    const frame = current();
    return [(event.clientX - rect.left) / rect.width * frame.width,
            (event.clientY - rect.top) / rect.height * frame.height];
  }

  function insideFrame(frame, [x, y]) {
    return [Math.min(Math.max(x, 0), frame.width - 0.01), Math.min(Math.max(y, 0), frame.height - 0.01)];
  }

  const inBox = (roi, [x, y]) => roi && x >= roi.x && x <= roi.x + roi.w && y >= roi.y && y <= roi.y + roi.h;
  const imagePxPerCssPx = () => current().width / canvas.getBoundingClientRect().width;

  // ---------------------------------------------------------------- images

  const images = new Map();
  function image(frame) {
    let img = images.get(frame.id);
    if (!img) {
      img = new Image();
      img.decoding = "async";
      img.onload = () => { if (current().id === frame.id) draw(); };
      img.onerror = () => { if (current().id === frame.id) draw(); };
      img.src = frame.image_url;
      images.set(frame.id, img);
    }
    return img;
  }

  function preload() {
    // Nearby frames first, so stepping through never waits; a few at a time.
    const order = frames.map((_, i) => i).sort((a, b) => Math.abs(a - state.pos) - Math.abs(b - state.pos));
    let next = 0;
    const worker = () => {
      if (next >= order.length) return;
      const img = image(frames[order[next++]]);
      if (img.complete) {
        worker();
      } else {
        img.addEventListener("load", worker, { once: true });
        img.addEventListener("error", worker, { once: true });
      }
    };
    for (let i = 0; i < 4; i++) worker();
  }

  // ---------------------------------------------------------------- drawing

  function resize() {
    const frame = current();
    const maxWidth = wrap.clientWidth;
    const maxHeight = Math.max(240, window.innerHeight * 0.68);
    let width = maxWidth;
    let height = width * frame.height / frame.width;
    if (height > maxHeight) { height = maxHeight; width = height * frame.width / frame.height; }
    canvas.style.width = `${Math.round(width)}px`;
    canvas.style.height = `${Math.round(height)}px`;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    draw();
  }

  function draw() {
    const frame = current();
    const sx = canvas.width / frame.width;
    const sy = canvas.height / frame.height;
    const lw = 2 * (window.devicePixelRatio || 1);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const img = image(frame);
    if (img.complete && img.naturalWidth) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    } else {
      ctx.fillStyle = "#aaa";
      ctx.font = `${14 * (window.devicePixelRatio || 1)}px sans-serif`;
      ctx.fillText(img.complete ? "The frame's image could not be loaded." : "Loading frame…", 12, 24);
    }
    const px = (x) => x * sx;
    const py = (y) => y * sy;

    // Outlines: yours in cyan, other annotators' in magenta.
    for (const outline of state.outlines.get(frame.id) || []) {
      ctx.beginPath();
      outline.points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      ctx.closePath();
      ctx.setLineDash([]);
      ctx.lineWidth = lw * 0.8;
      ctx.strokeStyle = outline.annotator === cfg.user ? COLORS.outlineOwn : COLORS.outlineOther;
      ctx.stroke();
    }

    // The ROI: keyframe solid, proposed dashed, confirmed green; while dragging, where it will go.
    const roi = state.rois.get(frame.id);
    const preview = roiPreview(frame) || (state.placing && state.placing.frameId === frame.id ? state.placing.box : null);
    if (roi) {
      const colour = COLORS[roi.status] || COLORS.keyframe;
      ctx.globalAlpha = preview ? 0.35 : 1;
      strokeBox(roi, colour, roi.status === "proposed" ? [8, 6] : [], lw, px, py);
      ctx.globalAlpha = 1;
    }
    if (preview) strokeBox(preview, COLORS.preview, [4, 4], lw, px, py);

    // Outline being traced.
    if (state.draft.length) {
      ctx.setLineDash([]);
      ctx.strokeStyle = COLORS.draft;
      ctx.fillStyle = COLORS.draft;
      ctx.lineWidth = lw * 0.8;
      ctx.beginPath();
      state.draft.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      if (state.hover && state.mode === "outline") ctx.lineTo(px(state.hover[0]), py(state.hover[1]));
      ctx.stroke();
      for (const [x, y] of state.draft) { ctx.beginPath(); ctx.arc(px(x), py(y), lw * 1.3, 0, 2 * Math.PI); ctx.fill(); }
    }

    // Calibration points.
    if (state.calib.length) {
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = COLORS.calib;
      ctx.fillStyle = COLORS.calib;
      ctx.lineWidth = lw;
      ctx.beginPath();
      state.calib.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      ctx.stroke();
      ctx.setLineDash([]);
      for (const [x, y] of state.calib) {
        ctx.beginPath();
        ctx.moveTo(px(x) - 8 * lw / 2, py(y)); ctx.lineTo(px(x) + 8 * lw / 2, py(y));
        ctx.moveTo(px(x), py(y) - 8 * lw / 2); ctx.lineTo(px(x), py(y) + 8 * lw / 2);
        ctx.stroke();
      }
    }
  }

  function strokeBox(box, colour, dash, lw, px, py) {
    ctx.setLineDash(dash);
    ctx.lineWidth = lw * 1.8;
    ctx.strokeStyle = "rgba(0,0,0,.5)";
    ctx.strokeRect(px(box.x), py(box.y), px(box.w), py(box.h));
    ctx.lineWidth = lw;
    ctx.strokeStyle = colour;
    ctx.strokeRect(px(box.x), py(box.y), px(box.w), py(box.h));
    const cx = px(box.x + box.w / 2);
    const cy = py(box.y + box.h / 2);
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(cx - 5 * lw, cy); ctx.lineTo(cx + 5 * lw, cy);
    ctx.moveTo(cx, cy - 5 * lw); ctx.lineTo(cx, cy + 5 * lw);
    ctx.stroke();
  }

  /** Where the ROI would land if the mouse were released now (null when nothing is being placed). */
  function roiPreview(frame) {
    const p = state.pointer;
    if (!p || state.mode !== "roi" || !state.spacing) return null;
    const [cx, cy] = p.centre0 && p.moved ? [p.centre0[0] + p.pos[0] - p.start[0], p.centre0[1] + p.pos[1] - p.start[1]]
      : p.pos;
    return boxAround(frame, ...insideFrame(frame, [cx, cy]));
  }

  // ---------------------------------------------------------------- page state

  function statusOf(frame) {
    const roi = state.rois.get(frame.id);
    return roi ? roi.status : "none";
  }

  function buildStrip() {
    strip.textContent = "";
    frames.forEach((frame, pos) => {
      const cell = document.createElement("div");
      cell.dataset.pos = String(pos);
      cell.title = `Frame ${pos + 1} (source index ${frame.index})`;
      strip.appendChild(cell);
    });
  }

  function refresh() {
    const frame = current();
    const counts = { keyframe: 0, proposed: 0, confirmed: 0, none: 0 };
    frames.forEach((f, pos) => {
      const status = statusOf(f);
      counts[status] += 1;
      const cell = strip.children[pos];
      const outlined = (state.outlines.get(f.id) || []).length > 0;
      cell.className = [status, outlined ? "has-outline" : "", pos === state.pos ? "current" : ""].join(" ").trim();
      cell.dataset.status = status;
    });
    const done = counts.keyframe + counts.confirmed;
    $("count-confirmed").textContent = String(done);
    $("count-keyframe").textContent = String(counts.keyframe);
    $("count-proposed").textContent = String(counts.proposed);
    $("count-none").textContent = String(counts.none);
    $("count-progress").value = done;
    root.dataset.confirmed = String(done);
    root.dataset.proposed = String(counts.proposed);

    $("frame-label").textContent = `Frame ${state.pos + 1} / ${frames.length}`;
    const time = frame.timestamp_s !== null ? ` · ${frame.timestamp_s.toFixed(2)} s` : "";
    $("frame-time").textContent = `source frame ${frame.index}${time}`;
    slider.value = String(state.pos);
    canvas.dataset.frameId = String(frame.id);

    const roi = state.rois.get(frame.id);
    const info = $("roi-info");
    if (roi) {
      const centre = `${(roi.x + roi.w / 2).toFixed(1)}, ${(roi.y + roi.h / 2).toFixed(1)}`;
      info.innerHTML = "";
      const strong = document.createElement("strong");
      strong.textContent = STATUS_TEXT[roi.status] || roi.status;
      strong.className = `roi-status ${roi.status}`;
      const score = roi.score !== null && roi.score !== undefined ? ` (score ${Number(roi.score).toFixed(2)})` : "";
      info.append(strong, ` · ${roi.method}${score}`, document.createElement("br"),
                  `box ${roi.w} × ${roi.h} px at ${roi.x}, ${roi.y} · centre ${centre} · version ${roi.version}`);
      info.classList.remove("muted");
    } else {
      info.textContent = state.spacing ? "No ROI yet: click the nerve." : "No ROI yet: calibrate the clip first.";
      info.classList.add("muted");
    }
    info.dataset.status = roi ? roi.status : "none";

    root.dataset.mode = state.mode;
    $("mode-badge").textContent = { roi: "ROI", outline: "Outline", calibrate: "Calibrate" }[state.mode];
    $("btn-outline").setAttribute("aria-pressed", String(state.mode === "outline"));
    $("btn-confirm").disabled = !roi || roi.status === "confirmed";
    $("btn-delete").disabled = !roi;
    $("outline-draft").textContent = state.draft.length
      ? `Tracing: ${state.draft.length} point${state.draft.length === 1 ? "" : "s"} — Enter or double-click to close, `
        + "Backspace to undo, Esc to cancel." : "";

    renderOutlines(frame);
    renderCalibration();
    draw();
  }

  function renderOutlines(frame) {
    const body = $("outline-rows");
    body.textContent = "";
    const list = state.outlines.get(frame.id) || [];
    if (!list.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 3;
      cell.className = "muted";
      cell.textContent = "None on this frame.";
      return;
    }
    for (const outline of list) {
      const row = body.insertRow();
      row.dataset.outlineId = String(outline.id);
      row.insertCell().textContent = outline.annotator;
      row.insertCell().textContent = Number(outline.area_mm2).toFixed(1);
      const actions = row.insertCell();
      if (outline.annotator === cfg.user) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "outline secondary";
        button.textContent = "Delete";
        button.addEventListener("click", () => deleteOutline(frame, outline));
        actions.appendChild(button);
      }
    }
  }

  function renderCalibration() {
    const panel = $("calibration");
    if (!panel) return;
    panel.hidden = Boolean(state.spacing);
    const label = $("calib-points");
    if (!label) return;
    if (state.calib.length === 2) {
      const [[x1, y1], [x2, y2]] = state.calib;
      const apart = Math.hypot(x2 - x1, y2 - y1).toFixed(1);
      label.textContent = `Points ${Math.round(x1)}, ${Math.round(y1)} and ${Math.round(x2)}, ${Math.round(y2)}: ${apart} px apart.`;
    } else {
      label.textContent = state.calib.length ? "Click the second point." : "Click the first point on the image.";
    }
  }

  // ---------------------------------------------------------------- navigation

  function go(pos) {
    pos = Math.max(0, Math.min(frames.length - 1, pos));
    if (pos === state.pos) return;
    if (state.draft.length) {
      showBanner("info", "Finish the outline first (Enter or double-click) or cancel it (Esc).");
      slider.value = String(state.pos);
      return;
    }
    state.pos = pos;
    state.pointer = null;
    refresh();
  }

  function nextUnconfirmed() {
    for (let step = 1; step <= frames.length; step++) {
      const pos = (state.pos + step) % frames.length;
      const status = statusOf(frames[pos]);
      if (status === "none" || status === "proposed") return go(pos);
    }
    say("Every frame has a confirmed ROI.");
  }

  // ---------------------------------------------------------------- ROI actions

  function needSpacing() {
    if (state.spacing) return false;
    showBanner("info", "This clip has no pixel spacing yet, so the ROI can't be sized: calibrate it first.");
    return true;
  }

  function saveRoi(frame, cx, cy) {
    state.placing = { frameId: frame.id, box: boxAround(frame, cx, cy) };
    return enqueue(async () => {
      const roi = state.rois.get(frame.id);
      const body = { frame: frame.id, center_x: Number(cx.toFixed(2)), center_y: Number(cy.toFixed(2)), status: "keyframe" };
      if (roi) body.version = roi.version;
      const result = await api("POST", cfg.api.annotations, body).finally(() => {
        if (state.placing && state.placing.frameId === frame.id) state.placing = null;
      });
      if (result.ok) {
        state.rois.set(frame.id, result.data);
        say(`Frame ${frames.indexOf(frame) + 1}: ROI saved as a keyframe.`);
      } else if (result.status === 409) {
        stale(frame, result.data);
      } else {
        showBanner("error", `The ROI was not saved: ${errorText(result)}`);
      }
    });
  }

  function stale(frame, data) {
    const stored = data && data.current;
    if (stored) state.rois.set(stored.frame, stored);
    else state.rois.delete(frame.id);
    const where = `frame ${frames.indexOf(frame) + 1}`;
    showBanner("stale", `Not saved (${where}): ${data && data.detail ? data.detail : "the ROI changed since you loaded it."} `
      + "The stored ROI is shown now; make your change again if it is still needed.");
  }

  const NO_ROI = "No ROI on this frame yet: click the nerve to place it, or press P to propagate.";

  function confirmCurrent() {
    if (needSpacing()) return;
    const frame = current();
    const roi = state.rois.get(frame.id);
    if (!roi && state.pending === 0) {
      showBanner("info", NO_ROI);
      return;
    }
    if (!roi || roi.status !== "confirmed") {
      // Queued behind a save still on its way, it confirms the ROI that save stored.
      enqueue(async () => {
        const now = state.rois.get(frame.id);
        if (!now) { showBanner("info", NO_ROI); return; }
        if (now.status === "confirmed") return;
        const result = await api("POST", `${cfg.api.annotations}${now.id}/status/`, { status: "confirmed", version: now.version });
        if (result.ok) {
          state.rois.set(frame.id, result.data);
          say(`Frame ${frames.indexOf(frame) + 1}: ROI confirmed.`);
        } else if (result.status === 409) {
          stale(frame, result.data);
        } else if (result.status === 404) {
          state.rois.delete(frame.id);
          showBanner("stale", "This ROI was deleted in the meantime; place it again.");
        } else {
          showBanner("error", `Not confirmed: ${errorText(result)}`);
        }
      });
    }
    if ($("opt-advance").checked && state.pos < frames.length - 1) go(state.pos + 1);
  }

  function deleteCurrent() {
    const frame = current();
    if (!state.rois.get(frame.id) && state.pending === 0) return;
    enqueue(async () => {
      const roi = state.rois.get(frame.id);
      if (!roi) return;
      const result = await api("DELETE", `${cfg.api.annotations}${roi.id}/?version=${roi.version}`);
      if (result.ok || result.status === 404) {
        state.rois.delete(frame.id);
        say(`Frame ${frames.indexOf(frame) + 1}: ROI deleted.`);
      } else if (result.status === 409) {
        stale(frame, result.data);
      } else {
        showBanner("error", `Not deleted: ${errorText(result)}`);
      }
    });
  }

  const POLL_MS = 700;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Poll a background job (GET its url) until it is done or failed; `onProgress` sees each state. */
  async function followJob(job, onProgress) {
    let state = job;
    while (state.status === "queued" || state.status === "running") {
      onProgress(state);
      await sleep(POLL_MS);
      const result = await api("GET", job.url);
      if (!result.ok) throw new Error(errorText(result));
      state = { ...result.data, url: job.url };
    }
    return state;
  }

  function propagationText(job) {
    if (job.status === "queued") return "Propagation queued: waiting for a worker…";
    return job.total ? `Propagating: ${job.message || "working"} (${job.done}/${job.total})…` : "Propagating…";
  }

  function propagate() {
    if (needSpacing()) return;
    if (root.dataset.propagating === "true") {
      say("Propagation is already running; its proposals appear when it finishes.");
      return;
    }
    say("Propagating your keyframes to the other frames…");
    // Only the request waits in the save queue; the work runs on a worker, and you may keep annotating:
    // it leaves every frame you change meanwhile as you left it.
    enqueue(async () => {
      const result = await api("POST", cfg.api.propagate);
      if (!result.ok) {
        showBanner("error", `Nothing proposed: ${errorText(result)}`);
        say("");
        return;
      }
      followPropagation(result.data);
    });
  }

  /** Show a queued or running propagation's progress, then load its proposals (or say why it failed). */
  function followPropagation(started) {
    root.dataset.propagating = "true";
    $("btn-propagate").setAttribute("aria-busy", "true");
    followJob(started, (job) => { root.dataset.jobStatus = job.status; say(propagationText(job)); })
      .then((job) => {
        root.dataset.jobStatus = job.status;
        if (job.status === "failed") {
          showBanner("error", `Nothing proposed: ${job.error}`);
          say("");
          return;
        }
        enqueue(async () => {
          await loadRois();
          const kept = job.result.kept.length;
          say(`Proposed the ROI on ${job.result.proposed} frame${job.result.proposed === 1 ? "" : "s"}. `
            + (kept ? `Your own changes on ${kept} frame${kept === 1 ? "" : "s"} were kept. ` : "")
            + "Step through them (→), fix any by clicking, then confirm (Enter) or confirm all (Shift+C).");
        });
      })
      .catch((error) => showBanner("error", `Lost track of the propagation (${error.message}). Reload the page to see its proposals.`))
      .finally(() => {
        root.dataset.propagating = "false";
        $("btn-propagate").removeAttribute("aria-busy");
      });
  }

  function confirmAll() {
    if (needSpacing()) return;
    enqueue(async () => {
      const result = await api("POST", cfg.api.confirmAll);
      if (!result.ok) {
        showBanner("error", `Nothing confirmed: ${errorText(result)}`);
        return;
      }
      await loadRois();
      say(`Confirmed ${result.data.confirmed} proposed ROI${result.data.confirmed === 1 ? "" : "s"}.`);
    });
  }

  // ---------------------------------------------------------------- outlines

  function toggleOutline() {
    if (state.mode === "outline") {
      if (state.draft.length) {
        showBanner("info", "Finish the outline first (Enter or double-click) or cancel it (Esc).");
        return;
      }
      state.mode = state.spacing ? "roi" : "calibrate";
    } else {
      if (needSpacing()) return;
      state.mode = "outline";
      say("Outline mode: click points around the nerve, then Enter or double-click. O to leave.");
    }
    state.pointer = null;
    refresh();
  }

  function addDraftPoint(point) {
    const last = state.draft[state.draft.length - 1];
    const near = 3 * imagePxPerCssPx();
    if (last && Math.hypot(last[0] - point[0], last[1] - point[1]) < near) return; // double-click repeats
    state.draft.push(point);
    refresh();
  }

  function closeOutline() {
    const frame = current();
    if (state.draft.length < 3) {
      showBanner("info", "Click at least three points around the nerve before closing the outline.");
      return;
    }
    const points = state.draft.map(([x, y]) => [Number(x.toFixed(2)), Number(y.toFixed(2))]);
    enqueue(async () => {
      const result = await api("POST", cfg.api.outlines, { frame: frame.id, points });
      if (result.ok) {
        if (!state.outlines.has(frame.id)) state.outlines.set(frame.id, []);
        state.outlines.get(frame.id).push(result.data);
        if (current().id === frame.id) state.draft = [];
        const area = Number(result.data.area_mm2).toFixed(1);
        say(`Outline saved on frame ${frames.indexOf(frame) + 1}: ${area} mm² (stored as a CSA measurement of the hand).`);
      } else {
        // Keep the points, so the outline can be fixed (Backspace) rather than traced again.
        showBanner("error", `The outline was not saved: ${errorText(result)}`);
      }
    });
  }

  function deleteOutline(frame, outline) {
    if (!window.confirm(`Delete your ${Number(outline.area_mm2).toFixed(1)} mm² outline and its CSA measurement?`)) return;
    enqueue(async () => {
      const result = await api("DELETE", `${cfg.api.outlines}${outline.id}/`);
      if (result.ok || result.status === 404) {
        state.outlines.set(frame.id, (state.outlines.get(frame.id) || []).filter((o) => o.id !== outline.id));
        say("Outline deleted.");
      } else {
        showBanner("error", `Not deleted: ${errorText(result)}`);
      }
    });
  }

  // ---------------------------------------------------------------- calibration

  function calibrated(clip) {
    state.spacing = [clip.pixel_spacing_row_mm, clip.pixel_spacing_col_mm];
    state.calib = [];
    state.mode = "roi";
    hideBanner();
    say(`Pixel spacing set to ${clip.pixel_spacing_row_mm.toPrecision(4)} mm/px: click the nerve to place the ROI.`);
  }

  function submitCalibration(body) {
    enqueue(async () => {
      const result = await api("POST", cfg.api.calibrate, body);
      if (result.ok) calibrated(result.data);
      else showBanner("error", `Not calibrated: ${errorText(result)}`);
    });
  }

  const calibForm = $("calib-form");
  if (calibForm) {
    calibForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const distance = parseFloat($("calib-distance").value);
      if (state.calib.length !== 2) { showBanner("info", "Click two points on the image first."); return; }
      if (!(distance > 0)) { showBanner("info", "Type the distance between the two points in millimetres."); return; }
      submitCalibration({ p1: state.calib[0], p2: state.calib[1], distance_mm: distance });
    });
    $("spacing-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const spacing = parseFloat($("spacing-direct").value);
      if (!(spacing > 0)) { showBanner("info", "Type the spacing in millimetres per pixel."); return; }
      submitCalibration({ pixel_spacing_mm: spacing });
    });
  }

  // ---------------------------------------------------------------- mouse

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    canvas.focus({ preventScroll: true });
    const point = toImage(event);
    const roi = state.rois.get(current().id);
    const centre0 = state.mode === "roi" && inBox(roi, point) ? [roi.x + roi.w / 2, roi.y + roi.h / 2] : null;
    state.pointer = { start: point, pos: point, centre0, moved: false, downAt: [event.clientX, event.clientY] };
    canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });

  canvas.addEventListener("pointermove", (event) => {
    const point = toImage(event);
    state.hover = point;
    const p = state.pointer;
    if (p) {
      p.pos = point;
      if (Math.hypot(event.clientX - p.downAt[0], event.clientY - p.downAt[1]) > 4) p.moved = true;
      draw();
    } else {
      canvas.classList.toggle("over-box", inBox(state.rois.get(current().id), point));
      if (state.mode === "outline" && state.draft.length) draw();
    }
  });

  canvas.addEventListener("pointerleave", () => { state.hover = null; if (state.draft.length) draw(); });
  canvas.addEventListener("pointercancel", () => { state.pointer = null; draw(); });

  canvas.addEventListener("pointerup", (event) => {
    const p = state.pointer;
    if (!p) return;
    state.pointer = null;
    const frame = current();
    p.pos = toImage(event);
    if (state.mode === "roi") {
      if (needSpacing()) { draw(); return; }
      const centre = p.centre0 && p.moved ? [p.centre0[0] + p.pos[0] - p.start[0], p.centre0[1] + p.pos[1] - p.start[1]] : p.pos;
      const [cx, cy] = insideFrame(frame, centre);
      // Show it at once; the server's answer (clamped box, new version) replaces it.
      saveRoi(frame, cx, cy);
      draw();
    } else if (state.mode === "outline") {
      addDraftPoint(insideFrame(frame, p.pos));
    } else if (state.mode === "calibrate") {
      if (state.calib.length >= 2) state.calib = [];
      state.calib.push(insideFrame(frame, p.pos).map((v) => Number(v.toFixed(2))));
      refresh();
      if (state.calib.length === 2 && $("calib-distance")) $("calib-distance").focus();
    }
  });

  canvas.addEventListener("dblclick", (event) => {
    if (state.mode === "outline") { event.preventDefault(); closeOutline(); }
  });

  // ---------------------------------------------------------------- keyboard

  function typing(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !["range", "checkbox", "radio", "button", "submit"].includes(target.type);
  }

  const help = $("help-dialog");
  function toggleHelp() {
    if (help.open) help.close();
    else help.showModal();
  }
  $("help-close").addEventListener("click", () => help.close());

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (help.open) {
      if (event.key === "?") { event.preventDefault(); help.close(); }
      return;
    }
    const key = event.key;
    if ((key === "Enter" || key === " ") && event.target.closest && event.target.closest("a, button, summary")) return;
    let handled = true;
    if (key === "ArrowRight" || key === "d" || key === "D") go(state.pos + 1);
    else if (key === "ArrowLeft" || key === "a" || key === "A") go(state.pos - 1);
    else if (key === "Home") go(0);
    else if (key === "End") go(frames.length - 1);
    else if (key === "n" || key === "N") nextUnconfirmed();
    else if (key === "Enter") (state.mode === "outline" ? closeOutline() : confirmCurrent());
    else if ((key === "c" || key === "C") && event.shiftKey) confirmAll();
    else if (key === "c" || key === "C") confirmCurrent();
    else if (key === "p" || key === "P") propagate();
    else if (key === "o" || key === "O") toggleOutline();
    else if (key === "?") toggleHelp();
    else if (key === "Escape") {
      if (state.draft.length) { state.draft = []; say("Outline cancelled."); refresh(); }
      else if (state.calib.length) { state.calib = []; refresh(); }
      else if (state.mode === "outline") toggleOutline();
      else hideBanner();
    } else if (key === "Backspace" && state.mode === "outline" && state.draft.length) { state.draft.pop(); refresh(); }
    else if (key === "Delete" || key === "x" || key === "X") { if (state.mode === "roi") deleteCurrent(); }
    else handled = false;
    if (handled) event.preventDefault();
  });

  // ---------------------------------------------------------------- buttons

  const button = (id, action) => $(id).addEventListener("click", (event) => {
    action();
    event.currentTarget.blur();
    canvas.focus({ preventScroll: true });
  });
  button("btn-prev", () => go(state.pos - 1));
  button("btn-next", () => go(state.pos + 1));
  button("btn-confirm", confirmCurrent);
  button("btn-propagate", propagate);
  button("btn-confirm-all", confirmAll);
  button("btn-outline", toggleOutline);
  button("btn-delete", deleteCurrent);
  $("btn-help").addEventListener("click", toggleHelp);
  $("banner-close").addEventListener("click", hideBanner);
  slider.addEventListener("input", () => go(Number(slider.value)));
  strip.addEventListener("click", (event) => {
    const cell = event.target.closest("[data-pos]");
    if (cell) go(Number(cell.dataset.pos));
  });

  // ---------------------------------------------------------------- start

  buildStrip();
  new ResizeObserver(() => resize()).observe(wrap);
  window.addEventListener("resize", resize);
  resize();
  refresh();
  preload();
  if (!state.spacing) say(cfg.canCalibrate ? "Calibrate the clip first: click two depth-scale marks, then type their distance."
    : "This clip has no pixel spacing; ask a coordinator to calibrate it.");
  enqueue(async () => {
    await Promise.all([loadRois(), loadOutlines()]);
    root.dataset.ready = "true";
  });
  if (cfg.propagation) followPropagation(cfg.propagation); // one still running from before a reload
  canvas.focus({ preventScroll: true });
})();
