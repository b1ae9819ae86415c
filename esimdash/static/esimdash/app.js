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

/* --- notices and rule form (issue 21) --- */
// Controls for pages without JS ("Show the fields": the kind select swaps them through htmx here).
function hideWithoutJsControls(root) {
  root.querySelectorAll("[data-without-js]").forEach((element) => {
    element.hidden = true;
  });
}
document.addEventListener("DOMContentLoaded", () => hideWithoutJsControls(document));
document.addEventListener("htmx:afterSwap", () => hideWithoutJsControls(document));
