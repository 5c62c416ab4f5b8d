"""Core tag: what this OS serves, in AgentOS's configuration shape."""

from __future__ import annotations

from connexion import request

from agentos_sessions.persistence.database import Database

__all__ = ["get_config"]


async def get_config():
    """AgentOS's ConfigResponse for a sessions-only OS: its databases and their sessions tables."""
    databases: dict[str, Database] = request.state.databases
    return {
        "os_id": request.state.os_id,
        "available_models": [],
        "databases": list(databases),
        "session": {
            "dbs": [
                {"db_id": db_id, "domain_config": {"display_name": db_id}, "tables": [database.session_table]}
                for db_id, database in databases.items()
            ]
        },
        "agents": [],
        "teams": [],
        "workflows": [],
        "interfaces": [],
        "company": None,
    }, 200
