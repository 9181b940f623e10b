// Small DOM helpers shared by the page's modules, and the page's one error box.
// Server text is only ever placed with textContent, never parsed as HTML.

const errorBox = document.getElementById("error");

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function plural(n, one, many) {
  return n + " " + (n === 1 ? one : many);
}

export function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

export function clearError() {
  errorBox.textContent = "";
  errorBox.hidden = true;
}
