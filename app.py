"""The application factory and the ``agentos-sessions`` command line.

Importing this module does no work: :func:`create_app` builds the app, and the databases are
opened (missing tables created) when the server starts, in its lifespan.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import os
import re
import socket
import sys
import sysconfig
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# Connexion 3.3 imports starlette.testclient (for its app.test_client()) when it is imported, and
# Starlette 1.x warns there that the client runs on httpx. Nothing here uses that client; unfiltered,
# the warning would open the output of every agentos-sessions command.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    import connexion

from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.exceptions import ProblemException, UnsupportedMediaTypeProblem
from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

import checks
import jsoncodec
import openapi31
import security
from handlers import errors
from observability import LOG_FORMAT, AlembicContextLines, Metrics, Observe, logging_config
from persistence.database import (
    Database,
    DatabaseBusy,
    DatabaseUnavailable,
    SQLiteDatabase,
    check_driver,
    open_database,
)
from persistence.schema import SchemaMismatch
from server import OneSendHttpToolsProtocol
from settings import Settings, SettingsError


def _spec_path() -> Path:
    """The contract: beside this module in a checkout (or an editable install), else where a
    wheel installs it (pyproject.toml's data-files)."""
    beside = Path(__file__).with_name("openapi.yaml")
    if beside.exists():
        return beside
    return Path(sysconfig.get_path("data")) / "share" / "agentos-sessions" / "openapi.yaml"


SPEC_PATH = _spec_path()
logger = logging.getLogger("agentos_sessions")


class CompactJson(Jsonifier):
    """JSON as FastAPI writes it: compact, UTF-8, no trailing newline (through orjson)."""

    def dumps(self, data, **kwargs) -> bytes:
        return jsoncodec.dumps_compact(data)


class _DecoratedOnce(StarletteDecorator):
    """Connexion's decorator of a handler, with the wrapping done once, not for every request.

    Connexion 3.3 wraps the handler in its parameter and response decorators, inspecting its
    signature, and builds the operation's URI parser, again on every request (12% of the CPU of
    a get of one session). Neither depends on the request: an instance serves one operation."""

    def __call__(self, function: Callable) -> Callable:
        decorated = self.decorate(function)
        uri_parser = None

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            nonlocal uri_parser
            uri_parser = uri_parser or self.uri_parser
            return await decorated(self.framework.get_request(uri_parser=uri_parser, scope=scope, receive=receive))

        return wrapper


class _Operation(AsyncOperation):
    @functools.cached_property
    def fn(self) -> Callable:
        return _DecoratedOnce(pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)(self._fn)


class _Api(AsyncApi):
    def make_operation(self, operation) -> AsyncOperation:
        return _Operation.from_operation(operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)


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


# Connexion's middlewares, in its order, with the Swagger UI's replaced.
MIDDLEWARES = [
    SwaggerUIOnItsPaths if middleware is SwaggerUIMiddleware else middleware
    for middleware in ConnexionMiddleware.default_middlewares
]


class RequestGuard:
    """Fix up requests before Connexion routes them.

    * A path with control characters is a 404: Connexion mounts the API on ``^/(?P<path>.*)$``,
      whose ``.`` stops at a newline, so such a path would bypass routing and validation and
      reach the WSGI app without its operation. No path of the contract has one.
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
                await _send_detail(send, 404, "Not Found")
                return
            if len(path) > 1 and path.endswith("/") and not path.startswith("/docs"):
                scope = {**scope, "path": path.rstrip("/") or "/", "raw_path": scope.get("raw_path", b"").rstrip(b"/")}
            if any(name == b"content-type" and _UPPER_MEDIA_TYPE.match(value) for name, value in scope["headers"]):
                scope = {**scope, "headers": [_lower_media_type(name, value) for name, value in scope["headers"]]}
        await self.app(scope, receive, send)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_UPPER_MEDIA_TYPE = re.compile(rb"[^;]*[A-Z]")


def _lower_media_type(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name != b"content-type":
        return name, value
    media_type, separator, parameters = value.partition(b";")
    return name, media_type.lower() + separator + parameters


async def _send_detail(send, status: int, detail: str) -> None:
    """Answer ``{"detail": detail}`` from a middleware, before Connexion sees the request."""
    await _send_json(send, status, jsoncodec.dumps_compact({"detail": detail}))


async def _send_json(send, status: int, body: bytes, *, head: bool = False) -> None:
    """Answer a JSON body from a middleware (its headers only, for a HEAD request)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


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

        token = errors.current_request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            errors.current_request_id.reset(token)


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


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
            await _send_detail(send, 413, errors.PayloadTooLarge.message(self.limit))
            return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise errors.PayloadTooLarge(errors.PayloadTooLarge.message(self.limit))
            return message

        await self.app(scope, counted, send)


class ServeContract:
    """``GET /openapi.json``: the contract this server keeps, with its ``$ref``s and schema names
    (behind a proxy that sets a root path, with that path as its server)."""

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
        await _send_json(send, 200, body, head=scope["method"] == "HEAD")


def create_app(settings: Settings | None = None) -> connexion.AsyncApp:
    """Build the server for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    authenticator = security.authenticator(settings.security)
    openapi31.enable()
    document = openapi31.load_document(SPEC_PATH)
    if settings.security.mode == "none":
        _credentials_optional(document)
    # AsyncApp: handlers are coroutines run on the event loop, no thread hand-off per request
    # (README, Performance: FlaskApp served 0.65x the creates and 0.55x the gets).
    metrics = Metrics()
    app = connexion.AsyncApp(
        __name__,
        lifespan=_lifespan(settings, authenticator, metrics),
        jsonifier=CompactJson(),
        middlewares=list(MIDDLEWARES),
    )
    # The routed app's APIs make operations whose handlers are decorated once (_DecoratedOnce).
    app._middleware_app.api_cls = _Api
    # Of the middlewares at one position, the first added is the outermost.
    if settings.security.cors_origins:
        app.add_middleware(CORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, **_cors(settings))
    app.add_middleware(RequestId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(Observe, position=MiddlewarePosition.BEFORE_EXCEPTION, metrics=metrics)
    app.add_middleware(RequestGuard, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(BodyLimit, position=MiddlewarePosition.BEFORE_EXCEPTION, limit=settings.max_body_bytes)
    app.add_middleware(ServeContract, position=MiddlewarePosition.BEFORE_EXCEPTION, document=document)
    app.add_api(
        openapi31.for_connexion(document),
        validator_map=openapi31.VALIDATOR_MAP,
        validate_responses=settings.validate_responses,
        security_map=security.security_map(authenticator),
        # The contract is served by ServeContract, as written: Connexion would serve it with every
        # $ref resolved in place (no schema names, and a recursive schema cannot be written).
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, spec_path="/openapi.json", swagger_ui_path="/docs"),
    )
    app.add_error_handler(errors.ApiError, errors.api_error)
    app.add_error_handler(DatabaseUnavailable, errors.database_unavailable)
    app.add_error_handler(openapi31.RequestValidationFailed, errors.request_validation_failed)
    app.add_error_handler(UnsupportedMediaTypeProblem, errors.unsupported_media_type)
    app.add_error_handler(ProblemException, errors.problem)
    app.add_error_handler(HTTPException, errors.http_error_handler(document))
    app.add_error_handler(Exception, errors.internal_error)
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
        "allow_headers": ["Authorization", "Content-Type", "X-Request-ID"],
        "expose_headers": ["X-Request-ID", "Retry-After", "WWW-Authenticate"],
        # As AgentOS: a browser app may send credentialed requests (auth itself is a header, never a cookie).
        "allow_credentials": True,
        "max_age": 600,
    }


def _lifespan(settings: Settings, authenticator, metrics: Metrics):
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        logger.info("Authentication: %s", authenticator.description)
        databases = _open_databases(settings)
        try:
            await migrate(databases.values())
            yield {"databases": databases, "started_at": time.time(), "metrics": metrics}
        finally:
            for database in databases.values():
                await database.close()

    return lifespan


async def migrate(databases: Iterable[Database]) -> None:
    """Bring each database's tables to the newest migration, logging what changed."""
    for database in databases:
        before, after = await database.migrate()
        if before != after:
            logger.info("Database %r: tables migrated from %s to %s", database.id, before or "nothing", after)


def _open_databases(settings: Settings) -> dict[str, Database]:
    """Every configured database by its db_id, pools and deadline as configured (none connected yet)."""
    options = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "timeout": settings.database_timeout,
        "prepared_statements": settings.prepared_statements,
    }
    return {db_id: open_database(db_id, config, **options) for db_id, config in settings.databases.items()}


async def _migrate_all(settings: Settings) -> None:
    databases = _open_databases(settings).values()
    try:
        await migrate(databases)
    finally:
        for database in databases:
            await database.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentos-sessions`` command."""
    parser = argparse.ArgumentParser(
        prog="agentos-sessions",
        description="Contract-first server for the sessions API of Agno's AgentOS.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (Swagger UI at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7777, help="port to listen on (default 7777)")
    serve.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: $AGENTOS_SESSIONS_DATABASE_URL, "
        "else sqlite:///agno.db in the working directory)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (default 1); on SQLite they share one writer at a time",
    )
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request")
    migrate_command = commands.add_parser(
        "migrate",
        help="create or upgrade the tables (serve does it too); adopts tables agno made as they are",
    )
    migrate_command.add_argument("--database-url", help="SQLAlchemy URL of the database (as for serve)")
    check_command = commands.add_parser(
        "check",
        help="check that openapi.yaml is valid, that each operation's handler takes its parameters, "
        "and that the database's tables are what this release expects (changes nothing)",
    )
    check_command.add_argument("--database-url", help="SQLAlchemy URL of the database (as for serve)")
    check_command.add_argument("--spec", type=Path, default=SPEC_PATH, help=f"the contract (default {SPEC_PATH})")
    args = parser.parse_args(argv)

    # Before serve hands uvicorn its own configuration (observability.logging_config): text on
    # stderr, without Alembic's set-up lines. A no-op where logging is already set up (tests).
    text = logging.StreamHandler()
    text.addFilter(AlembicContextLines())
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=[text])
    if args.command == "serve" and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.database_url:
        # The flag wins over the environment's database(s); the other variables still apply.
        # Set in the environment, where worker processes read their settings too.
        os.environ.pop("AGENTOS_SESSIONS_DATABASES", None)
        os.environ["AGENTOS_SESSIONS_DATABASE_URL"] = args.database_url
    if args.command == "check":
        return _check(args.spec)
    try:
        settings = Settings.from_env()
        # Unusable key material or a missing database driver stops us before we listen.
        security.authenticator(settings.security)
        for database in settings.databases.values():
            check_driver(database)
        # A port we cannot listen on, before the databases are touched.
        if args.command == "serve" and (problem := _listen_problem(args.host, args.port)):
            print(f"agentos-sessions: {problem}", file=sys.stderr)
            return 1
        # Tables this version cannot use stop us too; otherwise they are brought up to date once,
        # here, before any worker process starts.
        asyncio.run(_migrate_all(settings))
    except (SettingsError, SchemaMismatch) as error:
        print(f"agentos-sessions: {error}", file=sys.stderr)
        return 2
    except DatabaseBusy as error:
        print(
            f"agentos-sessions: the database is locked: another process has held its write lock for more "
            f"than {SQLiteDatabase.LOCK_WAIT_SECONDS:g} s ({error.__cause__}); try again once it is done",
            file=sys.stderr,
        )
        return 1
    except (DatabaseUnavailable, OperationalError, OSError) as error:
        cause = error.__cause__ if isinstance(error, DatabaseUnavailable) else error
        print(f"agentos-sessions: cannot reach the database: {getattr(cause, 'orig', None) or cause}", file=sys.stderr)
        return 1
    if args.command == "migrate":
        return 0
    warning = open_access_warning(settings, args.host)
    if warning:
        logger.warning(warning)

    import uvicorn

    options = {
        "host": args.host,
        "port": args.port,
        # asyncio's own event loop, not uvloop: under load uvloop answered some connections
        # late (p99 6-10x p50 against 1.3x, same throughput; README, Performance).
        "loop": "asyncio",
        # Access lines are ours (observability.py, JSON); uvicorn's own are off. The logging
        # configuration goes to uvicorn so that every worker process applies it too.
        "access_log": False,
        "log_config": logging_config(access_log_enabled=not args.no_access_log),
        # uvicorn's httptools protocol, sending each response in one write (server.py).
        "http": OneSendHttpToolsProtocol,
    }
    if args.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    return _serve_workers(args.workers, options)


def _listen_problem(host: str, port: int) -> str | None:
    """Why ``serve`` could not listen on host:port (None: it can), said before anything starts."""
    # "::" is every address, IPv4 ones too, as the server's own sockets bind it.
    dualstack = host == "::" and socket.has_dualstack_ipv6()
    try:
        with socket.create_server((host, port), family=_address_family(host), dualstack_ipv6=dualstack):
            return None
    except socket.gaierror:
        return f"cannot listen on {host!r}: no such address (use an IP address of this machine or a host name)"
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use: stop what listens there or choose another --port"
        if error.errno == errno.EACCES:
            return f"not allowed to listen on port {port} (below 1024 needs privileges): choose another --port"
        if error.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {host}: not an address of this machine"
        return f"cannot listen on {host}:{port}: {error.strerror}"


def _check(spec: Path) -> int:
    """``agentos-sessions check``: print each mismatch; exit 1 if there is any, 2 on bad settings."""
    try:
        settings = Settings.from_env()
        for database in settings.databases.values():
            check_driver(database)
        problems = checks.run(spec, settings.databases)
    except SettingsError as error:
        print(f"agentos-sessions: {error}", file=sys.stderr)
        return 2
    except OperationalError as error:
        print(f"agentos-sessions: cannot reach the database: {error.orig}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"mismatch: {problem}")
    if problems:
        print(f"agentos-sessions check: {len(problems)} mismatch(es)", file=sys.stderr)
        return 1
    print(f"agentos-sessions check: {spec}, its handlers and {len(settings.databases)} database(s) agree")
    return 0


def open_access_warning(settings: Settings, host: str) -> str | None:
    """The warning for a server without authentication on an address others can reach."""
    if settings.security.mode != "none" or _is_loopback(host):
        return None
    return (
        f"NO AUTHENTICATION: listening on {host} with no OS_SECURITY_KEY, JWT_VERIFICATION_KEY or "
        "JWT_JWKS_FILE set, so anyone who can reach this address can read, change and delete every "
        "session. Set one of them (README, Security), or listen on 127.0.0.1."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def _serve_workers(workers: int, options: dict) -> int:
    """uvicorn's supervisor over ``workers`` processes, each accepting on a socket of its own.

    Workers accepting from one shared socket did not share the load: whichever was awake took a
    burst of new connections and kept them (29 of wrk's 32 keep-alive connections on one of two
    workers). Here each worker listens on its own socket bound with SO_REUSEPORT to the same
    address, and the kernel hashes every new connection to one of them. uvicorn's Multiprocess
    still starts the workers, restarts one that dies and handles the signals; each worker builds
    its app from the environment (``create_app()``) and, started again, binds its socket again.
    """
    from uvicorn import Config
    from uvicorn.supervisors import Multiprocess

    config = Config("app:create_app", factory=True, workers=workers, **options)
    try:
        reserved = ReusePortSocket.bound(config.host, config.port)
    except OSError as error:
        print(
            f"agentos-sessions: --workers {workers} cannot listen on {config.host}:{config.port} "
            f"with SO_REUSEPORT: {error.strerror}",
            file=sys.stderr,
        )
        return 1
    with reserved:
        # The line uvicorn's own bind logs; --port 0 says the port the kernel chose.
        host = f"[{config.host}]" if ":" in config.host else config.host
        port = reserved.getsockname()[1]
        logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port)
        Multiprocess(config, sockets=[reserved]).run()
    return 0


class ReusePortSocket(socket.socket):
    """A TCP socket bound with SO_REUSEPORT and never listening, which a worker receives as its own.

    uvicorn's Multiprocess pickles its sockets into each worker it spawns; this one arrives there
    as a new socket bound to the same address, which the worker's server listens on: listening
    puts it in the port's SO_REUSEPORT group, over which the kernel spreads the connections. The
    parent's socket keeps the port ours while workers restart. It must not listen: a listening
    member of the group that nobody accepts on would be dealt its share of the connections, which
    would hang.
    """

    @classmethod
    def bound(cls, host: str, port: int) -> ReusePortSocket:
        return _reuse_port_socket(cls, _address_family(host), (host, port))

    def __reduce__(self):
        return _worker_socket, (self.family, self.getsockname())


def _address_family(host: str) -> socket.AddressFamily:
    """IPv6 for an IPv6 address (it has colons), IPv4 for any other address or host name."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _reuse_port_socket(kind: type[socket.socket], family: int, address: tuple) -> socket.socket:
    """A socket of ``kind`` bound to ``address`` with SO_REUSEPORT (and SO_REUSEADDR, as uvicorn's).

    Its protocol is TCP, not 0 (``socket(family)``, as uvicorn makes its own): asyncio sets
    TCP_NODELAY only on connections of a TCP socket, and without it every response (headers and
    body are two writes) waited ~40 ms for a delayed ACK, capping a worker near 700 requests/s.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError(errno.ENOPROTOOPT, "this system has no SO_REUSEPORT (Linux has)")
    sock = kind(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _worker_socket(family: int, address: tuple) -> socket.socket:
    """In a worker process, as it starts: its own socket beside the parent's (see ReusePortSocket)."""
    from uvicorn.config import STARTUP_FAILURE

    try:
        return _reuse_port_socket(socket.socket, family, address)
    except OSError as error:
        # Before the worker's logging is set up. This exit code stops the supervisor, which
        # would otherwise start the worker again, and again.
        print(f"agentos-sessions: a worker cannot listen on {address}: {error.strerror}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
