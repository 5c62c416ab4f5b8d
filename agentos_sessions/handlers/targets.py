"""What a request acts on: the database it names, and that database's media storage."""

from __future__ import annotations

from connexion import request

from agentos_sessions.errors import BadRequest, NotFound, ServiceUnavailable
from agentos_sessions.persistence.database import Database
from agentos_sessions.persistence.media import MediaStorage

# AgentOS's words, whose server this is not: clients may match them.
NOT_CONFIGURED = "Media storage is not configured on AgentOS"


def resolve_database(db_id: str | None, table: str | None = None) -> Database:
    """The database a request names, with AgentOS's messages when it names none or a wrong one."""
    databases: dict[str, Database] = request.state.databases
    if table and not db_id:
        raise BadRequest("The db_id query parameter is required when passing a table")
    if db_id:
        database = databases.get(db_id)
        if database is None:
            raise NotFound(f"No database found with id '{db_id}'")
        if table and table != database.session_table:
            raise NotFound(f"No database with id '{db_id}' has table '{table}'")
        return database
    if len(databases) > 1:
        raise BadRequest("The db_id query parameter is required when using multiple databases")
    return next(iter(databases.values()))


def media_storage_of(database: Database) -> MediaStorage:
    """The database's media storage; 503 (AgentOS's answer) when it has none."""
    storage = request.state.media_storages[database.id]
    if storage is None:
        raise ServiceUnavailable(NOT_CONFIGURED)
    return storage
