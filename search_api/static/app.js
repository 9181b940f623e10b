// seedsearch search page: plain DOM, no framework, no build step.
// Server text is only ever placed with textContent, never parsed as HTML.
"use strict";

(function () {
  const MODES = ["hybrid", "dense", "lexical"];
  const DEFAULT_MODE = "hybrid";
  const SORTS = ["relevance", "date"];
  // Passages per request: the page groups them per article, so it asks for a good handful.
  const PAGE_SIZE = 50;
  const MAX_OFFSET = 900; // the API pages no further
  // Chips before "Show all sources": fewer on a phone, where they stand between query and answers.
  const SOURCES_SHOWN = 8;
  const SOURCES_SHOWN_NARROW = 4;
  const narrow = window.matchMedia("(max-width: 30rem)");
  const MONTH = /^(\d{4})-(\d{2})$/;

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
  const refine = document.getElementById("refine");
  const sortSelect = document.getElementById("sort");
  const groupBox = document.getElementById("group");
  const timeline = document.getElementById("timeline");
  const timelinePlot = document.getElementById("timeline-plot");
  const undatedNote = document.getElementById("undated");
  const dateRange = document.getElementById("date-range");
  const allDates = document.getElementById("all-dates");
  const sourcesBox = document.getElementById("sources");
  const sourceChips = document.getElementById("source-chips");
  const allSources = document.getElementById("all-sources");
  const paging = document.getElementById("paging");
  const shown = document.getElementById("shown");
  const moreButton = document.getElementById("more");

  let searchSeq = 0; // only the newest search may touch the page
  let inFlight = null; // AbortController of the running search
  let shownSnapshot = null; // snapshot id currently described in #stats
  let statsLoading = null; // the /stats request in flight, if any
  let activeSources = []; // the source filter, from the URL or the chips
  let showEverySource = false; // the "Show all sources" disclosure
  let view = null; // the answer on show: its search, its passages so far, its totals
  let refocus = null; // the control to focus again once the next answer is drawn
  let groupCount = 0; // ids for the "more passages" lists

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

  function normalSort(value) {
    return SORTS.includes(value) ? value : SORTS[0];
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
    view = null;
    refocus = null;
    results.replaceChildren();
    results.removeAttribute("aria-busy");
    refine.hidden = true;
    refine.removeAttribute("aria-busy");
    paging.hidden = true;
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

  // ---- passages -------------------------------------------------------------

  // A line of labelled fields: [name, label, value] each.
  function metaLine(fields) {
    const meta = el("p", "result-meta");
    for (const [name, label, value] of fields) {
      const field = el("span", "meta-field meta-" + name);
      field.append(el("span", "meta-label", label + " "), el("span", "meta-value", value));
      meta.append(field);
    }
    return meta;
  }

  function scoreText(result) {
    return typeof result.score === "number" ? result.score.toFixed(3) : "—";
  }

  // A passage's text, its fields and its near-duplicates, appended to ``item``; ``whole``
  // says whether to repeat the article's fields (date, source), which a group shows once.
  function appendPassage(item, result, whole) {
    const text = el("p", "result-text");
    highlightedText(text, String(result.text ?? ""), result.highlights, result.evidence);
    item.append(text);

    const fields = [];
    if (whole) {
      fields.push(["published", "Published", result.published || "date unknown"]);
      fields.push(["source", "Source", result.source]);
    }
    fields.push(["kind", "Kind", result.kind], ["score", "Score", scoreText(result)]);
    item.append(metaLine(fields));

    const copies = Number(result.duplicates) || 0;
    if (copies > 0) {
      const sources = Array.isArray(result.duplicate_sources) ? result.duplicate_sources : [];
      item.append(el("p", "duplicates",
        "Also published " + plural(copies, "more time", "more times") +
        (sources.length ? ": " + sources.join(", ") : "")));
    }
  }

  // Read on: the whole article in reading order, ``result`` marked as the hit and the other
  // passages of ``matched()`` (chunk ids) as matches.
  function readOnButton(item, result, matched) {
    const readOn = el("button", "read-on", "Read the article");
    readOn.type = "button";
    readOn.setAttribute("aria-expanded", "false");
    readOn.addEventListener("click", () => toggleArticle(item, readOn, result, matched()));
    return readOn;
  }

  // One passage on its own (the view without grouping).
  function renderResult(result) {
    const item = el("li", "result");
    item.append(el("h2", "result-title", result.title || "(untitled)"));
    appendPassage(item, result, true);
    item.append(readOnButton(item, result, () => [result.chunk_id]));
    return item;
  }

  // ---- articles: passages grouped -------------------------------------------

  // One article: its headline once, its best passage (the first to arrive: the answer's
  // order puts an article's best passage before its others under every sort), and its other
  // passages behind a disclosure button. Later pages add passages to the groups they belong to.
  function newGroup(best) {
    const item = el("li", "result article-group");
    item.append(el("h2", "result-title", best.title || "(untitled)"));
    appendPassage(item, best, true);

    groupCount += 1;
    const extra = el("ol", "more-list");
    extra.id = "more-passages-" + groupCount;
    extra.hidden = true;
    extra.setAttribute("aria-label", "More passages from “" + (best.title || "this article") + "”");
    const toggle = el("button", "more-passages");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", extra.id);

    const group = { item: item, passages: [best], extra: extra, toggle: toggle };
    toggle.addEventListener("click", function () {
      extra.hidden = !extra.hidden;
      labelGroup(group);
    });
    item.append(toggle, extra,
      readOnButton(item, best, () => group.passages.map((passage) => passage.chunk_id)));
    labelGroup(group);
    return group;
  }

  function addToGroup(group, result) {
    group.passages.push(result);
    const entry = el("li", "passage");
    appendPassage(entry, result, false);
    group.extra.append(entry);
    labelGroup(group);
  }

  function labelGroup(group) {
    const others = group.passages.length - 1;
    group.toggle.hidden = others === 0;
    group.toggle.setAttribute("aria-expanded", String(!group.extra.hidden));
    // A disclosure keeps its name; aria-expanded (and the arrow drawn from it) tells the state.
    group.toggle.textContent = plural(others, "more passage", "more passages") + " from this article";
  }

  // ---- the list of an answer, page after page ---------------------------------

  // Adds passages to the list in the current view; returns the entries it created.
  function showPassages(list) {
    const created = [];
    for (const result of list) {
      if (!result || view.seen.has(result.chunk_id)) continue; // never the same passage twice
      view.seen.add(result.chunk_id);
      view.passages.push(result);
      if (!view.state.grouped) {
        created.push(renderResult(result));
        continue;
      }
      const group = view.groups.get(result.article_id);
      if (group) {
        addToGroup(group, result);
      } else {
        const fresh = newGroup(result);
        view.groups.set(result.article_id, fresh);
        created.push(fresh.item);
      }
    }
    results.append(...created);
    return created;
  }

  // Draws the passages already fetched again (grouped or not), with no new request.
  function redrawPassages() {
    const passages = view.passages;
    view.passages = [];
    view.seen = new Set();
    view.groups = new Map();
    results.replaceChildren();
    showPassages(passages);
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
  async function loadMore() {
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
        created = created.concat(showPassages(list));
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

  async function toggleArticle(item, button, result, matched) {
    const shownArticle = item.querySelector(".article");
    if (shownArticle) {
      shownArticle.remove();
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
        } else if (matched.includes(passage.chunk_id)) {
          entry.classList.add("match");
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

  // ---- the timeline: passages per month, drawn here as SVG -------------------

  const SVG = "http://www.w3.org/2000/svg";
  const SLOT = 10; // viewBox units per month
  const BAR = 7; // a bar's width within its slot
  const PLOT_HEIGHT = 100;
  const MIN_BAR = 4; // a month with one passage still shows (and takes a click)
  const MIN_SLOT_PX = 7; // below this the plot scrolls sideways inside its box

  function monthNumber(value) {
    const match = MONTH.exec(value);
    return match ? Number(match[1]) * 12 + Number(match[2]) - 1 : null;
  }

  function monthValue(number) {
    return String(Math.floor(number / 12)).padStart(4, "0") + "-" + String((number % 12) + 1).padStart(2, "0");
  }

  // The first and last day of a YYYY-MM month, as YYYY-MM-DD.
  function monthRange(value) {
    const [year, month] = value.split("-").map(Number);
    const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
    return [value + "-01", value + "-" + String(last).padStart(2, "0")];
  }

  // "Feb" and "2026" for 2026-02, in the reader's language.
  function monthParts(value) {
    const [year, month] = value.split("-").map(Number);
    try {
      const name = new Date(Date.UTC(year, month - 1, 1)).toLocaleDateString(undefined, {
        month: "short", timeZone: "UTC",
      });
      return [name, String(year)];
    } catch (_) {
      return [String(month).padStart(2, "0"), String(year)];
    }
  }

  function isWholeMonth(state, value) {
    const [first, last] = monthRange(value);
    return state.from === first && state.to === last;
  }

  function drawTimeline(months, state) {
    const entries = Array.isArray(months) ? months : [];
    const dated = entries
      .filter((entry) => entry && monthNumber(entry.value) !== null && Number(entry.count) > 0)
      .sort((a, b) => monthNumber(a.value) - monthNumber(b.value));
    const undated = entries
      .filter((entry) => entry && entry.value === "undated")
      .reduce((sum, entry) => sum + (Number(entry.count) || 0), 0);
    const ranged = Boolean(state.from || state.to);

    timeline.hidden = !(dated.length || undated || ranged);
    timelinePlot.replaceChildren();
    if (dated.length) {
      timelinePlot.append(timelineTrack(dated, state));
    } else if (!timeline.hidden) {
      timelinePlot.append(el("p", "timeline-empty",
        ranged ? "No passage in this date range matches." : "None of these passages states its date."));
    }

    undatedNote.hidden = ranged; // a date range leaves undated passages out
    undatedNote.textContent = "Undated: " + (undated ? plural(undated, "passage", "passages") : "none");
    dateRange.hidden = !ranged;
    dateRange.textContent = !ranged ? ""
      : state.from && state.to ? "Only " + state.from + " to " + state.to
        : state.from ? "Only from " + state.from : "Only up to " + state.to;
    allDates.hidden = !ranged;
  }

  // The bars with a row of counts above and of months below, one column per calendar month
  // from the first to the last (empty months keep their place, so gaps show as gaps).
  function timelineTrack(dated, state) {
    const first = monthNumber(dated[0].value);
    const span = monthNumber(dated[dated.length - 1].value) - first + 1;
    const track = el("div", "timeline-track");
    track.style.minWidth = span * MIN_SLOT_PX + "px";
    track.style.setProperty("--months", String(span));

    const counts = new Map(dated.map((entry) => [monthNumber(entry.value), Number(entry.count)]));
    const countRow = el("div", "timeline-counts");
    const axis = el("div", "timeline-axis");
    // Repeated in the bars' labels: the rows are for the eye only.
    countRow.setAttribute("aria-hidden", "true");
    axis.setAttribute("aria-hidden", "true");
    for (let number = first; number < first + span; number += 1) {
      countRow.append(el("span", null, span <= 24 && counts.has(number) ? counts.get(number) : ""));
    }
    if (span <= 12) {
      // Few months: each is named, with its year under the first and under each January.
      for (let number = first; number < first + span; number += 1) {
        const [name, year] = monthParts(monthValue(number));
        const january = number % 12 === 0;
        const tick = el("span", january ? "tick year-start" : "tick");
        tick.append(el("span", "tick-month", name));
        if (number === first || january) tick.append(el("span", "tick-year", year));
        axis.append(tick);
      }
    } else {
      // Many: one label per calendar year over its months ("’26" when it holds only two).
      for (let number = first; number < first + span; ) {
        const end = Math.min(first + span, (Math.floor(number / 12) + 1) * 12);
        const year = monthParts(monthValue(number))[1];
        const months = end - number;
        const label = months >= 3 ? year : months === 2 ? "’" + year.slice(2) : "";
        const tick = el("span", "tick year" + (number % 12 === 0 ? " year-start" : ""), label);
        tick.style.gridColumn = "span " + months;
        axis.append(tick);
        number = end;
      }
    }
    track.append(countRow, timelineSvg(dated, state, first, span), axis);
    return track;
  }

  function timelineSvg(dated, state, first, span) {
    const most = Math.max(...dated.map((entry) => Number(entry.count)));

    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "timeline-svg");
    svg.setAttribute("viewBox", "0 0 " + span * SLOT + " " + PLOT_HEIGHT);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "toolbar");
    svg.setAttribute("aria-label", "Matching passages per month: choose one to search that month");

    const bars = [];
    for (const entry of dated) {
      const count = Number(entry.count);
      const height = Math.max(MIN_BAR, (count / most) * PLOT_HEIGHT);
      const label = entry.value + ": " + plural(count, "passage", "passages");
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", String((monthNumber(entry.value) - first) * SLOT + (SLOT - BAR) / 2));
      bar.setAttribute("width", String(BAR));
      bar.setAttribute("y", String(PLOT_HEIGHT - height));
      bar.setAttribute("height", String(height));
      bar.setAttribute("role", "button");
      bar.setAttribute("aria-label", label);
      const selected = isWholeMonth(state, entry.value);
      bar.setAttribute("aria-pressed", String(selected));
      bar.setAttribute("class", "bar" + (selected ? " selected" : ""));
      bar.setAttribute("tabindex", "-1");
      bar.dataset.month = entry.value;
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = label;
      bar.append(tip);
      svg.append(bar);
      bars.push(bar);
    }
    // One tab stop for the whole timeline (the chosen month, else the newest); arrows move.
    (bars.find((bar) => bar.classList.contains("selected")) || bars[bars.length - 1]).setAttribute("tabindex", "0");

    svg.addEventListener("click", function (event) {
      let bar = event.target.closest ? event.target.closest("rect") : null;
      if (!bar) {
        // A click above a short bar counts for its month: the whole column is the target.
        const box = svg.getBoundingClientRect();
        const slot = Math.floor(((event.clientX - box.left) / box.width) * span);
        bar = svg.querySelector('rect[data-month="' + monthValue(first + slot) + '"]');
      }
      if (bar) chooseMonth(bar.dataset.month);
    });
    svg.addEventListener("keydown", function (event) {
      const at = bars.indexOf(event.target);
      if (at < 0) return;
      const to = { ArrowLeft: at - 1, ArrowRight: at + 1, ArrowUp: at + 1, ArrowDown: at - 1, Home: 0, End: bars.length - 1 }[event.key];
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        chooseMonth(event.target.dataset.month);
      } else if (to !== undefined) {
        event.preventDefault();
        focusBar(bars, bars[Math.max(0, Math.min(bars.length - 1, to))]);
      }
    });
    return svg;
  }

  function focusBar(bars, bar) {
    for (const other of bars) other.setAttribute("tabindex", other === bar ? "0" : "-1");
    bar.focus();
  }

  // A month's bar searches that month; the chosen month's bar again shows every date.
  function chooseMonth(value) {
    const state = stateFromForm();
    const [first, last] = isWholeMonth(state, value) ? ["", ""] : monthRange(value);
    dateFrom.value = first;
    dateTo.value = last;
    refocus = { kind: "bar", value: value };
    searchAgain();
  }

  // ---- source chips --------------------------------------------------------

  function drawSources(facet, state) {
    const entries = (Array.isArray(facet) ? facet : []).filter(
      (entry) => entry && typeof entry.value === "string" && entry.value);
    const chosen = new Set(state.sources);
    // A chosen source stays on show (pressed) so that it can be removed, listed or not.
    for (const source of state.sources) {
      if (!entries.some((entry) => entry.value === source)) entries.push({ value: source, count: 0 });
    }
    const few = narrow.matches ? SOURCES_SHOWN_NARROW : SOURCES_SHOWN;
    const listed = showEverySource ? entries
      : entries.filter((entry, index) => index < few || chosen.has(entry.value));

    sourceChips.replaceChildren(...listed.map(function (entry) {
      const count = Number(entry.count) || 0;
      const chip = el("button", "chip");
      chip.type = "button";
      chip.dataset.source = entry.value;
      chip.setAttribute("aria-pressed", String(chosen.has(entry.value)));
      chip.setAttribute("aria-label", entry.value + ": " + plural(count, "passage", "passages"));
      chip.append(el("span", "chip-name", entry.value), el("span", "chip-count", count));
      chip.addEventListener("click", () => chooseSource(entry.value));
      const item = el("li");
      item.append(chip);
      return item;
    }));
    sourcesBox.hidden = entries.length === 0;
    allSources.hidden = entries.length <= few;
    allSources.setAttribute("aria-expanded", String(showEverySource));
    allSources.textContent = "All " + entries.length + " sources";
  }

  // A chip narrows the search to its source; pressed again, it lets the source go.
  function chooseSource(value) {
    activeSources = activeSources.includes(value)
      ? activeSources.filter((source) => source !== value)
      : activeSources.concat([value]);
    refocus = { kind: "chip", value: value };
    searchAgain();
  }

  // After a redraw, focus returns to the bar, chip or timeline the user just acted on.
  function restoreFocus() {
    const wanted = refocus;
    refocus = null;
    if (!wanted) return;
    let target = null;
    if (wanted.kind === "chip") {
      target = Array.from(sourceChips.querySelectorAll("button")).find((chip) => chip.dataset.source === wanted.value);
    } else {
      const bars = Array.from(timelinePlot.querySelectorAll("rect"));
      target = bars.find((bar) => bar.dataset.month === wanted.value) || bars.find((bar) => bar.getAttribute("tabindex") === "0");
      if (target) {
        focusBar(bars, target);
        return;
      }
    }
    if (target) {
      target.focus();
    } else if (!allDates.hidden) {
      allDates.focus();
    }
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
    results.replaceChildren();
    results.removeAttribute("aria-busy");
    showPassages(list);

    if (list.length === 0) {
      // The service says why a list is empty ("no passage matches this query well").
      const why = typeof data.note === "string" && data.note ? data.note : "no passages match";
      status.textContent = why.charAt(0).toUpperCase() + why.slice(1) + ": “" + state.q + "”" +
        (took === null ? "" : " in " + took + " ms") + ".";
    } else {
      const articles = view.articles === null ? new Set(list.map((r) => r.article_id)).size : view.articles;
      status.textContent = totalText(view.total === null ? list.length : view.total, articles, view.lowerBound);
    }

    // The refinements stay while a filter is on, so an empty answer can be widened again.
    const facets = data.facets && typeof data.facets === "object" ? data.facets : {};
    refine.hidden = list.length === 0 && !(state.from || state.to || state.sources.length);
    refine.removeAttribute("aria-busy");
    sortSelect.value = state.sort;
    groupBox.checked = state.grouped;
    view.facets = facets;
    drawTimeline(facets.month, state);
    drawSources(facets.source, state);
    showPaging();
    restoreFocus();
    if (data.snapshot && data.snapshot !== shownSnapshot) loadStats(); // index was swapped
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

  async function runSearch(state) {
    cancelSearch();
    const seq = searchSeq;
    const controller = new AbortController();
    inFlight = controller;

    hint.hidden = true;
    clearError();
    status.textContent = "Searching…";
    results.setAttribute("aria-busy", "true");
    refine.setAttribute("aria-busy", "true");
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

  // ---- URL state -----------------------------------------------------------

  function stateFromUrl() {
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

  function stateFromForm() {
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

  function urlFor(state) {
    if (!state.q) return "/";
    const params = new URLSearchParams({ q: state.q, mode: state.mode });
    if (state.from) params.set("date_from", state.from);
    if (state.to) params.set("date_to", state.to);
    if (state.sort !== SORTS[0]) params.set("sort", state.sort);
    for (const source of state.sources) params.append("source", source);
    if (!state.grouped) params.set("view", "passages");
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
    sortSelect.value = state.sort;
    groupBox.checked = state.grouped;
    activeSources = state.sources;
    setTitle(state.q);
    if (state.q) {
      runSearch(state);
    } else {
      showHint();
    }
  }

  // The current query again, with whatever the controls now say.
  function searchAgain() {
    if (input.value.trim()) {
      form.requestSubmit();
    } else {
      refocus = null;
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

  sortSelect.addEventListener("change", searchAgain);

  // Grouping redraws the passages already here; the address remembers the choice.
  groupBox.addEventListener("change", function () {
    if (!view) return;
    view.state = Object.assign({}, view.state, { grouped: groupBox.checked });
    history.replaceState(view.state, "", urlFor(view.state));
    redrawPassages();
  });

  allDates.addEventListener("click", function () {
    dateFrom.value = "";
    dateTo.value = "";
    refocus = { kind: "bar", value: null };
    searchAgain();
  });

  allSources.addEventListener("click", function () {
    if (!view) return;
    showEverySource = !showEverySource;
    drawSources(view.facets.source, view.state);
  });

  moreButton.addEventListener("click", loadMore);

  window.addEventListener("popstate", applyUrl);

  loadStats();
  applyUrl();
})();
