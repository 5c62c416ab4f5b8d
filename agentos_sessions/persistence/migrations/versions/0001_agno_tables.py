"""agno 3.1.10's sessions and runs tables, where missing; existing ones are adopted as they are.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import context, op

from agentos_sessions.persistence import store

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    store.create_agno_tables(op.get_bind(), context.config.attributes["models"])


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only: the tables are agno's too")
