"""Every request gets an id, sent back and logged with its errors."""

from __future__ import annotations

import re
import uuid

from agentos_sessions import context

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestId:
    """Every request gets an id: the client's ``X-Request-ID`` when it is a plain token, else a
    new one. It is sent back in the ``X-Request-ID`` response header and logged with errors, so a
    500 (whose body says nothing of its cause) can be found in the log."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        request_id = given.decode("ascii") if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        token = context.request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            context.request_id.reset(token)
