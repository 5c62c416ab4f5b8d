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

from agentos_sessions.persistence.migrations import catalog

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sessions, runs, schema = catalog.names()
    catalog.create_missing_indexes(
        sessions,
        schema,
        [
            (f"idx_{sessions}_created_at_session_id", ["created_at", "session_id"]),
            (
                f"idx_{sessions}_user_id_session_type_created_at_session_id",
                ["user_id", "session_type", "created_at", "session_id"],
            ),
        ],
    )
    catalog.create_missing_indexes(
        runs,
        schema,
        [(f"idx_{runs}_session_id_run_index_created_at_run_id", ["session_id", "run_index", "created_at", "run_id"])],
    )


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only")
