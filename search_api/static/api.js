// Talking to the service: requests that carry the read key, and readable error bodies.

const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("api-key");
const keyHint = document.getElementById("key-hint");

// A readable sentence from an error body: {"detail": "..."} or FastAPI's
// {"detail": [{"loc": [...], "msg": "..."}]}, or anything else.
export function detailText(body, response) {
  const detail = body && typeof body === "object" ? body.detail : undefined;
  if (typeof detail === "string" && detail.trim()) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map(function (item) {
        if (typeof item === "string") return item;
        if (item && typeof item.msg === "string") {
          const where = Array.isArray(item.loc)
            ? item.loc.filter((part) => part !== "query" && part !== "body").join(".")
            : "";
          return where ? where + ": " + item.msg : item.msg;
        }
        return JSON.stringify(item);
      })
      .join("; ");
  }
  if (detail !== undefined && detail !== null) return JSON.stringify(detail);
  return "HTTP " + response.status + (response.statusText ? " " + response.statusText : "");
}

export async function readJson(response) {
  try {
    return await response.json();
  } catch (_) {
    return null;
  }
}

// ---- the read key ----------------------------------------------------------

// When the service has a read key, it answers 401 until the page sends it. The key is asked
// for once and kept for this tab only (sessionStorage), never in the URL.
const KEY_STORAGE = "seedsearch-api-key";

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch (_) {
    return "";
  }
}

export async function apiFetch(url, options) {
  const headers = Object.assign({}, (options && options.headers) || {});
  const key = storedKey();
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(url, Object.assign({}, options || {}, { headers: headers }));
  if (response.status === 401) askForKey(Boolean(key));
  return response;
}

function askForKey(wasWrong) {
  keyForm.hidden = false;
  keyHint.textContent = wasWrong
    ? "That key was not accepted. Enter the service's API key."
    : "This service needs an API key to search.";
  keyInput.focus();
}

// A key entered in the key form is kept for the tab; then ``onKey`` runs (to ask again).
export function onKeyEntered(onKey) {
  keyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch (_) {
      // storage disabled: the key still works until the page reloads
    }
    keyInput.value = "";
    keyForm.hidden = true;
    onKey();
  });
}
