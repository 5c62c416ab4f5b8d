"""The ``agentos-sessions`` command: serve, migrate, prune, copy, check.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError
from tqdm import tqdm

from agentos_sessions import checks, security, server
from agentos_sessions.app import create_app
from agentos_sessions.contract.spec import CONTRACT
from agentos_sessions.observability import LOG_FORMAT, AlembicContextLines
from agentos_sessions.persistence import transfer
from agentos_sessions.persistence.database import (
    DatabaseBusy,
    DatabaseUnavailable,
    SQLiteDatabase,
    check_driver,
    migrate,
    open_database,
    open_databases,
    psycopg_url,
    table_schema,
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
from agentos_sessions.settings import DatabaseSettings, MediaStorageSettings, Settings, SettingsError

logger = logging.getLogger("agentos_sessions")
# Seconds a unit of work of `copy` may take (a batch holds up to 8 MB of runs): a database server
# that stops answering stops the copy, which can be run again.
COPY_TIMEOUT = 300.0


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
    if args.command == "copy":
        return _copy(args)
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
    except DatabaseError as error:  # e.g. a file that is not a SQLite database
        print(f"agentos-sessions: cannot use the database: {error.orig}", file=sys.stderr)
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
    copy_command = commands.add_parser(
        "copy",
        help="copy sessions and their runs to another database: new rows added, rows changed more recently "
        "in the source updated, none deleted; run it again to copy what changed since",
    )
    copy_command.add_argument("--from", dest="source", required=True, metavar="URL", help="SQLAlchemy URL to copy from")
    copy_command.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="SQLAlchemy URL to copy to (migrated first)"
    )
    for side in ("from", "to"):
        copy_command.add_argument(
            f"--{side}-schema",
            metavar="SCHEMA",
            help=f"PostgreSQL: the schema of the tables to copy {side} (default: $AGENTOS_SESSIONS_DB_SCHEMA, "
            "else agno's ai)",
        )
    copy_command.add_argument("--type", choices=("agent", "team", "workflow"), help="only sessions of this type")
    copy_command.add_argument("--user-id", help="only this user's sessions")
    copy_command.add_argument("--component-id", help="only the sessions of this agent, team or workflow")
    copy_command.add_argument(
        "--updated-since",
        type=_since,
        metavar="WHEN",
        help="only sessions changed since then (the session, else created, or one of its runs): a date or time "
        "(2026-11-01, 2026-11-01T08:00:00+01:00; UTC unless it says) or an age (7d, 12h)",
    )
    copy_command.add_argument("--batch-size", type=_workers, default=500, help="sessions per transaction (default 500)")
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


# The oldest age: before it, Unix time is negative (and in SQLite's integers, out of reach).
_LONGEST_AGE = 50 * 365 * 86400


def _age(value: str) -> int:
    """An age such as 30d, in seconds."""
    seconds = _seconds_of(value)
    if not seconds:
        raise argparse.ArgumentTypeError(f"must be a number and a unit (s, m, h, d, w), as 30d, not {value!r}")
    if seconds > _LONGEST_AGE:
        raise argparse.ArgumentTypeError(f"must be at most 50 years, not {value!r}")
    return seconds


def _seconds_of(value: str) -> int | None:
    """The seconds a number and a unit say (30d), or None if ``value`` is not one."""
    number, unit = value[:-1], value[-1:]
    if number.isascii() and number.isdigit() and unit in _AGE_UNITS:
        return int(number) * _AGE_UNITS[unit]
    return None


def _since(value: str) -> int:
    """A point in time, in Unix seconds: an ISO 8601 date or time (UTC unless it says), or an age."""
    if _seconds_of(value) is not None:
        return now() - _age(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a date or time (2026-11-01, 2026-11-01T08:00:00Z) or an age (7d), not {value!r}"
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


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


def _copy(args) -> int:
    """``agentos-sessions copy``: exit 0 when every matching row is in the target, the same or more
    recent; 1 when some are not, or a database failed; 2 on bad settings."""
    try:
        source = _copy_side(args.source, args.from_schema, "--from")
        target = _copy_side(args.target, args.to_schema, "--to")
        if _same_tables(source, target):
            raise SettingsError("--from and --to name the same tables")
        problems = transfer.source_problems(source)
        if problems:
            raise SettingsError(f"cannot copy from {_shown(source)}: {'; '.join(problems)}")
        filters = transfer.Filters(args.type, args.user_id, args.component_id, args.updated_since)
        return asyncio.run(_copy_between(source, target, filters, args.batch_size))
    except KeyboardInterrupt:
        print(
            "agentos-sessions copy: interrupted; what was copied stays: run the same command again to finish",
            file=sys.stderr,
        )
        return 130
    except (SettingsError, SchemaMismatch) as error:
        print(f"agentos-sessions: {error}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as error:
        # Checking the source (a server that does not answer, a file that is not SQLite).
        print(f"agentos-sessions: cannot use the database to copy from: {transfer.first_line(error)}", file=sys.stderr)
        return 1
    except transfer.CopyFailed as error:
        print(
            f"agentos-sessions copy: stopped: {error}; what was copied stays: run the same command again to finish",
            file=sys.stderr,
        )
        return 1


async def _copy_between(
    source_settings: DatabaseSettings, target_settings: DatabaseSettings, filters: transfer.Filters, batch_size: int
) -> int:
    source = open_database("source", source_settings, read_only=True, timeout=COPY_TIMEOUT)
    target = open_database("target", target_settings, timeout=COPY_TIMEOUT)
    try:
        await transfer.prepare_target(target)
        sessions, runs = await transfer.count_matching(source, filters)
        print(
            f"agentos-sessions copy: {sessions:,} sessions ({runs:,} runs) to copy from {_shown(source_settings)} "
            f"to {_shown(target_settings)}"
        )
        # A progress bar on a terminal only; tqdm draws on stderr.
        with tqdm(total=sessions, unit=" sessions", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
            runs_done = 0

            def progress(batch_sessions: int, batch_runs: int) -> None:
                nonlocal runs_done
                runs_done += batch_runs
                bar.set_postfix_str(f"{runs_done:,} runs", refresh=False)
                bar.update(batch_sessions)

            report = await transfer.copy_sessions(source, target, filters, batch_size=batch_size, progress=progress)
        print(
            "agentos-sessions copy: copied "
            + " and ".join(
                f"{tally.total:,} {kind} ({tally.new:,} new, {tally.updated:,} updated, {tally.skipped:,} skipped: "
                "the same or more recent in the target)"
                for kind, tally in zip(("sessions", "runs"), (report.sessions, report.runs), strict=True)
            )
        )
        _print_some(
            f"run {run_id!r} not copied: its run_id is session {session_id!r}'s in the target"
            for run_id, session_id in report.foreign_runs.items()
        )
        _print_some(f"session {session_id!r} not copied: {why}" for session_id, why in report.set_aside.items())
        await transfer.analyze_target(target)
        found = await transfer.verify(source, target, filters, batch_size=batch_size)
    finally:
        await source.close()
        await target.close()
    if not found.differences:
        print(
            f"agentos-sessions copy: verified: the target holds the {found.sessions:,} sessions and {found.runs:,} "
            "runs that match in the source, the same or more recent"
        )
        return 0
    print(
        f"agentos-sessions copy: not verified: of the {found.sessions:,} sessions and {found.runs:,} runs that match "
        f"in the source, {found.differences:,} are missing from the target or out of date there",
        file=sys.stderr,
    )
    for kind, keys in (
        ("sessions missing", found.missing_sessions),
        ("sessions out of date", found.stale_sessions),
        ("runs missing", found.missing_runs),
        ("runs out of date", found.stale_runs),
    ):
        if keys:
            print(f"  {kind}, such as: {', '.join(keys)}", file=sys.stderr)
    print(
        "  (rows not copied are named above; rows changed in the source during the copy are copied by running it "
        "again)",
        file=sys.stderr,
    )
    return 1


def _print_some(problems: Iterable[str], shown: int = 5) -> None:
    """The first few problems on stderr, and how many more there are."""
    problems = list(problems)
    for problem in problems[:shown]:
        print(f"agentos-sessions copy: {problem}", file=sys.stderr)
    if len(problems) > shown:
        print(f"agentos-sessions copy: ... and {len(problems) - shown:,} more like these", file=sys.stderr)


def _copy_side(url: str, db_schema: str | None, flag: str) -> DatabaseSettings:
    """The database at ``url``, with the environment's table names and, if given, this schema."""
    (database,) = settings_from(os.environ, url).databases.values()
    check_driver(database)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if db_schema is not None:
            raise SettingsError(f"{flag}-schema: {flag} is a SQLite database, which has no schemas")
        if parsed.database in (None, "", ":memory:"):
            raise SettingsError(f"{flag}: an in-memory SQLite database would be gone when the command ends")
    return database if db_schema is None else replace(database, db_schema=db_schema)


def _same_tables(one: DatabaseSettings, other: DatabaseSettings) -> bool:
    urls = [make_url(settings.url) for settings in (one, other)]
    if all(url.get_backend_name() == "sqlite" for url in urls):
        files = [Path(url.database).resolve() for url in urls if url.database not in (None, "", ":memory:")]
        same_place = len(files) == 2 and files[0] == files[1]
    else:
        same_place = psycopg_url(urls[0]).set(password=None) == psycopg_url(urls[1]).set(password=None) and (
            table_schema(one) == table_schema(other)
        )
    return same_place and one.session_table == other.session_table


def _shown(settings: DatabaseSettings) -> str:
    return make_url(settings.url).render_as_string(hide_password=True)


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
