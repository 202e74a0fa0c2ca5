"""Real-browser tests: Debian's chromium driven headless by Playwright for Python, against a live
server (gunicorn, as tests/e2e starts it). No browser is ever downloaded (`playwright install` is
never run): the machines reach only the package registries. Under CI=true a missing chromium or
Playwright fails these tests instead of skipping them (`.ci/run` installs chromium with apt-get).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import _free_port, _missing
from tests.e2e.conftest import _manage, server_env, start_gunicorn, stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "browser-test-password"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        _missing(f"chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python (pip install -r requirements-dev.txt)")
    return CHROMIUM


@pytest.fixture(scope="session")
def web_server(tmp_path_factory, chromium_path):
    """A live server with one person (`ada`, a password) and nothing stored yet."""
    var = tmp_path_factory.mktemp("browser-var")
    port = _free_port()
    env = server_env(var, port, MEDIA_ENCRYPTION="none")
    _manage(env, "migrate", "--noinput")
    _manage({**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, "createsuperuser", "--noinput",
            "--username", "ada", "--email", "ada@example.com")
    server = start_gunicorn(env, port, var / "server.log")
    yield f"http://127.0.0.1:{port}"
    stop(server)


# Module scope: while Playwright's sync API is open its event loop counts as running in this thread,
# so any test of another module run by the same process would meet Django's SynchronousOnlyOperation.
@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshot(tmp_path):
    """Save a page's screenshot: to docs/screenshots/<name>.png (shown in the README) with
    UPDATE_SCREENSHOTS=1, else to the test's temporary folder (a run leaves the tree clean)."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:  # noqa: ANN001
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return take
