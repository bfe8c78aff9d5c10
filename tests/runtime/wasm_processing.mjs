// Runs web/ort_runtime.js's pre- and post-processing in Node for test_wasm_processing.py.
// argv: a folder holding job.json and the raw inputs it names; writes the outputs there.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [, , folder, modulePath] = process.argv;
const { resizePass, normalize, upscale } = await import(pathToFileURL(modulePath).href);
const job = JSON.parse(readFileSync(join(folder, "job.json"), "utf8"));
const raw = (name) => new Uint8Array(readFileSync(join(folder, name)));

if (job.preprocess) {
  const { height, width, channels, passes, resized } = job.preprocess;
  let src = raw("pixels.bin");
  let [h, w, c] = [height, width, channels];
  for (const [i, p] of passes.entries()) {
    src = resizePass(src, h, w, c, p.outH, p.outW, p.horizontal, p.taps, raw(`table${i}.bin`));
    [h, w, c] = [p.outH, p.outW, 3];
  }
  const x = normalize(src, resized[0], resized[1]);
  writeFileSync(join(folder, "x.bin"), new Uint8Array(x.buffer));
}
if (job.upscale) {
  const { count, resized, original } = job.upscale;
  const bytes = raw("low_res.bin");
  const lowRes = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const masks = upscale(lowRes, count, ...resized, ...original);
  writeFileSync(join(folder, "masks.bin"), masks);
}
