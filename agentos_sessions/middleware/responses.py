"""The answers middlewares give themselves, before Connexion sees the request."""

from __future__ import annotations

from starlette.responses import Response

from agentos_sessions import jsoncodec


def detail(status: int, message: str) -> Response:
    """``{"detail": message}``, AgentOS's error body."""
    return Response(jsoncodec.dumps_compact({"detail": message}), status, media_type="application/json")
