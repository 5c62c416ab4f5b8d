"""The application factory.

Importing this module does no work: :func:`create_app` builds the app, and the databases are
opened (missing tables created) when the server starts, in its lifespan.
"""

from __future__ import annotations

import contextlib
import logging
import time

from connexion.exceptions import ProblemException, UnsupportedMediaTypeProblem
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from agentos_sessions import handlers, security
from agentos_sessions.contract import responses
from agentos_sessions.contract.entries import RequestValidationFailed
from agentos_sessions.contract.serving import CompactJson, ContractApp
from agentos_sessions.contract.spec import load_document, quiet_media_type_warnings
from agentos_sessions.contract.validators import VALIDATOR_MAP
from agentos_sessions.errors import ApiError
from agentos_sessions.middleware.body_limit import BodyLimit
from agentos_sessions.middleware.observe import Observe
from agentos_sessions.middleware.request_guard import RequestGuard
from agentos_sessions.middleware.request_id import RequestId
from agentos_sessions.middleware.serve_contract import ServeContract
from agentos_sessions.middleware.swagger_ui import SwaggerUIOnItsPaths
from agentos_sessions.observability import Metrics
from agentos_sessions.persistence.database import DatabaseUnavailable, migrate, open_databases
from agentos_sessions.persistence.media import open_media_storages
from agentos_sessions.settings import Settings

logger = logging.getLogger("agentos_sessions")

# Connexion's middlewares, in its order, with the Swagger UI's replaced.
MIDDLEWARES = [
    SwaggerUIOnItsPaths if middleware is SwaggerUIMiddleware else middleware
    for middleware in ConnexionMiddleware.default_middlewares
]


def create_app(settings: Settings | None = None) -> ContractApp:
    """Build the server for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    authenticator = security.authenticator(settings.security)
    document = load_document()
    if settings.security.mode == "none":
        _credentials_optional(document)
    quiet_media_type_warnings()
    metrics = Metrics()
    # An AsyncApp: handlers are coroutines run on the event loop, no thread hand-off per request
    # (FlaskApp served 0.65x the creates and 0.55x the gets).
    app = ContractApp(
        __name__,
        lifespan=_lifespan(settings, authenticator, metrics),
        jsonifier=CompactJson(),
        middlewares=list(MIDDLEWARES),
    )
    # Of the middlewares at one position, the first added is the outermost.
    if settings.security.cors_origins:
        app.add_middleware(CORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, **_cors(settings))
    app.add_middleware(RequestId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(Observe, position=MiddlewarePosition.BEFORE_EXCEPTION, metrics=metrics)
    app.add_middleware(RequestGuard, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(BodyLimit, position=MiddlewarePosition.BEFORE_EXCEPTION, limit=settings.max_body_bytes)
    app.add_middleware(ServeContract, position=MiddlewarePosition.BEFORE_EXCEPTION, document=document)
    app.add_api(
        document,
        resolver=Resolver(handlers.by_operation_id),
        validator_map=VALIDATOR_MAP,
        validate_responses=settings.validate_responses,
        security_map=security.security_map(authenticator),
        # The contract is served by ServeContract, as written.
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, spec_path="/openapi.json", swagger_ui_path="/docs"),
    )
    app.add_error_handler(ApiError, responses.api_error)
    app.add_error_handler(DatabaseUnavailable, responses.database_unavailable)
    app.add_error_handler(RequestValidationFailed, responses.request_validation_failed)
    app.add_error_handler(UnsupportedMediaTypeProblem, responses.unsupported_media_type)
    app.add_error_handler(ProblemException, responses.problem)
    app.add_error_handler(HTTPException, responses.http_error_handler(document))
    app.add_error_handler(Exception, responses.internal_error)
    return app


def _credentials_optional(document: dict) -> None:
    """An open server's contract says what is true of it: credentials are optional everywhere
    (each bearer requirement gets the empty alternative). The file keeps them required."""
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"] = [*operation["security"], {}]


def _cors(settings: Settings) -> dict:
    """Browsers on the listed origins may call; a preflight is answered here, without credentials."""
    return {
        "allow_origins": list(settings.security.cors_origins),
        "allow_methods": ["GET", "POST", "PATCH", "DELETE"],
        # The conditional and range headers too: a page that reads an ETag sends it back.
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "X-Request-ID",
            "If-Match",
            "If-None-Match",
            "Range",
            "If-Range",
        ],
        "expose_headers": [
            "X-Request-ID",
            "Retry-After",
            "WWW-Authenticate",
            "ETag",
            "X-Total-Count",
            "Link",
            "Content-Range",
        ],
        # As AgentOS: a browser app may send credentialed requests (auth itself is a header, never a cookie).
        "allow_credentials": True,
        "max_age": 600,
    }


def _lifespan(settings: Settings, authenticator, metrics: Metrics):
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        logger.info("Authentication: %s", authenticator.description)
        media_storages = open_media_storages(settings)
        databases = open_databases(settings)
        try:
            await migrate(databases.values())
            yield {
                "databases": databases,
                "media_storages": media_storages,
                "started_at": time.time(),
                "metrics": metrics,
                "os_id": settings.os_id,
            }
        finally:
            for database in databases.values():
                await database.close()

    return lifespan
