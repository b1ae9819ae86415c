"""`make screenshots`: the README's pictures, taken from the running demo on a 375 px phone.

Starts `make run` on a free loopback port with a database and broker of its own (your var/ data is not
touched), signs in as two personas in their languages, and saves each main page to docs/screenshots/.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the suite's launch settings for Debian's Chromium, and its free-port helper

from tests.services import CHROMIUM, CHROMIUM_FLAGS, free_port  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PASSWORD = "esimdash-demo-2026"  # noqa: S105 - the demo's password, printed in the README
# Who is shown in which language: the family pool's owner in English, its manager in Chinese, and a
# consultant on a travel eSIM in Japanese (in no pool: her pools page shows how to start one).
PEOPLE = (("en", "zhangwei", "en-US"), ("zh-hans", "liuyan", "zh-CN"), ("ja", "lijing", "ja-JP"))
PAGES = ("lines", "line", "rules", "pool", "gifts", "notifications")


def demo_start(port: int, scratch: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{scratch / 'esimdash.sqlite3'}",
        "CELERY_BROKER_URL": f"sqla+sqlite:///{scratch / 'broker.sqlite3'}",
    }
    env.pop("REDIS_URL", None)
    make = os.environ.get("MAKE") or shutil.which("make") or "make"
    command = [make, "--no-print-directory", "run"]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603 - our own make run


def wait_until_up(base: str, demo: subprocess.Popen, seconds: int = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            sys.exit("make run stopped before the demo came up; its output is above.")
        try:
            with urllib.request.urlopen(f"{base}/healthz?checks=database", timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(1)
    sys.exit(f"The demo did not answer on {base} within {seconds} s.")


def first_link(page: Page, pattern: str) -> str | None:
    hrefs = page.eval_on_selector_all("main a[href]", "links => links.map(link => link.getAttribute('href'))")
    return next((href for href in hrefs if re.fullmatch(pattern, href)), None)


def shoot(page: Page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    path = OUT / f"{name}.png"
    page.screenshot(path=path, full_page=False)
    print(f"  {path.relative_to(ROOT)}")


def person_shoot(browser, base: str, language: str, username: str, locale: str) -> None:
    page = browser.new_context(viewport={"width": 375, "height": 812}, locale=locale).new_page()
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    shoot(page, f"{language}-lines")
    line = first_link(page, r"/lines/\d+/")
    if line is None:
        sys.exit(f"{username} has no line in the demo.")
    page.goto(base + line)
    shoot(page, f"{language}-line")
    page.goto(f"{base}{line}rules/")
    shoot(page, f"{language}-rules")
    page.goto(f"{base}/pools/")
    if pool := first_link(page, r"/pools/\d+/"):
        page.goto(base + pool)
    shoot(page, f"{language}-pool")
    page.goto(f"{base}/gifts/")
    shoot(page, f"{language}-gifts")
    page.goto(f"{base}/notifications/")
    shoot(page, f"{language}-notifications")
    page.context.close()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="esimdash-screenshots-"))
    print(f"==> starting the demo on {base} (make run, data in {scratch})")
    demo = demo_start(port, scratch)
    try:
        wait_until_up(base, demo)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for number, (language, username, locale) in enumerate(PEOPLE, 1):
                print(f"==> [{number}/{len(PEOPLE)}] {username} in {language}")
                person_shoot(browser, base, language, username, locale)
            browser.close()
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"==> {len(PEOPLE) * len(PAGES)} screenshots in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
