// The help overlay: the keyboard shortcuts (shortcuts.js) and how to prompt, in a dialog that
// "?" or the header's button opens and Escape or its Close button closes.
import { el } from "./dom.js";
import { SHORTCUTS } from "./shortcuts.js";

export function buildHelp(view) {
  view.helpButton = el(
    "button",
    {
      type: "button",
      id: "help-button",
      class: "help-button",
      "aria-label": "Keyboard shortcuts and help (?)",
    },
    "?",
  );
  const rows = SHORTCUTS.map(([keys, what]) =>
    el("tr", {}, el("th", { scope: "row" }, el("kbd", {}, keys)), el("td", {}, what)),
  );
  view.helpClose = el("button", { type: "button", class: "help-close" }, "Close");
  view.help = el(
    "dialog",
    { id: "help-dialog", class: "help-dialog", "aria-labelledby": "help-title" },
    el("h2", { id: "help-title" }, "Keyboard shortcuts"),
    el("table", { class: "shortcuts" }, el("tbody", {}, ...rows)),
    el(
      "p",
      { class: "muted" },
      "On the image: left click adds a positive point, right click or Shift+click a negative " +
        "one, a drag draws a box. Prompts, hover preview and mask choice act on the selected " +
        "object; every visible object is drawn in its colour.",
    ),
    view.helpClose,
  );
  view.helpButton.addEventListener("click", () => openHelp(view));
  view.helpClose.addEventListener("click", () => view.help.close());
  return view.help;
}

export function openHelp(view) {
  if (!view.help.open) view.help.showModal();
}

export function closeHelp(view) {
  if (!view.help.open) return false;
  view.help.close();
  return true;
}
