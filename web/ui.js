// The sandseg page: open an image, prompt MobileSAM with points and a box for each of several
// objects, see them all and export them (masks, COCO JSON, label PNG).
//
// The model runs in the worker behind client.js (PY-1); the page only draws. Its modules:
//   state.js        the one state; update(patch) schedules one render
//   view.js         the DOM, built once          render.js    the DOM from the state
//   canvas.js       image, masks and markers     predictions.js  one predict at a time
//   images.js       opening and checking images  export.js    mask and cut-out PNGs
//   objects.js      each image's objects         objects_panel.js  their list
//   annotations.js  COCO JSON and label PNG      shortcuts.js, help.js  keys and their help
//   surface.js      window.sandseg's objects     weights_info.js  the demo-weights notice
// This one wires events to state updates and exposes window.sandseg.ui.
import { downloadCoco, wireAnnotations } from "./annotations.js";
import { toImage } from "./canvas.js";
import { getClient } from "./client.js";
import { messageOf } from "./dom.js";
import { wireEverythingPage } from "./everything.js";
import { exportPng } from "./export.js";
import { closeHelp, openHelp } from "./help.js";
import { addSampleButtons, modelSettled, onDrop, onPaste, openImage } from "./images.js";
import {
  active,
  addObject,
  ensureActive,
  patchObject,
  removeObject,
  undoStructural,
} from "./objects.js";
import { wireObjects } from "./objects_panel.js";
import { dropHover, hoverAt, pointerLeft, requestCommit } from "./predictions.js";
import { render } from "./render.js";
import { installShortcuts } from "./shortcuts.js";
import { hideError, setRenderer, showError, state, update } from "./state.js";
import { installSurface } from "./surface.js";
import { buildView } from "./view.js";
import { readWeightsInfo } from "./weights_info.js";

// A press that moves further than this (CSS px) is a box drag, not a click.
const DRAG_THRESHOLD_PX = 5;

const client = getClient();
const view = buildView();

// ---- The model: boot, errors, restarts, modes ----------------------------------------------

function onReady(detail = {}) {
  update({
    ready: true,
    backend: detail.backend ?? state.backend ?? null,
    adapter: detail.adapter ?? client.adapter ?? "",
    modes: client.modes,
    runtime: client.runtime ?? null,
    modeChoices: client.modeChoices,
    firstLoad: client.timings ?? {},
  });
  modelSettled();
}

// Non-fatal errors (a bad prompt) also reject the call that caused them, which shows them;
// a fatal one (the worker died, or never started) stops the model until a reload.
function onClientError(detail) {
  showError(detail);
  if (detail?.fatal === false || state.failed) return;
  const progress = { ...state.progress, message: messageOf(detail) };
  update({ failed: true, encoded: false, progress });
  modelSettled(new Error("the model did not load"));
}

// PY-3: the client replaced a stuck worker. The new one boots; the image is encoded again.
function onRestart() {
  update({ ready: false, encoded: false });
  if (state.image?.blob) openImage(state.image.blob, state.image.name, { keepError: true });
}

async function onModeChange() {
  try {
    await client.setMode(view.modeSelect.value);
    hideError();
  } catch (error) {
    showError(`Could not change the mode: ${messageOf(error)}`);
  }
  // A copy: the select shows the mode in force even when the change was refused.
  update({ modes: { ...client.modes } });
}

// ---- Prompts -------------------------------------------------------------------------------

// Prompts belong to the selected object (made first when every object was deleted).
function addPrompt(prompt) {
  dropHover();
  const id = ensureActive();
  patchObject(id, { prompts: [...active().prompts, prompt] });
  update({ preview: null });
  requestCommit(true);
}

// Without prompts, an object shows what it was imported with (its base), else nothing.
function setPrompts(prompts) {
  const object = active();
  if (!object.prompts.length) return;
  const patch = prompts.length ? { prompts } : { prompts, result: object.base, selected: 0 };
  patchObject(object.id, patch);
  if (prompts.length) requestCommit(false);
}

function undo() {
  if (!undoStructural()) setPrompts(active().prompts.slice(0, -1));
}

const clearPrompts = () => setPrompts([]);

function onMultimaskChange() {
  update({ multimask: view.multimask.input.checked, preview: null });
  if (active().prompts.length) requestCommit(false);
}

function onHoverToggle() {
  const hoverPreview = view.hover.input.checked;
  if (!hoverPreview) dropHover();
  update(hoverPreview ? { hoverPreview } : { hoverPreview, preview: null });
}

function chooseMask(index) {
  const object = active();
  if (object.result && index < object.result.shape[0]) {
    patchObject(object.id, { selected: index });
  }
}

// Keys act like the page's own controls.
function tryTo(action) {
  return () => {
    try {
      action();
    } catch (error) {
      showError(error);
    }
  };
}

const SHORTCUT_ACTIONS = {
  newObject: tryTo(() => addObject()),
  undo,
  clear: clearPrompts,
  deleteObject: tryTo(() => state.activeId !== null && removeObject(state.activeId)),
  chooseMask,
  exportCoco: () => downloadCoco("rle"),
  toggleHover: () => {
    view.hover.input.checked = !view.hover.input.checked;
    onHoverToggle();
  },
  help: () => openHelp(view),
  cancel: () => {
    if (!closeHelp(view) && state.drag) update({ drag: null });
  },
};

// ---- Pointer and keyboard ------------------------------------------------------------------

function onPointerDown(event) {
  if (!state.encoded || (event.button !== 0 && event.button !== 2)) return;
  event.preventDefault();
  view.markerCanvas.setPointerCapture(event.pointerId);
  const at = toImage(view, state.image, event);
  const press = { start: at, current: at, x: event.clientX, y: event.clientY };
  update({ drag: { ...press, button: event.button, shift: event.shiftKey, moved: false } });
}

function onPointerMove(event) {
  if (!state.image) return;
  const { drag } = state;
  if (!drag) {
    hoverAt(toImage(view, state.image, event));
    return;
  }
  const distance = Math.hypot(event.clientX - drag.x, event.clientY - drag.y);
  const moved = drag.moved || (drag.button === 0 && distance > DRAG_THRESHOLD_PX);
  update({ drag: { ...drag, current: toImage(view, state.image, event), moved } });
}

function onPointerUp(event) {
  const done = state.drag;
  if (!done) return;
  update({ drag: null });
  if (done.moved) {
    const [x1, y1] = toImage(view, state.image, event);
    const [x0, y0] = done.start;
    const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    addPrompt({ kind: "box", box });
    return;
  }
  const negative = done.button === 2 || done.shift || event.shiftKey;
  const [x, y] = done.start;
  addPrompt({ kind: "point", x, y, label: negative ? 0 : 1 });
}

function onMaskChoice(event) {
  const button = event.target.closest(".mask-choice");
  if (button) chooseMask(Number(button.dataset.index));
}

function onDragOver(event) {
  event.preventDefault();
  if (!state.dragging) update({ dragging: true });
}

function onDragLeave(event) {
  if (!event.relatedTarget) update({ dragging: false });
}

function onFileChosen() {
  const file = view.fileInput.files[0];
  view.fileInput.value = "";
  if (file) openImage(file, file.name);
}

// ---- Wiring --------------------------------------------------------------------------------

function listen(target, handlers) {
  for (const [type, handler] of Object.entries(handlers)) target.addEventListener(type, handler);
}

function wire() {
  listen(client, {
    progress: (event) => onProgress(event.detail ?? {}),
    ready: (event) => onReady(event.detail ?? {}),
    error: (event) => onClientError(event.detail ?? event),
    mode: () => update({ modes: client.modes }),
    restart: onRestart,
  });
  view.dismiss.addEventListener("click", hideError);
  view.open.addEventListener("click", () => view.fileInput.click());
  view.fileInput.addEventListener("change", onFileChosen);
  view.refine.input.addEventListener("change", () => update({ refine: view.refine.input.checked }));
  view.multimask.input.addEventListener("change", onMultimaskChange);
  view.hover.input.addEventListener("change", onHoverToggle);
  view.undo.addEventListener("click", undo);
  view.clear.addEventListener("click", clearPrompts);
  view.masks.addEventListener("click", onMaskChoice);
  view.exportMask.addEventListener("click", () => exportPng("mask"));
  view.exportCutout.addEventListener("click", () => exportPng("cutout"));
  view.modeSelect.addEventListener("change", onModeChange);
  listen(view.markerCanvas, {
    pointerdown: onPointerDown,
    pointermove: onPointerMove,
    pointerup: onPointerUp,
    pointercancel: () => update({ drag: null }),
    pointerleave: pointerLeft,
    contextmenu: (event) => event.preventDefault(),
  });
  listen(document, {
    dragover: onDragOver,
    dragleave: onDragLeave,
    drop: onDrop,
    paste: onPaste,
  });
  installShortcuts(document, SHORTCUT_ACTIONS);
  wireObjects(view);
  wireAnnotations(view);
  wireEverythingPage(view);
  new ResizeObserver(() => update()).observe(view.stage);
  window.addEventListener("error", (event) => {
    if (!String(event.message).startsWith("ResizeObserver")) showError(event.message);
  });
  window.addEventListener("unhandledrejection", (event) => showError(event.reason));
}

// The worker's progress: boot stages and the encoder; a decode only says so in the stage.
function onProgress({ stage, fraction, message }) {
  if (stage === "decoding") {
    update({ activity: message || "Decoding…" });
    return;
  }
  update({ progress: { stage, fraction, message: message || state.progress.message } });
}

// Read-only UI state for tests and external checks, next to client.js's automation surface.
function exposeUi() {
  const surface = window.sandseg ?? (window.sandseg = {});
  surface.ui = {
    get prompts() {
      return structuredClone(active().prompts);
    },
    get selectedMask() {
      return active().result ? active().selected : null;
    },
    get committed() {
      return state.committed;
    },
    get result() {
      return active().result;
    },
  };
}

document.getElementById("app").append(...view.root);
setRenderer(() => render(view, state));
wire();
exposeUi();
installSurface();
readWeightsInfo();
addSampleButtons(view.samples);
update();
if (client.state === "ready") onReady({});
else if (typeof client.state === "string" && client.state.startsWith("error")) {
  onClientError(client.state.replace(/^error:\s*/, ""));
}
