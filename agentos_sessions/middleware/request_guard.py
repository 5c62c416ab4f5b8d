"""Requests fixed up, or refused, before Connexion routes them."""

from __future__ import annotations

import re

from agentos_sessions.middleware.responses import detail

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_UPPER_MEDIA_TYPE = re.compile(rb"[^;]*[A-Z]")


class RequestGuard:
    """Fix up requests before Connexion routes them.

    * A path with control characters is a 404: Connexion mounts the API on ``^/(?P<path>.*)$``,
      whose ``.`` stops at a newline, so such a path would bypass routing and validation and
      reach the app without its operation. No path of the contract has one.
    * A trailing slash on an API path is dropped (``/sessions/`` is ``/sessions``), as AgentOS
      serves both. The Swagger UI keeps its ``/docs/``.
    * The media type of a Content-Type is lower-cased (parameters kept): media types are
      case-insensitive (RFC 9110, 8.3.1), and Connexion validates ``Application/JSON`` as JSON
      but then hands the handler the body as bytes.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            if _CONTROL_CHARACTERS.search(path):
                await detail(404, "Not Found")(scope, receive, send)
                return
            if len(path) > 1 and path.endswith("/") and not path.startswith("/docs"):
                scope = {**scope, "path": path.rstrip("/") or "/", "raw_path": scope.get("raw_path", b"").rstrip(b"/")}
            if any(name == b"content-type" and _UPPER_MEDIA_TYPE.match(value) for name, value in scope["headers"]):
                scope = {**scope, "headers": [_lower_media_type(name, value) for name, value in scope["headers"]]}
        await self.app(scope, receive, send)


def _lower_media_type(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name != b"content-type":
        return name, value
    media_type, separator, parameters = value.partition(b";")
    return name, media_type.lower() + separator + parameters
