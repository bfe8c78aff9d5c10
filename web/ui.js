// The sandseg page: open an image, prompt MobileSAM with points and a box, see and export masks.
//
// The model runs in the worker behind client.js (PY-1); this module only draws. Mask pixels are
// touched once per result, at display resolution (exports: once at full size, in slices), so no
// main-thread task comes near 50 ms. Coordinates sent to predict are original-image pixels, as
// in SamPredictor. CSP (WB-1): no inline scripts or style attributes; sizes are set via CSSOM.
import { getClient } from "./client.js";

const SAMPLES = ["picture1.jpg", "picture2.jpg", "dogs.jpg"];
// Where a result came from (GP-2): the mode that encoded the image.
const MODES = [
  ["auto", "Auto (planner picks)"],
  ["client", "Client: all on this GPU"],
  ["split:patch_embed", "Split after patch_embed"],
  ["split:layers.0", "Split after layers.0"],
  ["split:layers.1", "Split after layers.1"],
  ["split:layers.2", "Split after layers.2"],
  ["split:layers.3", "Split after layers.3"],
  ["split:image", "Server encodes, client decodes"],
  ["server", "Server: all on the server"],
];
function backendName(mode) {
  if (mode === "client") return "WebGPU client";
  if (mode === "server") return "server";
  if (mode === "split:image") return "server encoder + WebGPU decoder";
  if (mode?.startsWith("split:")) return `split after ${mode.slice(6)} (WebGPU + server)`;
  return mode;
}
const LOAD_STAGES = [
  ["pyodide", "Pyodide"],
  ["package", "sandseg package"],
  ["weights", "Weights"],
  ["pipelines", "Pipeline compilation"],
  ["server", "Offload server"],
  ["encoding", "Image encoding"],
];
// client.timings keys of the first-load breakdown, in load order.
const TIMING_LABELS = {
  verifyMs: "Bundle check",
  pyodideMs: "Pyodide boot",
  packageMs: "Package",
  weightsMs: "Weights",
  pipelinesMs: "Pipelines",
};
// A press that moves further than this (CSS px) is a box drag, not a click.
const DRAG_THRESHOLD_PX = 5;
const HOVER_INTERVAL_MS = 150;
// Bigger images are refused on the page with a message (memory for masks and exports).
const MAX_SIDE = 8192;
const MAX_PIXELS = 25e6;
const EXPORT_SLICE = 1 << 20;
const THUMB_SIZE = 112;
// As client.js decodes for the model: the stored pixel values, oriented as displayed. The page
// draws and exports exactly the pixels the model sees.
const DECODE_OPTIONS = { colorSpaceConversion: "none", imageOrientation: "from-image" };

const rgba = (r, g, b, a) => ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
const COLOURS = {
  fill: rgba(30, 144, 255, 120),
  edge: rgba(255, 255, 255, 240),
  previewFill: rgba(30, 144, 255, 70),
  previewEdge: rgba(255, 255, 255, 130),
  white: rgba(255, 255, 255, 255),
  black: rgba(0, 0, 0, 255),
};

const client = getClient();
const state = {
  ready: false,
  failed: false,
  backend: null,
  adapter: "",
  image: null, // {bitmap, width, height, name, token}
  imageToken: 0,
  encoding: false,
  encoded: false,
  prompts: [], // {kind: "point", x, y, label} | {kind: "box", box: [x0, y0, x1, y1]}
  result: null, // the committed predict result (clicks, box, undo)
  selected: 0,
  preview: null, // the hover predict result
  committed: 0,
  // The worker's "previous" mask comes from a committed predict on this image (not a hover).
  workerHasCommit: false,
  encoderMs: null,
  decoderMs: null,
  imageInfo: null, // the last setImage result: mode, reason, bytes up and down
};
const sched = {
  inFlight: false,
  commit: false,
  refine: true,
  hover: null, // the latest cursor position in image pixels, waiting for a preview
  pointerInside: false,
  lastHoverAt: 0,
  timer: 0,
};
let drag = null;
let readyWaiters = [];

// ---- DOM helpers ---------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function toggle(id, text, checked, onchange) {
  const input = el("input", { type: "checkbox", id, checked, onchange });
  const root = el("label", { class: "toggle", htmlFor: id }, input, el("span", {}, text));
  return { input, root };
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function messageOf(error) {
  if (typeof error === "string") return error;
  return error?.message ?? error?.detail?.message ?? String(error);
}

// ---- Layout --------------------------------------------------------------------------------

function buildView() {
  const view = {};
  view.badge = el("span", { class: "badge", id: "backend-badge", title: "" }, "Backend: –");
  view.header = el(
    "header",
    { class: "app-header" },
    el("h1", {}, "sandseg ", el("span", { class: "subtitle" }, "MobileSAM in your browser")),
    view.badge,
  );
  view.errorText = el("p", { class: "error-text" });
  view.error = el(
    "div",
    { class: "error-banner", id: "error-banner", role: "alert", hidden: true },
    el("strong", {}, "Error: "),
    view.errorText,
    el("button", { class: "dismiss", type: "button", onclick: hideError }, "Dismiss"),
  );

  view.fileInput = el("input", {
    type: "file",
    id: "file-input",
    accept: "image/*",
    class: "file-input",
    onchange: onFileChosen,
  });
  view.samples = el("div", { class: "samples", id: "samples" });
  view.imageInfo = el("span", { class: "image-info", id: "image-info" });
  view.toolbar = el(
    "div",
    { class: "toolbar" },
    el(
      "button",
      { type: "button", id: "open-button", onclick: () => view.fileInput.click() },
      "Open image…",
    ),
    view.fileInput,
    view.samples,
    view.imageInfo,
  );

  view.imageCanvas = el("canvas", { id: "image-canvas", class: "layer" });
  view.maskCanvas = el("canvas", { id: "mask-canvas", class: "layer overlay" });
  view.markerCanvas = el("canvas", {
    id: "marker-canvas",
    class: "layer markers",
    role: "img",
    "aria-label": "The image: click to add a point, drag to draw a box",
  });
  view.canvasWrap = el(
    "div",
    { class: "canvas-wrap", hidden: true },
    view.imageCanvas,
    view.maskCanvas,
    view.markerCanvas,
  );
  view.emptyHint = el(
    "p",
    { class: "empty-hint" },
    "Drop an image here, paste one (Ctrl+V), open a file or pick a sample.",
  );
  view.activity = el("span", { class: "activity", id: "activity", "aria-live": "polite" });
  view.loading = buildLoading();
  view.stage = el(
    "div",
    { class: "stage", id: "stage", dataset: { image: "none", results: "0", preview: "0" } },
    view.canvasWrap,
    view.emptyHint,
    view.loading.root,
    view.activity,
  );
  const hint = el(
    "p",
    { class: "hint" },
    "Left click: positive point · Right click or Shift+click: negative point · ",
    "Drag: box · Z: undo · C: clear",
  );

  // The worker refines with the best-scoring mask of the previous click's prediction.
  view.refine = toggle("refine-toggle", "Refine with previous mask", false, null);
  view.multimask = toggle("multimask-toggle", "Multimask (3 masks)", true, onMultimaskChange);
  view.hover = toggle("hover-toggle", "Hover preview", true, onHoverToggle);
  view.undo = el("button", { type: "button", id: "undo-button", onclick: undo }, "Undo");
  view.clear = el("button", { type: "button", id: "clear-button", onclick: clearPrompts }, "Clear");
  view.promptInfo = el("p", { class: "prompt-info", id: "prompt-info" }, "No prompts yet.");
  view.masks = el("div", { class: "mask-choices", id: "mask-choices", role: "group" });
  view.exportMask = el(
    "button",
    { type: "button", id: "export-mask", onclick: () => exportPng("mask") },
    "Mask PNG",
  );
  view.exportCutout = el(
    "button",
    { type: "button", id: "export-cutout", onclick: () => exportPng("cutout") },
    "Cut-out PNG",
  );
  view.timings = el("dl", { class: "timings", id: "timings" });
  view.modeSelect = el("select", { id: "mode-select", onchange: onModeChange, disabled: true });
  view.modeSelect.append(...MODES.map(([value, label]) => el("option", { value }, label)));
  view.modeReason = el("p", { class: "mode-reason", id: "mode-reason" }, "");
  view.modeNotice = el("p", { class: "mode-notice", id: "mode-notice", role: "status" });
  view.modeNotice.hidden = true;

  const sidebar = el(
    "aside",
    { class: "sidebar" },
    panel(
      "Prompts",
      view.promptInfo,
      view.refine.root,
      view.multimask.root,
      view.hover.root,
      el("div", { class: "button-row" }, view.undo, view.clear),
    ),
    panel(
      "Where it runs",
      el("label", { class: "mode-label", htmlFor: "mode-select" }, "Mode "),
      view.modeSelect,
      view.modeNotice,
      view.modeReason,
    ),
    panel("Masks", view.masks),
    panel("Export", el("div", { class: "button-row" }, view.exportMask, view.exportCutout)),
    panel("Timings", view.timings),
  );
  const viewer = el("section", { class: "viewer" }, view.toolbar, view.stage, hint);
  view.root = [view.header, view.error, el("div", { class: "workspace" }, viewer, sidebar)];
  return view;
}

function panel(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

function buildLoading() {
  const step = (id, label) => el("li", { class: "step", dataset: { stage: id } }, label);
  const steps = new Map(LOAD_STAGES.map(([id, label]) => [id, step(id, label)]));
  const loading = {
    title: el("h2", { class: "loading-title" }, "Loading the model"),
    steps,
    bar: el("progress", { class: "loading-bar", id: "loading-progress", max: 1 }),
    percent: el("span", { class: "loading-percent" }),
    message: el("p", { class: "loading-message" }, "Starting…"),
  };
  loading.root = el(
    "section",
    { class: "loading", id: "loading-panel", "aria-live": "polite" },
    loading.title,
    el("ol", { class: "steps" }, ...steps.values()),
    el("div", { class: "bar-row" }, loading.bar, loading.percent),
    loading.message,
  );
  return loading;
}

const view = buildView();
document.getElementById("app").append(...view.root);

// ---- Loading, status and errors ------------------------------------------------------------

function showProgress({ stage, fraction, message }) {
  if (stage === "decoding") {
    view.activity.textContent = message || "Decoding…";
    return;
  }
  const index = LOAD_STAGES.findIndex(([id]) => id === stage);
  LOAD_STAGES.forEach(([id], i) => {
    const step = view.loading.steps.get(id);
    step.classList.toggle("done", index >= 0 && i < index);
    step.classList.toggle("active", i === index);
  });
  if (fraction === null || fraction === undefined) {
    view.loading.bar.removeAttribute("value");
    view.loading.percent.textContent = "";
  } else {
    view.loading.bar.value = fraction;
    view.loading.percent.textContent = `${Math.round(fraction * 100)}%`;
  }
  if (message) view.loading.message.textContent = message;
}

function refreshLoading() {
  const busy = !state.ready || state.encoding || state.failed;
  view.loading.root.hidden = !busy;
  view.emptyHint.hidden = busy || Boolean(state.image);
  view.loading.root.classList.toggle("failed", state.failed);
  let title = "Encoding the image";
  if (state.failed && state.ready) title = "The model stopped; reload the page";
  else if (state.failed) title = "The model could not load";
  else if (!state.ready) title = "Loading the model";
  view.loading.title.textContent = title;
}

function showError(error) {
  view.errorText.textContent = messageOf(error);
  view.error.hidden = false;
}

function hideError() {
  view.error.hidden = true;
}

function onReady(detail = {}) {
  state.ready = true;
  state.backend = detail.backend ?? state.backend ?? null;
  state.adapter = detail.adapter ?? "";
  LOAD_STAGES.slice(0, -1).forEach(([id]) => view.loading.steps.get(id).classList.add("done"));
  for (const waiter of readyWaiters) waiter.resolve();
  readyWaiters = [];
  refreshLoading();
  renderBadge();
  renderTimings();
  renderModes();
}

// ---- Modes: where the work runs ------------------------------------------------------------

function renderModes() {
  const modes = client.modes;
  if (!modes) return;
  view.modeSelect.disabled = false;
  for (const option of view.modeSelect.options) {
    const needsClient = option.value !== "server" && option.value !== "auto";
    const needsServer = option.value !== "client";
    option.disabled =
      (needsClient && !modes.clientAvailable) || (needsServer && !modes.serverAvailable);
  }
  view.modeSelect.value = modes.mode;
  view.modeNotice.hidden = !modes.notice && !modes.serverError;
  view.modeNotice.textContent = modes.notice ?? modes.serverError ?? "";
  const info = state.imageInfo;
  if (info) {
    const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
    const traffic =
      info.uploadBytes || info.downloadBytes
        ? ` · up ${mb(info.uploadBytes)}, down ${mb(info.downloadBytes)}, server ${fmtMs(info.serverMs)}`
        : "";
    view.modeReason.textContent = `This image: ${backendName(info.mode)}${traffic}. ${info.reason}`;
  } else {
    view.modeReason.textContent =
      modes.mode === "auto" ? "The planner picks a mode for each new image." : "";
  }
}

async function onModeChange() {
  try {
    await client.setMode(view.modeSelect.value);
    hideError();
  } catch (error) {
    showError(`Could not change the mode: ${messageOf(error)}`);
  }
  renderModes();
}

// Non-fatal errors (a bad prompt) also reject the call that caused them, which shows them;
// a fatal one (the worker died, or never started) stops the model until a reload.
// PY-3: the client replaced a stuck worker. The new one boots; the image is encoded again.
function onRestart() {
  state.ready = false;
  state.encoded = false;
  refreshLoading();
  renderAll();
  if (state.image?.blob) openImage(state.image.blob, state.image.name, { keepError: true });
}

function onClientError(detail) {
  showError(detail);
  if (detail?.fatal === false || state.failed) return;
  state.failed = true;
  state.encoded = false;
  view.loading.message.textContent = messageOf(detail);
  for (const waiter of readyWaiters) waiter.reject(new Error("the model did not load"));
  readyWaiters = [];
  refreshLoading();
  renderControls();
}

function whenReady() {
  if (state.failed) return Promise.reject(new Error("the model is not available"));
  if (state.ready) return Promise.resolve();
  return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
}

function renderBadge() {
  const backend = state.result?.backend ?? state.preview?.backend ?? state.backend;
  view.badge.textContent = `Backend: ${backend ? backendName(backend) : "–"}`;
  view.badge.dataset.backend = backend ?? "";
  view.badge.title = state.adapter ? `Adapter: ${state.adapter}` : "";
}

function renderTimings() {
  const rows = [
    ["Encoder", fmtMs(state.encoderMs)],
    ["Decoder", fmtMs(state.decoderMs)],
  ];
  const first = client.timings ?? {};
  let total = 0;
  for (const [key, label] of Object.entries(TIMING_LABELS)) {
    if (!(key in first)) continue;
    const cached = key === "weightsMs" && first.weightsCached ? " (cached)" : "";
    rows.push([`First load: ${label}${cached}`, fmtMs(first[key])]);
    total += first[key];
  }
  if (total) rows.push(["First load: total", fmtMs(total)]);
  view.timings.replaceChildren(
    ...rows.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]),
  );
}

// ---- Opening images ------------------------------------------------------------------------

// Reads the size first (an <img> load parses the header; it is not decoded), then decodes to
// an ImageBitmap from the Blob, which the browser does off the main thread. Bad input becomes
// an Error whose message is shown on the page.
async function decodeImage(blob) {
  if (blob.size === 0) throw new Error("the file is empty");
  if (blob.type && !blob.type.startsWith("image/")) {
    throw new Error(`it is not an image (${blob.type})`);
  }
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("the browser cannot decode it as an image"));
      img.src = url;
    });
    const { naturalWidth: width, naturalHeight: height } = img;
    if (!width || !height) throw new Error("the image has no size");
    if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
      throw new Error(
        `the image is too large (${width} × ${height}); the limit is ${MAX_SIDE} px a side ` +
          `and ${MAX_PIXELS / 1e6} megapixels`,
      );
    }
    try {
      return await createImageBitmap(blob, DECODE_OPTIONS);
    } catch {
      throw new Error("the browser cannot decode it as an image");
    }
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function openImage(blob, name, { keepError = false } = {}) {
  const token = ++state.imageToken;
  let bitmap;
  try {
    bitmap = await decodeImage(blob);
  } catch (error) {
    if (token === state.imageToken) showError(`Could not open ${name}: ${messageOf(error)}.`);
    return;
  }
  if (token !== state.imageToken) return bitmap.close();
  if (!keepError) hideError();
  state.image?.bitmap.close();
  state.image = { bitmap, blob, width: bitmap.width, height: bitmap.height, name, token };
  Object.assign(state, { encoded: false, encoding: true, prompts: [], result: null });
  Object.assign(state, { preview: null, workerHasCommit: false, encoderMs: null, decoderMs: null });
  state.imageInfo = null;
  Object.assign(sched, { commit: false, refine: true, hover: null });
  view.stage.dataset.image = "encoding";
  view.imageInfo.textContent = `${name} · ${bitmap.width} × ${bitmap.height}`;
  showProgress({ stage: "encoding", fraction: null, message: "Waiting for the model…" });
  refreshLoading();
  layout();
  renderAll();
  try {
    await whenReady();
    if (token !== state.imageToken) return;
    showProgress({ stage: "encoding", fraction: null, message: "Running the image encoder…" });
    // The client decodes the Blob again (off-thread) and transfers its bitmap to the worker.
    const info = await client.setImage(blob);
    if (token !== state.imageToken) return;
    state.encoded = !state.failed;
    state.encoderMs = info.encoderMs ?? null;
    state.backend = info.backend ?? state.backend;
    state.imageInfo = info;
    view.stage.dataset.image = "ready";
  } catch (error) {
    if (token !== state.imageToken) return;
    view.stage.dataset.image = "error";
    showError(`Could not encode ${name}: ${messageOf(error)}`);
  } finally {
    if (token === state.imageToken) {
      state.encoding = false;
      refreshLoading();
      renderAll();
    }
  }
}

function onFileChosen() {
  const file = view.fileInput.files[0];
  view.fileInput.value = "";
  if (file) openImage(file, file.name);
}

async function openSample(name) {
  try {
    const response = await fetch(`samples/${name}`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await openImage(await response.blob(), name);
  } catch (error) {
    showError(`Could not load the sample ${name}: ${messageOf(error)}`);
  }
}

// Sample buttons appear only once their thumbnail loads (the bundle may not ship samples).
function addSampleButtons() {
  for (const name of SAMPLES) {
    const img = el("img", { alt: "", class: "sample-thumb" });
    const label = name.replace(/\.[a-z]+$/, "");
    const button = el(
      "button",
      { type: "button", class: "sample", hidden: true, title: `Open the sample ${name}` },
      img,
      el("span", {}, label),
    );
    button.dataset.sample = name;
    button.addEventListener("click", () => openSample(name));
    img.addEventListener("load", () => (button.hidden = false));
    img.addEventListener("error", () => button.remove());
    img.src = `samples/${name}`;
    view.samples.append(button);
  }
}

function firstImageFile(files) {
  return [...(files ?? [])].find((file) => file.type.startsWith("image/")) ?? files?.[0];
}

function onDrop(event) {
  event.preventDefault();
  view.stage.classList.remove("dragging");
  const file = firstImageFile(event.dataTransfer?.files);
  if (file) openImage(file, file.name || "the dropped file");
  else showError("Nothing to open: drop an image file.");
}

function onPaste(event) {
  const files = [...(event.clipboardData?.items ?? [])]
    .filter((item) => item.kind === "file")
    .map((item) => item.getAsFile())
    .filter(Boolean);
  if (!files.length) return;
  event.preventDefault();
  const file = firstImageFile(files);
  openImage(file, file.name || "the pasted image");
}

// ---- Drawing -------------------------------------------------------------------------------

// Fits the image into the stage; canvases get CSS size via CSSOM (CSP-safe) and a backing store
// at device resolution, except the mask layer, kept at CSS resolution to bound its cost.
function layout() {
  if (!state.image) return;
  const { width, height } = state.image;
  const scale = Math.min(view.stage.clientWidth / width, view.stage.clientHeight / height);
  const cssW = Math.max(1, Math.floor(width * scale));
  const cssH = Math.max(1, Math.floor(height * scale));
  const dpr = window.devicePixelRatio || 1;
  view.canvasWrap.hidden = false;
  view.canvasWrap.style.width = `${cssW}px`;
  view.canvasWrap.style.height = `${cssH}px`;
  for (const canvas of [view.imageCanvas, view.maskCanvas, view.markerCanvas]) {
    const ratio = canvas === view.maskCanvas ? 1 : dpr;
    canvas.width = Math.round(cssW * ratio);
    canvas.height = Math.round(cssH * ratio);
    canvas.style.width = `${cssW}px`;
    canvas.style.height = `${cssH}px`;
  }
  drawImageLayer();
  drawMaskLayer();
  drawMarkers();
}

function drawImageLayer() {
  const ctx = view.imageCanvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(state.image.bitmap, 0, 0, view.imageCanvas.width, view.imageCanvas.height);
}

// Samples mask `index` of a predict result (nearest) into an outW x outH ImageData: `fill`
// inside, `edge` on its boundary. Two passes over the output pixels, none over the input.
function paintMask(result, index, outW, outH, fill, edge) {
  const [, height, width] = result.shape;
  const plane = result.masks.subarray(index * height * width, (index + 1) * height * width);
  const xs = new Uint32Array(outW);
  for (let x = 0; x < outW; x++) {
    xs[x] = Math.min(width - 1, Math.floor(((x + 0.5) * width) / outW));
  }
  const on = new Uint8Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const row = Math.min(height - 1, Math.floor(((y + 0.5) * height) / outH)) * width;
    for (let x = 0, k = y * outW; x < outW; x++, k++) on[k] = plane[row + xs[x]];
  }
  const image = new ImageData(outW, outH);
  const px = new Uint32Array(image.data.buffer);
  for (let y = 0; y < outH; y++) {
    for (let x = 0, k = y * outW; x < outW; x++, k++) {
      if (!on[k]) continue;
      const boundary =
        (x > 0 && !on[k - 1]) ||
        (x < outW - 1 && !on[k + 1]) ||
        (y > 0 && !on[k - outW]) ||
        (y < outH - 1 && !on[k + outW]);
      px[k] = boundary ? edge : fill;
    }
  }
  return image;
}

function bestIndex(result) {
  const iou = [...(result.iouPredictions ?? [])];
  return iou.length ? iou.indexOf(Math.max(...iou)) : 0;
}

function drawMaskLayer() {
  const canvas = view.maskCanvas;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.result) {
    const image = paintMask(
      state.result, state.selected, canvas.width, canvas.height, COLOURS.fill, COLOURS.edge,
    );
    ctx.putImageData(image, 0, 0);
  } else if (state.preview) {
    const index = bestIndex(state.preview);
    const fill = COLOURS.previewFill;
    ctx.putImageData(
      paintMask(state.preview, index, canvas.width, canvas.height, fill, COLOURS.previewEdge),
      0,
      0,
    );
  }
  view.stage.dataset.preview = state.preview && !state.result ? "1" : "0";
}

function drawMarkers() {
  const canvas = view.markerCanvas;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.image) return;
  const s = canvas.width / state.image.width;
  const dpr = window.devicePixelRatio || 1;
  ctx.lineJoin = "round";
  const box = latestBox();
  if (box) strokeBox(ctx, box.map((v) => v * s), dpr, false);
  if (drag?.moved) {
    const [x0, y0] = drag.start;
    const [x1, y1] = drag.current;
    strokeBox(ctx, [x0 * s, y0 * s, x1 * s, y1 * s], dpr, true);
  }
  for (const prompt of state.prompts) {
    if (prompt.kind !== "point") continue;
    ctx.beginPath();
    ctx.arc(prompt.x * s, prompt.y * s, 6 * dpr, 0, 2 * Math.PI);
    ctx.fillStyle = prompt.label ? "#22c55e" : "#ef4444";
    ctx.fill();
    ctx.lineWidth = 2 * dpr;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
  }
}

function strokeBox(ctx, [x0, y0, x1, y1], dpr, dashed) {
  ctx.setLineDash(dashed ? [6 * dpr, 4 * dpr] : []);
  ctx.lineWidth = 4 * dpr;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.6)";
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.lineWidth = 2 * dpr;
  ctx.strokeStyle = "#facc15";
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.setLineDash([]);
}

function renderMaskChoices() {
  const result = state.result;
  if (!result) {
    view.masks.replaceChildren(el("p", { class: "muted" }, "Click the image to get a mask."));
    return;
  }
  const [count, height, width] = result.shape;
  const scale = Math.min(THUMB_SIZE / width, THUMB_SIZE / height);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const best = bestIndex(result);
  const buttons = [];
  for (let i = 0; i < count; i++) {
    const thumb = el("canvas", { class: "mask-thumb", width: w, height: h });
    const ctx = thumb.getContext("2d");
    ctx.drawImage(state.image.bitmap, 0, 0, w, h);
    const layer = el("canvas", { width: w, height: h });
    const pixels = paintMask(result, i, w, h, COLOURS.fill, COLOURS.edge);
    layer.getContext("2d").putImageData(pixels, 0, 0);
    ctx.drawImage(layer, 0, 0);
    const iou = result.iouPredictions?.[i];
    const score = `IoU ${iou === undefined ? "–" : Number(iou).toFixed(3)}`;
    const caption = el(
      "span",
      { class: "mask-caption" },
      el("strong", {}, `Mask ${i + 1}`),
      el("span", { class: "mask-score" }, i === best ? `${score} · best` : score),
    );
    const button = el(
      "button",
      { type: "button", class: "mask-choice", "aria-pressed": String(i === state.selected) },
      thumb,
      caption,
    );
    button.dataset.index = String(i);
    button.addEventListener("click", () => selectMask(i));
    buttons.push(button);
  }
  view.masks.replaceChildren(...buttons);
}

function selectMask(index) {
  state.selected = index;
  for (const button of view.masks.querySelectorAll(".mask-choice")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === index));
  }
  drawMaskLayer();
}

function renderControls() {
  const points = state.prompts.filter((p) => p.kind === "point");
  const positives = points.filter((p) => p.label).length;
  const parts = [];
  if (positives) parts.push(`${positives} positive`);
  if (points.length - positives) parts.push(`${points.length - positives} negative`);
  if (latestBox()) parts.push("1 box");
  view.promptInfo.textContent = parts.length ? `Prompts: ${parts.join(", ")}.` : "No prompts yet.";
  view.promptInfo.dataset.count = String(state.prompts.length);
  view.undo.disabled = !state.prompts.length;
  view.clear.disabled = !state.prompts.length;
  view.exportMask.disabled = !state.result;
  view.exportCutout.disabled = !state.result;
  view.stage.classList.toggle("interactive", state.encoded);
}

function renderAll() {
  renderModes();
  renderControls();
  renderMaskChoices();
  renderBadge();
  renderTimings();
  if (state.image) {
    drawMaskLayer();
    drawMarkers();
  }
}

// ---- Prompts and predictions ---------------------------------------------------------------

function latestBox() {
  return state.prompts.findLast((p) => p.kind === "box")?.box ?? null;
}

function buildRequest(refine) {
  const points = state.prompts.filter((p) => p.kind === "point");
  const box = latestBox();
  if (!points.length && !box) return null;
  const useMask = refine && view.refine.input.checked && state.workerHasCommit && state.result;
  return {
    points: points.map((p) => [p.x, p.y]),
    labels: points.map((p) => p.label),
    box,
    maskInput: useMask ? "previous" : null,
    multimask: view.multimask.input.checked,
  };
}

// One predict at a time: a wanted commit (click, box, undo) goes first, then at most one hover
// preview for the latest cursor position, throttled to HOVER_INTERVAL_MS.
function pump() {
  if (sched.inFlight || !state.encoded) return;
  if (sched.commit) {
    const refine = sched.refine;
    Object.assign(sched, { commit: false, refine: true });
    run(commitPredict(refine));
    return;
  }
  if (!sched.hover || state.prompts.length || !view.hover.input.checked) return;
  const wait = sched.lastHoverAt + HOVER_INTERVAL_MS - performance.now();
  if (wait > 0) {
    sched.timer ||= setTimeout(() => {
      sched.timer = 0;
      pump();
    }, wait);
    return;
  }
  const at = sched.hover;
  sched.hover = null;
  sched.lastHoverAt = performance.now();
  run(hoverPredict(at));
}

function run(promise) {
  sched.inFlight = true;
  view.stage.classList.add("busy");
  promise
    .catch((error) => showError(`Prediction failed: ${messageOf(error)}`))
    .finally(() => {
      sched.inFlight = false;
      view.stage.classList.remove("busy");
      view.activity.textContent = "";
      pump();
    });
}

function requestCommit(refine) {
  sched.commit = true;
  sched.refine = sched.refine && refine;
  pump();
}

async function commitPredict(refine) {
  const token = state.image.token;
  const request = buildRequest(refine);
  if (!request) {
    state.result = null;
    renderAll();
    return;
  }
  view.activity.textContent = "Decoding…";
  state.workerHasCommit = false;
  const result = await client.predict(request);
  if (token !== state.image?.token) return;
  state.workerHasCommit = true;
  // Cleared while the model ran: nothing left to show this result for.
  if (!state.prompts.length) return;
  Object.assign(state, { result, preview: null, selected: bestIndex(result) });
  state.decoderMs = result.decoderMs ?? null;
  state.committed += 1;
  view.stage.dataset.results = String(state.committed);
  renderAll();
}

async function hoverPredict([x, y]) {
  const token = state.image.token;
  state.workerHasCommit = false;
  const result = await client.predict({
    points: [[x, y]],
    labels: [1],
    box: null,
    maskInput: null,
    multimask: view.multimask.input.checked,
  });
  if (token !== state.image?.token || state.prompts.length || !sched.pointerInside) return;
  state.preview = result;
  state.decoderMs = result.decoderMs ?? state.decoderMs;
  drawMaskLayer();
  renderBadge();
  renderTimings();
}

function addPrompt(prompt) {
  state.prompts.push(prompt);
  state.preview = null;
  sched.hover = null;
  renderControls();
  drawMarkers();
  requestCommit(true);
}

function undo() {
  if (!state.prompts.length) return;
  state.prompts.pop();
  afterPromptsChanged();
}

function clearPrompts() {
  if (!state.prompts.length) return;
  state.prompts = [];
  afterPromptsChanged();
}

function afterPromptsChanged() {
  if (!state.prompts.length) state.result = null;
  renderAll();
  if (state.prompts.length) requestCommit(false);
}

function onMultimaskChange() {
  state.preview = null;
  if (state.prompts.length) requestCommit(false);
  else drawMaskLayer();
}

function onHoverToggle() {
  if (view.hover.input.checked) return;
  state.preview = null;
  sched.hover = null;
  if (state.image) drawMaskLayer();
}

// ---- Pointer and keyboard ------------------------------------------------------------------

function toImage(event) {
  const rect = view.markerCanvas.getBoundingClientRect();
  const { width, height } = state.image;
  const x = ((event.clientX - rect.left) / rect.width) * width;
  const y = ((event.clientY - rect.top) / rect.height) * height;
  return [Math.min(width, Math.max(0, x)), Math.min(height, Math.max(0, y))];
}

function onPointerDown(event) {
  if (!state.encoded || (event.button !== 0 && event.button !== 2)) return;
  event.preventDefault();
  view.markerCanvas.setPointerCapture(event.pointerId);
  const at = toImage(event);
  drag = { start: at, current: at, x: event.clientX, y: event.clientY };
  Object.assign(drag, { button: event.button, shift: event.shiftKey, moved: false });
}

function onPointerMove(event) {
  if (!state.image) return;
  if (drag) {
    drag.current = toImage(event);
    const distance = Math.hypot(event.clientX - drag.x, event.clientY - drag.y);
    if (drag.button === 0 && distance > DRAG_THRESHOLD_PX) drag.moved = true;
    if (drag.moved) drawMarkers();
    return;
  }
  sched.pointerInside = true;
  if (state.encoded && !state.prompts.length && view.hover.input.checked) {
    sched.hover = toImage(event);
    pump();
  }
}

function onPointerUp(event) {
  if (!drag) return;
  const done = drag;
  drag = null;
  if (done.moved) {
    const [x1, y1] = toImage(event);
    const [x0, y0] = done.start;
    const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    addPrompt({ kind: "box", box });
    return;
  }
  const negative = done.button === 2 || done.shift || event.shiftKey;
  const [x, y] = done.start;
  addPrompt({ kind: "point", x, y, label: negative ? 0 : 1 });
}

function onPointerLeave() {
  sched.pointerInside = false;
  sched.hover = null;
  if (state.preview) {
    state.preview = null;
    drawMaskLayer();
  }
}

function onKey(event) {
  if (event.altKey || event.metaKey || event.target?.tagName === "TEXTAREA") return;
  const key = event.key.toLowerCase();
  if (key === "z") undo();
  else if (key === "c" && !event.ctrlKey) clearPrompts();
  else if (key === "escape" && drag) {
    drag = null;
    drawMarkers();
  }
}

// ---- Export --------------------------------------------------------------------------------

// Full-size PNGs of the selected mask: white on black, or the image's own pixels with alpha 0
// outside the mask (composited, so the image is never read back). The per-pixel pass runs in
// slices so that no task blocks the page for long.
async function exportPng(kind) {
  const { result, selected, image } = state;
  if (!result) return;
  try {
    const [, height, width] = result.shape;
    const plane = result.masks.subarray(selected * height * width, (selected + 1) * height * width);
    const canvas = el("canvas", { width, height });
    const ctx = canvas.getContext("2d");
    if (kind === "mask") {
      ctx.putImageData(await maskPixels(plane, width, height, COLOURS.black), 0, 0);
    } else {
      const layer = el("canvas", { width, height });
      layer.getContext("2d").putImageData(await maskPixels(plane, width, height, 0), 0, 0);
      ctx.drawImage(image.bitmap, 0, 0, width, height);
      ctx.globalCompositeOperation = "destination-in";
      ctx.drawImage(layer, 0, 0);
    }
    const blob = await new Promise((resolve, reject) => {
      const done = (png) => (png ? resolve(png) : reject(new Error("PNG encoding failed")));
      canvas.toBlob(done, "image/png");
    });
    const base = image.name.replace(/\.[^.]*$/, "") || "image";
    download(blob, `${base}-${kind}.png`);
  } catch (error) {
    showError(`Export failed: ${messageOf(error)}`);
  }
}

// An ImageData of the mask plane: opaque white where it is on, `off` elsewhere.
async function maskPixels(plane, width, height, off) {
  const pixels = new ImageData(width, height);
  const px = new Uint32Array(pixels.data.buffer);
  for (let start = 0; start < plane.length; start += EXPORT_SLICE) {
    const end = Math.min(plane.length, start + EXPORT_SLICE);
    for (let k = start; k < end; k++) px[k] = plane[k] ? COLOURS.white : off;
    if (end < plane.length) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return pixels;
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, class: "download-link" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- Wiring --------------------------------------------------------------------------------

function wire() {
  client.addEventListener("progress", (event) => showProgress(event.detail ?? {}));
  client.addEventListener("ready", (event) => onReady(event.detail ?? {}));
  client.addEventListener("error", (event) => onClientError(event.detail ?? event));
  client.addEventListener("mode", () => renderModes());
  client.addEventListener("restart", onRestart);
  const canvas = view.markerCanvas;
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", () => ((drag = null), drawMarkers()));
  canvas.addEventListener("pointerleave", onPointerLeave);
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    view.stage.classList.add("dragging");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) view.stage.classList.remove("dragging");
  });
  document.addEventListener("drop", onDrop);
  document.addEventListener("paste", onPaste);
  document.addEventListener("keydown", onKey);
  new ResizeObserver(() => layout()).observe(view.stage);
  window.addEventListener("error", (event) => {
    if (!String(event.message).startsWith("ResizeObserver")) showError(event.message);
  });
  window.addEventListener("unhandledrejection", (event) => showError(event.reason));
}

// Read-only UI state for tests and external checks, next to client.js's automation surface.
function exposeUi() {
  const surface = window.sandseg ?? (window.sandseg = {});
  surface.ui = {
    get prompts() {
      return structuredClone(state.prompts);
    },
    get selectedMask() {
      return state.result ? state.selected : null;
    },
    get committed() {
      return state.committed;
    },
    get result() {
      return state.result;
    },
  };
}

wire();
exposeUi();
addSampleButtons();
renderAll();
refreshLoading();
if (client.state === "ready") onReady({});
else if (typeof client.state === "string" && client.state.startsWith("error")) {
  onClientError(client.state.replace(/^error:\s*/, ""));
}
