// Full-size PNGs of the selected object's chosen mask: white on black, or the image's own
// pixels with alpha 0 outside the mask (composited, so the image is never read back). The
// per-pixel pass runs in slices so that no task blocks the page for long.
import { COLOURS } from "./canvas.js";
import { el, messageOf } from "./dom.js";
import { active, maskOf } from "./objects.js";
import { showError, state } from "./state.js";

const EXPORT_SLICE = 1 << 20;

export async function exportPng(kind) {
  const { image } = state;
  const object = active();
  if (!object.result) return;
  try {
    const [, height, width] = object.result.shape;
    const plane = maskOf(object);
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
    download(blob, `${baseName(image)}-${kind}.png`);
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

export function baseName(image) {
  return image.name.replace(/\.[^.]*$/, "") || "image";
}

export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, class: "download-link" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
