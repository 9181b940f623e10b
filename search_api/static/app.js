// seedsearch search page: plain DOM, no framework, no build step.
// Server text is only ever placed with textContent, never parsed as HTML.
"use strict";

(function () {
  const MODES = ["hybrid", "dense", "lexical"];
  const DEFAULT_MODE = "hybrid";
  const RESULTS_PER_PAGE = 10;

  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const modeSelect = document.getElementById("mode");
  const dateFrom = document.getElementById("date-from");
  const dateTo = document.getElementById("date-to");
  const hint = document.getElementById("hint");
  const errorBox = document.getElementById("error");
  const status = document.getElementById("status");
  const results = document.getElementById("results");
  const stats = document.getElementById("stats");
  const keyForm = document.getElementById("key-form");
  const keyInput = document.getElementById("api-key");
  const keyHint = document.getElementById("key-hint");

  let searchSeq = 0; // only the newest search may touch the page
  let inFlight = null; // AbortController of the running search
  let shownSnapshot = null; // snapshot id currently described in #stats
  let statsLoading = null; // the /stats request in flight, if any

  // ---- small helpers -------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function normalMode(value) {
    return MODES.includes(value) ? value : DEFAULT_MODE;
  }

  // A YYYY-MM-DD date or "" (what <input type="date"> gives and the API takes).
  function normalDate(value) {
    return /^\d{4}-\d{2}-\d{2}$/.test(value || "") ? value : "";
  }

  // A readable sentence from an error body: {"detail": "..."} or FastAPI's
  // {"detail": [{"loc": [...], "msg": "..."}]}, or anything else.
  function detailText(body, response) {
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

  async function readJson(response) {
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

  async function apiFetch(url, options) {
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
    clearError();
    loadStats();
    applyUrl();
  });

  // ---- page states ---------------------------------------------------------

  function clearResults() {
    results.replaceChildren();
    results.removeAttribute("aria-busy");
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  function showHint() {
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

  // ---- highlighting --------------------------------------------------------

  // Highlights and evidence are code-point offsets (Python str indices). Array.from
  // splits a string into code points, so characters outside the BMP count as one.
  function flagged(length, spans) {
    const flags = new Array(length).fill(false);
    for (const span of Array.isArray(spans) ? spans : []) {
      const start = Math.max(0, Number(span.start) | 0);
      const end = Math.min(length, Number(span.end) | 0);
      for (let i = start; i < end; i += 1) flags[i] = true;
    }
    return flags;
  }

  // Runs of equal flags: [[start, end, flag], ...].
  function runs(flags, from, to) {
    const found = [];
    for (let i = from; i < to; ) {
      let j = i;
      while (j < to && flags[j] === flags[i]) j += 1;
      found.push([i, j, flags[i]]);
      i = j;
    }
    return found;
  }

  // The evidence sentence in <strong>, matched query terms in <mark>.
  function highlightedText(container, text, highlights, evidence) {
    const chars = Array.from(text);
    const marked = flagged(chars.length, highlights);
    const strong = flagged(chars.length, evidence);
    for (const [start, end, isEvidence] of runs(strong, 0, chars.length)) {
      const target = isEvidence ? el("strong", "evidence") : container;
      for (const [from, to, isMark] of runs(marked, start, end)) {
        const piece = chars.slice(from, to).join("");
        target.append(isMark ? el("mark", null, piece) : piece);
      }
      if (isEvidence) container.append(target);
    }
  }

  // ---- results -------------------------------------------------------------

  function renderResult(result) {
    const item = el("li", "result");

    const title = el("h2", "result-title", result.title || "(untitled)");
    item.append(title);

    const text = el("p", "result-text");
    highlightedText(text, String(result.text ?? ""), result.highlights, result.evidence);
    item.append(text);

    const meta = el("p", "result-meta");
    const fields = [
      ["published", "Published", result.published || "date unknown"],
      ["source", "Source", result.source],
      ["kind", "Kind", result.kind],
      ["score", "Score", typeof result.score === "number" ? result.score.toFixed(3) : "—"],
    ];
    for (const [name, label, value] of fields) {
      const field = el("span", "meta-field meta-" + name);
      field.append(el("span", "meta-label", label + " "), el("span", "meta-value", value));
      meta.append(field);
    }
    item.append(meta);

    const copies = Number(result.duplicates) || 0;
    if (copies > 0) {
      const sources = Array.isArray(result.duplicate_sources) ? result.duplicate_sources : [];
      item.append(el("p", "duplicates",
        "Also published " + plural(copies, "more time", "more times") +
        (sources.length ? ": " + sources.join(", ") : "")));
    }

    // Read on: the whole article in reading order, with this passage marked.
    const readOn = el("button", "read-on", "Read the article");
    readOn.type = "button";
    readOn.setAttribute("aria-expanded", "false");
    readOn.addEventListener("click", () => toggleArticle(item, readOn, result));
    item.append(readOn);
    return item;
  }

  async function toggleArticle(item, button, result) {
    const shown = item.querySelector(".article");
    if (shown) {
      shown.remove();
      button.setAttribute("aria-expanded", "false");
      button.textContent = "Read the article";
      return;
    }
    try {
      const response = await apiFetch("/articles/" + encodeURIComponent(result.article_id));
      if (!response.ok) throw new Error(detailText(await readJson(response), response));
      const article = await response.json();
      const list = el("ol", "article");
      list.setAttribute("aria-label", "The article: " + article.title);
      for (const passage of article.passages) {
        const entry = el("li", "article-passage" + (passage.kind === "caption" ? " caption" : ""), passage.text);
        if (passage.chunk_id === result.chunk_id) {
          entry.classList.add("hit");
          entry.setAttribute("aria-current", "true");
        }
        list.append(entry);
      }
      item.append(list);
      button.setAttribute("aria-expanded", "true");
      button.textContent = "Hide the article";
      const hit = list.querySelector(".hit");
      if (hit) hit.scrollIntoView({ block: "nearest" });
    } catch (error) {
      showError("Could not load the article: " + error.message);
    }
  }

  function renderResponse(data, query) {
    const list = Array.isArray(data.results) ? data.results : [];
    const took = typeof data.took_ms === "number" ? Math.round(data.took_ms) : null;
    const timing = took === null ? "" : " in " + took + " ms";

    if (list.length === 0) {
      clearResults();
      // The service says why a list is empty ("no passage matches this query well").
      const why = typeof data.note === "string" && data.note ? data.note : "no passages match";
      status.textContent = why.charAt(0).toUpperCase() + why.slice(1) + ": “" + query + "”" + timing + ".";
    } else {
      results.replaceChildren(...list.map(renderResult));
      results.removeAttribute("aria-busy");
      status.textContent = plural(list.length, "result", "results") + timing;
    }
    if (data.snapshot && data.snapshot !== shownSnapshot) loadStats(); // index was swapped
  }

  async function runSearch(state) {
    const query = state.q;
    cancelSearch();
    const seq = searchSeq;
    const controller = new AbortController();
    inFlight = controller;

    hint.hidden = true;
    clearError();
    status.textContent = "Searching…";
    results.setAttribute("aria-busy", "true");
    form.setAttribute("aria-busy", "true");

    const params = new URLSearchParams({ q: query, k: String(RESULTS_PER_PAGE), mode: state.mode });
    if (state.from) params.set("date_from", state.from);
    if (state.to) params.set("date_to", state.to);
    let response;
    let body;
    try {
      response = await apiFetch("/search?" + params.toString(), {
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
    renderResponse(body, query);

    function finish() {
      inFlight = null;
      form.removeAttribute("aria-busy");
    }
  }

  // ---- URL state -----------------------------------------------------------

  function stateFromUrl() {
    const params = new URLSearchParams(window.location.search);
    return {
      q: (params.get("q") || "").trim(),
      mode: normalMode(params.get("mode")),
      from: normalDate(params.get("date_from")),
      to: normalDate(params.get("date_to")),
    };
  }

  function stateFromForm() {
    return {
      q: input.value.trim(),
      mode: normalMode(modeSelect.value),
      from: normalDate(dateFrom.value),
      to: normalDate(dateTo.value),
    };
  }

  function urlFor(state) {
    if (!state.q) return "/";
    const params = new URLSearchParams({ q: state.q, mode: state.mode });
    if (state.from) params.set("date_from", state.from);
    if (state.to) params.set("date_to", state.to);
    return "/?" + params.toString();
  }

  function recordUrl(state) {
    const url = urlFor(state);
    const current = window.location.pathname + window.location.search;
    if (url === current) {
      history.replaceState(state, "", url);
    } else {
      history.pushState(state, "", url);
    }
  }

  function setTitle(query) {
    document.title = query ? query + " – seedsearch" : "seedsearch";
  }

  // Show whatever the address bar asks for (page load and back/forward).
  function applyUrl() {
    const state = stateFromUrl();
    input.value = state.q;
    modeSelect.value = state.mode;
    dateFrom.value = state.from;
    dateTo.value = state.to;
    setTitle(state.q);
    if (state.q) {
      runSearch(state);
    } else {
      showHint();
    }
  }

  // ---- stats ---------------------------------------------------------------

  function formatTime(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return String(iso);
    try {
      return when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    } catch (_) {
      return when.toLocaleString();
    }
  }

  function renderStats(data) {
    shownSnapshot = data.snapshot || null;
    const built = el("time", null, formatTime(data.built_at));
    built.dateTime = String(data.built_at ?? "");
    const snapshot = el("code", "snapshot-id", data.snapshot);
    stats.replaceChildren(
      el("span", "stats-size",
        plural(data.chunks, "passage", "passages") + " from " +
        plural(data.articles, "article", "articles") + " in " +
        plural(data.files, "file", "files")),
      el("span", "stats-sep", " · "),
      el("span", "stats-built", "built "),
      built,
      el("span", "stats-sep", " · "),
      el("span", "stats-snapshot", "snapshot "),
      snapshot,
    );
    stats.title = "model " + data.model + ", " + data.dimension + "-d " + data.index_type + " index";
    stats.classList.remove("stats-problem");
  }

  function loadStats() {
    if (!statsLoading) {
      statsLoading = fetchStats().finally(function () {
        statsLoading = null;
      });
    }
    return statsLoading;
  }

  async function fetchStats() {
    let response;
    let body;
    try {
      response = await apiFetch("/stats", { headers: { Accept: "application/json" } });
      body = await readJson(response);
    } catch (_) {
      stats.textContent = "Index details unavailable: could not reach the search service.";
      stats.classList.add("stats-problem");
      return;
    }
    if (response.ok && body && typeof body === "object") {
      renderStats(body);
    } else {
      shownSnapshot = null;
      stats.textContent = "No index is being served: " + detailText(body, response);
      stats.classList.add("stats-problem");
    }
  }

  // ---- wiring --------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const state = stateFromForm();
    recordUrl(state);
    setTitle(state.q);
    if (state.q) {
      runSearch(state);
    } else {
      input.value = "";
      showHint();
    }
  });

  // A new mode or date range re-runs the current query (if there is one).
  for (const control of [modeSelect, dateFrom, dateTo]) {
    control.addEventListener("change", function () {
      if (input.value.trim()) form.requestSubmit();
    });
  }

  window.addEventListener("popstate", applyUrl);

  loadStats();
  applyUrl();
})();
