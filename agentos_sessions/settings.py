"""Settings from the environment (12-factor), overridable in tests."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///agno.db"
DEFAULT_SESSION_TABLE = "agno_sessions"
DEFAULT_RUNS_TABLE = "agno_runs"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")


class SettingsError(ValueError):
    """The configuration cannot be used; the message says which variable and why."""


def agno_db_id(url: str) -> str:
    """The id agno gives a database built from ``url`` without an explicit id (a UUID5)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, url))


# agno's media storage defaults (agno.media.storage): the key prefix and a signed URL's lifetime.
DEFAULT_MEDIA_PREFIX = "agno/media/"
DEFAULT_URL_EXPIRY = 3600
# SigV4 and GCS V4 sign for at most seven days.
MAX_URL_EXPIRY = 7 * 24 * 3600

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")
_MEDIA_OPTIONS = {
    "local": set(),
    "s3": {"prefix", "region", "endpoint_url", "acl", "presigned_url_expiry"},
    "gcs": {"prefix", "project", "credentials_path", "public", "presigned_url_expiry"},
}


@dataclass(frozen=True)
class MediaStorageSettings:
    """Where agno's media storage keeps offloaded run media: the backend agno's agents were
    given (``LocalMediaStorage``, ``S3MediaStorage``, ``GCSMediaStorage``), with the same values.

    Written as one URL (docs/configuration.md): ``file:///srv/media`` (or a plain path),
    ``s3://bucket?region=eu-west-1&endpoint_url=http://minio:9000``, ``gs://bucket?project=p``;
    the query's names are agno's constructor arguments.
    """

    backend: str
    # The local directory, or the bucket.
    location: str
    # S3 and GCS: the prefix agno writes keys under; only keys under it are served or deleted.
    prefix: str = DEFAULT_MEDIA_PREFIX
    region: str | None = None
    endpoint_url: str | None = None
    # S3: "public-read" makes redirect=true give the object's public URL instead of a signed one.
    acl: str | None = None
    # GCS: the project, a service-account JSON file (needed to sign URLs), public URLs.
    project: str | None = None
    credentials_path: str | None = None
    public: bool = False
    presigned_url_expiry: int = DEFAULT_URL_EXPIRY

    @functools.cached_property
    def bucket(self) -> str:
        """What agno records as a reference's ``bucket``: the bucket, or the local directory's
        absolute path (``LocalMediaStorage`` resolves it), resolved once."""
        return str(Path(self.location).resolve()) if self.backend == "local" else self.location

    @classmethod
    def from_url(cls, value: str, *, source: str) -> MediaStorageSettings:
        """Parse a media storage URL; ``source`` names the variable or flag in messages."""
        value = value.strip()
        if not value:
            raise SettingsError(f"{source}: empty; unset it for no media storage")
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme in ("", "file"):
            path = value
            if not scheme and ("?" in value or "#" in value):
                raise SettingsError(f"{source}: a local directory takes no options: {value!r}")
            if scheme:
                parts = urlsplit(value)
                if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or not parts.path:
                    raise SettingsError(
                        f"{source}: a file URL names a directory of this machine, as file:///srv/media: {value!r}"
                    )
                path = unquote(parts.path)
            # agno's LocalMediaStorage writes its keys bare, under no prefix.
            return cls(backend="local", location=path, prefix="")
        backends = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}
        if scheme not in backends:
            raise SettingsError(
                f"{source}: {scheme}:// is not a media storage; use file:///path, s3://bucket or gs://bucket"
            )
        backend = backends[scheme]
        parts = urlsplit(value)
        if parts.path not in ("", "/") or parts.fragment or "@" in parts.netloc:
            raise SettingsError(
                f"{source}: give the bucket alone and the rest as query options "
                f"(prefix=..., as agno's arguments): {value!r}"
            )
        if not _BUCKET.fullmatch(parts.netloc):
            raise SettingsError(f"{source}: {parts.netloc!r} is not a bucket name")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        options = dict(pairs)
        if len(options) < len(pairs):
            repeated = sorted({name for name, _ in pairs if [n for n, _ in pairs].count(name) > 1})
            raise SettingsError(f"{source}: options given more than once: {repeated}")
        unknown = set(options) - _MEDIA_OPTIONS[backend]
        if unknown:
            raise SettingsError(
                f"{source}: unknown options {sorted(unknown)} for {scheme}://; "
                f"known: {', '.join(sorted(_MEDIA_OPTIONS[backend]))}"
            )
        settings = {name: value for name, value in options.items() if name not in ("public", "presigned_url_expiry")}
        for name in ("region", "endpoint_url", "acl", "project", "credentials_path"):
            if settings.get(name) == "":
                del settings[name]
        if "public" in options:
            settings["public"] = _flag(options, "public", default=False, source=source)
        if "presigned_url_expiry" in options:
            expiry = options["presigned_url_expiry"]
            if not expiry.isdigit() or not 1 <= int(expiry) <= MAX_URL_EXPIRY:
                raise SettingsError(
                    f"{source}: presigned_url_expiry must be 1 to {MAX_URL_EXPIRY} seconds, not {expiry!r}"
                )
            settings["presigned_url_expiry"] = int(expiry)
        endpoint = settings.get("endpoint_url")
        if endpoint is not None and not re.fullmatch(r"https?://[^/?#\s]+/?", endpoint):
            raise SettingsError(f"{source}: endpoint_url must be http(s)://host[:port], not {endpoint!r}")
        return cls(backend=backend, location=parts.netloc, **settings)


@dataclass(frozen=True)
class DatabaseSettings:
    """One configured database: where it is and which tables hold sessions and runs."""

    url: str
    session_table: str = DEFAULT_SESSION_TABLE
    runs_table: str | None = None
    # PostgreSQL: the schema holding the tables (agno's db_schema, "ai" unless given).
    db_schema: str | None = None
    # This database's media storage, instead of Settings.media_storage.
    media_storage: MediaStorageSettings | None = None

    def __post_init__(self) -> None:
        if self.runs_table is None:
            # agno's naming: the runs of a custom sessions table live in "<table>_runs".
            runs = DEFAULT_RUNS_TABLE if self.session_table == DEFAULT_SESSION_TABLE else f"{self.session_table}_runs"
            object.__setattr__(self, "runs_table", runs)
        for name in (self.session_table, self.runs_table):
            if not _IDENTIFIER.match(name):
                raise SettingsError(f"Table name {name!r} is not a plain SQL identifier")
        if self.db_schema is not None and not _IDENTIFIER.match(self.db_schema):
            raise SettingsError(f"Schema name {self.db_schema!r} is not a plain SQL identifier")


@dataclass(frozen=True)
class SecuritySettings:
    """Who may call, chosen by environment as AgentOS does: JWT when a verification key or JWKS
    file is set, else the security key when set, else open (docs/security.md)."""

    security_key: str | None = None
    jwt_verification_key: str | None = None
    jwt_jwks_file: str | None = None
    # Accepted ``aud`` values; when empty, ``aud`` is not checked.
    jwt_audience: tuple[str, ...] = ()
    user_isolation: bool = False
    # Browser origins allowed to call (CORS); none means no CORS headers at all.
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.user_isolation and self.mode != "jwt":
            raise SettingsError(
                "AGENTOS_USER_ISOLATION needs JWT mode (JWT_VERIFICATION_KEY or JWT_JWKS_FILE): "
                "without tokens there is no user to isolate"
            )
        if "*" in self.cors_origins:
            raise SettingsError("CORS_ORIGIN_LIST: list the origins allowed to call; '*' is not accepted")
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                # A browser sends scheme://host[:port] and nothing else: anything more never matches.
                raise SettingsError(f"CORS_ORIGIN_LIST: {origin!r} is not an origin (scheme://host[:port], no path)")

    @property
    def mode(self) -> str:
        """``jwt``, ``security_key`` or ``none``."""
        if self.jwt_verification_key or self.jwt_jwks_file:
            return "jwt"
        return "security_key" if self.security_key else "none"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecuritySettings:
        return cls(
            security_key=env.get("OS_SECURITY_KEY") or None,
            jwt_verification_key=env.get("JWT_VERIFICATION_KEY") or None,
            jwt_jwks_file=env.get("JWT_JWKS_FILE") or None,
            jwt_audience=_list(env.get("JWT_AUDIENCE", "")),
            user_isolation=_flag(env, "AGENTOS_USER_ISOLATION", default=False),
            cors_origins=_origins(env.get("CORS_ORIGIN_LIST", "")),
        )


@dataclass(frozen=True)
class Settings:
    """Everything create_app needs; build with :meth:`from_env` or directly in tests."""

    databases: Mapping[str, DatabaseSettings] = field(
        default_factory=lambda: {agno_db_id(DEFAULT_DATABASE_URL): DatabaseSettings(DEFAULT_DATABASE_URL)}
    )
    validate_responses: bool = True
    # Larger request bodies are answered 413 before they are read (no body here needs more).
    max_body_bytes: int = 1_048_576
    # PostgreSQL connections each server process keeps, and may open beyond them under load.
    pool_size: int = 5
    max_overflow: int = 0
    # Seconds one unit of work may take on a database server (PostgreSQL) before the request is
    # answered 503: a server that stops answering must not hold requests for ever.
    database_timeout: float = 10.0
    # PostgreSQL: let psycopg prepare the statements a connection runs often. Off by default: a
    # pooler in transaction mode (PgBouncer without max_prepared_statements) runs each
    # transaction on any server connection, where another client may have prepared a statement
    # under the same name.
    prepared_statements: bool = False
    security: SecuritySettings = field(default_factory=SecuritySettings)
    # The id GET /config gives this OS; None: derived from the databases' ids, so that every
    # worker, and the same configuration after a restart, gives the same one.
    os_id: str | None = None
    # Where the runs' offloaded media are, for the databases that name none of their own.
    media_storage: MediaStorageSettings | None = None

    def media_storage_of(self, db_id: str) -> MediaStorageSettings | None:
        """The media storage of a database: its own, else the one for all, else None."""
        return self.databases[db_id].media_storage or self.media_storage

    def __post_init__(self) -> None:
        if not self.databases:
            raise SettingsError("At least one database must be configured")
        if self.os_id is None:
            object.__setattr__(
                self,
                "os_id",
                str(uuid.uuid5(uuid.NAMESPACE_DNS, "agentos-sessions:" + ",".join(sorted(self.databases)))),
            )
        if self.max_body_bytes < 1:
            raise SettingsError("The request body limit must be at least 1 byte")
        if not self.database_timeout > 0:
            raise SettingsError("The database timeout must be a positive number of seconds")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read AGENTOS_SESSIONS_* variables (docs/configuration.md lists them)."""
        env = os.environ if environ is None else environ
        common = {
            "validate_responses": _flag(env, "AGENTOS_SESSIONS_VALIDATE_RESPONSES", default=True),
            "max_body_bytes": _positive_int(env, "AGENTOS_SESSIONS_MAX_BODY_BYTES", default=1_048_576),
            "pool_size": _positive_int(env, "AGENTOS_SESSIONS_POOL_SIZE", default=5),
            "max_overflow": _whole_number(env, "AGENTOS_SESSIONS_MAX_OVERFLOW", default=0),
            "database_timeout": _seconds(env, "AGENTOS_SESSIONS_DATABASE_TIMEOUT", default=10.0),
            "prepared_statements": _flag(env, "AGENTOS_SESSIONS_PREPARED_STATEMENTS", default=False),
            "security": SecuritySettings.from_env(env),
            "os_id": env.get("AGENTOS_SESSIONS_OS_ID") or None,
            "media_storage": _media_storage(env, "AGENTOS_SESSIONS_MEDIA_STORAGE"),
        }
        raw = env.get("AGENTOS_SESSIONS_DATABASES")
        if raw:
            return cls(databases=_parse_databases(raw), **common)
        url = env.get("AGENTOS_SESSIONS_DATABASE_URL", DEFAULT_DATABASE_URL)
        database = DatabaseSettings(
            url,
            session_table=env.get("AGENTOS_SESSIONS_SESSION_TABLE", DEFAULT_SESSION_TABLE),
            runs_table=env.get("AGENTOS_SESSIONS_RUNS_TABLE") or None,
            db_schema=env.get("AGENTOS_SESSIONS_DB_SCHEMA") or None,
        )
        db_id = env.get("AGENTOS_SESSIONS_DB_ID") or agno_db_id(url)
        return cls(databases={db_id: database}, **common)


def _flag(env: Mapping[str, str], name: str, *, default: bool, source: str | None = None) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{source + ': ' if source else ''}{name} must be true or false, not {value!r}")


def _media_storage(env: Mapping[str, str], name: str) -> MediaStorageSettings | None:
    value = env.get(name)
    return MediaStorageSettings.from_url(value, source=name) if value else None


def _positive_int(env: Mapping[str, str], name: str, *, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


def _seconds(env: Mapping[str, str], name: str, *, default: float) -> float:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise SettingsError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _origins(value: str) -> tuple[str, ...]:
    """CORS_ORIGIN_LIST: a JSON list of origins, as AgentOS reads it, or a comma-separated list."""
    if not value.strip().startswith("["):
        return _list(value)
    try:
        origins = json.loads(value)
    except json.JSONDecodeError as error:
        raise SettingsError(f"CORS_ORIGIN_LIST is not valid JSON: {error}") from error
    if not isinstance(origins, list) or not all(isinstance(origin, str) for origin in origins):
        raise SettingsError("CORS_ORIGIN_LIST must be a JSON list of origins")
    return tuple(origin.strip() for origin in origins if origin.strip())


def _whole_number(env: Mapping[str, str], name: str, *, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise SettingsError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def _parse_databases(raw: str) -> dict[str, DatabaseSettings]:
    """Parse AGENTOS_SESSIONS_DATABASES: a JSON object of db_id -> URL or {url, session_table, ...}."""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SettingsError(f"AGENTOS_SESSIONS_DATABASES is not valid JSON: {error}") from error
    if not isinstance(parsed, dict) or not parsed:
        raise SettingsError("AGENTOS_SESSIONS_DATABASES must be a non-empty JSON object")
    databases = {}
    for db_id, value in parsed.items():
        if isinstance(value, str):
            databases[db_id] = DatabaseSettings(value)
        elif isinstance(value, dict) and isinstance(value.get("url"), str):
            unknown = set(value) - {"url", "session_table", "runs_table", "db_schema", "media_storage"}
            if unknown:
                raise SettingsError(f"Database {db_id!r}: unknown keys {sorted(unknown)}")
            media = value.get("media_storage")
            if media is not None and not isinstance(media, str):
                raise SettingsError(f"Database {db_id!r}: media_storage must be a URL string")
            if media is not None:
                value = {**value, "media_storage": MediaStorageSettings.from_url(media, source=f"Database {db_id!r}")}
            databases[db_id] = DatabaseSettings(**value)
        else:
            raise SettingsError(f"Database {db_id!r} must be a URL or an object with a 'url'")
    return databases
