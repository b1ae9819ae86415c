// Live figures poll with htmx (elements marked data-poll). While the tab is hidden the polls are
// skipped; when it is shown again, a "visible-again" event makes every poller fetch at once.
document.addEventListener("htmx:beforeRequest", (event) => {
  if (document.hidden && event.detail.elt.hasAttribute("data-poll")) {
    event.preventDefault();
  }
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    document.dispatchEvent(new CustomEvent("visible-again"));
  }
});
// Polls are marked so that the server does not count them as use: a tab left open on the
// dashboard is signed out after the idle timeout like any other (docs/security.md).
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.elt.hasAttribute("data-poll")) {
    event.detail.headers["X-Esimdash-Poll"] = "1";
  }
});

/* --- forecast and line card (issue 21) --- */
// A poll swaps a card's whole HTML, which would close the disclosure a person just opened. Open
// <details data-keep-open id=...> are remembered by id (toggle does not bubble: listen in the
// capture phase) and re-opened right after each swap, before the page is painted again.
const keptOpen = new Set();
document.addEventListener("toggle", (event) => {
  const details = event.target;
  if (details instanceof HTMLDetailsElement && details.hasAttribute("data-keep-open") && details.id) {
    if (details.open) {
      keptOpen.add(details.id);
    } else {
      keptOpen.delete(details.id);
    }
  }
}, true);
document.addEventListener("htmx:afterSwap", () => {
  for (const id of keptOpen) {
    const details = document.getElementById(id);
    if (details instanceof HTMLDetailsElement && details.hasAttribute("data-keep-open")) {
      details.open = true;
    }
  }
});
