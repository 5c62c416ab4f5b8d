"""Agno's sessions and runs tables as this server reads and writes them: SQLAlchemy Core tables.

:func:`models_for` makes the pair for the configured table names (agno's ``session_table`` /
``runs_table``) and, on PostgreSQL, schema (agno's ``db_schema``, ``ai`` unless configured).
They describe the tables at the newest migration: agno 3.1.10's columns in agno's order, its
types (JSON on SQLite, JSONB on PostgreSQL) and indexes, then indexes of ours that agno neither
needs nor minds (:meth:`Models.own_indexes`). The DDL itself is written out in the migrations
(``persistence/migrations/versions``); tests/unit/test_migrations.py checks that a database
migrated to the newest revision is what these tables declare.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, MetaData, String, Table
from sqlalchemy.dialects.postgresql import JSONB

# agno's JSON columns: JSON on SQLite (text), JSONB on PostgreSQL.
AgnoJSON = JSON().with_variant(JSONB(), "postgresql")
# agno's PostgresDb default db_schema.
DEFAULT_PG_SCHEMA = "ai"


# Indexes of ours, not agno's (revision 0002 unless said).
# A page of the session list in its default order (newest first, session_id breaking ties), of
# all sessions or of one user's, comes straight from the index, with an exact count; without
# them SQLite sorts or filters every row of the table for each page.
SESSION_INDEXES = (
    ("created_at", "session_id"),
    ("user_id", "session_type", "created_at", "session_id"),
)
# The list's filters (revision 0003): a component's sessions, newest first, whatever else is
# filtered; the update time; metadata containment (METADATA_INDEX, PostgreSQL only: SQLite has
# no index for JSON, and tests each row the other filters leave). No index on an expression:
# SQLAlchemy, in agno too, warns on every reflection of a SQLite table that has one.
FILTER_INDEXES = (
    *((column, "created_at", "session_id") for column in ("agent_id", "team_id", "workflow_id")),
    ("updated_at", "session_id"),
)
METADATA_INDEX = "metadata_gin"
# A session's runs in agno's order without reading them: created_at comes after run_data in
# agno's column order, so ordering by it from the table reads every run's payload in full.
RUN_INDEXES = (("session_id", "run_index", "created_at", "run_id"),)
# agno's own single-column indexes on the runs table.
_AGNO_RUN_INDEXES = ("agent_id", "created_at", "run_type", "session_id", "status", "team_id", "user_id", "workflow_id")


def index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"idx_{table}_{'_'.join(columns)}"


@dataclass(frozen=True, eq=False)
class Models:
    """The sessions and runs tables for one pair of table names (and schema)."""

    sessions: Table
    runs: Table
    metadata: MetaData

    def own_indexes(self, dialect: str) -> list[Index]:
        """The indexes of ours (not agno's) on the two tables, those ``dialect`` has."""
        sessions = self.sessions.name
        names = {index_name(sessions, columns) for columns in SESSION_INDEXES + FILTER_INDEXES}
        if dialect == "postgresql":
            names.add(f"idx_{sessions}_{METADATA_INDEX}")
        names |= {index_name(self.runs.name, columns) for columns in RUN_INDEXES}
        return [index for table in (self.sessions, self.runs) for index in table.indexes if index.name in names]


@functools.cache
def models_for(session_table: str, runs_table: str, schema: str | None = None) -> Models:
    """The tables with these names, in ``schema`` if given (one ``MetaData`` per pair)."""
    metadata = MetaData(schema=schema)
    sessions = Table(
        session_table,
        metadata,
        Column("session_id", String, primary_key=True),
        Column("session_type", String, nullable=False),
        Column("agent_id", String),
        Column("team_id", String),
        Column("workflow_id", String),
        Column("user_id", String),
        Column("session_data", AgnoJSON),
        Column("agent_data", AgnoJSON),
        Column("team_data", AgnoJSON),
        Column("workflow_data", AgnoJSON),
        Column("metadata", AgnoJSON),
        Column("summary", AgnoJSON),
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger),
        Index(f"idx_{session_table}_session_type", "session_type"),
        Index(f"idx_{session_table}_created_at", "created_at"),
        *(Index(index_name(session_table, columns), *columns) for columns in SESSION_INDEXES + FILTER_INDEXES),
        Index(
            f"idx_{session_table}_{METADATA_INDEX}",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )
    qualified = f"{schema}.{session_table}" if schema else session_table
    runs = Table(
        runs_table,
        metadata,
        Column("run_id", String, primary_key=True),
        # Runs go with their session.
        Column("session_id", String, ForeignKey(f"{qualified}.session_id", ondelete="CASCADE"), nullable=False),
        Column("run_type", String, nullable=False),
        Column("agent_id", String),
        Column("team_id", String),
        Column("workflow_id", String),
        Column("user_id", String),
        Column("parent_run_id", String),
        Column("status", String),
        Column("run_index", BigInteger),
        Column("run_data", AgnoJSON, nullable=False),
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger),
        *(Index(f"idx_{runs_table}_{column}", column) for column in _AGNO_RUN_INDEXES),
        Index(f"idx_{runs_table}_session_id_run_index", "session_id", "run_index"),
        *(Index(index_name(runs_table, columns), *columns) for columns in RUN_INDEXES),
    )
    return Models(sessions=sessions, runs=runs, metadata=metadata)
