// window.sandseg's objects (the automation surface, beside client.js's): addObject(name?) ->
// {id}, selectObject(id), removeObject(id), objects() -> [{id, name, iou, area}],
// exportCoco(options?) -> the COCO document (compressed RLE; options {segmentation:
// "polygon", tolerance: pixels} for polygons), importCoco(json) -> {objects},
// exportLabelPng() -> base64 PNG, weights -> {name, sha256, demo} (null until read),
// everything(params) -> {annotations, ms, backend}, cancelEverything(), setEverythingParams
// (what the Everything button runs with) and everythingHover (everything.js).
// tuneKernels() -> {choices, measured, reused, ms}: the WebGPU kernels chosen by measurement
// on this adapter and kept for later loads (auto does it at boot when it keeps WebGPU).
// runtimeProbe: what auto measured ({stage, stageShare, fastEnoughMs, webgpu, wasm: {stage,
// stageMs, encodeMs} or {error}}; sandseg.browser.runtimes); setRuntime(r) also shows the
// runtime in force and why on the page. setImage(url) opens the image on the page too
// (images.js adoptImage: its objects, no second encode); predict(...) acts on the selected
// object of the page's image: its prompt and result become that object's prompts and mask (a
// preview changes nothing). After setImage(bitmap), which the page cannot key objects by,
// predictions stay the caller's until the page opens an image again.
import { cocoDocument, importCoco, labelPng } from "./annotations.js";
import { bestIndex } from "./canvas.js";
import { getClient, toBase64 } from "./client.js";
import { messageOf } from "./dom.js";
import { everythingSurface, wireEverything } from "./everything.js";
import { adoptImage } from "./images.js";
import {
  addObject,
  ensureActive,
  patchObject,
  removeObject,
  selectObject,
  summaries,
} from "./objects.js";
import { noteCommitted } from "./predictions.js";
import { showError, state, update } from "./state.js";

// A predict's prompt as the page's prompts (markers, undo).
function promptsOf({ points = null, labels = null, box = null } = {}) {
  const prompts = (points ?? []).map(([x, y], i) => ({ kind: "point", x, y, label: labels[i] }));
  if (box) prompts.push({ kind: "box", box: [...box] });
  return prompts;
}

// Failures are shown on the page as well as thrown to the caller.
async function shown(what, action) {
  try {
    return await action();
  } catch (error) {
    showError(`${what}: ${messageOf(error)}`);
    throw error;
  }
}

export function installSurface() {
  const surface = window.sandseg;
  const { predict, setImage, setRuntime } = surface;
  let detached = null; // the page's image token when setImage(url) replaced it in the worker
  const detachedNow = () => state.image?.token === detached;

  Object.assign(surface, {
    async setImage(source) {
      detached = state.image?.token ?? null;
      const result = await setImage(source);
      if (typeof source === "string" || source instanceof Blob) {
        await shown("Could not show the image", () => adoptImage(source, result));
        detached = null;
      }
      return result;
    },
    async predict(options = {}) {
      const token = state.image?.token;
      const kept = Boolean(state.image && state.encoded && token !== detached && !options.preview);
      const id = kept ? ensureActive() : null;
      const plain = await predict(options);
      if (kept && token === state.image?.token) {
        const result = getClient().lastResult;
        noteCommitted(token, id);
        patchObject(id, { prompts: promptsOf(options), result, selected: bestIndex(result) });
        update({ preview: null, committed: state.committed + 1 });
      }
      return plain;
    },
    async setRuntime(runtime) {
      const result = await setRuntime(runtime);
      update({ runtime: getClient().runtime });
      return result;
    },
    addObject: (name) => ({ id: addObject(name) }),
    selectObject: (id) => selectObject(id),
    removeObject: (id) => removeObject(id),
    objects: () => summaries(),
    exportCoco: (options) => shown("COCO export failed", () => cocoDocument(options)),
    async importCoco(json) {
      const text = typeof json === "string" ? json : JSON.stringify(json);
      const what = "Could not import the COCO document (nothing was changed)";
      await shown(what, () => importCoco(text));
      return { objects: summaries() };
    },
    ...everythingSurface(() => Boolean(state.image && state.encoded && !detachedNow())),
    exportLabelPng: () => shown("Label PNG export failed", async () => toBase64(await labelPng())),
    tuneKernels: () => getClient().tuneKernels(),
  });
  wireEverything();
  Object.defineProperty(surface, "weights", { get: () => state.weights, enumerable: true });
  const probe = () => getClient().runtimeProbe ?? null;
  Object.defineProperty(surface, "runtimeProbe", { get: probe, enumerable: true });
  // The mask under the pointer while segment everything's masks are shown (null: none).
  const hover = () => state.everything?.hover ?? null;
  Object.defineProperty(surface, "everythingHover", { get: hover, enumerable: true });
}
