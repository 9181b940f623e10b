// The timeline: matching passages per month, drawn here as SVG from the answer's month facet;
// a bar searches its month.

import { el, plural } from "./dom.js";

const timeline = document.getElementById("timeline");
const timelinePlot = document.getElementById("timeline-plot");
const undatedNote = document.getElementById("undated");
const dateRange = document.getElementById("date-range");
export const allDates = document.getElementById("all-dates");

const MONTH = /^(\d{4})-(\d{2})$/;

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
export function monthRange(value) {
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

export function isWholeMonth(state, value) {
  const [first, last] = monthRange(value);
  return state.from === first && state.to === last;
}

// ``onChoose(month)`` runs when a bar is chosen (clicked, or Enter or Space on it).
export function drawTimeline(months, state, onChoose) {
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
    timelinePlot.append(timelineTrack(dated, state, onChoose));
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
function timelineTrack(dated, state, onChoose) {
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
  track.append(countRow, timelineSvg(dated, state, first, span, onChoose), axis);
  return track;
}

function timelineSvg(dated, state, first, span, onChoose) {
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
    if (bar) onChoose(bar.dataset.month);
  });
  svg.addEventListener("keydown", function (event) {
    const at = bars.indexOf(event.target);
    if (at < 0) return;
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, ArrowUp: at + 1, ArrowDown: at - 1, Home: 0, End: bars.length - 1 }[event.key];
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onChoose(event.target.dataset.month);
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

// Focuses the bar of month ``value`` (else the timeline's tab stop); false if there is no bar.
export function focusMonth(value) {
  const bars = Array.from(timelinePlot.querySelectorAll("rect"));
  const target = bars.find((bar) => bar.dataset.month === value) ||
    bars.find((bar) => bar.getAttribute("tabindex") === "0");
  if (!target) return false;
  focusBar(bars, target);
  return true;
}
