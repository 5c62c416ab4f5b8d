"""Health tag."""

from __future__ import annotations

from connexion import request

from handlers.views import timestamp


async def health_check():
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok", "instantiated_at": timestamp(request.state.started_at)}, 200
