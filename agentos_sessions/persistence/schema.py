"""The tables' schema, brought up to date by the Alembic migrations in ``persistence/migrations/``.

Each revision writes its own DDL out in full and is given only the names of the tables and
their schema. Each configured pair of sessions/runs tables has its own Alembic version table,
``agentos_<sessions table>_version``, beside the tables (in their schema on PostgreSQL).
Migrating creates only what is missing: tables agno created are adopted as they are, their
rows untouched. A database that holds these tables without columns this server needs, or that
a newer release has migrated, is refused with a message instead of failing request by request.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Index, inspect, text
from sqlalchemy.schema import CreateSchema

from agentos_sessions.persistence.migrations.catalog import Names, index_names
from agentos_sessions.persistence.models import Models

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Serialises migrations of several server processes starting at once (PostgreSQL).
_ADVISORY_LOCK = 0x6167_6E6F_5345_5353  # "agnoSESS"


class SchemaMismatch(Exception):
    """The database holds tables this server cannot use as they are; the message says why."""


def version_table(m: Models) -> str:
    return f"agentos_{m.sessions.name}_version"


def _config(db: Connection | None = None, m: Models | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if m is not None:
        names = Names(m.sessions.name, m.runs.name, m.sessions.schema)
        config.attributes.update(connection=db, names=names, version_table=version_table(m))
    return config


def head() -> str:
    """The newest revision this version migrates to."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(db: Connection, m: Models) -> str | None:
    options = {"version_table": version_table(m), "version_table_schema": m.sessions.schema}
    return MigrationContext.configure(db, opts=options).get_current_revision()


def upgrade(db: Connection, m: Models, revision: str = "head") -> tuple[str | None, str]:
    """Check the tables, then migrate them to ``revision`` (the newest unless given); (revision
    before, after)."""
    if db.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    problems = mismatches(db, m)
    if problems:
        raise SchemaMismatch(f"Tables {m.sessions.fullname}/{m.runs.fullname} cannot be used: " + "; ".join(problems))
    if m.sessions.schema is not None:
        # Alembic's version table goes into it before the first migration runs.
        db.execute(CreateSchema(m.sessions.schema, if_not_exists=True))
    config = _config(db, m)
    before = current_revision(db, m)
    if before is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(before)
        except CommandError as error:
            raise SchemaMismatch(
                f"Tables {m.sessions.fullname}/{m.runs.fullname} are at migration {before!r}, which this version "
                f"does not know (its newest is {head()!r}): a newer agentos-sessions migrated them"
            ) from error
    command.upgrade(config, revision)
    return before, current_revision(db, m)


def mismatches(db: Connection, m: Models) -> list[str]:
    """What stops the existing tables from being used: columns this server reads or writes."""
    inspector = inspect(db)
    existing = set(inspector.get_table_names(schema=m.sessions.schema))
    problems = []
    for table in (m.sessions, m.runs):
        if table.name not in existing:
            continue
        present = {column["name"] for column in inspector.get_columns(table.name, schema=table.schema)}
        missing = [column.name for column in table.columns if column.name not in present]
        if missing:
            problems.append(f"{table.name} has no column {', '.join(missing)}")
    return problems


def differences(db: Connection, m: Models) -> list[str]:
    """How the database differs from what this release serves; changes nothing (``check``)."""
    existing = set(inspect(db).get_table_names(schema=m.sessions.schema))
    absent = [table.name for table in (m.sessions, m.runs) if table.name not in existing]
    if absent:
        return [f"no table {', '.join(absent)} (agentos-sessions migrate creates it)"]
    problems = mismatches(db, m)
    revision = current_revision(db, m) if version_table(m) in existing else None
    if revision != head():
        problems.append(f"tables at migration {revision or 'none'}, this release's newest is {head()} (run migrate)")
    missing = sorted(index.name for index in missing_own_indexes(db, m))
    if missing:
        problems.append(f"no index {', '.join(missing)} (run migrate)")
    return problems


def missing_own_indexes(db: Connection, m: Models) -> list[Index]:
    """Our indexes (those of this database's dialect) that the two tables do not have."""
    present = index_names(db, m.sessions.name, m.sessions.schema) | index_names(db, m.runs.name, m.runs.schema)
    return [index for index in m.own_indexes(db.dialect.name) if index.name not in present]
