// Small DOM helpers. Every piece of text from the server (project, template,
// keypoint and file names) goes through textContent, never innerHTML, so a name
// such as "<img src=x onerror=...>" is shown literally and never parsed.

/**
 * Create an element.
 * @param {string} tag
 * @param {Object} [attrs] attributes; "class", "dataset" (object), "on<event>" (listener),
 *   "text" (textContent) are handled specially; other values are set with setAttribute.
 * @param {...(Node|string|null|undefined)} children strings become text nodes.
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Remove all children of a node. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** Show a transient message at the bottom of the page. */
export function toast(message, kind = "info") {
  const host = document.getElementById("toasts");
  if (!host) return;
  const note = el("div", { class: `toast toast-${kind}`, role: "status", text: message });
  host.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 3500);
}
