// The page's one state and its one update path. Modules read `state` and change it only with
// update(patch), which merges the patch and schedules one render for the end of the current
// task (a microtask, not an animation frame: whatever runs after an event handler, a test or
// another tool, sees the page drawn from the state it reads). Renderers skip work whose
// inputs did not change (`changed`), so a render costs little when little changed.
import { messageOf } from "./dom.js";

export const state = {
  ready: false,
  failed: false,
  backend: null,
  adapter: "",
  modes: null, // client.modes: {mode, clientAvailable, serverAvailable, serverError, notice}
  runtime: null, // client.runtime: {runtime (the client runtime in force), available, reason}
  modeChoices: [], // client.modeChoices: [{value, label, runs, needsClient, needsServer}]
  firstLoad: {}, // client.timings at boot: the first-load breakdown
  progress: { stage: null, fraction: null, message: "Starting…" }, // the worker's last progress
  error: null, // the banner's text
  image: null, // {bitmap, blob, width, height, name, token}
  stageImage: "none", // #stage's data-image: "none" | "encoding" | "ready" | "error"
  encoding: false,
  encoded: false,
  imageInfo: null, // the last setImage result: mode, reason, bytes up and down
  // The open image's objects (objects.js), each with its prompts ({kind: "point", x, y,
  // label} | {kind: "box", box: [x0, y0, x1, y1]}), committed result and chosen mask.
  objects: [],
  activeId: null, // the selected object: prompts, hover and mask choices act on it
  drag: null, // a press on the image: {start, current, x, y, button, shift, moved}
  preview: null, // the hover predict result (for the selected object)
  committed: 0,
  encoderMs: null,
  decoderMs: null,
  busy: false, // a prediction is running
  activity: "",
  dragging: false, // a file is dragged over the page
  refine: false,
  multimask: true,
  hoverPreview: true,
  weights: null, // /api/v1/model's weights: {name, sha256, demo}, once read
  // Segment everything (everything.js): {running, done, total, annotations, backend, ms, hover}
  everything: null,
};

let renderer = () => {};
let scheduled = false;

export function setRenderer(render) {
  renderer = render;
}

export function update(patch = {}) {
  Object.assign(state, patch);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    try {
      renderer();
    } catch (error) {
      // Not rethrown: the page's error handler would update the state and render again.
      console.error("sandseg: the page could not render", error);
    }
  });
}

export function showError(error) {
  update({ error: messageOf(error) });
}

export function hideError() {
  update({ error: null });
}

const seen = new Map();

// True when `deps` differ (by identity) from the last call with this key.
export function changed(key, ...deps) {
  const last = seen.get(key);
  if (last && last.length === deps.length && last.every((d, i) => Object.is(d, deps[i]))) {
    return false;
  }
  seen.set(key, deps);
  return true;
}
