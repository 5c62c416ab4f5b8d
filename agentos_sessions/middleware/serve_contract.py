"""``GET /openapi.json``: the contract as written."""

from __future__ import annotations

from starlette.responses import Response

from agentos_sessions import jsoncodec


class ServeContract:
    """``GET /openapi.json``: the contract this server keeps, with its ``$ref``s and schema names
    (behind a proxy that sets a root path, with that path as its server). Connexion would serve
    it with every $ref resolved in place: no schema names, and a recursive schema cannot be
    written."""

    PATH = "/openapi.json"

    def __init__(self, app, document: dict):
        self.app = app
        self.document = document
        self.body = jsoncodec.dumps_compact(document)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != self.PATH or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "").rstrip("/")
        body = self.body
        if root_path:
            body = jsoncodec.dumps_compact({**self.document, "servers": [{"url": root_path}]})
        if scope["method"] == "HEAD":
            # The GET's headers, without its body.
            response = Response(b"", headers={"content-length": str(len(body))}, media_type="application/json")
        else:
            response = Response(body, media_type="application/json")
        await response(scope, receive, send)
