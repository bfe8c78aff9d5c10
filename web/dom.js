// Small DOM helpers for the page's modules. CSP (WB-1): no inline scripts or style
// attributes; nodes are made here and sized through the CSSOM.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// A push button (type "button": it never submits a form) with its id and label.
export function button(id, text, props = {}) {
  return el("button", { type: "button", id, ...props }, text);
}

// Writes only what changed: a render that changes nothing touches nothing (no mutation
// records for observers, no repeated announcements from aria-live regions).
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setData(node, key, value) {
  if (node.dataset[key] !== value) node.dataset[key] = value;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function messageOf(error) {
  if (typeof error === "string") return error;
  return error?.message ?? error?.detail?.message ?? String(error);
}
