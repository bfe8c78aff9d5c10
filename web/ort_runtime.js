// The wasm client runtime's numerics (sandseg.browser.wasm drives them from Python): the
// server's per-stage ONNX graphs on onnxruntime-web's WASM backend, and pre- and
// post-processing on typed arrays. worker.js imports this module only when the wasm runtime is
// chosen. RT-2: onnxruntime-web's files are the bundle's own, pinned in bundle.json and
// checked before use like Pyodide's; each graph is checked against the sha256 the server sends
// with it. Multi-threaded when the page is cross-origin isolated, single-threaded otherwise.

const ORT_DIR = "ort/";
// The module, its Emscripten glue (which onnxruntime-web imports itself, from wasmPaths: the
// HTTP cache, as the files are immutable) and the binary (handed over as checked bytes).
const ORT_FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];
const GRAPHS = ["patch_embed", "layers.0", "layers.1", "layers.2", "layers.3", "neck", "decoder"];
const SHA256_HEADER = "X-Sandseg-Sha256";
const SIZE = 1024;
const LOW_RES = 256;
const MEAN = [123.675, 116.28, 103.53].map(Math.fround);
const STD = [58.395, 57.12, 57.375].map(Math.fround);
const MAX_THREADS = 4;

// deps: {bundle (bundle.json), token, fetchVerified(path, sha256) -> bytes, sha256Hex, progress}
export async function loadOrtRuntime({ bundle, token, fetchVerified, sha256Hex, progress }) {
  const t0 = performance.now();
  progress("wasm", null, "checking onnxruntime-web");
  const paths = ORT_FILES.map((name) => ORT_DIR + name);
  const [, , wasm] = await Promise.all(paths.map((p) => fetchVerified(p, bundle.files?.[p])));
  const ort = await import("./" + paths[0]);
  ort.env.wasm.wasmPaths = new URL(ORT_DIR, self.location).href;
  ort.env.wasm.wasmBinary = wasm;
  const threads = self.crossOriginIsolated
    ? Math.max(1, Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1))
    : 1;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  const sessions = {};
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  for (const [i, name] of GRAPHS.entries()) {
    progress("wasm", i / GRAPHS.length, `loading the ${name} graph for onnxruntime-web`);
    const bytes = await fetchGraph(name, token, sha256Hex);
    sessions[name] = await ort.InferenceSession.create(bytes, options);
  }
  return new OrtRuntime(ort, sessions, threads, performance.now() - t0);
}

async function fetchGraph(name, token, sha256Hex) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const url = new URL(`/api/v1/onnx/${name}`, self.location);
  const response = await fetch(url, { credentials: "same-origin", headers });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).error ?? detail;
    } catch {}
    throw new Error(`could not download the ${name} ONNX graph for the wasm runtime: ${detail}`);
  }
  const expected = response.headers.get(SHA256_HEADER);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const actual = await sha256Hex(bytes);
  if (!expected || actual !== expected) {
    throw new Error(
      `the ${name} ONNX graph does not match the sha256 the server sent with it ` +
        `(expected ${String(expected).slice(0, 16)}..., got ${actual.slice(0, 16)}...): ` +
        "refusing to use it",
    );
  }
  return bytes;
}

class OrtRuntime {
  constructor(ort, sessions, threads, loadMs) {
    this.ort = ort;
    this.sessions = sessions;
    this.threads = threads;
    this.loadMs = loadMs;
  }

  // Encoder stage `name` on the channels-last boundary tensor entering it -> the one leaving.
  async runStage(name, x, shape) {
    const feeds = { x: new this.ort.Tensor("float32", x, Array.from(shape)) };
    const { y } = await this.sessions[name].run(feeds);
    return y.data;
  }

  // Prompt encoder + mask decoder: points (x, y) in 1024-space, labels as floats, the previous
  // low-res mask or null -> {lowRes: 4 x 256 x 256 logits, iou: 4}.
  async decode(embeddings, points, labels, mask) {
    const { Tensor } = this.ort;
    const n = labels.length;
    const feeds = {
      image_embeddings: new Tensor("float32", embeddings, [64, 64, 256]),
      point_coords: new Tensor("float32", points, [1, n, 2]),
      point_labels: new Tensor("float32", labels, [1, n]),
      mask_input: new Tensor("float32", mask ?? new Float32Array(LOW_RES * LOW_RES), [
        1,
        1,
        LOW_RES,
        LOW_RES,
      ]),
      has_mask_input: new Tensor("float32", new Float32Array([mask ? 1 : 0]), [1]),
    };
    const out = await this.sessions.decoder.run(feeds);
    return { lowRes: out.low_res_masks.data, iou: out.iou_predictions.data };
  }

  resizePass(src, inH, inW, channels, outH, outW, horizontal, taps, tableBytes) {
    return resizePass(src, inH, inW, channels, outH, outW, horizontal, taps, tableBytes);
  }

  normalize(resized, h, w) {
    return normalize(resized, h, w);
  }

  upscale(lowRes, count, resizedH, resizedW, h, w) {
    return upscale(lowRes, count, resizedH, resizedW, h, w);
  }
}

// Pre- and post-processing on typed arrays (exported for the native tests, which run them
// in Node against Pillow and runtime/host.py).

// One pass of PIL's 8-bit bilinear resize, as shaders/resize_antialias.wgsl computes it:
// table rows [lo, count, k_0 .. k_{taps-1}] (22 fraction bits, ops.image); src (inH, inW,
// channels) bytes, channels 1 (read as gray), 3 or 4 (alpha dropped) -> (outH, outW, 3).
export function resizePass(src, inH, inW, channels, outH, outW, horizontal, taps, tableBytes) {
  const table = new Int32Array(tableBytes.slice().buffer);
  const dst = new Uint8Array(outH * outW * 3);
  const row = taps + 2;
  const green = channels >= 3 ? 1 : 0;
  const blue = channels >= 3 ? 2 : 0;
  const clip8 = (v) => Math.min(255, Math.max(0, v >> 22));
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const base = (horizontal ? ox : oy) * row;
      const lo = table[base];
      const count = table[base + 1];
      let r = 1 << 21;
      let g = r;
      let b = r;
      for (let t = 0; t < count; t++) {
        const k = table[base + 2 + t];
        const pixel = horizontal ? oy * inW + lo + t : (lo + t) * inW + ox;
        const e = pixel * channels;
        r += k * src[e];
        g += k * src[e + green];
        b += k * src[e + blue];
      }
      const o = 3 * (oy * outW + ox);
      dst[o] = clip8(r);
      dst[o + 1] = clip8(g);
      dst[o + 2] = clip8(b);
    }
  }
  return dst;
}

// SAM's normalise and zero-pad: (h, w, 3) bytes -> (1024, 1024, 3) float32, channels-last.
export function normalize(resized, h, w) {
  const out = new Float32Array(SIZE * SIZE * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const v = resized[3 * (y * w + x) + c];
        out[3 * (y * SIZE + x) + c] = Math.fround(v - MEAN[c]) / STD[c];
      }
    }
  }
  return out;
}

// SAM's postprocess_masks, thresholded: (count, 256, 256) logits -> bilinear to 1024 x 1024
// (only the resized image's rows and columns kept), bilinear to (h, w), > 0 -> 0/1 bytes.
export function upscale(lowRes, count, resizedH, resizedW, h, w) {
  const masks = new Uint8Array(count * h * w);
  for (let c = 0; c < count; c++) {
    let x = lowRes.subarray(c * LOW_RES * LOW_RES, (c + 1) * LOW_RES * LOW_RES);
    x = resizeRows(x, LOW_RES, LOW_RES, SIZE, resizedH);
    x = resizeCols(x, resizedH, LOW_RES, SIZE, resizedW);
    x = resizeRows(x, resizedH, resizedW, h, h);
    x = resizeCols(x, h, resizedW, w, w);
    const out = masks.subarray(c * h * w, (c + 1) * h * w);
    for (let i = 0; i < h * w; i++) out[i] = x[i] > 0 ? 1 : 0;
  }
  return masks;
}

// PyTorch's 1-D bilinear taps, align_corners=False, in float32 like runtime/host.py: source
// (i + 0.5) * nIn / nOut - 0.5 clamped at 0; the first `keep` of nOut outputs.
function taps(nIn, nOut, keep) {
  const scale = Math.fround(nIn / nOut);
  const i0 = new Int32Array(keep);
  const i1 = new Int32Array(keep);
  const frac = new Float32Array(keep);
  for (let i = 0; i < keep; i++) {
    const src = Math.max(Math.fround(Math.fround((i + 0.5) * scale) - 0.5), 0);
    i0[i] = Math.min(Math.floor(src), nIn - 1);
    i1[i] = Math.min(i0[i] + 1, nIn - 1);
    frac[i] = Math.fround(src - i0[i]);
  }
  return { i0, i1, frac };
}

function resizeRows(x, rows, cols, nOut, keep) {
  const { i0, i1, frac } = taps(rows, nOut, keep);
  const out = new Float32Array(keep * cols);
  for (let i = 0; i < keep; i++) {
    const a = i0[i] * cols;
    const b = i1[i] * cols;
    const f = frac[i];
    const g = Math.fround(1 - f);
    for (let j = 0; j < cols; j++) out[i * cols + j] = x[a + j] * g + x[b + j] * f;
  }
  return out;
}

function resizeCols(x, rows, cols, nOut, keep) {
  const { i0, i1, frac } = taps(cols, nOut, keep);
  const out = new Float32Array(rows * keep);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    for (let j = 0; j < keep; j++) {
      const f = frac[j];
      out[r * keep + j] = x[src + i0[j]] * Math.fround(1 - f) + x[src + i1[j]] * f;
    }
  }
  return out;
}
