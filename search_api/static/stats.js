// The index details in the header (#stats), loaded again when the service swaps its snapshot.

import { el, plural } from "./dom.js";
import { apiFetch, detailText, readJson } from "./api.js";

const stats = document.getElementById("stats");

let shownSnapshot = null; // snapshot id currently described in #stats
let statsLoading = null; // the /stats request in flight, if any

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

export function loadStats() {
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

// An answer from another snapshot than the one described: the index was swapped.
export function noticeSnapshot(snapshot) {
  if (snapshot && snapshot !== shownSnapshot) loadStats();
}
