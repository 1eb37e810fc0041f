"""`/docs` and `/redoc` render with the network off: their files come with the package."""

from __future__ import annotations

from typing import Any

import pytest


def offline_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page whose requests outside `url`'s origin are aborted (as on a host without
    internet), and the list of the URLs it tried."""
    origin = url.split("/docs")[0].split("/redoc")[0]
    context = browser.new_context()
    blocked: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(origin + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.goto(url)
    return page, blocked


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI draws the title and one block per operation.
        ("docs", ".swagger-ui .info .title"),
        # ReDoc draws the title as the first heading of its API info section.
        ("redoc", "[data-role='redoc-description'], .api-info h1"),
    ],
)
def test_api_documentation_renders_offline(
    browser: Any, site: str, path: str, rendered: str
) -> None:
    page, blocked = offline_page(browser, site + path)
    try:
        title = page.wait_for_selector(rendered, timeout=20_000)
        assert title is not None
        page.wait_for_selector("text=/animate", timeout=20_000)
        assert "MCNet" in page.inner_text("body")
        assert blocked == [], f"the documentation wanted the internet: {blocked}"
    finally:
        page.context.close()
