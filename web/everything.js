// Segment everything (issue 15, item 5): the automatic mask generator where the image lives
// (the worker's sandseg.browser.everything: this browser's WebGPU, or the server), its
// progress and cancellation, and its masks on the page.
//
//   await window.sandseg.everything(params)  // -> {annotations, ms, backend}
//   window.sandseg.cancelEverything()         // stops it at the next batch
//
// params: AutomaticMaskGenerator's keyword arguments (points_per_side, pred_iou_thresh, ...);
// annotations: the records `sandseg everything` writes (segmentation as COCO compressed RLE,
// area, bbox, predicted_iou, point_coords, stability_score, crop_box), in the generator's order.
import { COLOURS, colourPixel, paintMask, toImage } from "./canvas.js";
import { getClient } from "./client.js";
import { button, el, setText } from "./dom.js";
import { baseName, download } from "./export.js";
import { ensureActive, patchObject } from "./objects.js";
import { changed, showError, state, update } from "./state.js";

let running = null; // the run in progress: {cancelled}

// show: whether the worker's image is the page's (its masks are then drawn on it).
export async function runEverything(params = {}, show = true) {
  if (running) throw new Error("segment everything is already running: wait for it or cancel it");
  const token = show ? state.image?.token : null;
  running = { cancelled: false };
  update({ everything: { running: true, done: 0, total: null, annotations: null } });
  try {
    const { annotations, ms, backend } = await getClient().everything(params ?? {});
    const mine = token && token === state.image?.token;
    const result = { running: false, annotations, backend, ms, token, shown: true, hover: null };
    update({ everything: mine ? result : null });
    return { annotations, ms, backend };
  } catch (error) {
    update({ everything: null, ...(running?.cancelled ? { error: null } : {}) });
    throw error;
  } finally {
    running = null;
  }
}

export function cancelEverything() {
  if (!running) return false;
  running.cancelled = true;
  getClient().cancelEverything();
  return true;
}

// The worker's progress events for it (batches done / total).
export function wireEverything() {
  getClient().addEventListener("progress", ({ detail }) => {
    if (detail.stage !== "everything" || !running) return;
    update({ everything: { ...state.everything, done: detail.done, total: detail.total } });
  });
}

// window.sandseg.everything(params) and cancelEverything(); failures are shown on the page
// (a cancellation is not a failure) and thrown to the caller.
export function everythingSurface(isPagesImage) {
  return {
    async everything(params = {}) {
      try {
        return await runEverything(params, isPagesImage());
      } catch (error) {
        if (!/was cancelled/.test(error.message)) {
          showError(`Segment everything failed: ${error.message}`);
        }
        throw error;
      }
    },
    cancelEverything,
    setEverythingParams,
  };
}

// ---- On the page: the panel, the masks in distinct colours, hover, click to select -------

let params = {}; // what the page's Everything button runs with (default: the generator's)

export function setEverythingParams(next) {
  params = { ...(next ?? {}) };
}

export function buildEverythingPanel(view) {
  view.everything = button("everything-button", "Everything");
  view.everythingCancel = button("everything-cancel", "Cancel");
  view.everythingToggle = button("everything-toggle", "Hide masks");
  view.everythingExport = button("everything-export", "Export all (COCO JSON)");
  view.everythingBar = el("progress", {
    id: "everything-progress",
    max: 1,
    "aria-label": "Segment everything: batches done",
  });
  view.everythingInfo = el("p", { class: "everything-info", id: "everything-info" }, "");
  view.everythingCanvas = el("canvas", { id: "everything-canvas", class: "layer overlay" });
  return [
    el("div", { class: "button-row" }, view.everything, view.everythingCancel),
    view.everythingBar,
    view.everythingInfo,
    el("div", { class: "button-row" }, view.everythingToggle, view.everythingExport),
  ];
}

function onEverything() {
  runEverything(params, true).catch((error) => {
    if (!/was cancelled/.test(error.message)) {
      showError(`Segment everything failed: ${error.message}`);
    }
  });
}

function exportAll() {
  const { annotations } = state.everything ?? {};
  if (!annotations?.length || !state.image) {
    showError("Nothing to export: run Everything on the image first");
    return;
  }
  const { name, width, height } = state.image;
  const document_ = { image: { file_name: name, height, width }, annotations };
  const blob = new Blob([JSON.stringify(document_)], { type: "application/json" });
  download(blob, `${baseName(state.image)}_everything.json`);
}

// The topmost mask (the last drawn) under a point of the image, or null.
function maskAt([x, y]) {
  const masks = decodedMasks();
  const { width } = state.image;
  const k = Math.min(Math.floor(y), state.image.height - 1) * width;
  const i = Math.min(Math.floor(x), width - 1);
  for (let m = masks.length - 1; m >= 0; m--) if (masks[m][k + i]) return m;
  return null;
}

const shown = () => Boolean(state.everything?.annotations?.length && state.everything.shown);

// While the masks are shown, the image's pointer events pick masks (captured before ui.js's
// prompt handlers): hover highlights one, a click makes it the selected object's mask, with
// its grid point as the prompt (points added afterwards refine it), and hides the masks.
function onPointer(view, event) {
  if (!shown() || event.button > 0 || event.shiftKey) return;
  event.stopImmediatePropagation();
  const hit = maskAt(toImage(view, state.image, event));
  if (event.type === "pointermove") {
    if (hit !== state.everything.hover) {
      update({ everything: { ...state.everything, hover: hit } });
    }
    return;
  }
  event.preventDefault();
  if (event.type === "pointerdown" && hit !== null) selectMask(hit);
}

export function selectMask(index) {
  const annotation = state.everything.annotations[index];
  const { width, height } = state.image;
  const result = {
    masks: decodedMasks()[index],
    shape: [1, height, width],
    iouPredictions: [annotation.predicted_iou],
    lowResMasks: null,
    lowResShape: null,
    backend: state.everything.backend,
  };
  const [[x, y]] = annotation.point_coords;
  const id = ensureActive();
  patchObject(id, { prompts: [{ kind: "point", x, y, label: 1 }], result, selected: 0 });
  update({ everything: { ...state.everything, shown: false, hover: null } });
}

export function wireEverythingPage(view) {
  view.everything.addEventListener("click", onEverything);
  view.everythingCancel.addEventListener("click", cancelEverything);
  view.everythingExport.addEventListener("click", exportAll);
  view.everythingToggle.addEventListener("click", () => {
    const { everything } = state;
    if (!everything?.annotations) return;
    update({ everything: { ...everything, shown: !everything.shown } });
  });
  for (const type of ["pointerdown", "pointermove", "pointerup"]) {
    view.markerCanvas.addEventListener(type, (event) => onPointer(view, event), { capture: true });
  }
}

export function renderEverything(view, state_) {
  const run = state_.everything;
  const running = Boolean(run?.running);
  view.everything.disabled = running || !state_.encoded;
  view.everythingCancel.hidden = !running;
  view.everythingBar.hidden = !running;
  if (running && run.total) view.everythingBar.value = run.done / run.total;
  else if (running) view.everythingBar.removeAttribute("value");
  const count = run?.annotations?.length;
  view.everythingToggle.hidden = view.everythingExport.hidden = !count;
  setText(view.everythingToggle, run?.shown ? "Hide masks" : "Show masks");
  let info = "";
  if (running) info = `Segmenting everything: batch ${run.done ?? 0} of ${run.total ?? "?"}`;
  else if (run?.annotations) {
    info = `${count} masks (${run.backend}, ${(run.ms / 1000).toFixed(1)} s)`;
  }
  setText(view.everythingInfo, info);
  drawEverything(view, state_);
}

// ---- The masks: COCO compressed RLE decoded once per run, drawn at the mask layer's size ----

// COCO's compressed counts (pycocotools' rleFrString).
function countsOf(text) {
  const counts = [];
  for (let p = 0; p < text.length; ) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = text.charCodeAt(p++) - 48;
      x |= (c & 0x1f) << (5 * k++);
      more = Boolean(c & 0x20);
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// {size: [h, w], counts} (column-major runs, from a 0-run) -> row-major (h, w) 0/1 bytes.
export function decodeRle({ size: [h, w], counts }) {
  const out = new Uint8Array(h * w);
  let i = 0;
  let on = false;
  for (const n of countsOf(counts)) {
    if (on) for (let j = i; j < i + n; j++) out[(j % h) * w + Math.floor(j / h)] = 1;
    i += n;
    on = !on;
  }
  return out;
}

const decoded = new WeakMap(); // annotations -> their masks
function decodedMasks() {
  const { annotations } = state.everything;
  if (!decoded.has(annotations)) {
    decoded.set(annotations, annotations.map((a) => decodeRle(a.segmentation)));
  }
  return decoded.get(annotations);
}

// Mask k's colour: hues spread by the golden angle, so neighbours in the list differ.
function colourOf(k) {
  const h = (k * 137.508) % 360;
  const f = (n) => {
    const a = (n + h / 30) % 12;
    return Math.round(255 * (0.5 - 0.45 * Math.max(-1, Math.min(a - 3, 9 - a, 1))));
  };
  return `#${[f(0), f(8), f(4)].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

const FILL_ALPHA = 110;
const HOVER_ALPHA = 200;
let base = null; // the layer without the hover highlight: {key, image}

function drawEverything(view, { everything, image }) {
  const canvas = view.everythingCanvas;
  if (!canvas.isConnected) view.canvasWrap.insertBefore(canvas, view.markerCanvas);
  const on = shown() && everything.token === image?.token;
  canvas.hidden = !on;
  const { width, height } = view.maskCanvas;
  if (!on || !changed("everything-layer", everything, width, height)) return;
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = view.maskCanvas.style.width;
  canvas.style.height = view.maskCanvas.style.height;
  const masks = decodedMasks();
  const key = [everything.annotations, width, height];
  if (!base || base.key.some((v, i) => v !== key[i])) {
    const layer = new ImageData(width, height);
    masks.forEach((mask, k) => {
      const colour = colourOf(k);
      const result = { masks: mask, shape: [1, image.height, image.width] };
      const fill = colourPixel(colour, FILL_ALPHA);
      paintMask(result, 0, width, height, fill, colourPixel(colour, 255), layer);
    });
    base = { key, image: layer };
  }
  const layer = new ImageData(new Uint8ClampedArray(base.image.data), width, height);
  const { hover } = everything;
  if (hover !== null && hover !== undefined) {
    const result = { masks: masks[hover], shape: [1, image.height, image.width] };
    const fill = colourPixel(colourOf(hover), HOVER_ALPHA);
    paintMask(result, 0, width, height, fill, COLOURS.edge, layer);
  }
  canvas.getContext("2d").putImageData(layer, 0, 0);
}
