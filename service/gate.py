"""With API keys on, the operator's pages need a key too: /metrics, and the API's docs
(/docs, /redoc, /openapi.json and their assets), unless a setting opens them
(`MCNET_METRICS_PUBLIC`, `MCNET_DOCS_PUBLIC`: for a scraper or a network of one's own)."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import UnauthorizedError
from core.keys import ApiKey, match_key

METRICS_PATHS = ("/metrics",)
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


class KeyGate:
    """ASGI middleware: 401 on the gated paths without one of `keys` as a bearer token."""

    def __init__(self, app: ASGIApp, keys: tuple[ApiKey, ...], paths: tuple[str, ...]) -> None:
        self.app = app
        self.keys = keys
        self.paths = paths

    def _gated(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or not self._gated(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        given = token.strip() if scheme.lower() == b"bearer" else b""
        if match_key(given, self.keys) is not None:
            await self.app(scope, receive, send)
            return
        error = UnauthorizedError("Missing or unknown API key: send `Authorization: Bearer <key>`.")
        response = JSONResponse({"detail": str(error)}, status_code=401, headers=error.headers)
        await response(scope, receive, send)


def gated_paths(metrics_public: bool, docs_public: bool) -> tuple[str, ...]:
    """The paths that need a key, by the settings."""
    return (() if metrics_public else METRICS_PATHS) + (() if docs_public else DOCS_PATHS)
