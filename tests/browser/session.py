"""Signing in from a browser, once for every browser test: a phone-sized context in a language, and
the login form filled by its fields' ids so the same helper works whatever the page's language."""

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.factories import PASSWORD

PHONE = {"width": 375, "height": 900}
BROWSER_LOCALES = {"en": "en-US", "zh-hans": "zh-CN", "ja": "ja-JP"}


def phone_page(browser: Browser, *, language: str = "en", color_scheme: str = "light") -> Page:
    """A new browser context at 375 px asking for `language` (one of settings.LANGUAGES)."""
    context = browser.new_context(viewport=PHONE, locale=BROWSER_LOCALES[language], color_scheme=color_scheme)
    return context.new_page()


def sign_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> Page:
    page.goto(f"{base_url}/accounts/login/")
    page.locator("#id_login").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


def signed_in(browser: Browser, base_url: str, username: str, **context) -> Page:
    return sign_in(phone_page(browser, **context), base_url, username)


def axe_violations(page: Page) -> list[str]:
    """axe-core's findings of moderate impact or worse, as 'rule: target' strings."""
    results = Axe().run(page)
    return [
        f"{violation['id']}: {node['target']}"
        for violation in results.response["violations"]
        if violation["impact"] in {"moderate", "serious", "critical"}
        for node in violation["nodes"]
    ]


def htmx_settled(page: Page) -> None:
    """Waits until htmx has no request out and has settled what it swapped in: it attaches the new
    content's triggers only when settling (20 ms after the swap), so typing into a field that was
    just swapped in is otherwise lost."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
