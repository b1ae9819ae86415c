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
