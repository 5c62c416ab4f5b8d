"""Every error answered in AgentOS's (FastAPI's) body shape: Connexion's error handlers."""

from __future__ import annotations

import logging
import re

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse

from agentos_sessions import jsoncodec
from agentos_sessions.context import request_id
from agentos_sessions.contract.entries import RequestValidationFailed, not_an_object
from agentos_sessions.errors import ApiError
from agentos_sessions.persistence.database import DatabaseBusy

logger = logging.getLogger(__name__)


def json_response(status: int, body, headers: dict | None = None) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        content_type="application/json",
        body=jsoncodec.dumps_compact(body),
        headers=headers,
    )


def api_error(_request: ConnexionRequest, error: ApiError) -> ConnexionResponse:
    return json_response(error.status, {"detail": error.detail}, error.headers)


def database_unavailable(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """The database could not do the work now (locked by another process, unreachable): nothing
    was changed, and the client may try again shortly."""
    logger.warning("%s %s, request %s: %s", request.method, request.url.path, request_id.get(), error)
    what = "busy" if isinstance(error, DatabaseBusy) else "unavailable"
    detail = f"The database is {what}; try again shortly"
    return json_response(503, {"detail": detail}, {"Retry-After": "1"})


def request_validation_failed(_request: ConnexionRequest, error: RequestValidationFailed) -> ConnexionResponse:
    return json_response(422, {"detail": error.errors})


async def unsupported_media_type(request: ConnexionRequest, _error: Exception) -> ConnexionResponse:
    """A body that is not JSON is not an object: FastAPI's model_attributes_type, 422."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    return json_response(422, {"detail": [not_an_object(raw)]})


def http_error_handler(document: dict):
    """Routing errors (unknown path, wrong method) with FastAPI's bodies; a 405 names the
    methods the contract declares for the path in its Allow header (RFC 9110)."""
    routes = [
        (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), sorted(m.upper() for m in item if m in _METHODS))
        for path, item in document.get("paths", {}).items()
    ]

    def http_error(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
        status = getattr(error, "status_code", None) or getattr(error, "status", 500)
        if status == 405:
            allowed = next((methods for pattern, methods in routes if pattern.match(request.url.path)), [])
            return json_response(405, {"detail": "Method Not Allowed"}, {"Allow": ", ".join(allowed)})
        return json_response(status, {"detail": _PHRASES.get(status, "Bad Request")})

    return http_error


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_PHRASES = {404: "Not Found", 405: "Method Not Allowed"}


def problem(request: ConnexionRequest, error: ProblemException) -> ConnexionResponse:
    """Connexion's own errors in AgentOS's shape; a server-side one says nothing of its cause."""
    if error.status >= 500:
        logger.error(
            "%s, request %s, %s %s: %s",
            error.title,
            request_id.get(),
            request.method,
            request.url.path,
            error.detail,
        )
        return json_response(error.status, {"detail": "Internal server error"})
    return json_response(error.status, {"detail": error.detail or error.title})


def internal_error(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    """Details (the exception, its traceback) go to the log under the request's id, never into the body."""
    logger.error(
        "Unhandled error, request %s, %s %s",
        request_id.get(),
        request.method,
        request.url.path,
        exc_info=error,
    )
    return json_response(500, {"detail": "Internal server error"})
