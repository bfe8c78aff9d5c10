// The page's handle on the model: a SandsegClient talks to the worker (worker.js), which runs
// the Python package on Pyodide + WebGPU. Also installs the automation surface that tests and
// external checks use: #status ("loading" | "ready" | "error: <message>") and window.sandseg.
//
//   const client = getClient();
//   client.addEventListener("ready", (e) => ...);     // also "progress", "error"
//   await client.setImage(fileOrUrlOrBitmap);         // -> {width, height, encoderMs, backend}
//   await client.predict({points: [[x, y]], labels: [1], box: null, maskInput: null,
//                         multimask: true});          // -> a prediction
//   await client.setMode("split:layers.1");           // or auto, client, server, split:image
//   await client.setRuntime("wasm");                  // or auto, webgpu (?runtime= at boot)
//
// A prompt: {points: [[x, y], ...], labels: [1 | 0, ...], box: [x0, y0, x1, y1], maskInput:
// "previous" | null, multimask, preview}, in original-image pixels; absent fields are null
// (multimask true, preview false). Python checks it (sandseg.browser.prompt). maskInput
// "previous": the best mask of the last prediction that was not a preview (`preview: true`,
// as the page's hover previews are). A prediction: {masks: Uint8Array C*H*W, shape: [C, H, W],
// iouPredictions, lowResMasks: Float32Array K*256*256, lowResShape: [K, 256, 256], backend and
// mode (the same: the mode that produced it), runtime (the client runtime that ran: "webgpu",
// "wasm", or null when nothing ran here; setImage's results have it too), notice,
// uploadBytes, downloadBytes, serverMs, decoderMs, wasmBytes} plus masksBase64 and
// lowResMasksBase64 (computed on first use); K = C, except in server mode (the best mask only).
//
// Test bundles (build.py --test-hooks) append testing/client.js (methods that provoke
// failures on purpose); the production bundle has none.
import { decodeImage } from "./decode.js";

// PY-3: a request is stuck when the worker gives no sign of life for this long (its thread
// blocked: it beats every HEARTBEAT_MS while its event loop turns) or when its beats say the GPU
// has kept it waiting this long (work that never completes). The worker is then replaced.
const STUCK_S = 30;
const WATCHDOG_MS = 1_000;

export function toBase64(bytes) {
  if (typeof bytes.toBase64 === "function") return bytes.toBase64();
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function littleEndianBytes(floats) {
  return new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
}

// The base64 forms are computed on first use only: the UI never needs them.
function withBase64(result) {
  const lazy = (name, make) => {
    let value;
    Object.defineProperty(result, name, { enumerable: true, get: () => (value ??= make()) });
  };
  lazy("masksBase64", () => toBase64(result.masks));
  lazy("lowResMasksBase64", () => toBase64(littleEndianBytes(result.lowResMasks)));
  return result;
}

// The API token for a server bound beyond loopback: given to the page as #token=... (the
// fragment never leaves the browser).
export function tokenFromUrl() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

// The client runtime asked for in the page's URL (?runtime=auto|webgpu|wasm; default auto).
function runtimeFromUrl() {
  return new URLSearchParams(location.search).get("runtime") ?? "auto";
}

// Python's notices are {mode, text}; results and the mode state carry the text as `notice`.
function withNoticeText(result) {
  result.notice = result.notice?.text ?? null;
  return result;
}

export class SandsegClient extends EventTarget {
  constructor() {
    super();
    Object.assign(this, { state: "loading", lastResult: null, timings: {}, adapter: null });
    Object.assign(this, { backend: null, maxImagePixels: null, restarts: 0 });
    this.modes = null; // {mode, clientAvailable, serverAvailable, serverError, notice, plan}
    // Every mode, from Python at boot: [{value, label, runs, needsClient, needsServer}].
    this.modeChoices = [];
    this.cspViolations = [];
    this._fatal = false;
    this._pending = new Map();
    this._nextId = 1;
    this._spawn();
    setInterval(() => this._watch(), WATCHDOG_MS);
  }

  _spawn() {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.addEventListener("message", (event) => {
      if (worker === this._worker) this._onMessage(event.data);
    });
    worker.addEventListener("error", (event) => {
      if (worker !== this._worker) return;
      this._fail(`the model's worker failed: ${event.message ?? "it could not start"}`);
    });
    this._worker = worker;
    this._lastSign = performance.now();
    this._gpuWaitMs = 0;
    this._ready = this._start();
    this._ready.catch(() => {});
  }

  // PY-3: terminate a worker that is stuck in a request and start a new one.
  _watch() {
    const busy = [...this._pending.values()].some((p) => p.type !== "init");
    if (this._fatal || !busy) return;
    const silentS = Math.round((performance.now() - this._lastSign) / 1000);
    const gpuS = Math.round(this._gpuWaitMs / 1000);
    const symptom =
      silentS >= STUCK_S ? `no sign of life for ${silentS} s`
      : gpuS >= STUCK_S ? `the GPU has not finished its work in ${gpuS} s` : null;
    if (!symptom) return;
    const message =
      `the model stopped responding (${symptom}): restarted it; ` +
      "the current image is encoded again once it is ready";
    this._worker.terminate();
    for (const { reject } of this._pending.values()) reject(new Error(message));
    this._pending.clear();
    this.restarts += 1;
    this._setState(`error: ${message}`);
    this.dispatchEvent(new CustomEvent("error", { detail: { message, fatal: false } }));
    this.dispatchEvent(new CustomEvent("restart", { detail: { message } }));
    this._spawn();
  }

  async _start() {
    let config;
    try {
      const response = await fetch("/api/config", { cache: "no-cache" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      config = await response.json();
    } catch (err) {
      this._fail(`could not read the server configuration (/api/config): ${err.message}`);
      throw err;
    }
    const ready = await this._request({
      type: "init",
      config: { ...config, token: tokenFromUrl(), runtime: runtimeFromUrl() },
    });
    this.runtime = ready.runtime;
    this.runtimeProbe = ready.runtimeProbe; // what auto measured (runtimes.py ClientRuntimes.probe)
    this.adapter = ready.adapter;
    this.backend = ready.backend;
    this.modes = withNoticeText(ready.modes);
    this.modeChoices = ready.modeChoices;
    this.maxImagePixels = ready.maxImagePixels;
    this.timings = { ...ready.timings };
    this._setState("ready");
    this.dispatchEvent(new CustomEvent("ready", { detail: ready }));
    return ready;
  }

  /** Decode `source` (URL, File/Blob or ImageBitmap) and run the image encoder on it. */
  async setImage(source) {
    try {
      return await this._encode(await this.decode(source));
    } catch (err) {
      throw this._reject(err);
    }
  }

  /** The one check of an image: decode `source` -> {bitmap, file, fileType}, refusing an image
   * over the runtime's limit (maxImagePixels, from Python at boot) before its pixels are
   * decoded. Waits for the model; a refusal is the caller's to show (#status stays). */
  async decode(source) {
    const { maxImagePixels } = await this._ready;
    return decodeImage(source, maxImagePixels);
  }

  /** Run the image encoder on a decode() result; its bitmap goes to the worker. -> as setImage */
  async encode(decoded) {
    try {
      return await this._encode(decoded);
    } catch (err) {
      throw this._reject(err);
    }
  }

  async _encode({ bitmap, file, fileType }) {
    await this._ready;
    const transfer = file ? [bitmap, file] : [bitmap];
    const result = await this._request({ type: "setImage", bitmap, file, fileType }, transfer);
    this.timings.encoderMs = result.encoderMs;
    if (result.plan) this.modes = { ...this.modes, plan: result.plan, estimates: result.estimates };
    this._noticed(result);
    this.lastResult = null;
    this._recovered();
    return result;
  }

  /** A prediction (above) for a prompt (above): its fields, absent ones null. */
  async predict(options = {}) {
    const { points = null, labels = null, box = null, maskInput = null } = options;
    const { multimask = true, preview = false } = options;
    const prompt = { points, labels, box, maskInput, multimask, preview };
    try {
      await this._ready;
      const result = withBase64(await this._request({ type: "predict", prompt }));
      this.timings.decoderMs = result.decoderMs;
      this.lastResult = result;
      this._noticed(result);
      this._recovered();
      return result;
    } catch (err) {
      throw this._reject(err);
    }
  }

  /** Where the work runs: "auto", "client", "server", "split:image" or "split:<stage>"
   * (e.g. "split:layers.1": this device runs the encoder through layers.1). Applies from the
   * next image. Resolves to the mode state {mode, clientAvailable, serverAvailable, ...}. */
  async setMode(mode) {
    try {
      await this._ready;
      const modes = withNoticeText(await this._request({ type: "setMode", mode }));
      this.modes = { ...this.modes, ...modes };
      this.dispatchEvent(new CustomEvent("mode", { detail: this.modes }));
      return this.modes;
    } catch (err) {
      throw this._reject(err);
    }
  }

  /** The client runtime: "auto" (the faster of WebGPU and wasm, measured), "webgpu" or "wasm"
   * (onnxruntime-web on the CPU). Loads it when needed; applies from the next image (the
   * current one is dropped). Resolves to {runtime (in force), available (whether `runtime`
   * can run here), reason}. */
  async setRuntime(runtime) {
    try {
      await this._ready;
      const { probe, ...state } = await this._request({ type: "setRuntime", runtime });
      [this.runtime, this.runtimeProbe] = [state, probe];
      return this.runtime;
    } catch (err) {
      throw this._reject(err);
    }
  }

  /** Choose the WebGPU kernels by measurement on this adapter, kept for later loads ->
   * {choices, measured, reused, ms} (auto does it at boot when it keeps WebGPU). */
  async tuneKernels() {
    await this._ready;
    return this._request({ type: "tuneKernels" });
  }

  /** sandseg.browser.annotations in the worker (no GPU work; failures are the caller's to
   * show): op "coco" (request, segmentation) -> JSON text, "labelPng" (request) -> PNG bytes,
   * "importCoco" (text, width, height, fileName) -> [{name, mask}]; web/annotations.js. */
  async annotations(op, ...args) {
    await this._ready;
    return this._request({ type: "annotations", op, args });
  }

  /** Segment everything where the image lives -> {annotations, backend, runtime, ms}; progress
   * events carry stage "everything", done and total; cancelEverything() stops it. */
  async everything(params = {}) {
    try {
      await this._ready;
      this._everything = this._nextId; // the id _request gives it
      const result = await this._request({ type: "everything", params });
      this._recovered();
      return result;
    } catch (err) {
      throw /was cancelled/.test(err.message) ? err : this._reject(err);
    }
  }
  cancelEverything() {
    if (this._everything) this._worker.postMessage({ type: "cancel", target: this._everything });
  }

  // A fallback happened (server gone, GPU lost, server busy): the notice's mode is the one in
  // force now; the result keeps the notice's text, as the automation surface documents.
  _noticed(result) {
    const notice = result.notice;
    withNoticeText(result);
    if (!notice || notice.text === this.modes?.notice) return;
    this.modes = { ...this.modes, notice: notice.text, mode: notice.mode };
    this.dispatchEvent(new CustomEvent("mode", { detail: this.modes }));
  }

  _request(message, transfer = []) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      if (!this._pending.size) this._lastSign = performance.now(); // idle time is no silence
      this._pending.set(id, { resolve, reject, type: message.type });
      this._worker.postMessage({ id, ...message }, transfer);
    });
  }

  _onMessage(message) {
    this._lastSign = performance.now();
    if (message.type === "heartbeat") {
      this._gpuWaitMs = message.gpuWaitMs ?? 0;
      return;
    }
    if (message.type === "progress") {
      this.dispatchEvent(new CustomEvent("progress", { detail: message }));
      return;
    }
    if (message.type === "cspViolation") {
      this.cspViolations.push(message);
      return;
    }
    const pending = this._pending.get(message.id);
    if (!pending) return;
    this._pending.delete(message.id);
    if (message.type === "error") {
      const error = new Error(message.message);
      error.fatal = Boolean(message.fatal);
      if (error.fatal) this._fail(message.message);
      pending.reject(error);
    } else if (message.type === "ready") {
      pending.resolve(message);
    } else {
      pending.resolve(message.result);
    }
  }

  // A failed request: shown on the page; the client stays usable unless it was fatal.
  _reject(err) {
    const error = err instanceof Error ? err : new Error(String(err));
    if (!this._fatal) {
      this._setState(`error: ${error.message}`);
      const detail = { message: error.message, fatal: false };
      this.dispatchEvent(new CustomEvent("error", { detail }));
    }
    return error;
  }

  _recovered() {
    if (!this._fatal) this._setState("ready");
  }

  _fail(message) {
    if (this._fatal) return;
    this._fatal = true;
    this._setState(`error: ${message}`);
    this.dispatchEvent(new CustomEvent("error", { detail: { message, fatal: true } }));
    for (const { reject } of this._pending.values()) reject(new Error(message));
    this._pending.clear();
  }

  _setState(state) {
    this.state = state;
    const status = document.getElementById("status");
    if (status) status.textContent = state;
  }
}

let client = null;

export function getClient() {
  client ??= new SandsegClient();
  return client;
}

// The automation surface: plain, serialisable results (base64 instead of typed arrays).
const PREDICTION_FIELDS = [
  ...["masksBase64", "shape", "iouPredictions", "lowResMasksBase64", "lowResShape"],
  ...["decoderMs", "backend", "mode", "runtime", "notice"],
  ...["uploadBytes", "downloadBytes", "serverMs", "submissionsMs"],
];
window.sandseg = {
  getClient,
  async setImage(url) {
    return getClient().setImage(url);
  },
  async predict(options) {
    const r = await getClient().predict(options);
    return Object.fromEntries(PREDICTION_FIELDS.map((name) => [name, r[name]]));
  },
  async setMode(mode) {
    return getClient().setMode(mode);
  },
  async setRuntime(runtime) {
    return getClient().setRuntime(runtime);
  },
  get modes() {
    return client?.modes ?? null;
  },
  get lastResult() {
    return client?.lastResult ?? null;
  },
  get timings() {
    return client?.timings ?? {};
  },
  get state() {
    return client?.state ?? "loading";
  },
  get cspViolations() {
    return client?.cspViolations ?? [];
  },
};

getClient();
