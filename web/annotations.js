// All of the open image's objects out as COCO JSON or an indexed label PNG, and a COCO JSON
// back in, through sandseg.annotations in the worker (sandseg.browser.annotations). Objects
// without a mask are left out; object k of the label PNG is annotation k of the COCO JSON.
// An import for another image, or a malformed one, is refused with words on the page and
// changes nothing; an accepted one replaces the objects (Undo brings them back).
import { getClient } from "./client.js";
import { messageOf } from "./dom.js";
import { baseName, download } from "./export.js";
import { iouOf, maskOf, replaceObjects } from "./objects.js";
import { showError, state } from "./state.js";

const client = getClient();

function openImage() {
  if (!state.image || !state.encoded) {
    throw new Error("open an image and wait for it to be encoded");
  }
  return state.image;
}

// The request sandseg.browser.annotations reads: the objects that have a mask, in list order.
function request() {
  const { name, width, height } = openImage();
  const objects = state.objects
    .filter((o) => o.result)
    .map((o) => ({ name: o.name, mask: maskOf(o).slice(), iou: iouOf(o) }));
  if (!objects.length) throw new Error("no object has a mask yet: click the image first");
  return { fileName: name, width, height, objects };
}

/** The objects as a COCO document: the parsed JSON object. segmentation "rle" (compressed,
 * exact) or "polygon" (traced, simplified at `tolerance` pixels, kept in info). */
export async function cocoDocument({ segmentation = "rle", tolerance = 1 } = {}) {
  return JSON.parse(await client.annotations("coco", request(), segmentation, tolerance));
}

/** The objects as an 8-bit PNG (0 background, k object k): its bytes. */
export async function labelPng() {
  return client.annotations("labelPng", request());
}

/** A COCO document (JSON text) for the open image replaces its objects.
 * -> the new objects; throws (and changes nothing) on a document that does not fit. */
export async function importCoco(text) {
  const { name, width, height } = openImage();
  const items = await client.annotations("importCoco", text, width, height, name);
  if (!items.length) throw new Error(`the document has no annotation for ${name}`);
  return replaceObjects(items);
}

// The page's buttons and shortcuts: a file each way, failures shown on the page.

export async function downloadCoco(segmentation = "rle") {
  try {
    const text = JSON.stringify(await cocoDocument({ segmentation }));
    const blob = new Blob([text], { type: "application/json" });
    const suffix = segmentation === "rle" ? "coco" : "coco-polygons";
    download(blob, `${baseName(state.image)}-${suffix}.json`);
  } catch (error) {
    showError(`COCO export failed: ${messageOf(error)}`);
  }
}

export async function downloadLabels() {
  try {
    const blob = new Blob([await labelPng()], { type: "image/png" });
    download(blob, `${baseName(state.image)}-labels.png`);
  } catch (error) {
    showError(`Label PNG export failed: ${messageOf(error)}`);
  }
}

export async function importCocoFile(file) {
  try {
    await importCoco(await file.text());
  } catch (error) {
    showError(`Could not import ${file.name}: ${messageOf(error)}. Nothing was changed.`);
  }
}

export function wireAnnotations(view) {
  view.exportCoco.addEventListener("click", () => downloadCoco("rle"));
  view.exportPolygons.addEventListener("click", () => downloadCoco("polygon"));
  view.exportLabels.addEventListener("click", downloadLabels);
  view.importCoco.addEventListener("click", () => view.importInput.click());
  view.importInput.addEventListener("change", () => {
    const file = view.importInput.files[0];
    view.importInput.value = "";
    if (file) importCocoFile(file);
  });
}
