"""Small helpers for API tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select


def iso(seconds: int) -> str:
    """Unix seconds as AgentOS writes them: ISO-8601 UTC with Z."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_session(database, session_id: str):
    """The stored row of a session, read straight from the database (or None)."""
    sessions = database.models.sessions
    with database.unit_of_work() as db:
        return db.execute(database.select_sessions().where(sessions.c.session_id == session_id)).one_or_none()


def stored_runs(database, session_id: str) -> list:
    runs = database.models.runs
    with database.unit_of_work() as db:
        return list(db.execute(select(runs).where(runs.c.session_id == session_id)))


def add_run(
    database,
    session_id: str,
    run_id: str,
    index: int,
    *,
    created_at: int,
    run_type: str = "agent",
    status: str = "COMPLETED",
    **run_data,
) -> None:
    """Store a run the way agno does (its row in the runs table, run_data holding the whole run)."""
    data = {"run_id": run_id, "session_id": session_id, "created_at": created_at, "status": status, **run_data}
    with database.unit_of_work() as db:
        db.execute(
            insert(database.models.runs).values(
                run_id=run_id,
                session_id=session_id,
                run_type=run_type,
                agent_id=data.get("agent_id"),
                team_id=data.get("team_id"),
                workflow_id=data.get("workflow_id"),
                user_id=data.get("user_id"),
                parent_run_id=data.get("parent_run_id"),
                status=status,
                run_index=index,
                run_data=data,
                created_at=created_at,
                updated_at=created_at,
            )
        )


def not_an_object(value) -> dict:
    """FastAPI's 422 entry for a body that is not a JSON object, with the input it reports."""
    return {
        "type": "model_attributes_type",
        "loc": ["body"],
        "msg": "Input should be a valid dictionary or object to extract fields from",
        "input": value,
    }
