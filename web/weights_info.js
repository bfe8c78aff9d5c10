// Which weights the server serves, from GET /api/v1/model's `weights` ({name, sha256, demo}),
// read once at start-up into state.weights (window.sandseg.weights). With the seeded demo
// weights the page says so (render.js: #weights-notice) without blocking anything. A server
// without the offload API has nothing to say: the notice stays hidden.
import { tokenFromUrl } from "./client.js";
import { update } from "./state.js";

export async function readWeightsInfo() {
  const token = tokenFromUrl();
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let weights;
  try {
    const response = await fetch("/api/v1/model", { headers, cache: "no-store" });
    if (!response.ok) return;
    ({ weights } = await response.json());
  } catch (error) {
    console.warn(`sandseg: could not read /api/v1/model: ${error}`);
    return;
  }
  if (!weights) return;
  const { name = null, sha256 = null, demo = false } = weights;
  update({ weights: { name, sha256, demo: demo === true } });
}
