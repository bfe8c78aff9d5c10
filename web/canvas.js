// The image, its objects' masks and the selected object's prompt markers on three stacked
// canvases. Every visible object is drawn in its colour, the selected one last (on top, with
// a white edge). Mask pixels are touched once per result, at display resolution, so no
// main-thread task comes near 50 ms.
// The canvases get their CSS size via the CSSOM (CSP-safe) and a backing store at device
// resolution, except the mask layer, kept at CSS resolution to bound its cost.
import { active } from "./objects.js";
import { changed } from "./state.js";

const rgba = (r, g, b, a) => ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
export const COLOURS = {
  fill: rgba(30, 144, 255, 120),
  fillAlpha: 120, // an object's fill: its colour at this alpha
  edge: rgba(255, 255, 255, 240),
  previewAlpha: 70,
  previewEdge: rgba(255, 255, 255, 130),
  white: rgba(255, 255, 255, 255),
  black: rgba(0, 0, 0, 255),
};

// An object's colour ("#rrggbb") as a packed RGBA pixel with alpha `a`.
export function colourPixel(hex, a) {
  const n = Number.parseInt(hex.slice(1), 16);
  return rgba((n >> 16) & 255, (n >> 8) & 255, n & 255, a);
}

let size = null; // the current layout: {cssW, cssH}; a new object each time it changes

// Draws what changed since the last call: a new layout redraws all three layers.
export function drawCanvases(view, state) {
  if (!state.image) return;
  layout(view, state.image);
  if (changed("image-layer", state.image, size)) drawImageLayer(view, state.image);
  if (changed("mask-layer", state.objects, state.activeId, state.preview, size)) {
    drawMaskLayer(view.maskCanvas, state);
  }
  const { prompts } = active();
  if (changed("markers", prompts, state.drag, size)) drawMarkers(view.markerCanvas, state, prompts);
}

// Fits the image into the stage.
function layout(view, image) {
  const { clientWidth, clientHeight } = view.stage;
  const scale = Math.min(clientWidth / image.width, clientHeight / image.height);
  const cssW = Math.max(1, Math.floor(image.width * scale));
  const cssH = Math.max(1, Math.floor(image.height * scale));
  const dpr = window.devicePixelRatio || 1;
  if (!changed("layout", image, cssW, cssH, dpr)) return;
  size = { cssW, cssH };
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
}

function drawImageLayer(view, image) {
  const ctx = view.imageCanvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(image.bitmap, 0, 0, view.imageCanvas.width, view.imageCanvas.height);
}

// Samples mask `index` of a predict result (nearest) into an outW x outH ImageData (`image`,
// over what it holds, or a new one): `fill` inside, `edge` on its boundary. Two passes over
// the output pixels, none over the input.
export function paintMask(result, index, outW, outH, fill, edge, image = null) {
  image ??= new ImageData(outW, outH);
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

export function bestIndex(result) {
  const iou = [...(result.iouPredictions ?? [])];
  return iou.length ? iou.indexOf(Math.max(...iou)) : 0;
}

// Every visible object's chosen mask in its colour; the selected object's on top, or, while
// it has none, the hover preview's best, fainter.
function drawMaskLayer(canvas, { objects, activeId, preview }) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const image = new ImageData(width, height);
  const selected = objects.find((o) => o.id === activeId);
  for (const object of [...objects.filter((o) => o !== selected), selected]) {
    if (!object?.result || object.hidden) continue;
    const fill = colourPixel(object.colour, COLOURS.fillAlpha);
    const edge = object === selected ? COLOURS.edge : colourPixel(object.colour, 255);
    paintMask(object.result, object.selected, width, height, fill, edge, image);
  }
  if (preview && !selected?.result) {
    const colour = selected?.colour ?? "#1e90ff";
    const fill = colourPixel(colour, COLOURS.previewAlpha);
    paintMask(preview, bestIndex(preview), width, height, fill, COLOURS.previewEdge, image);
  }
  ctx.putImageData(image, 0, 0);
}

export function latestBox(prompts) {
  return prompts.findLast((p) => p.kind === "box")?.box ?? null;
}

function drawMarkers(canvas, { image, drag }, prompts) {
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const s = canvas.width / image.width;
  const dpr = window.devicePixelRatio || 1;
  ctx.lineJoin = "round";
  const box = latestBox(prompts);
  if (box) strokeBox(ctx, box.map((v) => v * s), dpr, false);
  if (drag?.moved) {
    const [x0, y0] = drag.start;
    const [x1, y1] = drag.current;
    strokeBox(ctx, [x0 * s, y0 * s, x1 * s, y1 * s], dpr, true);
  }
  for (const prompt of prompts) {
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

// Client coordinates -> original-image pixels (as in SamPredictor), clamped to the image.
export function toImage(view, image, event) {
  const rect = view.markerCanvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * image.width;
  const y = ((event.clientY - rect.top) / rect.height) * image.height;
  return [Math.min(image.width, Math.max(0, x)), Math.min(image.height, Math.max(0, y))];
}
