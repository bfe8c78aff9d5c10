// The page's DOM, built once: buildView() returns the nodes the renderers fill in (render.js,
// canvas.js) and the wiring listens to (ui.js). Nothing here holds state or handles events.
import { button, el } from "./dom.js";
import { buildHelp } from "./help.js";
import { buildEverythingPanel } from "./everything.js";
import { buildObjectsPanel } from "./objects_panel.js";

export const LOAD_STAGES = [
  ["pyodide", "Pyodide"],
  ["package", "sandseg package"],
  ["weights", "Weights"],
  ["pipelines", "Pipeline compilation"],
  ["probe", "Runtime probe"],
  ["server", "Offload server"],
  ["encoding", "Image encoding"],
];

export function buildView() {
  const view = {};
  const viewer = el(
    "section",
    { class: "viewer" },
    buildToolbar(view),
    buildStage(view),
    el(
      "p",
      { class: "hint" },
      "Left click: positive point · Right click or Shift+click: negative point · ",
      "Drag: box · N: new object · Z: undo · C: clear · ?: all shortcuts",
    ),
  );
  const workspace = el("div", { class: "workspace" }, viewer, buildSidebar(view));
  const help = buildHelp(view);
  view.root = [buildHeader(view), buildNotice(view), buildError(view), workspace, help];
  return view;
}

function buildHeader(view) {
  view.badge = el("span", { class: "badge", id: "backend-badge", title: "" }, "Backend: –");
  return el(
    "header",
    { class: "app-header" },
    el("h1", {}, "sandseg ", el("span", { class: "subtitle" }, "MobileSAM in your browser")),
    el("span", { class: "header-end" }, view.badge, view.helpButton),
  );
}

// Shown, without blocking anything, while the server serves the seeded demo weights.
function buildNotice(view) {
  view.weightsNotice = el(
    "p",
    { class: "weights-notice", id: "weights-notice", role: "note", hidden: true },
    "demo weights: seeded random, masks look like noise; run with mobile_sam.pt for real masks",
  );
  return view.weightsNotice;
}

function buildError(view) {
  view.errorText = el("p", { class: "error-text" });
  view.dismiss = el("button", { class: "dismiss", type: "button" }, "Dismiss");
  view.error = el(
    "div",
    { class: "error-banner", id: "error-banner", role: "alert", hidden: true },
    el("strong", {}, "Error: "),
    view.errorText,
    view.dismiss,
  );
  return view.error;
}

function buildToolbar(view) {
  view.fileInput = el("input", {
    type: "file",
    id: "file-input",
    accept: "image/*",
    class: "file-input",
    "aria-label": "Image file to open",
  });
  view.open = button("open-button", "Open image…");
  view.samples = el("div", { class: "samples", id: "samples" });
  view.imageInfo = el("span", { class: "image-info", id: "image-info" });
  return el("div", { class: "toolbar" }, view.open, view.fileInput, view.samples, view.imageInfo);
}

function buildStage(view) {
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
  return view.stage;
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

function buildSidebar(view) {
  // The worker refines with the best-scoring mask of the previous click's prediction.
  view.refine = toggle("refine-toggle", "Refine with previous mask", false);
  view.multimask = toggle("multimask-toggle", "Multimask (3 masks)", true);
  view.hover = toggle("hover-toggle", "Hover preview", true);
  view.undo = button("undo-button", "Undo");
  view.clear = button("clear-button", "Clear");
  view.promptInfo = el("p", { class: "prompt-info", id: "prompt-info" }, "No prompts yet.");
  view.masks = el("div", {
    class: "mask-choices",
    id: "mask-choices",
    role: "group",
    "aria-label": "Masks of the selected object",
  });
  view.exportMask = button("export-mask", "Mask PNG");
  view.exportCutout = button("export-cutout", "Cut-out PNG");
  view.exportCoco = button("export-coco", "COCO JSON");
  view.exportPolygons = button("export-polygons", "COCO polygons", {
    title: "COCO JSON with polygons (1 px tolerance)",
  });
  view.exportLabels = button("export-labels", "Label PNG");
  view.importCoco = button("import-coco", "Import COCO…");
  view.importInput = el("input", {
    type: "file",
    id: "import-coco-input",
    accept: ".json,application/json",
    class: "file-input",
    "aria-label": "COCO JSON file to import",
  });
  view.timings = el("dl", { class: "timings", id: "timings" });
  // Its options are the modes Python serves at boot (render.js).
  view.modeSelect = el("select", { id: "mode-select", disabled: true });
  view.modeReason = el("p", { class: "mode-reason", id: "mode-reason" }, "");
  view.modeNotice = el("p", { class: "mode-notice", id: "mode-notice", role: "status" });
  // The client runtime in force and why (auto: what it measured), GP-2.
  view.runtimeReason = el("p", { class: "mode-reason", id: "runtime-reason" }, "");
  view.modeNotice.hidden = true;
  return el(
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
      view.runtimeReason,
    ),
    panel("Objects", ...buildObjectsPanel(view)),
    panel("Everything", ...buildEverythingPanel(view)),
    panel("Masks", view.masks),
    panel(
      "Export",
      el("div", { class: "button-row" }, view.exportMask, view.exportCutout),
      el("div", { class: "button-row" }, view.exportCoco, view.exportPolygons, view.exportLabels),
      el("div", { class: "button-row" }, view.importCoco, view.importInput),
    ),
    panel("Timings", view.timings),
  );
}

function toggle(id, text, checked) {
  const input = el("input", { type: "checkbox", id, checked });
  const root = el("label", { class: "toggle", htmlFor: id }, input, el("span", {}, text));
  return { input, root };
}

function panel(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}
