// onnxruntime-web's WebGPU execution provider on the package's ONNX export, timed in the page.
//
// Served by sandseg.bench.ort_web next to ort.webgpu.min.mjs (+ its asyncify .mjs/.wasm),
// the two .onnx files and the inputs as raw float32 files written by the benchmark:
//   image.bin       (1, 3, 1024, 1024) the package's pre-processed input, NCHW
//   embeddings.bin  (1, 256, 64, 64)   onnxruntime CPU's encoder output (reference + the
//                                      decoder's input, so both decoders see the same tensor)
//   low_res.bin     (1, 4, 256, 256)   onnxruntime CPU's decoder output (reference)
// Every timed run awaits session.run, whose outputs are CPU tensors (the default output
// location), so a time includes the GPU work and the read-back.
import * as ort from "./ort.webgpu.min.mjs";

// No cross-origin isolation here: onnxruntime-web would fall back to one thread anyway;
// saying so keeps it quiet. What is timed is the WebGPU EP.
ort.env.wasm.numThreads = 1;

const state = {};

async function floats(name) {
  const response = await fetch(name);
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return new Float32Array(await response.arrayBuffer());
}

function relL2(got, want) {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    diff += d * d;
    norm += want[i] * want[i];
  }
  return Math.sqrt(diff / norm);
}

// Named as sandseg.gpu.browser names its adapter, so the two can be compared.
function describe(adapter) {
  const info = adapter.info;
  const parts = [info.vendor, info.architecture, info.device, info.description];
  const name = [...new Set(parts.filter((s) => s))].join(" ") || "unknown adapter";
  return `${name} (WebGPU${info.isFallbackAdapter ? ", fallback" : ""})`;
}

export async function setup(prompt) {
  state.image = await floats("image.bin");
  state.embeddings = await floats("embeddings.bin");
  state.lowRes = await floats("low_res.bin");
  state.prompt = prompt;
  // The adapter onnxruntime-web uses is the one reported: hand it the one sandseg asks for.
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("navigator.gpu.requestAdapter() gave no adapter");
  ort.env.webgpu.adapter = adapter;
  const options = { executionProviders: ["webgpu"] };
  const start = performance.now();
  state.encoder = await ort.InferenceSession.create("mobile_sam_encoder.onnx", options);
  state.decoder = await ort.InferenceSession.create("mobile_sam_decoder.onnx", options);
  return {
    sessionMs: performance.now() - start,
    adapter: describe(adapter),
    version: ort.env.versions.web,
  };
}

export async function runEncoder() {
  const image = new ort.Tensor("float32", state.image, [1, 3, 1024, 1024]);
  const start = performance.now();
  const out = await state.encoder.run({ image });
  const embeddings = out.image_embeddings.data;
  const ms = performance.now() - start;
  return { ms, relL2: relL2(embeddings, state.embeddings) };
}

export async function runDecoder() {
  const n = state.prompt.labels.length;
  const feeds = {
    image_embeddings: new ort.Tensor("float32", state.embeddings, [1, 256, 64, 64]),
    point_coords: new ort.Tensor("float32", Float32Array.from(state.prompt.coords), [1, n, 2]),
    point_labels: new ort.Tensor("float32", Float32Array.from(state.prompt.labels), [1, n]),
    mask_input: new ort.Tensor("float32", new Float32Array(256 * 256), [1, 1, 256, 256]),
    has_mask_input: new ort.Tensor("float32", new Float32Array(1), [1]),
  };
  const start = performance.now();
  const out = await state.decoder.run(feeds);
  const lowRes = out.low_res_masks.data;
  const ms = performance.now() - start;
  return { ms, relL2: relL2(lowRes, state.lowRes) };
}
