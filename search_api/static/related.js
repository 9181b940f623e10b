// Related coverage: under an article read on (in the results or on its own view), the
// articles closest to it (GET /articles/{id}/similar), then its republished copies, each
// linking to its own view (/?article=ID) with the passage that ties it to this one.

import { apiFetch, detailText, readJson } from "./api.js";
import { el } from "./dom.js";
import { articleUrl } from "./results.js";

const RELATED_COUNT = 5;

// A "Related coverage" section for the article ``articleId``, filled in when the answer comes.
export function relatedCoverage(articleId) {
  const section = el("section", "related");
  section.setAttribute("aria-label", "Related coverage");
  const status = el("p", "status", "Finding related coverage…");
  section.append(el("h3", "related-title", "Related coverage"), status);
  fillRelated(articleId, status);
  return section;
}

async function fillRelated(articleId, status) {
  let body;
  try {
    const address = "/articles/" + encodeURIComponent(articleId) + "/similar?k=" + RELATED_COUNT;
    const response = await apiFetch(address);
    body = await readJson(response);
    if (!response.ok) throw new Error(detailText(body, response));
  } catch (error) {
    status.textContent = "Related coverage is unavailable: " + error.message;
    return;
  }
  if (!body.articles.length) {
    status.textContent = "No other article in the archive.";
    return;
  }
  const list = el("ul", "related-list");
  for (const related of body.articles) {
    const entry = el("li", "related-item" + (related.duplicate ? " duplicate" : ""));
    const link = el("a", "related-link", related.title || "(untitled)");
    link.href = articleUrl(related.article_id);
    const meta = [related.source, related.published || "date unknown"];
    if (related.duplicate) meta.unshift("the same story");
    entry.append(link, el("span", "related-meta", " · " + meta.join(" · ")),
      el("p", "related-passage", related.text));
    list.append(entry);
  }
  status.replaceWith(list);
}
