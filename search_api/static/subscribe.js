// "Subscribe to this search": a link to the Atom feed (/feed) of the query and filters shown.
// A read key is never put in it (it is kept for the tab only); docs/api.md says how to add one.

const link = document.getElementById("subscribe");

export function feedUrl(state) {
  const params = new URLSearchParams({ q: state.q, mode: state.mode });
  for (const source of state.sources) params.append("source", source);
  if (state.from) params.set("date_from", state.from);
  if (state.to) params.set("date_to", state.to);
  return "/feed?" + params.toString();
}

export function showSubscribe(state) {
  link.href = feedUrl(state);
}
