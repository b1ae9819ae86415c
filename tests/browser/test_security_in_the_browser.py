"""In real Chromium: hostile text a user typed runs nothing and fetches nothing on any page, and
no page (the site's, the admin's, a form, htmx's swaps) breaks the Content-Security-Policy."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.session import sign_in
from tests.factories import PASSWORD, make_operator, totp_code
from tests.security.user_text import PAYLOADS, owner_pages, staff_pages, world_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collected in the page from its first script on: CSP violations, with what was blocked.
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${where}`);
});
"""


class Watch:
    """Everything a page did that it should not have: script errors, failed loads, requests to /evil."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.evil_requests: list[str] = []
        page.add_init_script(WATCH_CSP)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("response", self._response)
        page.on("request", self._request)

    def _request(self, request) -> None:
        if "/evil" in request.url:
            self.evil_requests.append(request.url)

    def _console(self, message) -> None:
        # A failed load is reported by _response, with its URL.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _response(self, response) -> None:
        # Chromium asks for /favicon.ico on pages that name no icon (the admin's): not ours to serve.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.errors.append(f"{response.status} {response.url}")

    def visit(self, page: Page, url: str) -> None:
        response = page.goto(url)
        assert response is not None
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__pwned") is None, url
        assert page.evaluate("window.__violations") == [], url
        assert self.errors == [], url
        assert self.evil_requests == [], url


@pytest.mark.parametrize("payload", PAYLOADS)
def test_typed_text_stays_text_on_every_page(page: Page, live_server, settings, catalog, payload):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    world = world_create(payload)
    watch = Watch(page)
    sign_in(page, live_server.url, "owner")
    for url in owner_pages(world):
        watch.visit(page, f"{live_server.url}{url}")
    # The polls swap fresh cards in: still inert, still within the policy.
    page.goto(f"{live_server.url}/")
    page.wait_for_timeout(2_500)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__violations") == []
    expect(page.get_by_role("link", name=payload).first).to_be_visible()
    assert watch.evil_requests == []


def test_the_admin_and_the_forms_work_under_the_policy(page: Page, live_server, catalog):
    world = world_create(PAYLOADS[2])
    operator = make_operator()
    watch = Watch(page)
    watch.visit(page, f"{live_server.url}/admin/login/")  # allauth's sign-in, then its code page
    page.locator("#id_login").fill("operator")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.locator("#id_code").fill(totp_code(operator))
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    for url in staff_pages(world):
        watch.visit(page, f"{live_server.url}{url}")
    # A form driven by htmx: the rule form previews and saves without a reload.
    page.context.clear_cookies()
    sign_in(page, live_server.url, "owner")
    watch.visit(page, f"{live_server.url}/lines/{world.line.pk}/rules/")
    names = ["selfRequestsOnly", "allowEval", "allowScriptTags", "includeIndicatorStyles"]
    assert page.evaluate("(names) => names.map((name) => htmx.config[name])", names) == [
        True,
        False,
        False,
        False,
    ]
    # htmx refuses to fetch from another origin, whatever asks it to.
    page.evaluate("htmx.ajax('GET', 'http://evil.example/evil', {target: 'main'}).catch(() => null)")
    page.wait_for_timeout(500)
    assert watch.evil_requests == []
    assert watch.errors == ["htmx:invalidPath, [object HTMLElement]"]  # htmx's own refusal
    watch.errors.clear()
    watch.visit(page, f"{live_server.url}/accounts/profile/")
    page.get_by_label("First name").fill("Ming")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your settings are saved.")).to_be_visible()
    assert page.evaluate("window.__violations") == []
    assert watch.errors == []
