"""Alembic environment: run by persistence.schema with a connection and the table models in
``config.attributes`` (the tables' names and schema are configuration, not constants)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
models = context.config.attributes["models"]
context.configure(
    connection=connection,
    target_metadata=models.base.metadata,
    version_table=context.config.attributes["version_table"],
    version_table_schema=models.sessions.schema,
)
with context.begin_transaction():
    context.run_migrations()
