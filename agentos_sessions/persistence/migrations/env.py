"""Alembic environment: run by persistence.schema with a connection, the version table and the
names of the tables to migrate in ``config.attributes`` (the tables' names and schema are
configuration, not constants; revisions read them with ``catalog.names()``)."""

from __future__ import annotations

from alembic import context

context.configure(
    connection=context.config.attributes["connection"],
    version_table=context.config.attributes["version_table"],
    version_table_schema=context.config.attributes["names"].schema,
)
with context.begin_transaction():
    context.run_migrations()
