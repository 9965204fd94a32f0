"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API against the live server."""

import os
from pathlib import Path

import pytest

from tests.factories import TEST_PASSWORD

# Playwright's sync API runs an asyncio loop in this thread; the ORM calls the tests make are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path(os.environ.get("CTS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh (it installs Debian's chromium) "
                    "or apt-get install chromium.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (no cookies) with a desktop-sized window; uncaught script errors fail the test."""
    context = chromium.new_context(viewport={"width": 1360, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # What the content security policy blocked is a console message, not an exception: count it as an error.
    tab.on("console", lambda message: "Content Security Policy" in message.text and errors.append(message.text))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def wait_until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript expression until it is truthy.

    Not `page.wait_for_function`: that evaluates its predicate from a string inside the page, which the
    site's content security policy (no 'unsafe-eval') rightly refuses.
    """
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(100)


def log_in(page, base, user, next_url):
    """Log `user` in through the login form and land on `next_url`."""
    page.goto(f"{base}/accounts/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}{next_url}")
