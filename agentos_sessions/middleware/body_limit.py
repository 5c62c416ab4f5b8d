"""Request bodies over the limit refused with 413, before they are parsed."""

from __future__ import annotations

from agentos_sessions.errors import PayloadTooLarge
from agentos_sessions.middleware.responses import detail


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are parsed.

    A declared Content-Length over the limit is answered at once, without reading the body; a
    body without one (chunked) is counted as it arrives and refused when it passes the limit.
    """

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await detail(413, PayloadTooLarge.message(self.limit))(scope, receive, send)
            return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(PayloadTooLarge.message(self.limit))
            return message

        await self.app(scope, counted, send)
