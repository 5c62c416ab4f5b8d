"""Indexes for the session list's filters: component ids, update time, metadata (PostgreSQL).

On sessions, (agent_id | team_id | workflow_id, created_at, session_id): a component's
sessions, newest first; (updated_at, session_id): the update time bounds and order; and on
PostgreSQL only, a GIN index on metadata (jsonb_path_ops) for the containment filter (SQLite
has no index for JSON). Each is created only where missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from agentos_sessions.persistence.migrations import catalog

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sessions, _, schema = catalog.names()
    catalog.create_missing_indexes(
        sessions,
        schema,
        [
            (f"idx_{sessions}_agent_id_created_at_session_id", ["agent_id", "created_at", "session_id"]),
            (f"idx_{sessions}_team_id_created_at_session_id", ["team_id", "created_at", "session_id"]),
            (f"idx_{sessions}_workflow_id_created_at_session_id", ["workflow_id", "created_at", "session_id"]),
            (f"idx_{sessions}_updated_at_session_id", ["updated_at", "session_id"]),
        ],
    )
    db = op.get_bind()
    metadata_gin = f"idx_{sessions}_metadata_gin"
    if db.dialect.name == "postgresql" and metadata_gin not in catalog.index_names(db, sessions, schema):
        op.create_index(
            metadata_gin,
            sessions,
            ["metadata"],
            schema=schema,
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        )


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only")
