"""The ``agentos-sessions`` command: serve, migrate, check.

Exit codes: 0 done; 1 the environment stopped us (a port in use, a database that cannot be
reached or is locked, a mismatch found by ``check``); 2 the configuration is wrong (a bad flag,
a variable, a database URL, tables this release cannot use).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import OperationalError

from agentos_sessions import checks, security, server
from agentos_sessions.app import create_app
from agentos_sessions.contract.spec import CONTRACT
from agentos_sessions.observability import LOG_FORMAT, AlembicContextLines
from agentos_sessions.persistence.database import (
    DatabaseBusy,
    DatabaseUnavailable,
    SQLiteDatabase,
    check_driver,
    migrate,
    open_databases,
)
from agentos_sessions.persistence.media import MediaUnavailable, check_library, open_media_storages
from agentos_sessions.persistence.schema import SchemaMismatch
from agentos_sessions.persistence.store import (
    count_runs,
    count_stale,
    delete_sessions_by_id,
    media_keys,
    now,
    stale_sessions,
)
from agentos_sessions.settings import MediaStorageSettings, Settings, SettingsError

logger = logging.getLogger("agentos_sessions")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentos-sessions`` command."""
    args = _parser().parse_args(argv)
    # Before serve hands uvicorn its own configuration (observability.logging_config): text on
    # stderr, without Alembic's set-up lines. A no-op where logging is already set up (tests).
    text = logging.StreamHandler()
    text.addFilter(AlembicContextLines())
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=[text])
    if args.command == "check":
        return _check(args.spec, args.database_url)
    try:
        settings = settings_from(os.environ, args.database_url, getattr(args, "media_storage", None))
        if args.command == "prune" and args.delete_media:
            missing = [db_id for db_id in settings.databases if settings.media_storage_of(db_id) is None]
            if missing:
                raise SettingsError(
                    f"--delete-media: no media storage is configured for {', '.join(map(repr, missing))} "
                    "(AGENTOS_SESSIONS_MEDIA_STORAGE, or media_storage in AGENTOS_SESSIONS_DATABASES)"
                )
        # Unusable key material or a missing database driver or storage library stops us before we listen.
        security.authenticator(settings.security)
        for db_id, database in settings.databases.items():
            check_driver(database)
            wants_media = args.command == "serve" or (args.command == "prune" and args.delete_media)
            if wants_media and (media := settings.media_storage_of(db_id)):
                check_library(media)
        # A port we cannot listen on, before the databases are touched.
        if args.command == "serve" and (problem := server.listen_problem(args.host, args.port)):
            print(f"agentos-sessions: {problem}", file=sys.stderr)
            return 1
        # A media storage that cannot be read too.
        if args.command == "serve" or (args.command == "prune" and args.delete_media):
            _probe_media_storages(settings)
        # Tables this version cannot use stop us too; otherwise they are brought up to date once,
        # here, before any worker process starts.
        migrated = asyncio.run(_migrate_all(settings))
    except (SettingsError, SchemaMismatch) as error:
        print(f"agentos-sessions: {error}", file=sys.stderr)
        return 2
    except MediaUnavailable as error:
        print(f"agentos-sessions: cannot use the media storage: {error}", file=sys.stderr)
        return 1
    except DatabaseBusy as error:
        print(
            f"agentos-sessions: the database is locked: another process has held its write lock for more "
            f"than {SQLiteDatabase.LOCK_WAIT_SECONDS:g} s ({error.__cause__}); try again once it is done",
            file=sys.stderr,
        )
        return 1
    except (DatabaseUnavailable, OperationalError, OSError) as error:
        cause = error.__cause__ if isinstance(error, DatabaseUnavailable) and error.__cause__ else error
        print(f"agentos-sessions: cannot reach the database: {getattr(cause, 'orig', None) or cause}", file=sys.stderr)
        return 1
    if args.command == "prune":
        return asyncio.run(_prune(settings, args))
    if args.command == "migrate":
        for db_id, (before, after) in migrated.items():
            if before == after:
                print(f"agentos-sessions migrate: database {db_id!r} is up to date (revision {after})")
        return 0
    warning = open_access_warning(settings, args.host)
    if warning:
        logger.warning(warning)
    return server.serve(
        functools.partial(create_app, settings),
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=not args.no_access_log,
    )


def settings_from(environ: Mapping[str, str], database_url: str | None, media_storage: str | None = None) -> Settings:
    """The settings of the environment, with ``--database-url`` (when given) as the one database:
    the flag wins over the environment's database(s); the other variables still apply.
    ``--media-storage`` (when given) is the media storage of every database."""
    if database_url:
        environ = {
            **{name: value for name, value in environ.items() if name != "AGENTOS_SESSIONS_DATABASES"},
            "AGENTOS_SESSIONS_DATABASE_URL": database_url,
        }
    settings = Settings.from_env(environ)
    if media_storage is not None:
        media = MediaStorageSettings.from_url(media_storage, source="--media-storage")
        databases = {db_id: replace(database, media_storage=None) for db_id, database in settings.databases.items()}
        settings = replace(settings, databases=databases, media_storage=media)
    return settings


def _probe_media_storages(settings: Settings) -> None:
    """Read each configured media storage once (raises MediaUnavailable with the reason)."""
    probed = set()
    for storage in open_media_storages(settings).values():
        if storage is not None and storage.settings not in probed:
            storage.probe()
            probed.add(storage.settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentos-sessions",
        description="Contract-first server for the sessions API of Agno's AgentOS.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (Swagger UI at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=7777, help="port to listen on, 0-65535 (default 7777)")
    serve.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: $AGENTOS_SESSIONS_DATABASE_URL, "
        "else sqlite:///agno.db in the working directory)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="server processes sharing the port (default 1); on SQLite they share one writer at a time",
    )
    serve.add_argument(
        "--media-storage",
        metavar="URL",
        help="where agno offloaded the runs' media, for every database: file:///dir, s3://bucket?region=... "
        "or gs://bucket (default: $AGENTOS_SESSIONS_MEDIA_STORAGE; none: media requests are a 503)",
    )
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request")
    migrate_command = commands.add_parser(
        "migrate",
        help="create or upgrade the tables (serve does it too); adopts tables agno made as they are",
    )
    migrate_command.add_argument("--database-url", help="SQLAlchemy URL of the database (as for serve)")
    prune_command = commands.add_parser(
        "prune",
        help="delete the sessions (and their runs) not updated for a while, in batches, while servers run",
    )
    prune_command.add_argument(
        "--older-than",
        type=_age,
        required=True,
        metavar="AGE",
        help="sessions last updated (else created) longer ago than this: 30d, 12h, 90m, 3600s, 2w",
    )
    prune_command.add_argument("--database-url", help="SQLAlchemy URL of the database (as for serve)")
    prune_command.add_argument("--type", choices=("agent", "team", "workflow"), help="only sessions of this type")
    prune_command.add_argument("--user-id", help="only this user's sessions")
    prune_command.add_argument("--component-id", help="only the sessions of this agent, team or workflow")
    prune_command.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    prune_command.add_argument(
        "--delete-media", action="store_true", help="also delete the media their runs offloaded (needs a media storage)"
    )
    prune_command.add_argument(
        "--batch-size", type=_workers, default=500, help="sessions per transaction (default 500)"
    )
    check_command = commands.add_parser(
        "check",
        help="check that openapi.yaml is valid, that each operation has a handler that takes its parameters, "
        "and that the database's tables are what this release expects (changes nothing)",
    )
    check_command.add_argument("--database-url", help="SQLAlchemy URL of the database (as for serve)")
    check_command.add_argument(
        "--spec", type=Path, default=None, help="the contract to check (default: the one this server serves)"
    )
    return parser


def _port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {value!r}")
    return int(value)


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _age(value: str) -> int:
    """An age such as 30d, in seconds."""
    number, unit = value[:-1], value[-1:]
    if not (number.isascii() and number.isdigit() and unit in _AGE_UNITS) or int(number) < 1:
        raise argparse.ArgumentTypeError(f"must be a number and a unit (s, m, h, d, w), as 30d, not {value!r}")
    return int(number) * _AGE_UNITS[unit]


def _workers(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value!r}")
    return int(value)


async def _migrate_all(settings: Settings) -> dict[str, tuple[str | None, str]]:
    """Bring every database's tables to the newest migration: (revision before, after) by db_id."""
    databases = open_databases(settings)
    try:
        return await migrate(databases.values())
    finally:
        for database in databases.values():
            await database.close()


async def _prune(settings: Settings, args) -> int:
    """``agentos-sessions prune``: each database's stale sessions deleted ``--batch-size`` at a time,
    one transaction each, so that the writers of running servers wait for one batch at most."""
    cutoff = now() - args.older_than
    filters = {"session_type": args.type, "user_id": args.user_id, "component_id": args.component_id}
    storages = open_media_storages(settings) if args.delete_media else {}
    databases = open_databases(settings)
    try:
        for db_id, database in databases.items():
            if args.dry_run:
                sessions, runs = await database.run(count_stale, cutoff, **filters)
                print(f"agentos-sessions prune: database {db_id!r}: would delete {sessions} sessions ({runs} runs)")
                continue
            storage = storages.get(db_id)
            sessions = runs = objects = 0
            while True:
                deleted, deleted_runs, keys = await database.run(
                    _prune_batch, cutoff, filters, args.batch_size, storage and storage.settings, write=True
                )
                if keys:
                    objects += await asyncio.to_thread(storage.delete, keys)
                sessions, runs = sessions + deleted, runs + deleted_runs
                if deleted < args.batch_size:
                    break
                # Room for other writers between batches.
                await asyncio.sleep(0.01)
            media = f", {objects} media objects" if args.delete_media else ""
            print(f"agentos-sessions prune: database {db_id!r}: deleted {sessions} sessions ({runs} runs{media})")
    finally:
        for database in databases.values():
            await database.close()
    return 0


def _prune_batch(db, m, cutoff, filters, batch_size, media):
    """One batch: the oldest stale sessions deleted with their runs; (sessions, runs, media keys)."""
    session_ids = stale_sessions(db, m, cutoff, limit=batch_size, **filters)
    runs = count_runs(db, m, session_ids)
    keys = media_keys(db, m, session_ids, media) if media is not None else []
    delete_sessions_by_id(db, m, session_ids)
    return len(session_ids), runs, keys


def _check(spec: Path | None, database_url: str | None) -> int:
    """``agentos-sessions check``: print each mismatch; exit 1 if there is any, 2 on bad settings."""
    try:
        settings = settings_from(os.environ, database_url)
        for database in settings.databases.values():
            check_driver(database)
        problems = checks.run(spec or CONTRACT, settings.databases)
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
    print(f"agentos-sessions check: {spec or CONTRACT}, its handlers and {len(settings.databases)} database(s) agree")
    return 0


def open_access_warning(settings: Settings, host: str) -> str | None:
    """The warning for a server without authentication on an address others can reach."""
    if settings.security.mode != "none" or _is_loopback(host):
        return None
    return (
        f"NO AUTHENTICATION: listening on {host} with no OS_SECURITY_KEY, JWT_VERIFICATION_KEY or "
        "JWT_JWKS_FILE set, so anyone who can reach this address can read, change and delete every "
        "session. Set one of them (see the security docs), or listen on 127.0.0.1."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


if __name__ == "__main__":
    sys.exit(main())
