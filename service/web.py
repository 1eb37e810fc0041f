"""The web page: `/` (index.html) and `/static/...` (its CSS, JavaScript and icon).

The page is plain HTML, CSS and JavaScript shipped in this package (`service/static/`,
package data): no build step, and nothing is loaded from another origin, which the
Content-Security-Policy of the page enforces. It talks to the API with relative URLs,
so it also works behind a proxy that serves the API under a path prefix.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Everything from this origin; previews and results may also be blob: URLs made by the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)

_MOUNTED = "mcnet_web_mounted"


def mount_web(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    """Serve the web page at `/` and its files under `/static` (once per app)."""
    if getattr(app.state, _MOUNTED, False):
        return
    index = static_dir / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"the web page is missing: {index} (broken installation?)")

    @app.get("/", include_in_schema=False)
    async def web_page() -> FileResponse:
        return FileResponse(
            index,
            media_type="text/html; charset=utf-8",
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    setattr(app.state, _MOUNTED, True)
    logger.debug("web page mounted from %s", static_dir)
