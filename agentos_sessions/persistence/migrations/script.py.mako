"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos_sessions.persistence.migrations import catalog

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    # Write the DDL out in full; only the names come from the context. Create only what is missing.
    sessions, runs, schema = catalog.names()
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    raise NotImplementedError("agentos-sessions migrates forward only")
