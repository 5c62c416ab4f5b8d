"""Indexes for the session list's filters: component ids, update time, metadata (PostgreSQL).

Databases at 0002 gain them here; a new database already has them from 0001 or 0002, which
create every index of ours where missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import context, op

from agentos_sessions.persistence import store

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    store.create_own_indexes(op.get_bind(), context.config.attributes["models"])


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only")
