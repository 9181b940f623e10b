// The refinements of an answer (#refine): sort and grouping, the timeline, the source chips;
// choosing one searches again, and focus returns to the control just used.

import { el, plural } from "./dom.js";
import { allDates, drawTimeline, focusMonth, isWholeMonth, monthRange } from "./timeline.js";
import {
  dateFrom, dateTo, form, groupBox, input, sortSelect, stateFromForm, toggleSource,
} from "./state.js";

// Chips before "Show all sources": fewer on a phone, where they stand between query and answers.
const SOURCES_SHOWN = 8;
const SOURCES_SHOWN_NARROW = 4;
const narrow = window.matchMedia("(max-width: 30rem)");

const refine = document.getElementById("refine");
const sourcesBox = document.getElementById("sources");
const sourceChips = document.getElementById("source-chips");
export const allSources = document.getElementById("all-sources");

let showEverySource = false; // the "Show all sources" disclosure
let refocus = null; // the control to focus again once the next answer is drawn

// Draws the refinements of an answer from its ``facets``.
export function showRefinements(facets, state, hasResults) {
  // The refinements stay while a filter is on, so an empty answer can be widened again.
  refine.hidden = !hasResults && !(state.from || state.to || state.sources.length);
  refine.removeAttribute("aria-busy");
  sortSelect.value = state.sort;
  groupBox.checked = state.grouped;
  drawTimeline(facets.month, state, chooseMonth);
  drawSources(facets.source, state);
}

export function markRefinementsBusy() {
  refine.setAttribute("aria-busy", "true");
}

// No answer on show: no refinements, and no focus to restore.
export function clearRefinements() {
  refocus = null;
  refine.hidden = true;
  refine.removeAttribute("aria-busy");
}

// The current query again, with whatever the controls now say; ``focusAfter`` (a bar or a
// chip) is focused again once its answer is drawn.
export function searchAgain(focusAfter) {
  if (focusAfter) refocus = focusAfter;
  if (input.value.trim()) {
    form.requestSubmit();
  } else {
    refocus = null;
  }
}

// A month's bar searches that month; the chosen month's bar again shows every date.
function chooseMonth(value) {
  const state = stateFromForm();
  const [first, last] = isWholeMonth(state, value) ? ["", ""] : monthRange(value);
  dateFrom.value = first;
  dateTo.value = last;
  searchAgain({ kind: "bar", value: value });
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

// The "All N sources" disclosure opens or closes.
export function toggleEverySource(facet, state) {
  showEverySource = !showEverySource;
  drawSources(facet, state);
}

// A chip narrows the search to its source; pressed again, it lets the source go.
function chooseSource(value) {
  toggleSource(value);
  searchAgain({ kind: "chip", value: value });
}

// After a redraw, focus returns to the bar, chip or timeline the user just acted on.
export function restoreFocus() {
  const wanted = refocus;
  refocus = null;
  if (!wanted) return;
  const found = wanted.kind === "chip" ? focusChip(wanted.value) : focusMonth(wanted.value);
  if (!found && !allDates.hidden) allDates.focus();
}

function focusChip(value) {
  const chips = Array.from(sourceChips.querySelectorAll("button"));
  const chip = chips.find((button) => button.dataset.source === value);
  if (chip) chip.focus();
  return Boolean(chip);
}
