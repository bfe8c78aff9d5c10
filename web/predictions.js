// The prediction queue: one predict at a time. A wanted commit (click, box, undo) goes first,
// then at most one hover preview for the latest cursor position, throttled to
// HOVER_INTERVAL_MS. Coordinates sent to predict are original-image pixels, as in SamPredictor.
// Previews are sent with `preview: true`: the worker keeps the last committed result as the
// "previous" mask. Prompts and results belong to the selected object (objects.js); a commit
// refines only when that previous mask is the object's own (queue.previous).
import { bestIndex, latestBox } from "./canvas.js";
import { getClient } from "./client.js";
import { messageOf } from "./dom.js";
import { active, patchObject } from "./objects.js";
import { showError, state, update } from "./state.js";

const HOVER_INTERVAL_MS = 150;

const client = getClient();
const queue = {
  inFlight: false,
  commit: false,
  refine: true,
  hover: null, // the latest cursor position in image pixels, waiting for a preview
  pointerInside: false,
  lastHoverAt: 0,
  timer: 0,
  previous: null, // whose result the worker keeps as "previous": {token, id}
};

// A new image, or a prompt that replaces the hover: what was waiting is dropped.
export function resetQueue() {
  Object.assign(queue, { commit: false, refine: true, hover: null, previous: null });
}

/** A committed prediction for object `id` of the image `token` (the worker now keeps it as
 * the "previous" mask). */
export function noteCommitted(token, id) {
  queue.previous = { token, id };
}

export function dropHover() {
  queue.hover = null;
}

export function requestCommit(refine) {
  queue.commit = true;
  queue.refine = queue.refine && refine;
  pump();
}

export function hoverAt(point) {
  queue.pointerInside = true;
  if (state.encoded && !active().prompts.length && state.hoverPreview) {
    queue.hover = point;
    pump();
  }
}

export function pointerLeft() {
  queue.pointerInside = false;
  queue.hover = null;
  if (state.preview) update({ preview: null });
}

function pump() {
  if (queue.inFlight || !state.encoded) return;
  if (queue.commit) {
    const refine = queue.refine;
    Object.assign(queue, { commit: false, refine: true });
    run(commitPredict(refine));
    return;
  }
  if (!queue.hover || active().prompts.length || !state.hoverPreview) return;
  const wait = queue.lastHoverAt + HOVER_INTERVAL_MS - performance.now();
  if (wait > 0) {
    queue.timer ||= setTimeout(() => {
      queue.timer = 0;
      pump();
    }, wait);
    return;
  }
  const at = queue.hover;
  queue.hover = null;
  queue.lastHoverAt = performance.now();
  run(hoverPredict(at));
}

function run(promise) {
  queue.inFlight = true;
  update({ busy: true });
  promise
    .catch((error) => showError(`Prediction failed: ${messageOf(error)}`))
    .finally(() => {
      queue.inFlight = false;
      update({ busy: false, activity: "" });
      pump();
    });
}

function buildRequest(object, refine) {
  const points = object.prompts.filter((p) => p.kind === "point");
  const box = latestBox(object.prompts);
  if (!points.length && !box) return null;
  const own = queue.previous?.token === state.image.token && queue.previous?.id === object.id;
  const useMask = refine && state.refine && object.result && own;
  return {
    points: points.map((p) => [p.x, p.y]),
    labels: points.map((p) => p.label),
    box,
    maskInput: useMask ? "previous" : null,
    multimask: state.multimask,
  };
}

async function commitPredict(refine) {
  const token = state.image.token;
  const object = active();
  const request = buildRequest(object, refine);
  if (!request) {
    patchObject(object.id, { result: object.base, selected: 0 });
    return;
  }
  update({ activity: "Decoding…" });
  const result = await client.predict(request);
  if (token !== state.image?.token) return;
  noteCommitted(token, object.id);
  // Cleared (or deleted) while the model ran: nothing left to show this result for.
  const now = state.objects.find((o) => o.id === object.id);
  if (!now?.prompts.length) return;
  patchObject(object.id, { result, selected: bestIndex(result) });
  update({ preview: null, decoderMs: result.decoderMs ?? null, committed: state.committed + 1 });
}

async function hoverPredict([x, y]) {
  const token = state.image.token;
  const result = await client.predict({
    points: [[x, y]],
    labels: [1],
    box: null,
    maskInput: null,
    multimask: state.multimask,
    preview: true,
  });
  if (token !== state.image?.token || active().prompts.length || !queue.pointerInside) return;
  update({ preview: result, decoderMs: result.decoderMs ?? state.decoderMs });
}
