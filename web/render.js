// The page's DOM from the state: render(view, state) runs once per update (state.js) and
// writes only what changed; the canvases are drawn by canvas.js.
import { bestIndex, COLOURS, colourPixel, drawCanvases, latestBox, paintMask } from "./canvas.js";
import { el, fmtMs, setData, setText } from "./dom.js";
import { renderEverything } from "./everything.js";
import { active, canUndoStructural } from "./objects.js";
import { renderObjects } from "./objects_panel.js";
import { changed } from "./state.js";
import { LOAD_STAGES } from "./view.js";

// client.timings keys of the first-load breakdown, in load order.
const TIMING_LABELS = {
  verifyMs: "Bundle check",
  pyodideMs: "Pyodide boot",
  packageMs: "Package",
  weightsMs: "Weights",
  pipelinesMs: "Pipelines",
};
const THUMB_SIZE = 112;

// What produced a result in `mode` (GP-2), in the words Python serves with the modes.
function backendName(mode, modeChoices) {
  return modeChoices.find((choice) => choice.value === mode)?.runs ?? mode;
}

export function render(view, state) {
  const object = active();
  renderLoading(view.loading, state);
  renderStage(view, state);
  view.error.hidden = state.error === null;
  setText(view.errorText, state.error ?? "");
  renderBadge(view.badge, state, object);
  view.weightsNotice.hidden = state.weights?.demo !== true;
  if (changed("timings", state.encoderMs, state.decoderMs, state.firstLoad)) {
    renderTimings(view.timings, state);
  }
  if (changed("modes", state.modes, state.modeChoices, state.imageInfo)) renderModes(view, state);
  if (changed("runtime", state.runtime)) renderRuntime(view.runtimeReason, state.runtime);
  renderControls(view, state, object);
  renderObjects(view.objects, state);
  if (changed("masks", object.result, object.colour, state.image)) {
    renderMaskChoices(view.masks, state, object);
  }
  for (const button of view.masks.querySelectorAll(".mask-choice")) {
    const pressed = String(Number(button.dataset.index) === object.selected);
    if (button.getAttribute("aria-pressed") !== pressed) {
      button.setAttribute("aria-pressed", pressed);
    }
  }
  drawCanvases(view, state);
  renderEverything(view, state);
}

function renderLoading(loading, { ready, encoding, failed, progress }) {
  loading.root.hidden = !(!ready || encoding || failed);
  loading.root.classList.toggle("failed", failed);
  let title = "Encoding the image";
  if (failed && ready) title = "The model stopped; reload the page";
  else if (failed) title = "The model could not load";
  else if (!ready) title = "Loading the model";
  setText(loading.title, title);
  const index = LOAD_STAGES.findIndex(([id]) => id === progress.stage);
  LOAD_STAGES.forEach(([id], i) => {
    const step = loading.steps.get(id);
    // Once the model is ready, every loading step is done (the last stage is the image's).
    const loaded = ready && i < LOAD_STAGES.length - 1;
    step.classList.toggle("done", loaded || (index >= 0 && i < index));
    step.classList.toggle("active", i === index);
  });
  const { fraction } = progress;
  if (fraction === null || fraction === undefined) {
    loading.bar.removeAttribute("value");
    setText(loading.percent, "");
  } else {
    loading.bar.value = fraction;
    setText(loading.percent, `${Math.round(fraction * 100)}%`);
  }
  setText(loading.message, progress.message);
}

function renderStage(view, state) {
  const { image } = state;
  const busy = !state.ready || state.encoding || state.failed;
  view.emptyHint.hidden = busy || Boolean(image);
  setData(view.stage, "image", state.stageImage);
  setData(view.stage, "results", String(state.committed));
  setData(view.stage, "preview", state.preview && !active().result ? "1" : "0");
  view.stage.classList.toggle("interactive", state.encoded);
  view.stage.classList.toggle("busy", state.busy);
  view.stage.classList.toggle("dragging", state.dragging);
  setText(view.activity, state.activity);
  setText(view.imageInfo, image ? `${image.name} · ${image.width} × ${image.height}` : "");
}

function renderBadge(badge, { preview, backend: booted, adapter, modeChoices }, { result }) {
  const backend = result?.backend ?? preview?.backend ?? booted;
  setText(badge, `Backend: ${backend ? backendName(backend, modeChoices) : "–"}`);
  setData(badge, "backend", backend ?? "");
  badge.title = adapter ? `Adapter: ${adapter}` : "";
}

function renderTimings(timings, { encoderMs, decoderMs, firstLoad }) {
  const rows = [
    ["Encoder", fmtMs(encoderMs)],
    ["Decoder", fmtMs(decoderMs)],
  ];
  let total = 0;
  for (const [key, label] of Object.entries(TIMING_LABELS)) {
    if (!(key in firstLoad)) continue;
    const cached = key === "weightsMs" && firstLoad.weightsCached ? " (cached)" : "";
    rows.push([`First load: ${label}${cached}`, fmtMs(firstLoad[key])]);
    total += firstLoad[key];
  }
  if (total) rows.push(["First load: total", fmtMs(total)]);
  timings.replaceChildren(
    ...rows.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]),
  );
}

function renderModes(view, { modes, modeChoices, imageInfo: info }) {
  if (!modes) return;
  if (view.modeSelect.options.length !== modeChoices.length) {
    view.modeSelect.replaceChildren(
      ...modeChoices.map(({ value, label }) => el("option", { value }, label)),
    );
  }
  view.modeSelect.disabled = false;
  modeChoices.forEach(({ needsClient, needsServer }, i) => {
    view.modeSelect.options[i].disabled =
      (needsClient && !modes.clientAvailable) || (needsServer && !modes.serverAvailable);
  });
  view.modeSelect.value = modes.mode;
  view.modeNotice.hidden = !modes.notice && !modes.serverError;
  setText(view.modeNotice, modes.notice ?? modes.serverError ?? "");
  if (info) {
    const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
    const traffic =
      info.uploadBytes || info.downloadBytes
        ? ` · up ${mb(info.uploadBytes)}, down ${mb(info.downloadBytes)}, ` +
          `server ${fmtMs(info.serverMs)}`
        : "";
    const runs = backendName(info.mode, modeChoices);
    setText(view.modeReason, `This image: ${runs}${traffic}. ${info.reason}`);
  } else {
    const auto = modes.mode === "auto";
    setText(view.modeReason, auto ? "The planner picks a mode for each new image." : "");
  }
}

// GP-2: the client runtime in force and why (auto: the figures it measured, runtimes.py).
function renderRuntime(line, runtime) {
  const name = runtime?.runtime ?? "none (the server runs everything)";
  setText(line, runtime ? `Client runtime: ${name}. ${runtime.reason}` : "");
  setData(line, "runtime", runtime?.runtime ?? "");
}

function renderControls(view, { objects, encoded, image }, { prompts, result }) {
  const points = prompts.filter((p) => p.kind === "point");
  const positives = points.filter((p) => p.label).length;
  const parts = [];
  if (positives) parts.push(`${positives} positive`);
  if (points.length - positives) parts.push(`${points.length - positives} negative`);
  if (latestBox(prompts)) parts.push("1 box");
  setText(view.promptInfo, parts.length ? `Prompts: ${parts.join(", ")}.` : "No prompts yet.");
  setData(view.promptInfo, "count", String(prompts.length));
  view.undo.disabled = !prompts.length && !canUndoStructural();
  view.clear.disabled = !prompts.length;
  view.exportMask.disabled = !result;
  view.exportCutout.disabled = !result;
  const annotated = encoded && objects.some((o) => o.result);
  view.exportCoco.disabled = !annotated;
  view.exportPolygons.disabled = !annotated;
  view.exportLabels.disabled = !annotated;
  view.importCoco.disabled = !encoded;
  view.addObject.disabled = !image;
}

// One button per mask: a thumbnail of the image with the mask over it, and its IoU.
function renderMaskChoices(masks, { image }, { result, colour }) {
  if (!result) {
    masks.replaceChildren(el("p", { class: "muted" }, "Click the image to get a mask."));
    return;
  }
  const [count, height, width] = result.shape;
  const scale = Math.min(THUMB_SIZE / width, THUMB_SIZE / height);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const best = bestIndex(result);
  const buttons = [];
  for (let i = 0; i < count; i++) {
    const thumb = el("canvas", { class: "mask-thumb", width: w, height: h });
    const ctx = thumb.getContext("2d");
    ctx.drawImage(image.bitmap, 0, 0, w, h);
    const layer = el("canvas", { width: w, height: h });
    const fill = colourPixel(colour, COLOURS.fillAlpha);
    const pixels = paintMask(result, i, w, h, fill, COLOURS.edge);
    layer.getContext("2d").putImageData(pixels, 0, 0);
    ctx.drawImage(layer, 0, 0);
    const iou = result.iouPredictions?.[i];
    const score = `IoU ${iou === undefined || iou === null ? "–" : Number(iou).toFixed(3)}`;
    const caption = el(
      "span",
      { class: "mask-caption" },
      el("strong", {}, `Mask ${i + 1}`),
      el("span", { class: "mask-score" }, i === best ? `${score} · best` : score),
    );
    const button = el(
      "button",
      { type: "button", class: "mask-choice", "aria-label": `Mask ${i + 1}: ${score}` },
      thumb,
      caption,
    );
    button.dataset.index = String(i);
    buttons.push(button);
  }
  masks.replaceChildren(...buttons);
}
