"""405 answers whose `Allow` names every method of the path, not only the first route's.

Starlette answers a method a path does not take with the `Allow` of the first route that
matched the path, so `OPTIONS /jobs/{id}` said `Allow: GET` although DELETE works too.
This middleware adds to each 405's `Allow` the methods the OpenAPI document gives the
path (read once, on the first 405).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def path_methods(document: dict[str, Any]) -> list[tuple[re.Pattern[str], set[str]]]:
    """(pattern of the path template, its methods) for each path of an OpenAPI document."""
    found = []
    for template, operations in document.get("paths", {}).items():
        parts = re.split(r"(\{[^/{}]+\})", template)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        methods = {m.upper() for m in operations if m in _METHODS}
        found.append((re.compile(f"^{pattern}$"), methods))
    return found


class AllowedMethods:
    """ASGI middleware: a 405's `Allow` lists every documented method of the path."""

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.openapi = openapi
        self._paths: list[tuple[re.Pattern[str], set[str]]] | None = None

    def _documented(self, path: str) -> set[str]:
        if self._paths is None:
            self._paths = path_methods(self.openapi())
        return next((methods for pattern, methods in self._paths if pattern.match(path)), set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = MutableHeaders(scope=message)
                given = {m.strip() for m in headers.get("allow", "").split(",") if m.strip()}
                allowed = given | self._documented(scope.get("path", ""))
                headers["Allow"] = ", ".join(sorted(allowed))
            await send(message)

        await self.app(scope, receive, send_allow)
