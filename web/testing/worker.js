// Test bundles only: `python build.py --test-hooks` appends this file to worker.js (the
// production bundle has none of it). The requests behind testing/client.js's methods.

// The Python side of these hooks (sandseg.browser.testing).
const testing = () => pyodide.pyimport("sandseg.browser.testing");

// Testing GP-1: lose the GPU device as a driver reset would.
async function loseDevice() {
  testing().lose_device(session);
  return { type: "result", result: null };
}

// Testing GP-1 mid-inference: lose the device while the `waits`-th GPU wait from now is pending.
async function loseDeviceMidway({ waits }) {
  testing().lose_device_midway(session, waits);
  return { type: "result", result: null };
}

// Testing PY-3: the next GPU wait never ends (the thread stays free; heartbeats go on).
async function stallGpu() {
  testing().stall_gpu(session);
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

// Testing GP-4 and GP-6 (the page's ?testShim=, passed in init's config by testing/client.js):
// "small-limits": the adapter reports limits below WebGPU's defaults (128 MiB bindings);
// "oom": every out-of-memory error scope reports that the GPU ran out of memory;
// "compile-fail": every asynchronous pipeline creation fails (the boot's compile phase).
// Either way the page must go on without this GPU (offload), not crash.
const SMALL_LIMITS = {
  maxStorageBufferBindingSize: 64 << 20,
  maxBufferSize: 64 << 20,
  maxStorageBuffersPerShaderStage: 4,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeInvocationsPerWorkgroup: 128,
};

function bound(target, override) {
  return new Proxy(target, {
    get(obj, name) {
      if (name in override) return override[name];
      const value = Reflect.get(obj, name);
      return typeof value === "function" ? value.bind(obj) : value;
    },
  });
}

function installAdapterShim(kind) {
  const requestAdapter = navigator.gpu.requestAdapter.bind(navigator.gpu);
  navigator.gpu.requestAdapter = async (options) => {
    const adapter = await requestAdapter(options);
    if (kind === "small-limits") return bound(adapter, { limits: SMALL_LIMITS });
    if (kind !== "oom" && kind !== "compile-fail") {
      throw new Error(`unknown test shim ${JSON.stringify(kind)}`);
    }
    const requestDevice = async (descriptor) => {
      const device = await adapter.requestDevice(descriptor);
      if (kind === "compile-fail") {
        const createComputePipelineAsync = () =>
          Promise.reject(new Error("compilation failed (test shim)"));
        return bound(device, { createComputePipelineAsync });
      }
      const filters = [];
      const pushErrorScope = (filter) => {
        filters.push(filter);
        device.pushErrorScope(filter);
      };
      const popErrorScope = async () => {
        const error = await device.popErrorScope();
        const oom = { message: "out of memory (test shim: the GPU cannot hold this)" };
        return filters.pop() === "out-of-memory" ? oom : error;
      };
      return bound(device, { pushErrorScope, popErrorScope });
    };
    return bound(adapter, { requestDevice });
  };
}

const initForReal = HANDLERS.init;

Object.assign(HANDLERS, {
  async init(message) {
    if (message.config?.testShim) installAdapterShim(message.config.testShim);
    return initForReal(message);
  },
  loseDevice,
  loseDeviceMidway,
  stallGpu,
  provokeGpuErrors,
  checkMatmulVariants,
  checkConv2dVariants,
  hang,
  readEmbeddings,
});
