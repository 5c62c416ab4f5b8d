"""Settings from the environment (12-factor), overridable in tests."""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class DatabaseSettings:
    """One configured database: where it is and which tables hold sessions and runs."""

    url: str
    session_table: str = DEFAULT_SESSION_TABLE
    runs_table: str | None = None
    # PostgreSQL: the schema holding the tables (agno's db_schema, "ai" unless given).
    db_schema: str | None = None

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


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


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
            unknown = set(value) - {"url", "session_table", "runs_table", "db_schema"}
            if unknown:
                raise SettingsError(f"Database {db_id!r}: unknown keys {sorted(unknown)}")
            databases[db_id] = DatabaseSettings(**value)
        else:
            raise SettingsError(f"Database {db_id!r} must be a URL or an object with a 'url'")
    return databases
