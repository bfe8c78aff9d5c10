// The page's keyboard shortcuts: one table, read by the key handler and by the help overlay
// (help.js). Keys typed into a text field, a select or a colour picker are theirs, not ours.

// [keys as shown, what it does, the action's name, the key values that trigger it]
export const SHORTCUTS = [
  ["N", "New object", "newObject", ["n"]],
  ["Z or Ctrl+Z", "Undo the selected object's last prompt, or a delete or import", "undo", ["z"]],
  ["C", "Clear the selected object's prompts", "clear", ["c"]],
  ["Delete or Backspace", "Delete the selected object", "deleteObject", ["delete", "backspace"]],
  ["1, 2, 3", "Choose mask 1, 2 or 3 of the selected object", "chooseMask", ["1", "2", "3"]],
  ["E", "Export all objects as COCO JSON", "exportCoco", ["e"]],
  ["H", "Hover preview on or off", "toggleHover", ["h"]],
  ["?", "This help", "help", ["?"]],
  ["Escape", "Cancel a box drag, close this help", "cancel", ["escape"]],
];

const TEXT_INPUTS = new Set(["text", "search", "email", "url", "tel", "password", "number"]);

function typing(target) {
  if (!target) return false;
  if (["TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable) return true;
  return target.tagName === "INPUT" && TEXT_INPUTS.has(target.type);
}

/** Listens for the shortcuts on `target`: actions maps each action's name to a function
 * (chooseMask gets the mask's index, 0-2). */
export function installShortcuts(target, actions) {
  const byKey = new Map();
  for (const [, , action, keys] of SHORTCUTS) for (const key of keys) byKey.set(key, action);
  target.addEventListener("keydown", (event) => {
    const key = event.key.toLowerCase();
    if (event.altKey || event.metaKey || (typing(event.target) && key !== "escape")) return;
    // Ctrl or Meta with anything but Z is the browser's (copy, paste, reload).
    if (event.ctrlKey && key !== "z") return;
    const action = byKey.get(key);
    if (!action) return;
    event.preventDefault();
    if (action === "chooseMask") actions.chooseMask(Number(key) - 1);
    else actions[action]();
  });
}
