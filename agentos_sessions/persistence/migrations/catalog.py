"""What a revision takes from outside itself: the configured names, and what the database has.

Each revision writes its DDL out in full (columns, types, keys, index names and definitions),
so that what it creates never changes once it is released. Only the names of the two tables
and their schema come from the migration context (``persistence.schema`` puts them there), and
a revision creates only what is missing: tables agno made are adopted as they are. The helpers
here read the catalog, and create the indexes a revision names where they are missing (the
names and columns stay written out in the revision).
"""

from __future__ import annotations

from typing import NamedTuple

from alembic import context, op
from sqlalchemy import Connection, inspect, text


class Names(NamedTuple):
    """The tables being migrated: sessions, runs, and their schema (None on SQLite)."""

    sessions: str
    runs: str
    schema: str | None


def names() -> Names:
    """The names of the tables this migration run is for."""
    return context.config.attributes["names"]


def table_names(db: Connection, schema: str | None) -> set[str]:
    """The tables in ``schema`` (SQLite: the database's)."""
    return set(inspect(db).get_table_names(schema=schema))


def index_names(db: Connection, table: str, schema: str | None = None) -> set[str]:
    """The names of a table's indexes, none if there is no such table.

    On SQLite from sqlite_master: SQLAlchemy's reflection skips indexes on expressions (and
    warns about each), and an index of that name would still be in the way."""
    if db.dialect.name == "sqlite":
        listed = text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL")
        return set(db.execute(listed, {"table": table}).scalars())
    if table not in table_names(db, schema):
        return set()
    return {index["name"] for index in inspect(db).get_indexes(table, schema=schema)}


def create_missing_indexes(table: str, schema: str | None, indexes: list[tuple[str, list[str]]]) -> None:
    """``op.create_index`` for each (name, columns) of ``table`` that it does not have yet."""
    present = index_names(op.get_bind(), table, schema)
    for name, columns in indexes:
        if name not in present:
            op.create_index(name, table, columns, schema=schema)
