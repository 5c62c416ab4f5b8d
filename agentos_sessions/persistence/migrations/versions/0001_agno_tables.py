"""agno 3.1.10's sessions and runs tables, where missing; existing ones are adopted as they are.

The DDL of agno 3.1.10's SqliteDb and PostgresDb (agno/db/sqlite/schemas.py and
agno/db/postgres/schemas.py): the columns in agno's order with its types (JSON on SQLite,
JSONB on PostgreSQL) and nullability, the runs' foreign key to their session (ON DELETE
CASCADE), agno's indexes, and the tables recorded in agno_schema_versions at agno's layout
version, 3.0.0, as agno records the tables it creates. Each table and index is created only
where missing: tables agno made keep their rows and everything agno gave them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agentos_sessions.persistence.migrations import catalog

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VERSIONS = "agno_schema_versions"
AGNO_TABLE_VERSION = "3.0.0"


def upgrade() -> None:
    sessions, runs, schema = catalog.names()
    db = op.get_bind()
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    tables = catalog.table_names(db, schema)
    created = []
    if sessions not in tables:
        op.create_table(
            sessions,
            sa.Column("session_id", sa.String(), nullable=False),
            sa.Column("session_type", sa.String(), nullable=False),
            sa.Column("agent_id", sa.String(), nullable=True),
            sa.Column("team_id", sa.String(), nullable=True),
            sa.Column("workflow_id", sa.String(), nullable=True),
            sa.Column("user_id", sa.String(), nullable=True),
            sa.Column("session_data", json, nullable=True),
            sa.Column("agent_data", json, nullable=True),
            sa.Column("team_data", json, nullable=True),
            sa.Column("workflow_data", json, nullable=True),
            sa.Column("metadata", json, nullable=True),
            sa.Column("summary", json, nullable=True),
            sa.Column("created_at", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=True),
            sa.PrimaryKeyConstraint("session_id"),
            schema=schema,
        )
        created.append(sessions)
    catalog.create_missing_indexes(
        sessions,
        schema,
        [
            (f"idx_{sessions}_session_type", ["session_type"]),
            (f"idx_{sessions}_created_at", ["created_at"]),
        ],
    )
    if runs not in tables:
        op.create_table(
            runs,
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("session_id", sa.String(), nullable=False),
            sa.Column("run_type", sa.String(), nullable=False),
            sa.Column("agent_id", sa.String(), nullable=True),
            sa.Column("team_id", sa.String(), nullable=True),
            sa.Column("workflow_id", sa.String(), nullable=True),
            sa.Column("user_id", sa.String(), nullable=True),
            sa.Column("parent_run_id", sa.String(), nullable=True),
            sa.Column("status", sa.String(), nullable=True),
            sa.Column("run_index", sa.BigInteger(), nullable=True),
            sa.Column("run_data", json, nullable=False),
            sa.Column("created_at", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=True),
            sa.PrimaryKeyConstraint("run_id"),
            sa.ForeignKeyConstraint(
                ["session_id"],
                [f"{schema}.{sessions}.session_id" if schema else f"{sessions}.session_id"],
                ondelete="CASCADE",
            ),
            schema=schema,
        )
        created.append(runs)
    catalog.create_missing_indexes(
        runs,
        schema,
        [
            (f"idx_{runs}_session_id", ["session_id"]),
            (f"idx_{runs}_run_type", ["run_type"]),
            (f"idx_{runs}_agent_id", ["agent_id"]),
            (f"idx_{runs}_team_id", ["team_id"]),
            (f"idx_{runs}_workflow_id", ["workflow_id"]),
            (f"idx_{runs}_user_id", ["user_id"]),
            (f"idx_{runs}_status", ["status"]),
            (f"idx_{runs}_created_at", ["created_at"]),
            (f"idx_{runs}_session_id_run_index", ["session_id", "run_index"]),
        ],
    )
    if created:
        _record_versions(created, schema, tables)


def _record_versions(created: list[str], schema: str | None, tables: set[str]) -> None:
    """Rows in agno_schema_versions for the tables created, as agno writes them."""
    if VERSIONS not in tables:
        op.create_table(
            VERSIONS,
            sa.Column("table_name", sa.String(), nullable=False),
            sa.Column("version", sa.String(), nullable=False),
            sa.Column("created_at", sa.String(), nullable=False),
            sa.Column("updated_at", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("table_name"),
            schema=schema,
        )
    catalog.create_missing_indexes(VERSIONS, schema, [(f"idx_{VERSIONS}_created_at", ["created_at"])])
    versions = sa.table(
        VERSIONS,
        sa.column("table_name", sa.String()),
        sa.column("version", sa.String()),
        sa.column("created_at", sa.String()),
        sa.column("updated_at", sa.String()),
        schema=schema,
    )
    recorded = set(
        op.get_bind().execute(sa.select(versions.c.table_name).where(versions.c.table_name.in_(created))).scalars()
    )
    stamp = datetime.now().isoformat()
    rows = [
        {"table_name": name, "version": AGNO_TABLE_VERSION, "created_at": stamp, "updated_at": stamp}
        for name in created
        if name not in recorded
    ]
    if rows:
        op.bulk_insert(versions, rows)


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only: the tables are agno's too")
