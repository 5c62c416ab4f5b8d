"""Connexion's Swagger UI, asked only for the paths it serves."""

from __future__ import annotations

from connexion.middleware.swagger_ui import SwaggerUIMiddleware


class SwaggerUIOnItsPaths(SwaggerUIMiddleware):
    """Connexion's Swagger UI, asked only for the paths it serves (under /docs).

    Connexion's own matches every request against the UI's routes first (4% of the CPU of a get
    of one session) before it passes it on."""

    PREFIX = "/docs"

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and path != self.PREFIX and not path.startswith(self.PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
