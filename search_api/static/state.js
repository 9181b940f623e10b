// The search as state: read from the address bar or from the form, written back to both.

export const form = document.getElementById("search-form");
export const input = document.getElementById("q");
export const modeSelect = document.getElementById("mode");
export const dateFrom = document.getElementById("date-from");
export const dateTo = document.getElementById("date-to");
export const sortSelect = document.getElementById("sort");
export const groupBox = document.getElementById("group");

const MODES = ["hybrid", "dense", "lexical"];
const DEFAULT_MODE = "hybrid";
export const SORTS = ["relevance", "date"];

let activeSources = []; // the source filter, from the URL or the chips

function normalMode(value) {
  return MODES.includes(value) ? value : DEFAULT_MODE;
}

function normalSort(value) {
  return SORTS.includes(value) ? value : SORTS[0];
}

// A YYYY-MM-DD date or "" (what <input type="date"> gives and the API takes).
function normalDate(value) {
  return /^\d{4}-\d{2}-\d{2}$/.test(value || "") ? value : "";
}

export function stateFromUrl() {
  const params = new URLSearchParams(window.location.search);
  return {
    q: (params.get("q") || "").trim(),
    mode: normalMode(params.get("mode")),
    from: normalDate(params.get("date_from")),
    to: normalDate(params.get("date_to")),
    sort: normalSort(params.get("sort")),
    sources: Array.from(new Set(params.getAll("source").filter(Boolean))),
    grouped: params.get("view") !== "passages",
  };
}

export function stateFromForm() {
  return {
    q: input.value.trim(),
    mode: normalMode(modeSelect.value),
    from: normalDate(dateFrom.value),
    to: normalDate(dateTo.value),
    sort: normalSort(sortSelect.value),
    sources: activeSources.slice(),
    grouped: groupBox.checked,
  };
}

// Sets every control to ``state`` (what the address bar asks for).
export function showState(state) {
  input.value = state.q;
  modeSelect.value = state.mode;
  dateFrom.value = state.from;
  dateTo.value = state.to;
  sortSelect.value = state.sort;
  groupBox.checked = state.grouped;
  activeSources = state.sources;
}

// A chip narrows the search to its source; pressed again, it lets the source go.
export function toggleSource(value) {
  activeSources = activeSources.includes(value)
    ? activeSources.filter((source) => source !== value)
    : activeSources.concat([value]);
}

export function urlFor(state) {
  if (!state.q) return "/";
  const params = new URLSearchParams({ q: state.q, mode: state.mode });
  if (state.from) params.set("date_from", state.from);
  if (state.to) params.set("date_to", state.to);
  if (state.sort !== SORTS[0]) params.set("sort", state.sort);
  for (const source of state.sources) params.append("source", source);
  if (!state.grouped) params.set("view", "passages");
  return "/?" + params.toString();
}

export function recordUrl(state) {
  const url = urlFor(state);
  const current = window.location.pathname + window.location.search;
  if (url === current) {
    history.replaceState(state, "", url);
  } else {
    history.pushState(state, "", url);
  }
}

export function setTitle(query) {
  document.title = query ? query + " – seedsearch" : "seedsearch";
}
