// seedsearch search page: plain DOM, no framework, no build step. This entry module wires the
// page's controls to the modules that do the work:
//   state.js    the search as state: address bar ⇄ form
//   answer.js   the answer on show: running its search, drawing it, paging on
//   results.js  the list: highlighted passages, grouped per article, read on in place
//   article.js  one article on its own, at /?article=ID (a result's "Link to this article")
//   refine.js   sort, grouping and source chips; timeline.js the month bars
//   stats.js    the index details; api.js requests with the read key; dom.js small helpers
// Server text is only ever placed with textContent, never parsed as HTML.
// No module is called search*.js: tests/test_page.py tells API requests by "/search" in the URL.

import { onKeyEntered } from "./api.js";
import { articleFromUrl, hideArticle, showArticle } from "./article.js";
import { clearError } from "./dom.js";
import { allSources, searchAgain, toggleEverySource } from "./refine.js";
import { currentView, loadMore, moreButton, regroup, runSearch, showHint } from "./answer.js";
import {
  dateFrom, dateTo, form, groupBox, input, modeSelect, recordUrl, setTitle, showState,
  sortSelect, stateFromForm, stateFromUrl,
} from "./state.js";
import { loadStats } from "./stats.js";
import { allDates } from "./timeline.js";

// Search for the state's query, or hint at one when there is none.
function searchOrHint(state) {
  setTitle(state.q);
  if (state.q) {
    runSearch(state);
  } else {
    showHint();
  }
}

// Show whatever the address bar asks for (page load and back/forward): an article when it
// names one (its search, if any, waits in the form), else the search.
function applyUrl() {
  const state = stateFromUrl();
  showState(state);
  const articleId = articleFromUrl();
  if (articleId) {
    showHint(); // stops a running search and clears its answer
    showArticle(articleId, state);
  } else {
    hideArticle();
    searchOrHint(state);
  }
}

// A key entered: the stats and the search that were refused are asked for again.
onKeyEntered(function () {
  clearError();
  loadStats();
  applyUrl();
});

form.addEventListener("submit", function (event) {
  event.preventDefault();
  const state = stateFromForm();
  hideArticle();
  recordUrl(state);
  if (!state.q) {
    input.value = "";  // a query of blanks is no query
  }
  searchOrHint(state);
});

// A new mode or date range re-runs the current query (if there is one).
for (const control of [modeSelect, dateFrom, dateTo]) {
  control.addEventListener("change", function () {
    if (input.value.trim()) form.requestSubmit();
  });
}

sortSelect.addEventListener("change", () => searchAgain());

groupBox.addEventListener("change", () => regroup(groupBox.checked));

allDates.addEventListener("click", function () {
  dateFrom.value = "";
  dateTo.value = "";
  searchAgain({ kind: "bar", value: null });
});

allSources.addEventListener("click", function () {
  const view = currentView();
  if (!view) return;
  toggleEverySource(view.facets.source, view.state);
});

moreButton.addEventListener("click", loadMore);

window.addEventListener("popstate", applyUrl);

loadStats();
applyUrl();
