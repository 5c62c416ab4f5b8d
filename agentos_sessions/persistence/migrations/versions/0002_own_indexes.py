"""Our indexes for the session list and the order of a session's runs (docs/performance.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import context, op

from agentos_sessions.persistence import store

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    store.create_own_indexes(op.get_bind(), context.config.attributes["models"])


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only")
