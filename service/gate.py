"""API keys, checked once per request: `KeyGate` (ASGI middleware) reads the bearer token
of every request and keeps the name of its key in the request's state; routes of a key's
jobs read it through `request_key` (service.deps), and the operator's pages (/metrics, the
API's docs: /docs, /redoc, /openapi.json and their assets) are refused at the gate unless a
setting opens them (`MCNET_METRICS_PUBLIC`, `MCNET_DOCS_PUBLIC`: for a scraper or a
network of one's own)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import UnauthorizedError
from core.keys import ANONYMOUS, ApiKey, match_key

METRICS_PATHS = ("/metrics",)
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")
KEY_STATE = "api_key"  # the request state's entry: the key's name, None for no known key


def unauthorized() -> UnauthorizedError:
    """The 401 of a request without a known key."""
    return UnauthorizedError("Missing or unknown API key: send `Authorization: Bearer <key>`.")


class KeyGate:
    """ASGI middleware: with `keys`, names each request's key once (the request state's
    `api_key`) and answers 401 on the gated `paths` without a known one."""

    def __init__(self, app: ASGIApp, keys: tuple[ApiKey, ...], paths: tuple[str, ...]) -> None:
        self.app = app
        self.keys = keys
        self.paths = paths

    def _gated(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        given = token.strip() if scheme.lower() == b"bearer" else b""
        name = match_key(given, self.keys) if given else None
        scope.setdefault("state", {})[KEY_STATE] = name
        if name is None and self._gated(scope.get("path", "")):
            error = unauthorized()
            response = JSONResponse({"detail": str(error)}, status_code=401, headers=error.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def request_key(request: Request, keys: tuple[ApiKey, ...]) -> str:
    """The name of the request's key as the gate found it (ANONYMOUS when the service has
    no keys); UnauthorizedError when keys are on and it carries none of them."""
    if not keys:
        return ANONYMOUS
    name: str | None = getattr(request.state, KEY_STATE, None)
    if name is None:
        raise unauthorized()
    return name


def gated_paths(metrics_public: bool, docs_public: bool) -> tuple[str, ...]:
    """The paths that need a key, by the settings."""
    return (() if metrics_public else METRICS_PATHS) + (() if docs_public else DOCS_PATHS)
