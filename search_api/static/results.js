// The list of an answer's passages: highlighted text, one entry per article (or per passage),
// and each article read on in place.

import { el, plural, showError } from "./dom.js";
import { apiFetch, detailText, readJson } from "./api.js";
import { relatedCoverage } from "./related.js";

export const resultList = document.getElementById("results");

let groupCount = 0; // ids for the "more passages" lists

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
export function metaLine(fields) {
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
// passages of ``matched()`` (chunk ids) as matches; beside it a link to the article's own view.
function readOnControls(item, result, matched) {
  const line = el("div", "read-on-line");
  const readOn = el("button", "read-on", "Read the article");
  readOn.type = "button";
  readOn.setAttribute("aria-expanded", "false");
  readOn.addEventListener("click", () => toggleArticle(item, readOn, result, matched()));
  const link = el("a", "article-link", "Link to this article");
  link.href = articleUrl(result.article_id);
  // Many results have this link: its name says which article (and keeps the visible words).
  link.setAttribute("aria-label", "Link to this article: " + (result.title || "(untitled)"));
  line.append(readOn, link);
  return line;
}

// The page's address for one article on its own (see article.js).
export function articleUrl(articleId) {
  return "/?" + new URLSearchParams({ article: String(articleId) }).toString();
}

// One passage on its own (the view without grouping).
function renderResult(result) {
  const item = el("li", "result");
  item.append(el("h2", "result-title", result.title || "(untitled)"));
  appendPassage(item, result, true);
  item.append(readOnControls(item, result, () => [result.chunk_id]));
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
    readOnControls(item, best, () => group.passages.map((passage) => passage.chunk_id)));
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

// Adds passages to the list in ``view``'s way (grouped or not); returns the entries it created.
export function showPassages(view, list) {
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
  resultList.append(...created);
  return created;
}

// ---- read on ---------------------------------------------------------------

// The article with this id, as the service sends it; a failure throws with the service's
// reason and the HTTP status (``error.status``: 404 when there is no such article).
export async function fetchArticle(articleId) {
  const response = await apiFetch("/articles/" + encodeURIComponent(articleId));
  if (!response.ok) {
    const error = new Error(detailText(await readJson(response), response));
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// An article's passages in reading order: the one with chunk id ``hitId`` marked as the hit,
// those in ``matched`` as matches.
export function articlePassages(article, hitId, matched) {
  const list = el("ol", "article");
  list.setAttribute("aria-label", "The article: " + article.title);
  for (const passage of article.passages) {
    const entry = el("li", "article-passage" + (passage.kind === "caption" ? " caption" : ""), passage.text);
    if (passage.chunk_id === hitId) {
      entry.classList.add("hit");
      entry.setAttribute("aria-current", "true");
    } else if (matched.includes(passage.chunk_id)) {
      entry.classList.add("match");
    }
    list.append(entry);
  }
  return list;
}

async function toggleArticle(item, button, result, matched) {
  const shownArticle = item.querySelector(".article");
  if (shownArticle) {
    shownArticle.remove();
    item.querySelector(".related")?.remove();
    button.setAttribute("aria-expanded", "false");
    button.textContent = "Read the article";
    return;
  }
  try {
    const list = articlePassages(await fetchArticle(result.article_id), result.chunk_id, matched);
    item.append(list, relatedCoverage(result.article_id));
    button.setAttribute("aria-expanded", "true");
    button.textContent = "Hide the article";
    const hit = list.querySelector(".hit");
    if (hit) hit.scrollIntoView({ block: "nearest" });
  } catch (error) {
    showError("Could not load the article: " + error.message);
  }
}
