"""Typed models of Agno's session storage, exactly as agno 3.1.10's SqliteDb and PostgresDb create it.

Column order, types, nullability and index names match agno's DDL, so that a database either
side creates is the other side's database too. On PostgreSQL the JSON columns are JSONB and the
tables live in a schema (agno's ``db_schema``, ``ai`` unless configured). Three indexes of ours come on top (see
:data:`SESSION_INDEXES` and :data:`RUN_INDEXES`); agno neither needs nor minds them. Table
names are configurable (agno's ``session_table`` / ``runs_table``); :func:`models_for` maps a
pair of names to model classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, MetaData, String, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

JsonValue = Any
# agno's JSON columns: JSON on SQLite (text), JSONB on PostgreSQL.
AgnoJSON = JSON().with_variant(JSONB(), "postgresql")
# agno's PostgresDb default db_schema.
DEFAULT_PG_SCHEMA = "ai"


# Indexes of ours, not agno's.
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


def index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"idx_{table}_{'_'.join(columns)}"


class SessionColumns:
    """Columns of agno's sessions table, in agno's order."""

    session_id: Mapped[str] = mapped_column(String, primary_key=True)
    session_type: Mapped[str] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String)
    team_id: Mapped[str | None] = mapped_column(String)
    workflow_id: Mapped[str | None] = mapped_column(String)
    user_id: Mapped[str | None] = mapped_column(String)
    session_data: Mapped[JsonValue | None] = mapped_column(AgnoJSON)
    agent_data: Mapped[JsonValue | None] = mapped_column(AgnoJSON)
    team_data: Mapped[JsonValue | None] = mapped_column(AgnoJSON)
    workflow_data: Mapped[JsonValue | None] = mapped_column(AgnoJSON)
    metadata_: Mapped[JsonValue | None] = mapped_column("metadata", AgnoJSON)
    summary: Mapped[JsonValue | None] = mapped_column(AgnoJSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int | None] = mapped_column(BigInteger)

    @declared_attr.directive
    def __table_args__(cls):
        name = cls.__tablename__
        return (
            Index(f"idx_{name}_session_type", "session_type"),
            Index(f"idx_{name}_created_at", "created_at"),
            *(Index(index_name(name, columns), *columns) for columns in SESSION_INDEXES + FILTER_INDEXES),
            Index(
                f"idx_{name}_{METADATA_INDEX}",
                "metadata",
                postgresql_using="gin",
                postgresql_ops={"metadata": "jsonb_path_ops"},
            ).ddl_if(dialect="postgresql"),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session_id!r} {self.session_type} user={self.user_id!r}>"


class RunColumns:
    """Columns of agno's runs table, in agno's order; runs go with their session (ON DELETE CASCADE)."""

    __sessions_table__: str
    __schema__: str | None

    # sort_order keeps agno's column order: the declared_attr column would otherwise come last.
    run_id: Mapped[str] = mapped_column(String, primary_key=True, sort_order=-2)

    @declared_attr
    def session_id(cls) -> Mapped[str]:
        return mapped_column(
            String,
            ForeignKey(f"{_qualified(cls.__schema__, cls.__sessions_table__)}.session_id", ondelete="CASCADE"),
            sort_order=-1,
        )

    run_type: Mapped[str] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String)
    team_id: Mapped[str | None] = mapped_column(String)
    workflow_id: Mapped[str | None] = mapped_column(String)
    user_id: Mapped[str | None] = mapped_column(String)
    parent_run_id: Mapped[str | None] = mapped_column(String)
    status: Mapped[str | None] = mapped_column(String)
    run_index: Mapped[int | None] = mapped_column(BigInteger)
    run_data: Mapped[JsonValue] = mapped_column(AgnoJSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int | None] = mapped_column(BigInteger)

    @declared_attr.directive
    def __table_args__(cls):
        name = cls.__tablename__
        indexed = ("agent_id", "created_at", "run_type", "session_id", "status", "team_id", "user_id", "workflow_id")
        return (
            *(Index(f"idx_{name}_{column}", column) for column in indexed),
            Index(f"idx_{name}_session_id_run_index", "session_id", "run_index"),
            *(Index(index_name(name, columns), *columns) for columns in RUN_INDEXES),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.run_id!r} of {self.session_id!r} #{self.run_index}>"


@dataclass(frozen=True)
class Models:
    """The mapped classes for one pair of sessions/runs table names."""

    Session: type[SessionColumns]
    Run: type[RunColumns]
    base: type[DeclarativeBase]

    @property
    def sessions(self) -> Table:
        return self.Session.__table__  # type: ignore[attr-defined]

    @property
    def runs(self) -> Table:
        return self.Run.__table__  # type: ignore[attr-defined]

    def own_indexes(self, dialect: str) -> list[Index]:
        """The indexes of ours (not agno's) on the two tables, those ``dialect`` has."""
        sessions = self.sessions.name
        names = {index_name(sessions, columns) for columns in SESSION_INDEXES + FILTER_INDEXES}
        if dialect == "postgresql":
            names.add(f"idx_{sessions}_{METADATA_INDEX}")
        names |= {index_name(self.runs.name, columns) for columns in RUN_INDEXES}
        return [index for table in (self.sessions, self.runs) for index in table.indexes if index.name in names]


def _qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


@functools.cache
def models_for(session_table: str, runs_table: str, schema: str | None = None) -> Models:
    """Model classes for agno tables with these names, in ``schema`` if given (one registry each)."""

    class Base(DeclarativeBase):
        metadata = MetaData(schema=schema)

    session_model = type("AgnoSession", (SessionColumns, Base), {"__tablename__": session_table})
    run_model = type(
        "AgnoRun",
        (RunColumns, Base),
        {"__tablename__": runs_table, "__sessions_table__": session_table, "__schema__": schema},
    )
    return Models(Session=session_model, Run=run_model, base=Base)


DEFAULT_MODELS = models_for("agno_sessions", "agno_runs")
AgnoSession = DEFAULT_MODELS.Session
AgnoRun = DEFAULT_MODELS.Run


class SchemaVersionsBase(DeclarativeBase):
    pass


class SchemaVersion(SchemaVersionsBase):
    """agno's record of the layout version of each table it manages (``agno_schema_versions``)."""

    __tablename__ = "agno_schema_versions"
    __table_args__ = (Index("idx_agno_schema_versions_created_at", "created_at"),)

    table_name: Mapped[str] = mapped_column(String, primary_key=True)
    version: Mapped[str] = mapped_column(String)
    created_at: Mapped[str] = mapped_column(String)
    updated_at: Mapped[str | None] = mapped_column(String)

    def __repr__(self) -> str:
        return f"<SchemaVersion {self.table_name} {self.version}>"


@functools.cache
def schema_versions_table(schema: str | None) -> Table:
    """``agno_schema_versions`` in ``schema`` (the same table as :class:`SchemaVersion`)."""
    if schema is None:
        return SchemaVersion.__table__  # type: ignore[return-value]
    return Table(
        "agno_schema_versions",
        MetaData(schema=schema),
        *(
            Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
            for column in SchemaVersion.__table__.columns
        ),  # type: ignore[attr-defined]
        Index("idx_agno_schema_versions_created_at", "created_at"),
    )


# The layout version agno 3.1.10 records for the sessions and runs tables it creates.
AGNO_TABLE_VERSION = "3.0.0"
