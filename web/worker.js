// The model's worker (a module worker, PY-1): verifies the bundle's pinned files (WB-2), boots
// Pyodide and the sandseg wheel, loads the client runtime (webgpu: the weights, from the Cache
// API, verified; wasm: onnxruntime-web and the server's graphs, ort_runtime.js, RT-2) and
// serves requests one at a time. Protocol (see client.js): init, setImage, predict, setMode,
// setRuntime, annotations, everything, tuneKernels (a cancel is handled at once) -> progress,
// ready, result, error. All GPU work is Python (sandseg.browser); this file only moves bytes.
import { mountTuningStore, saveTuningStore } from "./tuning_store.js";

const WEIGHTS_CACHE = "sandseg-weights";
const PYODIDE_DIR = "pyodide/";
const CORE_FILES = [
  "pyodide.mjs",
  "pyodide.asm.mjs",
  "pyodide.asm.wasm",
  "python_stdlib.zip",
  "pyodide-lock.json",
];

let api = null; // the Python module sandseg.browser.session
let session = null; // its Session, once the model is ready
let bootError = null;
let pyodide = null;
let lastConfig = null; // init's config: what setRuntime loads a runtime with

const post = (message, transfer = []) => self.postMessage(message, transfer);
const progress = (stage, fraction, message) => post({ type: "progress", stage, fraction, message });

// PY-3: a sign of life for client.js's watchdog, sent whenever this thread's event loop turns
// (Python awaits the GPU block by block, so long inferences keep beating; a blocked thread
// does not), with how long the GPU has kept the work waiting (work that never completes).
const HEARTBEAT_MS = 2_000;
setInterval(() => post({ type: "heartbeat", gpuWaitMs: session?.gpu_wait_ms() ?? 0 }), HEARTBEAT_MS);

// Violations inside the worker are not seen by the page: report them (WB-1 tests count them).
self.addEventListener("securitypolicyviolation", (event) =>
  post({
    type: "cspViolation",
    directive: event.effectiveDirective,
    blockedURI: event.blockedURI,
  }),
);

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchVerified(path, expected) {
  if (!expected) {
    throw new Error(`${path} has no pinned sha256 in bundle.json; refusing to load it`);
  }
  const response = await fetch(new URL(path, self.location), { credentials: "same-origin" });
  if (!response.ok) throw new Error(`could not download ${path} (HTTP ${response.status})`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const actual = await sha256Hex(bytes);
  if (actual !== expected) {
    throw new Error(
      `${path} does not match its pinned sha256 (expected ${expected.slice(0, 16)}..., got ` +
        `${actual.slice(0, 16)}...): the bundle is corrupt or was tampered with; ` +
        "refusing to load it",
    );
  }
  return bytes;
}

// WB-2: every core file, the lock file and our wheel are checked before Pyodide sees them.
// Pyodide fetches the core files again (from the HTTP cache: they are immutable); the lock
// file is handed over as the verified text, and Pyodide checks the wheel against it.
async function verifyBundle(bundle) {
  const paths = [...CORE_FILES, bundle.wheel].map((name) => PYODIDE_DIR + name);
  const files = await Promise.all(paths.map((path) => fetchVerified(path, bundle.files[path])));
  return new TextDecoder().decode(files[paths.indexOf(PYODIDE_DIR + "pyodide-lock.json")]);
}

async function readWeights(response, total) {
  const out = new Uint8Array(total);
  const reader = response.body.getReader();
  let received = 0;
  let reported = -1;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > total) {
      throw new Error(`the weights are larger than the ${total} bytes announced by /api/config`);
    }
    out.set(value, received);
    received += value.length;
    const percent = Math.floor((100 * received) / total);
    if (percent !== reported) {
      reported = percent;
      progress("weights", received / total, `downloading weights: ${percent}%`);
    }
  }
  if (received !== total) {
    throw new Error(`the weights download stopped at ${received} of ${total} bytes`);
  }
  return out;
}

// The weights, from the Cache API when an earlier visit kept them, else downloaded; either
// way checked against the sha256 /api/config pins before use.
async function loadWeights(weights) {
  const cache = await caches.open(WEIGHTS_CACHE);
  const key = new URL(weights.url, self.location).href;
  const cached = await cache.match(key);
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    if ((await sha256Hex(bytes)) === weights.sha256) return { bytes, cached: true };
    await cache.delete(key);
  }
  progress("weights", 0, "downloading weights");
  const response = await fetch(key, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`could not download the weights (HTTP ${response.status})`);
  const bytes = await readWeights(response, weights.bytes);
  const actual = await sha256Hex(bytes);
  if (actual !== weights.sha256) {
    throw new Error(
      `the weights ${weights.url} do not match their pinned sha256 ` +
        `(got ${actual.slice(0, 16)}...); refusing to use them`,
    );
  }
  try {
    // Weights are addressed by their sha256: any other entry is an older model, dropped.
    for (const request of await cache.keys()) await cache.delete(request);
    const headers = { "Content-Type": "application/octet-stream" };
    await cache.put(key, new Response(bytes, { headers }));
  } catch (err) {
    console.warn(`sandseg: could not keep the weights in the Cache API: ${err}`);
  }
  return { bytes, cached: false };
}

function wasmBytes() {
  return pyodide?._module?.HEAPU8?.byteLength ?? null;
}

// The WebGPU runtime: device, weights, pipelines -> {problem: null when it works, else why
// not; cached; the parts' times}.
async function loadWebgpu(loading, config) {
  const t0 = performance.now();
  const problem = await loading.open_device();
  if (problem) return { problem, cached: false };
  const weights = await loadWeights(config.weights);
  const t1 = performance.now();
  progress("weights", 1, "uploading weights to the GPU");
  const noModel = await loading.load_model(weights.bytes);
  const t2 = performance.now();
  const times = { downloadMs: t1 - t0, uploadMs: t2 - t1, cached: weights.cached };
  if (noModel) return { problem: noModel, ...times };
  progress("pipelines", null, "compiling GPU pipelines");
  const noPipelines = await loading.compile_pipelines(); // null, or why not (GP-6)
  return { problem: noPipelines ?? null, ...times, pipelinesMs: performance.now() - t2 };
}

// The wasm runtime (onnxruntime-web), imported only when chosen -> null when it loaded, else
// why not (a file that fails its check stops this path, in the check's words).
async function loadWasm(loading, config) {
  progress("wasm", null, "loading the wasm runtime (onnxruntime-web)");
  try {
    const { loadOrtRuntime } = await import("./ort_runtime.js");
    const deps = { bundle: config.bundle, token: config.token, fetchVerified, sha256Hex, progress };
    const bridge = await loadOrtRuntime(deps);
    loading.attach_wasm(bridge);
    return null;
  } catch (err) {
    const problem = `the wasm runtime did not load: ${describe(err)}`;
    loading.runtime_problem("wasm", problem);
    console.warn(`sandseg: ${problem}`);
    return problem;
  }
}

// auto (runtimes.py): one encoder stage timed on WebGPU; only when that is slow, or WebGPU
// cannot run, is the wasm runtime loaded (once) and the same stage timed there.
async function probeRuntimes(loading, config) {
  progress("probe", null, "measuring this device's runtimes");
  if (!(await loading.measure_runtime("webgpu"))) return;
  if (!loading.runtimes.available("wasm") && (await loadWasm(loading, config))) return;
  progress("probe", null, "measuring the wasm runtime");
  await loading.measure_runtime("wasm");
}

async function init({ config }) {
  const t0 = performance.now();
  if (!config?.bundle) throw new Error("the server has no bundle.json: run `python build.py`");
  if (!config.weights) {
    throw new Error(
      "the server has no weights: start it with `sandseg serve --weights mobile_sam.pt`",
    );
  }
  lastConfig = config;
  progress("pyodide", null, "checking the bundle");
  const lockFileContents = await verifyBundle(config.bundle);
  const t1 = performance.now();
  progress("pyodide", null, "starting Python (Pyodide)");
  const { loadPyodide } = await import("./" + PYODIDE_DIR + "pyodide.mjs");
  const indexURL = new URL(PYODIDE_DIR, self.location).href;
  pyodide = await loadPyodide({ indexURL, lockFileContents, packageBaseUrl: indexURL });
  const t2 = performance.now();
  progress("package", null, "loading the sandseg package");
  await pyodide.loadPackage("sandseg", { messageCallback: () => {}, errorCallback: console.warn });
  api = pyodide.pyimport("sandseg.browser.session");
  const tuningStore = await mountTuningStore(pyodide); // before Python reads the table
  if (tuningStore) console.warn(`sandseg: ${tuningStore}`);
  const t3 = performance.now();
  const loading = api.Session(config.token ?? null);
  // The client runtime (?runtime=): webgpu, wasm, or auto (the faster measured, probeRuntimes).
  // A browser where neither runs (no WebGPU, limits too small, out of memory, no graphs) still
  // works: everything then runs on the server (GP-1, GP-4, GP-6).
  const requested = config.runtime ?? "auto";
  let webgpu = { problem: "not loaded (?runtime=wasm)", cached: false };
  if (requested !== "wasm") webgpu = await loadWebgpu(loading, config);
  if (webgpu.problem) loading.runtime_problem("webgpu", webgpu.problem);
  const t5 = performance.now();
  if (requested === "auto") await probeRuntimes(loading, config);
  else if (requested === "wasm") await loadWasm(loading, config);
  const runtime = plain(loading.select_runtime(requested));
  // auto kept WebGPU because it measured fast: choose its kernels by measurement too (once per
  // adapter; later loads reuse the kept table). A pinned runtime skips the boot's measuring.
  const tuning = requested === "auto" && runtime.runtime === "webgpu" ? await tune(loading) : null;
  const t6 = performance.now();
  progress("server", null, "connecting to the offload server");
  const modes = plain(await loading.connect(runtime.runtime ? null : runtime.reason));
  const t7 = performance.now();
  session = loading; // only a fully loaded session serves requests
  return {
    type: "ready",
    backend: modes.mode,
    modes,
    modeChoices: plain(session.mode_choices()),
    adapter: session.adapter,
    runtime,
    runtimeProbe: plain(session.runtime_probe()),
    maxImagePixels: session.max_image_pixels,
    timings: {
      verifyMs: t1 - t0,
      pyodideMs: t2 - t1,
      packageMs: t3 - t2,
      weightsMs: (webgpu.downloadMs ?? 0) + (webgpu.uploadMs ?? 0),
      weightsDownloadMs: webgpu.downloadMs ?? null,
      weightsUploadMs: webgpu.uploadMs ?? null,
      weightsCached: webgpu.cached,
      pipelinesMs: webgpu.pipelinesMs ?? null,
      wasmMs: t6 - t5,
      connectMs: t7 - t6,
      tuning,
      wasmBytes: wasmBytes(),
    },
  };
}

// ImageBitmap -> RGBA bytes -> Python, which encodes the image where the mode says (the file's
// own bytes, when there is a file, are what travels if the server encodes it).
async function setImage({ bitmap, file = null, fileType = "" }) {
  const { width, height } = bitmap;
  try {
    // The page checked the size (client.js, maxImagePixels); Python checks again before use.
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    const pixels = context.getImageData(0, 0, width, height).data;
    progress("encoding", null, `encoding a ${width} x ${height} image`);
    const t0 = performance.now();
    const bytes = file ? new Uint8Array(file) : null;
    const out = await session.set_image(pixels, width, height, bytes, fileType);
    const encoderMs = performance.now() - t0;
    const result = { width, height, encoderMs, ...plain(out) };
    return { type: "result", result };
  } finally {
    bitmap.close();
  }
}

// The prompt as client.js built it, forwarded as it is: Python reads and checks it
// (sandseg.browser.prompt) and returns the prediction's fields (client.js lists them).
async function predict({ prompt }) {
  progress("decoding", null, "decoding the prompt");
  const t0 = performance.now();
  const out = plain(await session.predict(prompt));
  const result = { ...out, decoderMs: performance.now() - t0, wasmBytes: wasmBytes() };
  return { type: "result", result, transfer: [out.masks.buffer, out.lowResMasks.buffer] };
}

async function setMode({ mode }) {
  return { type: "result", result: plain(session.set_mode(mode)) };
}

// Load what `runtime` needs when it is not loaded yet (auto: measure what is not measured yet),
// then let Python switch to it. The probe travels beside the answer (client.js keeps it).
async function setRuntime({ runtime }) {
  const loaded = session.runtimes;
  if (runtime === "wasm" && !loaded.available("wasm")) await loadWasm(session, lastConfig);
  if (runtime === "webgpu" && !loaded.available("webgpu")) {
    const { problem } = await loadWebgpu(session, lastConfig);
    if (problem) session.runtime_problem("webgpu", problem);
  }
  if (runtime === "auto") await probeRuntimes(session, lastConfig);
  const result = plain(await session.set_runtime(runtime));
  return { type: "result", result: { ...result, probe: plain(session.runtime_probe()) } };
}

// Segment everything where the image lives (sandseg.browser.everything): progress after each
// batch; a "cancel" message naming this request stops it at the next batch (on the server: its
// request is aborted).
const cancelled = new Set();
const aborts = new Map(); // request id -> the AbortController of its server request

async function everything({ id, params }) {
  const t0 = performance.now();
  const step = (done, total) => {
    const message = `segment everything: batch ${done} of ${total}`;
    const fraction = total ? done / total : null;
    post({ type: "progress", stage: "everything", fraction, message, done, total });
    return cancelled.has(id);
  };
  const abort = new AbortController();
  aborts.set(id, abort);
  try {
    const out = plain(await session.everything(params ?? {}, step, abort.signal));
    return { type: "result", result: { ...out, ms: performance.now() - t0 } };
  } finally {
    cancelled.delete(id);
    aborts.delete(id);
  }
}

// Every kernel variant choice the model needs on this adapter, measured where the kept table
// lacks it, then kept (tuning_store.js) -> {choices, measured, reused, ms}.
async function tune(target) {
  progress("tuning", null, "measuring the GPU kernels on this adapter");
  const result = plain(await target.tune_kernels());
  if (result.measured) await saveTuningStore(pyodide);
  return result;
}

async function tuneKernels() {
  return { type: "result", result: await tune(session) };
}

// The page's objects in and out of COCO JSON and label PNGs (sandseg.browser.annotations;
// no GPU work): "coco" -> JSON text, "labelPng" -> PNG bytes, "importCoco" -> [{name, mask}].
const ANNOTATIONS = { coco: "coco_json", labelPng: "label_image", importCoco: "import_coco" };

async function annotations({ op, args }) {
  if (!(op in ANNOTATIONS)) throw new Error(`unknown annotations request ${JSON.stringify(op)}`);
  const python = pyodide.pyimport("sandseg.browser.annotations");
  return { type: "result", result: plain(python[ANNOTATIONS[op]](...args)) };
}

// Python dicts arrive as JS objects already; this copes with a proxy too.
function plain(value) {
  return value?.toJs ? value.toJs({ dict_converter: Object.fromEntries }) : value;
}

// Test bundles (build.py --test-hooks) append testing/worker.js, which adds requests that
// provoke failures on purpose. The production bundle has none.
const HANDLERS = { init, setImage, predict, setMode, setRuntime, annotations, everything };
HANDLERS.tuneKernels = tuneKernels;

// Python errors carry a traceback: the page shows the last line, without the module path.
function describe(err) {
  const text = String(err?.message ?? err);
  if (err?.type && text.includes("Traceback")) {
    console.debug(text);
    const lines = text.trim().split("\n");
    const last = lines.findLastIndex((line) => /^[\w.]+(Error|Exception|Exit)\b/.test(line));
    const tail = (last >= 0 ? lines.slice(last) : lines.slice(-1)).join("\n");
    return tail.replace(/^[\w.]+:\s*/, "");
  }
  return text;
}

async function handle(message) {
  const handler = HANDLERS[message.type];
  try {
    if (!handler) throw new Error(`unknown request type ${JSON.stringify(message.type)}`);
    if (message.type !== "init" && !session) {
      throw new Error(
        bootError ? `the model did not load: ${bootError}` : "the model is still loading",
      );
    }
    const { transfer = [], ...reply } = await handler(message);
    post({ id: message.id, ...reply }, transfer);
  } catch (err) {
    const text = describe(err);
    if (message.type === "init") bootError = text;
    post({ id: message.id, type: "error", message: text, fatal: message.type === "init" });
  }
}

// One request at a time: the session holds one image and one GPU queue.
let queue = Promise.resolve();
self.addEventListener("message", (event) => {
  // A cancel must not wait behind the request it cancels.
  if (event.data.type === "cancel") {
    cancelled.add(event.data.target);
    return void aborts.get(event.data.target)?.abort();
  }
  queue = queue.then(() => handle(event.data));
});
