"""Fixtures of the browser tests: one service (Redis, a tiny-model worker, the API with the
page) for the module, Debian's Chromium for the session, a fresh page per test.

The service is `tests/service`'s `Stack` (same Redis, worker and API launchers); the page
is mounted with `service.web.mount_web`. Without Playwright or Chromium these tests are
skipped, unless MCNET_REQUIRE_BROWSER=1 or CI (tests/prerequisites.py) makes that an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.local import EmbeddedRedis
from tests.prerequisites import in_ci
from tests.service.conftest import Stack
from tests.service.helpers import ApiServer
from tests.web.browser import DESKTOP, browser_missing, chromium, open_page, web_app

API_KEY = "web-test-key"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests where no browser is installed (an error in CI)."""
    missing = browser_missing()
    if missing is None:
        return
    if os.environ.get("MCNET_REQUIRE_BROWSER") == "1" or in_ci():
        raise pytest.UsageError(f"browser tests required but {missing}")
    skip = pytest.mark.skip(reason=missing)
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def web_stack(
    redis_server: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A queue, storage folder and one worker (tiny model) shared by a module's tests."""
    stack = Stack(redis_server, tmp_path_factory.mktemp("web-stack"))
    try:
        stack.start_worker()
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def site(web_stack: Stack) -> Iterator[str]:
    """Base URL of the API serving the page (no API keys)."""
    with ApiServer(web_app(web_stack.settings())) as server:
        yield server.url + "/"


@pytest.fixture(scope="module")
def keyed_site(web_stack: Stack) -> Iterator[str]:
    """Base URL of an API on the same queue that wants `Authorization: Bearer API_KEY`."""
    with ApiServer(web_app(web_stack.settings(api_keys=[API_KEY]))) as server:
        yield server.url + "/"


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """Headless Chromium for the session."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the media the tests make."""
    return tmp_path_factory.mktemp("web-inputs")


class PageWatch:
    """What a page did besides what the test looks at: requests, JS errors."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.responses: list[tuple[str, str, int, dict[str, str]]] = []

    def attach(self, page) -> None:  # type: ignore[no-untyped-def]
        """Listen to `page` (before it loads)."""
        page.on("request", self.on_request)
        page.on("response", self.on_response)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def on_request(self, request) -> None:  # type: ignore[no-untyped-def]
        url = request.url
        if not (url.startswith(self.base + "/") or url.startswith(("blob:", "data:"))):
            self.foreign.append(url)

    def on_response(self, response) -> None:  # type: ignore[no-untyped-def]
        self.responses.append(
            (response.request.method, response.url, response.status, response.request.headers)
        )


@pytest.fixture
def page(browser, site: str) -> Iterator:  # type: ignore[no-untyped-def]
    """The page at `site` in a fresh desktop-sized context; fails on JS errors or on any
    request that leaves the machine's origin."""
    watch = PageWatch(site)
    opened = open_page(browser, site, DESKTOP, before=watch.attach)
    opened.watch = watch  # type: ignore[attr-defined]
    yield opened
    opened.context.close()
    assert not watch.errors, f"JavaScript errors: {watch.errors}"
    assert not watch.foreign, f"requests outside the service: {watch.foreign}"
