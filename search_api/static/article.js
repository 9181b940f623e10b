// One article on its own: /?article=ID shows it whole under the search form (still usable),
// with a way back to the search. Each result links here ("Link to this article").

import { clearError, el, showError } from "./dom.js";
import { relatedCoverage } from "./related.js";
import { articlePassages, fetchArticle, metaLine } from "./results.js";
import { urlFor } from "./state.js";

const articleView = document.getElementById("article-view");
const hint = document.getElementById("hint");

let articleSeq = 0; // only the newest article (or a search since) may touch the view

// The article the address bar asks for, or "" when it asks for a search.
export function articleFromUrl() {
  return (new URLSearchParams(window.location.search).get("article") || "").trim();
}

function backLink(state) {
  const line = el("p", "back-line");
  const link = el("a", "back-link", "Back to search");
  link.href = urlFor(state); // the search of /?article=ID&q=…, or the empty page
  line.append(link);
  return line;
}

function heading(text) {
  const title = el("h2", "article-view-title", text);
  title.id = "article-view-title";
  title.tabIndex = -1; // focused on open, so a screen reader starts at the headline
  return title;
}

// Shows the article ``articleId``; ``state`` is the search of the same address (if any).
export async function showArticle(articleId, state) {
  const seq = ++articleSeq;
  hint.hidden = true;
  clearError();
  const loading = el("p", "status", "Loading the article…");
  loading.setAttribute("role", "status");
  articleView.replaceChildren(backLink(state), loading);
  articleView.hidden = false;
  let article;
  try {
    article = await fetchArticle(articleId);
  } catch (error) {
    if (seq !== articleSeq) return;
    loading.remove();
    if (error.status === 404) {
      document.title = "No article – seedsearch";
      const title = heading("No article “" + articleId + "”");
      const detail = error.message.charAt(0).toUpperCase() + error.message.slice(1);
      articleView.append(title, el("p", "hint", detail + ". Search for it above instead."));
      title.focus();
    } else {
      // A 401 has also opened the key form; a key entered shows the article again (app.js).
      showError("Could not load the article: " + error.message);
    }
    return;
  }
  if (seq !== articleSeq) return;
  document.title = (article.title || "(untitled)") + " – seedsearch";
  const title = heading(article.title || "(untitled)");
  const meta = metaLine([
    ["published", "Published", article.published || "date unknown"],
    ["source", "Source", article.source],
  ]);
  loading.remove();
  articleView.append(title, meta, articlePassages(article, null, []), relatedCoverage(articleId));
  title.focus();
}

// Leaves the article view (a search takes the page).
export function hideArticle() {
  articleSeq += 1;
  articleView.hidden = true;
  articleView.replaceChildren();
}
