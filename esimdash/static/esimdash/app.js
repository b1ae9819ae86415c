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

/* --- copy and share buttons (issue 21, gifts) --- */
// <button type="button" data-copy="element-id" data-copy-status="status-id" data-copied="…"
// data-copy-failed="…" hidden> copies the element's text; <button data-share-url="…"
// data-share-title="…" data-share-text="…" hidden> opens the system's share sheet. Each button is
// shown only where its API exists (the Clipboard API needs a secure context), so without it or
// without JavaScript the page shows the text to select by hand.
function copyShareButtonsReveal(root) {
  root.querySelectorAll("button[data-copy]").forEach((button) => {
    button.hidden = !(navigator.clipboard && navigator.clipboard.writeText);
  });
  root.querySelectorAll("button[data-share-url]").forEach((button) => {
    button.hidden = typeof navigator.share !== "function";
  });
}
document.addEventListener("DOMContentLoaded", () => copyShareButtonsReveal(document));
document.addEventListener("htmx:load", (event) => copyShareButtonsReveal(event.detail.elt));
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy], button[data-share-url]");
  if (!button) {
    return;
  }
  if (button.hasAttribute("data-copy")) {
    const source = document.getElementById(button.dataset.copy);
    const status = document.getElementById(button.dataset.copyStatus);
    const say = (text) => {
      if (status) {
        status.textContent = text;
      }
    };
    navigator.clipboard.writeText(source.textContent.trim()).then(
      () => say(button.dataset.copied),
      () => say(button.dataset.copyFailed),
    );
  } else {
    navigator
      .share({ title: button.dataset.shareTitle, text: button.dataset.shareText, url: button.dataset.shareUrl })
      .catch(() => {}); // the person closed the share sheet: nothing to say
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

/* --- charts, line cards and phone layout (issue 21) --- */
// A poll swaps a whole section (a line's card, a chart), which would close the disclosure a person
// just opened. Open <details data-keep-open id=...> are remembered by id and re-opened right after
// each swap, before the page is painted again. "toggle" does not bubble, hence the capture.
const keptOpen = new Set();
document.addEventListener(
  "toggle",
  (event) => {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.hasAttribute("data-keep-open") || !details.id) {
      return;
    }
    if (details.open) {
      keptOpen.add(details.id);
    } else {
      keptOpen.delete(details.id);
    }
  },
  true,
);
document.addEventListener("htmx:afterSwap", () => {
  for (const id of keptOpen) {
    const details = document.getElementById(id);
    if (details instanceof HTMLDetailsElement && details.hasAttribute("data-keep-open")) {
      details.open = true;
    }
  }
});
// A tap on a chart's bar focuses it, so its readout shows on phones whose browsers do not focus
// SVG elements on touch (Safari).
document.addEventListener("click", (event) => {
  const bar = event.target instanceof Element ? event.target.closest(".chart .slot") : null;
  if (bar) {
    bar.focus();
  }
});
// The account menu closes with Escape, back on its summary, as menus do.
document.addEventListener("keydown", (event) => {
  const menu = event.key === "Escape" ? document.querySelector("details.account[open]") : null;
  if (menu) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});


/* --- buying data (issue 22) --- */
// A buy button goes quiet once its form is sent, so a second tap does not look like a second
// purchase (the form's key already makes the server place one order).
document.addEventListener("submit", (event) => {
  const button = event.target instanceof HTMLFormElement ? event.target.querySelector("[data-submit-once]") : null;
  if (button) {
    setTimeout(() => button.setAttribute("disabled", ""));
  }
});


/* --- adding a line (issue 22) --- */
// <input type="file" data-qr-photo> on the add-a-line form: where the browser can read QR codes
// itself (the Shape Detection API's BarcodeDetector), the photo's eSIM code fills the activation
// code field at once and the photo is not sent. Elsewhere, or when it finds nothing, the photo
// goes with the form and the server reads it.
document.addEventListener("change", async (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-qr-photo")) {
    return;
  }
  const file = input.files && input.files[0];
  const status = document.getElementById("qr-status");
  const code = input.form && input.form.elements.namedItem("code");
  if (!file || !("BarcodeDetector" in window) || !status || !(code instanceof HTMLInputElement)) {
    return;
  }
  let text = "";
  try {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const found = await detector.detect(await createImageBitmap(file));
    text = (found.find((barcode) => /^LPA:/i.test(barcode.rawValue.trim())) || { rawValue: "" }).rawValue;
  } catch {
    text = ""; // an image or a format this browser cannot read: the server tries
  }
  if (text) {
    code.value = text.trim();
    input.value = "";
    status.textContent = status.dataset.qrRead;
    code.focus();
  } else {
    status.textContent = status.dataset.qrNone;
  }
});
