// The answer on show: running its search, drawing it, and paging on through it. Only the
// newest search may touch the page.

import { clearError, plural, showError } from "./dom.js";
import { apiFetch, detailText, readJson } from "./api.js";
import { SORTS, form, urlFor } from "./state.js";
import { resultList, showPassages } from "./results.js";
import {
  clearRefinements, markRefinementsBusy, restoreFocus, showRefinements,
} from "./refine.js";
import { noticeSnapshot } from "./stats.js";
import { showSubscribe } from "./subscribe.js";

// Passages per request: the page groups them per article, so it asks for a good handful.
const PAGE_SIZE = 50;
const MAX_OFFSET = 900; // the API pages no further

const hint = document.getElementById("hint");
const status = document.getElementById("status");
const paging = document.getElementById("paging");
const shown = document.getElementById("shown");
export const moreButton = document.getElementById("more");

let searchSeq = 0; // only the newest search may touch the page
let inFlight = null; // AbortController of the running search
let view = null; // the answer on show: its search, its passages so far, its totals

// The answer on show, or null.
export function currentView() {
  return view;
}

// ---- page states ---------------------------------------------------------

function clearResults() {
  view = null;
  resultList.replaceChildren();
  resultList.removeAttribute("aria-busy");
  clearRefinements();
  paging.hidden = true;
}

export function showHint() {
  cancelSearch();
  clearResults();
  clearError();
  status.textContent = "";
  hint.hidden = false;
}

function cancelSearch() {
  searchSeq += 1;
  if (inFlight) inFlight.abort();
  inFlight = null;
  form.removeAttribute("aria-busy");
}

// ---- an answer -----------------------------------------------------------

function numberOrNull(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

// "214 passages in 63 articles match", "at least" when the service stopped counting early.
function totalText(total, articles, lowerBound) {
  const atLeast = lowerBound ? "at least " : "";
  const text = atLeast + plural(total, "passage", "passages") + " in " + atLeast +
    plural(articles, "article", "articles") + (total === 1 && !lowerBound ? " matches" : " match");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function renderResponse(data, state) {
  const list = Array.isArray(data.results) ? data.results : [];
  const took = typeof data.took_ms === "number" ? Math.round(data.took_ms) : null;
  view = {
    state: state,
    snapshot: data.snapshot || null,
    total: numberOrNull(data.total),
    articles: numberOrNull(data.total_articles),
    lowerBound: data.total_is_lower_bound === true,
    took: took,
    passages: [],
    seen: new Set(),
    groups: new Map(),
    lastPage: list.length,
    ended: list.length === 0,
  };
  resultList.replaceChildren();
  resultList.removeAttribute("aria-busy");
  showPassages(view, list);

  if (list.length === 0) {
    // The service says why a list is empty ("no passage matches this query well").
    const why = typeof data.note === "string" && data.note ? data.note : "no passages match";
    status.textContent = why.charAt(0).toUpperCase() + why.slice(1) + ": “" + state.q + "”" +
      (took === null ? "" : " in " + took + " ms") + ".";
  } else {
    const articles = view.articles === null ? new Set(list.map((r) => r.article_id)).size : view.articles;
    status.textContent = totalText(view.total === null ? list.length : view.total, articles, view.lowerBound);
  }

  const facets = data.facets && typeof data.facets === "object" ? data.facets : {};
  view.facets = facets;
  showRefinements(facets, state, list.length > 0);
  showSubscribe(state);
  showPaging();
  restoreFocus();
  noticeSnapshot(data.snapshot);
}

// The query string of one page of a search.
function searchParams(state, offset, withFacets) {
  const params = new URLSearchParams({ q: state.q, k: String(PAGE_SIZE), mode: state.mode });
  if (offset) params.set("offset", String(offset));
  if (withFacets) params.set("facets", "month,source");
  if (state.sort !== SORTS[0]) params.set("sort", state.sort);
  for (const source of state.sources) params.append("source", source);
  if (state.from) params.set("date_from", state.from);
  if (state.to) params.set("date_to", state.to);
  return params;
}

export async function runSearch(state) {
  cancelSearch();
  const seq = searchSeq;
  const controller = new AbortController();
  inFlight = controller;

  hint.hidden = true;
  clearError();
  status.textContent = "Searching…";
  resultList.setAttribute("aria-busy", "true");
  markRefinementsBusy();
  form.setAttribute("aria-busy", "true");

  let response;
  let body;
  try {
    response = await apiFetch("/search?" + searchParams(state, 0, true).toString(), {
      headers: { Accept: "application/json" },
      signal: controller.signal,
    });
    body = await readJson(response);
  } catch (error) {
    if (seq !== searchSeq || (error && error.name === "AbortError")) return;
    finish();
    clearResults();
    status.textContent = "";
    showError("Could not reach the search service. Check that it is running and try again.");
    return;
  }
  if (seq !== searchSeq) return; // a newer search took over
  finish();

  if (!response.ok || !body || typeof body !== "object") {
    clearResults();
    status.textContent = "";
    const detail = response.ok ? "the service sent an unreadable answer" : detailText(body, response);
    showError("Search failed: " + detail);
    return;
  }
  renderResponse(body, state);

  function finish() {
    inFlight = null;
    form.removeAttribute("aria-busy");
  }
}

// ---- paging on -----------------------------------------------------------

// Draws the passages already fetched again (grouped or not), with no new request.
function redrawPassages() {
  const passages = view.passages;
  view.passages = [];
  view.seen = new Set();
  view.groups = new Map();
  resultList.replaceChildren();
  showPassages(view, passages);
  showPaging();
}

function canLoadMore() {
  const loaded = view.passages.length;
  if (view.ended || loaded > MAX_OFFSET) return false;
  return view.total === null ? view.lastPage === PAGE_SIZE : loaded < view.total;
}

function showPaging() {
  const loaded = view.passages.length;
  if (loaded === 0) {
    paging.hidden = true;
    return;
  }
  const total = view.total === null ? loaded : view.total;
  const atLeast = view.lowerBound ? "at least " : "";
  let text = view.state.grouped
    ? "Showing " + view.groups.size + " of " + atLeast +
      plural(view.articles === null ? view.groups.size : view.articles, "article", "articles") +
      " (" + loaded + " of " + atLeast + plural(total, "passage", "passages") + ")"
    : "Showing " + loaded + " of " + atLeast + plural(total, "passage", "passages");
  if (view.took !== null) text += " · answered in " + view.took + " ms";
  const more = canLoadMore();
  if (!more && loaded < total) {
    text += ". The service pages no further: narrow the search by date or source.";
  }
  shown.textContent = text;
  moreButton.hidden = !more;
  paging.hidden = false;
}

// The next page of the same search. In the grouped view a page whose passages all join
// articles already shown adds nothing visible, so pages are fetched until one adds an
// article (or the answer ends).
export async function loadMore() {
  if (!view || inFlight || !canLoadMore()) return;
  const seq = searchSeq;
  const controller = new AbortController();
  inFlight = controller;
  moreButton.setAttribute("aria-disabled", "true");
  let created = [];
  try {
    while (created.length === 0 && canLoadMore()) {
      const params = searchParams(view.state, view.passages.length, false);
      const response = await apiFetch("/search?" + params.toString(), {
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
      const body = await readJson(response);
      if (seq !== searchSeq) return;
      if (!response.ok || !body || typeof body !== "object") {
        throw new Error(response.ok ? "the service sent an unreadable answer" : detailText(body, response));
      }
      if (body.snapshot && view.snapshot && body.snapshot !== view.snapshot) {
        // The index was swapped between pages: offsets no longer line up, start again.
        inFlight = null;
        runSearch(view.state);
        return;
      }
      const list = Array.isArray(body.results) ? body.results : [];
      view.lastPage = list.length;
      if (list.length === 0) view.ended = true;
      created = created.concat(showPassages(view, list));
    }
  } catch (error) {
    if (seq !== searchSeq || (error && error.name === "AbortError")) return;
    showError("Could not load more results: " + error.message);
  } finally {
    if (seq === searchSeq) {
      inFlight = null;
      moreButton.removeAttribute("aria-disabled");
    }
  }
  if (seq !== searchSeq) return;
  showPaging();
  // Keyboard users carry on reading from the first new entry.
  if (created.length) {
    created[0].tabIndex = -1;
    created[0].focus();
  }
}

// Grouping redraws the passages already here; the address remembers the choice.
export function regroup(grouped) {
  if (!view) return;
  view.state = Object.assign({}, view.state, { grouped: grouped });
  history.replaceState(view.state, "", urlFor(view.state));
  redrawPassages();
}
