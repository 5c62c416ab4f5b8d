"""The errors handlers, security and middlewares raise: each is answered as
``{"detail": message}`` with its class's status (``contract.responses`` renders them)."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as ``{"detail": message}`` with the class's status."""

    status = 500
    headers: dict[str, str] | None = None

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    """No usable credentials. The challenge (RFC 6750) tells a client to send a bearer token."""

    status = 401

    def __init__(self, detail: str, challenge: str = 'Bearer error="invalid_token"'):
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PreconditionFailed(ApiError):
    status = 412


class PayloadTooLarge(ApiError):
    status = 413

    @staticmethod
    def message(limit: int) -> str:
        return f"Request body too large: the limit is {limit} bytes"


class RangeNotSatisfiable(ApiError):
    """A byte range that starts past the end of an object of ``size`` bytes (RFC 9110, 15.5.17)."""

    status = 416

    def __init__(self, size: int):
        super().__init__(f"Range not satisfiable: the object has {size} bytes")
        self.headers = {"Content-Range": f"bytes */{size}"}


class ServiceUnavailable(ApiError):
    """A part the request needs is not there, or not reachable now."""

    status = 503

    def __init__(self, detail: str, *, retry_after: int | None = None):
        super().__init__(detail)
        if retry_after is not None:
            self.headers = {"Retry-After": str(retry_after)}
