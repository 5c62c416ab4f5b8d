"""agno 3.1.10's own storage on a test database, for tests that need what agno itself makes.

Imported by tests marked interop (agno is in the interop extra; PostgresDb also needs psycopg).
"""

from __future__ import annotations

from sqlalchemy import make_url

from agentos_sessions.settings import DatabaseSettings


def agno_storage(database: DatabaseSettings):
    """agno's own storage on ``database``: SqliteDb on the file, or PostgresDb on the schema,
    with the same table names."""
    url = make_url(database.url)
    tables = {"session_table": database.session_table, "runs_table": database.runs_table}
    if url.get_backend_name() == "sqlite":
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_file=url.database, **tables)
    from agno.db.postgres import PostgresDb  # needs psycopg (the postgresql extra)

    return PostgresDb(
        db_url=url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
        db_schema=database.db_schema,
        **tables,
    )


def create_agno_tables(database: DatabaseSettings) -> None:
    """The sessions and runs tables as agno creates them (with agno_schema_versions), made by agno."""
    storage = agno_storage(database)
    try:
        storage._get_table("sessions", create_table_if_not_found=True)
        storage._get_table("runs", create_table_if_not_found=True)
    finally:
        storage.db_engine.dispose()
