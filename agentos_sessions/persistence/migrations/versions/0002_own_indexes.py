"""Our indexes for the session list's order and the order of a session's runs (docs/performance.md).

On sessions, (created_at, session_id) and (user_id, session_type, created_at, session_id): a
page of all sessions, or of one user's, in the list's default order comes from the index. On
runs, (session_id, run_index, created_at, run_id): a session's runs in agno's order, ranked
without reading their payloads. Each is created only where missing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from agentos_sessions.persistence.migrations import catalog

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sessions, runs, schema = catalog.names()
    db = op.get_bind()
    present = catalog.index_names(db, sessions, schema) | catalog.index_names(db, runs, schema)
    indexes = [
        (f"idx_{sessions}_created_at_session_id", sessions, ["created_at", "session_id"]),
        (
            f"idx_{sessions}_user_id_session_type_created_at_session_id",
            sessions,
            ["user_id", "session_type", "created_at", "session_id"],
        ),
        (
            f"idx_{runs}_session_id_run_index_created_at_run_id",
            runs,
            ["session_id", "run_index", "created_at", "run_id"],
        ),
    ]
    for name, table, columns in indexes:
        if name not in present:
            op.create_index(name, table, columns, schema=schema)


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only")
