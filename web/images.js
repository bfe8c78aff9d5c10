// Opening images: a file, a drop, a paste or a sample. The image is checked once, by
// client.decode: against the runtime's limit, which the model reports when it is ready, from
// the file's header before its pixels are decoded. The encoder then runs on that decode.
import { getClient } from "./client.js";
import { el, messageOf } from "./dom.js";
import { objectsOf } from "./objects.js";
import { resetQueue } from "./predictions.js";
import { showError, state, update } from "./state.js";

const SAMPLES = ["picture1.jpg", "picture2.jpg", "dogs.jpg"];

const client = getClient();
let imageToken = 0; // the latest open: an older one that finishes later changes nothing
let readyWaiters = [];

// The model booted (no error) or cannot be used (an error): whoever waits for it goes on.
export function modelSettled(error = null) {
  for (const waiter of readyWaiters) {
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
  readyWaiters = [];
}

function whenReady() {
  if (state.failed) return Promise.reject(new Error("the model is not available"));
  if (state.ready) return Promise.resolve();
  return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
}

// An image's key for its objects (objects.js): the file's sha256, so the same file opened
// again finds its objects.
async function keyOf(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Bad input becomes an Error whose message is shown on the page.
async function decode(blob) {
  if (blob.type && !blob.type.startsWith("image/")) {
    throw new Error(`it is not an image (${blob.type})`);
  }
  await whenReady();
  const decoded = await client.decode(blob);
  try {
    // The page's own copy: the worker takes the decoded bitmap.
    return { decoded, bitmap: await createImageBitmap(decoded.bitmap) };
  } catch (error) {
    decoded.bitmap.close();
    throw error;
  }
}

export async function openImage(blob, name, { keepError = false } = {}) {
  const token = ++imageToken;
  let decoded, bitmap, key;
  try {
    ({ decoded, bitmap } = await decode(blob));
    key = await keyOf(blob);
  } catch (error) {
    if (token === imageToken) showError(`Could not open ${name}: ${messageOf(error)}.`);
    return;
  }
  if (token !== imageToken) {
    decoded.bitmap.close();
    bitmap.close();
    return;
  }
  state.image?.bitmap.close();
  resetQueue();
  update({
    ...(keepError ? {} : { error: null }),
    image: { bitmap, blob, width: bitmap.width, height: bitmap.height, name, token, key },
    stageImage: "encoding",
    progress: { stage: "encoding", fraction: null, message: "Running the image encoder…" },
    ...{ encoding: true, encoded: false, imageInfo: null, encoderMs: null, decoderMs: null },
    ...{ ...objectsOf(key), preview: null },
  });
  try {
    const info = await client.encode(decoded);
    if (token !== imageToken) return;
    update({
      encoded: !state.failed,
      encoderMs: info.encoderMs ?? null,
      backend: info.backend ?? state.backend,
      imageInfo: info,
      modes: client.modes,
      stageImage: "ready",
    });
  } catch (error) {
    if (token !== imageToken) return;
    update({ stageImage: "error" });
    showError(`Could not encode ${name}: ${messageOf(error)}`);
  } finally {
    if (token === imageToken) update({ encoding: false });
  }
}

// window.sandseg.setImage(source) encodes in the worker without the page's pickers; the page
// then shows that image with its objects, as if opened here (no second encode). `source`: a
// URL or a Blob (a bitmap stays the caller's: the page has no file to key its objects by).
export async function adoptImage(source, info) {
  const token = ++imageToken;
  const blob = typeof source === "string" ? await (await fetch(source)).blob() : source;
  const bitmap = await createImageBitmap(blob);
  const key = await keyOf(blob);
  if (token !== imageToken) {
    bitmap.close();
    return;
  }
  state.image?.bitmap.close();
  resetQueue();
  const name = typeof source === "string" ? source.split("/").pop() : (blob.name ?? "image");
  update({
    error: null,
    image: { bitmap, blob, width: bitmap.width, height: bitmap.height, name, token, key },
    stageImage: "ready",
    ...{ encoding: false, encoded: true, imageInfo: info, decoderMs: null },
    ...{ encoderMs: info.encoderMs ?? null, backend: info.backend ?? state.backend },
    ...{ modes: client.modes, ...objectsOf(key), preview: null },
  });
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
export function addSampleButtons(container) {
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
    container.append(button);
  }
}

function firstImageFile(files) {
  return [...(files ?? [])].find((file) => file.type.startsWith("image/")) ?? files?.[0];
}

export function onDrop(event) {
  event.preventDefault();
  update({ dragging: false });
  const file = firstImageFile(event.dataTransfer?.files);
  if (file) openImage(file, file.name || "the dropped file");
  else showError("Nothing to open: drop an image file.");
}

export function onPaste(event) {
  const files = [...(event.clipboardData?.items ?? [])]
    .filter((item) => item.kind === "file")
    .map((item) => item.getAsFile())
    .filter(Boolean);
  if (!files.length) return;
  event.preventDefault();
  const file = firstImageFile(files);
  openImage(file, file.name || "the pasted image");
}
