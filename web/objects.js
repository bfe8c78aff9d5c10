// The objects of each image: several per image, each with its own prompts, result (its chosen
// mask: `selected`), colour, name and visibility. The open image's objects are
// state.objects, the selected one state.activeId; every image opened in this session keeps
// its own (by the file's sha256), so switching back restores them.
//
// An object: {id, name, colour, hidden, prompts, result, selected, base}. result is a predict
// result ({masks, shape: [C, H, W], iouPredictions, ...}) or an imported mask ({masks,
// shape: [1, H, W], iouPredictions: null}); base: the imported mask an object falls back to
// when its last prompt is undone. Objects are replaced, never changed in place, so renderers
// see a change by identity (state.changed).
import { state, update } from "./state.js";

export const PALETTE = [
  "#1e90ff",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#e377c2",
  "#17becf",
  "#bcbd22",
];
const NONE = Object.freeze({
  id: null,
  name: "",
  colour: PALETTE[0],
  hidden: false,
  prompts: Object.freeze([]),
  result: null,
  selected: 0,
  base: null,
});

// image key -> {objects, activeId, count (objects ever made: names and colours), undoable}.
// undoable: what Undo brings back right after a delete or an import ({objects, activeId}).
const library = new Map();
let nextId = 1;

/** The selected object of the open image (an empty stand-in when there is none). */
export function active() {
  return state.objects.find((o) => o.id === state.activeId) ?? NONE;
}

export function byId(id) {
  const found = state.objects.find((o) => o.id === id);
  if (!found) {
    const ids = state.objects.map((o) => o.id).join(", ") || "none";
    throw new Error(`no object with id ${JSON.stringify(id)} on this image (ids: ${ids})`);
  }
  return found;
}

function current() {
  const entry = state.image ? library.get(state.image.key) : null;
  if (!entry) throw new Error("open an image first: objects belong to an image");
  return entry;
}

function save(entry, patch, keepUndoable = false) {
  Object.assign(entry, patch);
  if (!keepUndoable) entry.undoable = null;
  if (state.image && library.get(state.image.key) === entry) {
    update({ objects: entry.objects, activeId: entry.activeId });
  }
}

function make(entry, name) {
  entry.count += 1;
  const colour = PALETTE[(entry.count - 1) % PALETTE.length];
  const label = String(name ?? "").trim() || `Object ${entry.count}`;
  return { ...NONE, id: nextId++, name: label, colour, prompts: [] };
}

/** The objects of the image with this key (its file's sha256): kept from earlier in the
 * session, else one implicit object. -> {objects, activeId}, to merge into the state. */
export function objectsOf(key) {
  let entry = library.get(key);
  if (!entry) {
    entry = { objects: [], activeId: null, count: 0, undoable: null };
    const first = make(entry);
    Object.assign(entry, { objects: [first], activeId: first.id });
    library.set(key, entry);
  }
  return { objects: entry.objects, activeId: entry.activeId };
}

/** A new object, selected. -> its id. */
export function addObject(name) {
  const entry = current();
  const object = make(entry, name);
  save(entry, { objects: [...entry.objects, object], activeId: object.id });
  update({ preview: null });
  return object.id;
}

/** The selected object, made first when there is none (every object was deleted). */
export function ensureActive() {
  return state.activeId === null || !state.objects.some((o) => o.id === state.activeId)
    ? addObject()
    : state.activeId;
}

export function selectObject(id) {
  byId(id);
  if (id === state.activeId) return;
  save(current(), { activeId: id }, true);
  update({ preview: null });
}

export function removeObject(id) {
  byId(id);
  const entry = current();
  const undoable = { objects: entry.objects, activeId: entry.activeId };
  const index = entry.objects.findIndex((o) => o.id === id);
  const objects = entry.objects.filter((o) => o.id !== id);
  let activeId = entry.activeId;
  if (activeId === id) activeId = objects[Math.min(index, objects.length - 1)]?.id ?? null;
  save(entry, { objects, activeId, undoable }, true);
}

/** Changes one object (by id): a patch of its fields. */
export function patchObject(id, patch) {
  const entry = current();
  if (!entry.objects.some((o) => o.id === id)) return;
  const objects = entry.objects.map((o) => (o.id === id ? { ...o, ...patch } : o));
  save(entry, { objects });
}

/** The open image's objects replaced (an import); Undo brings the earlier ones back.
 * items: [{name, mask: Uint8Array H*W, iou: number | null}]. */
export function replaceObjects(items) {
  const entry = current();
  const { width, height } = state.image;
  const undoable = { objects: entry.objects, activeId: entry.activeId };
  entry.count = 0;
  const objects = items.map(({ name, mask, iou }) => {
    const iouPredictions = iou === null || iou === undefined ? null : [iou];
    const base = { masks: mask, shape: [1, height, width], iouPredictions };
    return { ...make(entry, name), result: base, base };
  });
  save(entry, { objects, activeId: objects[0]?.id ?? null, undoable }, true);
  update({ preview: null });
  return objects;
}

export function canUndoStructural() {
  const entry = state.image ? library.get(state.image.key) : null;
  return Boolean(entry?.undoable);
}

/** Right after a delete or an import: brings the objects before it back. -> whether it did. */
export function undoStructural() {
  const entry = state.image ? library.get(state.image.key) : null;
  if (!entry?.undoable) return false;
  save(entry, { ...entry.undoable });
  return true;
}

/** The chosen mask of an object: a Uint8Array H*W (0/1), or null. */
export function maskOf(object) {
  const { result, selected } = object;
  if (!result) return null;
  const [, height, width] = result.shape;
  return result.masks.subarray(selected * height * width, (selected + 1) * height * width);
}

export function iouOf(object) {
  const iou = object.result?.iouPredictions?.[object.selected];
  return iou === undefined || iou === null ? null : Number(iou);
}

export function areaOf(object) {
  const mask = maskOf(object);
  let area = 0;
  if (mask) for (let i = 0; i < mask.length; i++) area += mask[i];
  return area;
}

/** The surface's view: [{id, name, iou, area}] in list order. */
export function summaries() {
  return state.objects.map((o) => ({ id: o.id, name: o.name, iou: iouOf(o), area: areaOf(o) }));
}
