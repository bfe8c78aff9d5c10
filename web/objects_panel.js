// The Objects panel: one row per object of the open image (select, colour, name, what its
// mask covers, hide, delete) and a New object button. Rows are kept per object id and
// updated in place, so a name being typed is never overwritten by a render.
import { button, el, setText } from "./dom.js";
import {
  addObject,
  areaOf,
  byId,
  iouOf,
  patchObject,
  removeObject,
  selectObject,
} from "./objects.js";
import { changed, showError } from "./state.js";

const rows = new Map(); // object id -> its row's nodes

export function buildObjectsPanel(view) {
  view.addObject = button("add-object", "New object");
  view.objects = el("ul", { class: "object-list", id: "object-list", "aria-label": "Objects" });
  return [view.objects, el("div", { class: "button-row" }, view.addObject)];
}

function row(object) {
  const select = el("input", { type: "radio", name: "active-object", class: "object-select" });
  const colour = el("input", { type: "color", class: "object-colour" });
  const name = el("input", { type: "text", class: "object-name", maxLength: 100 });
  const info = el("span", { class: "object-info" });
  const hide = el("input", { type: "checkbox", class: "object-hide" });
  const hideLabel = el("label", { class: "object-hide-label" }, hide, "Hide");
  const remove = el("button", { type: "button", class: "object-delete" }, "Delete");
  const root = el("li", { class: "object-row" }, select, colour, name, info, hideLabel, remove);
  root.dataset.id = String(object.id);
  return { root, select, colour, name, info, hide, remove };
}

function labelRow(r, object) {
  const who = object.name || `object ${object.id}`;
  r.select.setAttribute("aria-label", `Select ${who}`);
  r.colour.setAttribute("aria-label", `Colour of ${who}`);
  r.name.setAttribute("aria-label", `Name of ${who}`);
  r.hide.setAttribute("aria-label", `Hide ${who}`);
  r.remove.setAttribute("aria-label", `Delete ${who}`);
}

function fillRow(r, object, isActive) {
  r.root.classList.toggle("active", isActive);
  r.select.checked = isActive;
  if (r.colour.value !== object.colour) r.colour.value = object.colour;
  if (document.activeElement !== r.name && r.name.value !== object.name) {
    r.name.value = object.name;
  }
  r.hide.checked = object.hidden;
  const iou = iouOf(object);
  const parts = [object.result ? `${areaOf(object)} px` : "no mask"];
  if (iou !== null) parts.push(`IoU ${iou.toFixed(3)}`);
  setText(r.info, parts.join(" · "));
  labelRow(r, object);
}

export function renderObjects(list, state) {
  if (!changed("objects-panel", state.objects, state.activeId)) return;
  const ids = new Set(state.objects.map((o) => o.id));
  for (const [id, r] of rows) {
    if (!ids.has(id)) {
      r.root.remove();
      rows.delete(id);
    }
  }
  const ordered = state.objects.map((object) => {
    let r = rows.get(object.id);
    if (!r) rows.set(object.id, (r = row(object)));
    fillRow(r, object, object.id === state.activeId);
    return r.root;
  });
  if (ordered.some((node, i) => list.children[i] !== node)) list.replaceChildren(...ordered);
}

// Events on the list, found by the row's object id.
function onList(handler) {
  return (event) => {
    const node = event.target.closest(".object-row");
    if (!node) return;
    try {
      handler(Number(node.dataset.id), event.target);
    } catch (error) {
      showError(error);
    }
  };
}

export function wireObjects(view) {
  view.addObject.addEventListener("click", () => {
    try {
      addObject();
    } catch (error) {
      showError(error);
    }
  });
  const list = view.objects;
  list.addEventListener(
    "click",
    onList((id, target) => {
      if (target.classList.contains("object-delete")) removeObject(id);
      else if (!target.classList.contains("object-hide")) selectObject(id);
    }),
  );
  list.addEventListener(
    "focusin",
    onList((id, target) => {
      if (target.classList.contains("object-name")) selectObject(id);
    }),
  );
  list.addEventListener(
    "change",
    onList((id, target) => {
      if (target.classList.contains("object-hide")) patchObject(id, { hidden: target.checked });
      else if (target.classList.contains("object-colour")) {
        patchObject(id, { colour: target.value });
      } else if (target.classList.contains("object-name")) {
        patchObject(id, { name: target.value.trim() || byId(id).name });
      }
    }),
  );
  list.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.classList.contains("object-name")) {
      event.target.blur();
    }
  });
}
