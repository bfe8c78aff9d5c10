// Test bundles only: `python build.py --test-hooks` appends this file to worker.js (the
// production bundle has none of it). The requests behind testing/client.js's methods.

// The Python side of these hooks (sandseg.browser.testing).
const testing = () => pyodide.pyimport("sandseg.browser.testing");

// Testing GP-1: lose the GPU device as a driver reset would.
async function loseDevice() {
  testing().lose_device(session);
  return { type: "result", result: null };
}

// Testing GP-6: GPU errors inside error scopes come back named, and the device still works.
async function provokeGpuErrors() {
  return { type: "result", result: plain(await testing().provoke_gpu_errors(session)) };
}

// Issue 14: every matmul variant the adapter offers, pinned in turn, against exact results.
async function checkMatmulVariants() {
  return { type: "result", result: plain(await testing().check_matmul_variants(session)) };
}

// Issue 14: every conv2d variant likewise.
async function checkConv2dVariants() {
  return { type: "result", result: plain(await testing().check_conv2d_variants(session)) };
}

// Testing PY-3: block this thread as a stuck inference would (no heartbeat, no answer).
async function hang({ seconds }) {
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end);
  return { type: "result", result: null };
}

// Issue 13: the current image's embeddings, to compare with the official ones.
async function readEmbeddings() {
  return { type: "result", result: plain(await testing().read_embeddings(session)) };
}

Object.assign(HANDLERS, { loseDevice, provokeGpuErrors, checkMatmulVariants, checkConv2dVariants, hang, readEmbeddings });
