// Test bundles only: `python build.py --test-hooks` appends this file to client.js (the
// production bundle has none of it). Requests that provoke failures on purpose, for the
// browser tests (tests/browser); the worker's side is testing/worker.js.

Object.assign(SandsegClient.prototype, {
  /** Testing GP-1: lose the GPU device as a driver reset would; the next call recovers. */
  async loseDeviceForTesting() {
    await this._request({ type: "loseDevice" });
  },

  /** Testing GP-1 mid-inference: the device is lost while the `waits`-th GPU wait from now is
   * pending (1: the next request's first), as a driver reset in mid-work would lose it. */
  async loseDeviceMidwayForTesting(waits) {
    await this._request({ type: "loseDeviceMidway", waits });
  },

  /** Testing PY-3: the next GPU wait never ends, as work the GPU never completes. */
  async stallGpuForTesting() {
    await this._request({ type: "stallGpu" });
  },

  /** Testing GP-6: [message, ...] of the GPU errors a bad buffer and a bad shader raise. */
  async provokeGpuErrorsForTesting() {
    return this._request({ type: "provokeGpuErrors" });
  },

  /** Issue 14: [{variant, shape, wrong, guard}] for every matmul variant on this adapter. */
  async checkMatmulVariantsForTesting() {
    return this._request({ type: "checkMatmulVariants" });
  },

  /** Issue 14: [{variant, shape, wrong, guard}] for every conv2d variant on this adapter. */
  async checkConv2dVariantsForTesting() {
    return this._request({ type: "checkConv2dVariants" });
  },

  /** Issue 13: the current image's (64, 64, 256) float32 embeddings, base64 (little-endian). */
  async embeddingsForTesting() {
    return toBase64(await this._request({ type: "readEmbeddings" }));
  },

  /** Testing PY-3: block the worker's thread for `seconds`, as a stuck inference would. */
  async hangForTesting(seconds) {
    await this._request({ type: "hang", seconds });
  },
});

// Testing GP-4 and GP-6: the page's ?testShim= goes to the worker with init's config
// (testing/worker.js installs the adapter shim it names before WebGPU is touched).
const requestForReal = SandsegClient.prototype._request;
SandsegClient.prototype._request = function (message, transfer) {
  const shim = new URLSearchParams(location.search).get("testShim");
  if (message.type === "init" && shim) {
    message = { ...message, config: { ...message.config, testShim: shim } };
  }
  return requestForReal.call(this, message, transfer);
};
