"""Forking a session: POST /sessions/{id}/fork (Sessions tag), and AgentOS's own paths under the
Agents and Teams tags, which answer as AgentOS does.

A fork is agno 3.1.10's ``fork_session`` (agno/agent/_run.py ``_build_forked_session``): a
deep copy with a new session_id, fresh run_ids, and ``forked_from_session_id`` in the new
session's data (the immediate parent) and on each run (the session the run was first made in).
"""

from __future__ import annotations

import copy
import logging
import uuid

import anyio.to_thread

from agentos_sessions.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from agentos_sessions.handlers import views
from agentos_sessions.handlers.targets import media_storage_of, resolve_database
from agentos_sessions.persistence import media, store
from agentos_sessions.persistence.database import Database
from agentos_sessions.persistence.media import references
from agentos_sessions.security import current_caller

__all__ = ["fork_agent_session", "fork_session", "fork_team_session"]

logger = logging.getLogger("agentos_sessions")

NO_RUNS = "Source session has no runs to fork."


async def fork_session(*, session_id, body=None, user_id=None, db_id=None, table=None):
    """A deep copy of the session (up to a run), under a new id; 201 with the new session."""
    body = body or {}
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    new_id = body.get("session_id") or str(uuid.uuid4())
    row, runs = await _fork(database, session_id, new_id, user_id, up_to_run_id=body.get("up_to_run_id"))
    return (
        views.session_detail(row, runs, views.session_type_of(row), omit_nulls=True),
        201,
        {"ETag": views.etag(row, runs)},
    )


async def fork_agent_session(*, agent_id, session_id, user_id=None):
    """AgentOS's fork of an agent's session: ``{session_id, forked_from_session_id}``."""
    return await _fork_of_component("agent", agent_id, session_id, user_id, "Agent not found")


async def fork_team_session(*, team_id, session_id, user_id=None):
    """AgentOS's fork of a team's session."""
    return await _fork_of_component("team", team_id, session_id, user_id, "Team not found")


async def _fork_of_component(kind, component_id, session_id, user_id, not_found):
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(None)
    source = await database.run(store.get_session, session_id, user_id=user_id)
    if source is None:
        # agno reads a missing session as a new, empty one: nothing to fork.
        raise BadRequest(NO_RUNS)
    if getattr(source, f"{kind}_id") != component_id:
        raise NotFound(not_found)
    new_id = str(uuid.uuid4())
    await _fork(database, session_id, new_id, user_id, require_runs=True)
    return {"session_id": new_id, "forked_from_session_id": session_id}, 200


async def _fork(database: Database, session_id, new_id, user_id, *, up_to_run_id=None, require_runs=False):
    """Copy the session and its runs (and their media) to ``new_id``: the new row and runs."""
    source, rows = await database.run(_source, session_id, new_id, user_id=user_id)
    if source is None:
        raise NotFound(f"Session with id '{session_id}' not found")
    if up_to_run_id is not None:
        ids = [row["run_id"] for row in rows]
        if up_to_run_id not in ids:
            raise NotFound(f"Run with ID {up_to_run_id} not found in session {session_id}")
        rows = _up_to(rows, ids.index(up_to_run_id))
    if require_runs and not rows:
        raise BadRequest(NO_RUNS)
    now = store.now()
    owner = user_id if user_id is not None else source.user_id
    new_rows = _forked_runs(rows, session_id, new_id, owner, now)
    copied = await _copy_media(database, new_rows, new_id)
    try:
        forked = await database.run(_write, source, new_id, owner, now, new_rows, write=True)
    except BaseException:
        await _delete_copies(database, copied)
        raise
    if forked is None:
        # Another request took the id meanwhile: this attempt's copies are its own (forked_key).
        await _delete_copies(database, copied)
        raise _taken(new_id)
    return forked, [run["run_data"] for run in new_rows]


def _up_to(rows: list[dict], last: int) -> list[dict]:
    """The rows up to and including ``rows[last]``, and the later ones that are member runs of
    those (a team's members' runs, stored after their leader's), in their order."""
    kept = {row["run_id"] for row in rows[: last + 1]}
    for row in rows[last + 1 :]:
        if row["parent_run_id"] in kept:
            kept.add(row["run_id"])
    return [row for row in rows if row["run_id"] in kept]


def _source(db, m, session_id, new_id, *, user_id):
    """The session to fork and its run rows, (None, []) if there is none; Conflict if ``new_id``
    is taken already (checked again when the fork is written)."""
    row = store.get_session(db, m, session_id, user_id=user_id)
    if row is None:
        return None, []
    if store.session_id_taken(db, m, new_id):
        raise _taken(new_id)
    return row, store.run_rows(db, m, session_id)


def _taken(new_id: str) -> Conflict:
    return Conflict(f"Session with id '{new_id}' already exists. Use PATCH /sessions/{new_id} to update it.")


def _forked_runs(rows, source_id, new_id, owner, now) -> list[dict]:
    """The run rows of the fork: fresh run_ids (a member run's parent_run_id follows its parent's
    new id), the fork's session and owner, each run's original session kept."""
    new_ids = {row["run_id"]: str(uuid.uuid4()) for row in rows}
    forked = []
    for index, row in enumerate(rows):
        data = copy.deepcopy(row["run_data"]) if isinstance(row["run_data"], dict) else {}
        data["run_id"], data["session_id"] = new_ids[row["run_id"]], new_id
        if not data.get("forked_from_session_id"):
            data["forked_from_session_id"] = source_id
        parent = new_ids.get(row["parent_run_id"], row["parent_run_id"])
        if "parent_run_id" in data:
            data["parent_run_id"] = parent
        forked.append(
            {
                **row,
                "run_id": data["run_id"],
                "session_id": new_id,
                "user_id": owner,
                "parent_run_id": parent,
                "run_index": index,
                "run_data": data,
                "updated_at": now,
            }
        )
    return forked


async def _copy_media(database: Database, rows, new_id) -> list[str]:
    """Give the fork its own copy of each object its runs' references name on the storage, and
    point the references at the copies (agno's fork does the same): the new keys."""
    refs = [
        ref
        for row in rows
        for ref in references.references_of_run(row["run_data"], workflow=row["run_type"] == "workflow")
    ]
    if not refs:
        return []
    storage = media_storage_of(database)
    refs = [ref for ref in refs if references.served_by(ref, storage.settings)]
    copies: dict[str, str] = {}
    for ref in refs:
        copies.setdefault(ref["storage_key"], references.forked_key(ref, new_id, storage.settings.prefix))
    try:
        for key, new_key in copies.items():
            await anyio.to_thread.run_sync(storage.copy, key, new_key)
    except (media.MediaNotFound, media.MediaUnavailable) as error:
        await _delete_copies(database, list(copies.values()))
        if isinstance(error, media.MediaNotFound):
            raise NotFound(f"Media object not found: {error}") from None
        logger.warning("Media storage: %s", error)
        raise ServiceUnavailable("Media storage is unavailable; try again shortly", retry_after=1) from None
    for ref in refs:
        ref["storage_key"], ref["session_id"] = copies[ref["storage_key"]], new_id
        ref.pop("url", None)
    return list(copies.values())


async def _delete_copies(database: Database, keys: list[str]) -> None:
    if keys:
        storage = media_storage_of(database)
        await anyio.to_thread.run_sync(storage.delete, keys)


def _write(db, m, source, new_id, owner, now, rows):
    """The new session and its runs, in one transaction; None if ``new_id`` is taken."""
    session_data = copy.deepcopy(source.session_data) or {}
    session_data["forked_from_session_id"] = source.session_id
    columns = {
        "session_id": new_id,
        "session_type": source.session_type,
        "agent_id": source.agent_id,
        "team_id": source.team_id,
        "workflow_id": source.workflow_id,
        "user_id": owner,
        "session_data": session_data,
        "agent_data": copy.deepcopy(source.agent_data),
        "team_data": copy.deepcopy(source.team_data),
        "workflow_data": copy.deepcopy(source.workflow_data),
        "metadata_": copy.deepcopy(source.metadata_),
        "summary": copy.deepcopy(source.summary),
        "created_at": now,
        "updated_at": now,
    }
    row = store.insert_new_session(db, m, **columns)
    if row is not None:
        store.insert_runs(db, m, rows)
    return row
