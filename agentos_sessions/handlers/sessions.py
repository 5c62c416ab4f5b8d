"""Sessions tag: thin handlers that resolve the database, call the store, shape the body."""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from datetime import datetime

import anyio.to_thread
import orjson
from connexion import request

from agentos_sessions.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from agentos_sessions.handlers import views
from agentos_sessions.handlers.targets import media_storage_of, resolve_database
from agentos_sessions.persistence import store
from agentos_sessions.persistence.media import MediaStorage
from agentos_sessions.security import current_caller

logger = logging.getLogger("agentos_sessions")

__all__ = [
    "create_session",
    "delete_session",
    "delete_sessions",
    "get_session_by_id",
    "get_session_run",
    "get_session_run_previews",
    "get_session_runs",
    "get_sessions",
    "rename_session",
    "update_session",
]


async def get_sessions(
    *,
    type=None,
    component_id=None,
    user_id=None,
    session_name=None,
    metadata=None,
    created_after=None,
    created_before=None,
    updated_after=None,
    updated_before=None,
    limit=20,
    page=1,
    sort_by="created_at",
    sort_order="desc",
    db_id=None,
    table=None,
):
    """List sessions, one page at a time."""
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    page = max(page, 1)
    started = time.perf_counter()
    rows, total, names = await database.run(
        _page_with_names,
        session_type=type,
        component_id=component_id,
        user_id=user_id,
        session_name=session_name,
        # A JSON object in the query string, validated as such against the contract.
        metadata=orjson.loads(metadata) if metadata is not None else None,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
        limit=limit,
        page=page,
        sort_by=sort_by,
        sort_order=sort_order,
    )
    data = [views.session_list_item(row, names[row.session_id]) for row in rows]
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    meta = {
        "page": page,
        "limit": limit,
        "total_pages": math.ceil(total / limit),
        "total_count": total,
        "search_time_ms": elapsed_ms,
    }
    return {"data": data, "meta": meta}, 200


def _page_with_names(db, m, **filters):
    """One page of sessions, their total, and their names: stored, or derived from their first runs.

    A derived name needs a session's first run with user input, never its whole history: the
    first run of every unnamed session on the page comes with the page; a session whose first
    run carries no user input is read further, a few runs at a time, until one does.
    """
    rows, total = store.list_sessions(db, m, **filters)
    names = {row.session_id: views.stored_name(row.session_data) for row in rows}
    first = store.first_runs_of_unnamed(db, m, rows)
    for row in rows:
        if row.session_id not in first:
            continue
        runs = first[row.session_id]
        if runs:
            runs = itertools.chain(runs, store.iter_runs(db, m, row.session_id, start=len(runs)))
        names[row.session_id] = views.derived_name(views.session_type_of(row), row.workflow_data, runs)
    return rows, total, names


async def create_session(*, body=None, type="agent", db_id=None):
    """Create an empty session; an existing session_id is a conflict and is left untouched."""
    body = body or {}
    caller = current_caller()
    database = resolve_database(db_id)
    session_id = body.get("session_id") or str(uuid.uuid4())
    session_data = {}
    if body.get("session_state") is not None:
        session_data["session_state"] = body["session_state"]
    if body.get("session_name") is not None:
        session_data["session_name"] = body["session_name"]
    metadata = views.strip_reserved_metadata(body.get("metadata"))
    created_at = store.now()
    columns = {
        "session_id": session_id,
        "session_type": type,
        f"{type}_id": body.get(f"{type}_id"),
        # A session created with a token belongs to its subject, as in AgentOS.
        "user_id": caller.user_id if caller.user_id is not None else body.get("user_id"),
        "session_data": session_data or None,
        f"{type}_data": None,
        "metadata_": metadata,
        "summary": None,
        "created_at": created_at,
        "updated_at": created_at,
    }
    if type == "workflow":
        # What agno's WorkflowSession stores: {} where agent and team sessions store null.
        columns.update(session_data=session_data, workflow_data={}, metadata_=metadata or {})
    isolated_user_id = caller.user_id if caller.isolated else None
    row, visible = await database.run(_create, isolated_user_id, write=True, **columns)
    if row is None and visible:
        raise Conflict(f"Session with id '{session_id}' already exists. Use PATCH /sessions/{session_id} to update it.")
    if row is None:
        # Another user's session: the same status, but not a word on whose it is.
        raise Conflict(
            "Could not create a session with the supplied session_id. "
            "Omit session_id to have one generated, or choose a different one."
        )
    return views.session_detail(row, [], type, omit_nulls=True), 201, {"ETag": views.etag(row, [])}


def _create(db, m, isolated_user_id, **columns):
    """The new session's row, or None and whether the session that holds its id is the caller's to see."""
    row = store.insert_new_session(db, m, **columns)
    if row is not None or isolated_user_id is None:
        return row, True
    return None, store.get_session(db, m, columns["session_id"], user_id=isolated_user_id) is not None


async def get_session_by_id(*, session_id, type=None, user_id=None, db_id=None, table=None):
    """One session with its chat history."""
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    row, runs = await database.run(store.get_session_with_runs, session_id, user_id=user_id)
    if row is None:
        kind = f"{type.title()} Session" if type else "Session"
        raise NotFound(f"{kind} with id '{session_id}' not found")
    tag = views.etag(row, runs)
    if views.etag_matches(request.headers.get("if-none-match"), tag, weak=True):
        return None, 304, {"ETag": tag}
    return views.session_detail(row, runs, type or views.session_type_of(row), omit_nulls=True), 200, {"ETag": tag}


async def get_session_runs(
    *,
    session_id,
    type=None,
    user_id=None,
    created_after=None,
    created_before=None,
    status=None,
    limit=None,
    page=1,
    sort_order="asc",
    db_id=None,
    table=None,
):
    """The runs of a session, oldest first, as agent, team or workflow runs: all of them, or a
    page of ``limit``."""
    user_id = current_caller().acting_for(user_id)
    runs, headers = await _session_runs(
        session_id, type, user_id, created_after, created_before, status, limit, page, sort_order, db_id, table
    )
    return runs, 200, headers


async def get_session_run_previews(
    *,
    session_id,
    type=None,
    user_id=None,
    created_after=None,
    created_before=None,
    status=None,
    limit=None,
    page=1,
    sort_order="asc",
    db_id=None,
    table=None,
):
    """The runs of a session as short previews (all, or a page of ``limit``)."""
    user_id = current_caller().acting_for(user_id)
    runs, headers = await _session_runs(
        session_id, type, user_id, created_after, created_before, status, limit, page, sort_order, db_id, table
    )
    return [views.run_preview(run) for run in runs], 200, headers


async def _session_runs(
    session_id, session_type, user_id, created_after, created_before, status, limit, page, sort_order, db_id, table
):
    """The shaped runs of one page (or all), and the X-Total-Count and Link headers."""
    database = resolve_database(db_id, table)
    page = max(page, 1)
    row, runs, total = await database.run(
        _runs_page,
        session_id,
        session_type,
        user_id=user_id,
        created_after=created_after,
        created_before=created_before,
        statuses=sorted(_wanted_statuses(status) or ()),
        limit=limit,
        offset=(page - 1) * limit if limit else 0,
        descending=sort_order == "desc",
    )
    if row is None:
        raise NotFound(f"Session with ID {session_id} not found")
    session_type = session_type or views.session_type_of(row)
    shaped = []
    for run in runs:
        body = views.session_run(run, session_type, session_row=row)
        if body is not None:
            shaped.append(views.without_nulls(body))
    total = len(shaped) if total is None else total
    return shaped, {"X-Total-Count": str(total), **_links(limit, page, total)}


def _runs_page(db, m, session_id, session_type, *, user_id, limit, descending, **filters):
    """The session row, the runs of the page and how many match (all runs and None, without a
    limit), or (None, [], 0) if there is no such session."""
    if limit is None and not descending:
        # Every run, as AgentOS answers: session and runs in one statement on PostgreSQL.
        row, runs = store.get_session_with_runs(db, m, session_id, user_id=user_id)
        # The total: what is shaped of them (see _session_runs).
        return row, [run for run in runs if _matches(run, **filters)], None
    row = store.get_session(db, m, session_id, user_id=user_id)
    if row is None:
        return None, [], 0
    # What views.session_run shapes for a team session: the runs that name an agent or a team.
    members_only = (session_type or views.session_type_of(row)) == "team"
    runs, total = store.page_of_runs(
        db, m, session_id, members_only=members_only, limit=limit, descending=descending, **filters
    )
    return row, runs, total


def _matches(run, *, created_after, created_before, statuses, offset) -> bool:
    """store.page_of_runs's filters, on a run's own values (agno writes the columns from them)."""
    created_at = run.get("created_at")
    if created_at is not None and created_after is not None and created_at < created_after:
        return False
    if created_at is not None and created_before is not None and created_at > created_before:
        return False
    return not statuses or str(run.get("status") or "").upper() in statuses


def _links(limit: int | None, page: int, total: int) -> dict[str, str]:
    """RFC 8288 links to the next and previous pages (relative to this request's URL)."""
    if not limit:
        return {}
    links = []
    if page * limit < total:
        links.append(f'<{_page_url(page + 1)}>; rel="next"')
    if page > 1:
        links.append(f'<{_page_url(min(page - 1, max(math.ceil(total / limit), 1)))}>; rel="prev"')
    return {"Link": ", ".join(links)} if links else {}


def _page_url(page: int) -> str:
    url = request.url.include_query_params(page=page)
    return f"{url.path}?{url.query}"


def _wanted_statuses(status: list[str] | None) -> set[str] | None:
    """The statuses asked for, upper-cased (the contract admits each in any letter case)."""
    return {value.upper() for value in status} if status else None


async def get_session_run(*, session_id, run_id, type=None, user_id=None, db_id=None, table=None):
    """One run of a session."""
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    row, run, has_runs = await database.run(_session_and_run, session_id, run_id, user_id=user_id)
    if row is None:
        raise NotFound(f"Session with ID {session_id} not found")
    if not has_runs:
        raise NotFound(f"Session with ID {session_id} has no runs")
    if run is None:
        raise NotFound(f"Run with ID {run_id} not found in session {session_id}")
    return views.single_run(run, row), 200


def _session_and_run(db, m, session_id, run_id, *, user_id):
    """The session row, the run (or None) and whether the session has any run at all."""
    row = store.get_session(db, m, session_id, user_id=user_id)
    if row is None:
        return None, None, False
    run = store.get_run(db, m, session_id, run_id)
    return row, run, run is not None or store.has_runs(db, m, session_id)


async def rename_session(*, session_id, body, type=None, user_id=None, db_id=None, table=None):
    """Set a session's name."""
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    changes = {"session_name": body["session_name"]}
    return await _changed(database, session_id, changes, user_id)


MERGE_PATCH = "application/merge-patch+json"


async def update_session(*, session_id, body, type=None, user_id=None, db_id=None, table=None):
    """Replace (application/json, as AgentOS) or merge (application/merge-patch+json, RFC 7396)
    the name, state, metadata or summary of a session."""
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    if request.mimetype == MERGE_PATCH:
        return await _changed(database, session_id, _merge_patch(body), user_id, merge=True)
    changes = {}
    if body.get("session_name") is not None:
        changes["session_name"] = body["session_name"]
    if body.get("session_state") is not None:
        changes["session_state"] = body["session_state"]
    if body.get("metadata") is not None:
        changes["metadata"] = views.strip_reserved_metadata(body["metadata"])
    if body.get("summary") is not None:
        changes["summary"] = _summary(body["summary"])
    return await _changed(database, session_id, changes, user_id)


def _merge_patch(body: dict) -> dict:
    """The merge patch in ``body`` as it applies to the stored session: metadata keys that agno's
    runtime owns are not the client's to change, a summary's time is stored as agno writes it."""
    patch = dict(body)
    if isinstance(patch.get("metadata"), dict):
        patch["metadata"] = {k: v for k, v in patch["metadata"].items() if k not in views.RESERVED_METADATA_KEYS}
    if isinstance(patch.get("summary"), dict) and patch["summary"].get("updated_at") is not None:
        patch["summary"] = {**patch["summary"], "updated_at": _stored_time(patch["summary"]["updated_at"])}
    return patch


async def _changed(database, session_id, changes, user_id, *, merge=False):
    """Apply ``changes`` (a merge patch if ``merge``) if the session still is what If-Match names,
    and answer the session."""
    if_match = request.headers.get("if-match")
    row, runs, applied = await database.run(
        _change_session, session_id, changes, user_id=user_id, if_match=if_match, merge=merge, write=True
    )
    if row is None:
        raise NotFound(f"Session with id '{session_id}' not found")
    if not applied:
        raise _changed_since(session_id)
    body = views.session_detail(row, runs, views.session_type_of(row), omit_nulls=False)
    return body, 200, {"ETag": views.etag(row, runs)}


def _changed_since(session_id: str) -> PreconditionFailed:
    return PreconditionFailed(f"Session with id '{session_id}' has changed: If-Match does not name its ETag")


def _change_session(db, m, session_id, changes, *, user_id, if_match, merge):
    """Apply ``changes`` (replacing fields, or merging them in if ``merge``) to the session and
    return it with its runs and True; (None, [], False) if there is none; the unchanged session
    and False if ``if_match`` does not name its ETag."""
    row, runs, current = _locked(db, m, session_id, user_id=user_id, if_match=if_match)
    if row is None:
        return None, [], False
    if not current:
        return row, runs, False
    if views.session_type_of(row) == "workflow":
        # agno's workflow sessions have no summary: AgentOS accepts one and drops it.
        changes = {key: value for key, value in changes.items() if key != "summary"}
    if merge:
        return store.merge_into_session(db, m, row, changes), runs, True
    return store.update_session(db, m, row, **changes), runs, True


def _summary(summary: dict) -> dict:
    """A summary as agno stores it: its text, then topics and updated_at when given."""
    stored = {"summary": summary["summary"]}
    if summary.get("topics") is not None:
        stored["topics"] = summary["topics"]
    if summary.get("updated_at") is not None:
        stored["updated_at"] = _stored_time(summary["updated_at"])
    return stored


def _stored_time(date_time: str) -> str:
    """An RFC 3339 date-time as agno stores a summary's (``datetime.isoformat``)."""
    return datetime.fromisoformat(date_time.replace("Z", "+00:00")).isoformat()


async def delete_session(*, session_id, user_id=None, db_id=None, table=None, delete_media=False):
    """Delete a session and its runs (and, if ``delete_media``, the media they offloaded); an
    absent session is not an error, another owner's is a 404."""
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    storage = media_storage_of(database) if delete_media else None
    if_match = request.headers.get("if-match")
    outcome, keys = await database.run(
        _delete_session, session_id, if_match, user_id=user_id, media=storage and storage.settings, write=True
    )
    if outcome is None:
        raise _changed_since(session_id)
    if not outcome:
        # AgentOS answers 204 and keeps the session: a delete that did nothing must not look done.
        raise NotFound(f"Session with id '{session_id}' not found")
    await _delete_media(storage, keys)
    return None, 204


def _delete_session(db, m, session_id, if_match, *, user_id, media):
    """store.delete_owned_session's answer, or None (nothing deleted) if ``if_match`` does not
    name the session's ETag; and the keys of the media it offloaded to ``media``, read before
    its runs are deleted (none unless ``media``)."""
    if if_match is not None:
        row, _runs, current = _locked(db, m, session_id, user_id=user_id, if_match=if_match)
        if row is not None and not current:
            return None, []
    keys = store.media_keys(db, m, [session_id], media) if media else []
    if not store.delete_owned_session(db, m, session_id, user_id=user_id):
        return False, []
    return True, keys


def _locked(db, m, session_id, *, user_id, if_match):
    """The session, locked for a change in this transaction, its runs, and whether ``if_match``
    (None: no condition) names its ETag; (None, [], False) if there is no such session."""
    row = store.get_session(db, m, session_id, user_id=user_id, lock=True)
    if row is None:
        return None, [], False
    runs = store.get_runs(db, m, session_id)
    return row, runs, if_match is None or views.etag_matches(if_match, views.etag(row, runs), weak=False)


async def delete_sessions(*, body, user_id=None, db_id=None, table=None, delete_media=False):
    """Delete several sessions and their runs (and, if ``delete_media``, the media they offloaded)."""
    user_id = current_caller().acting_for(user_id)
    if len(body["session_ids"]) != len(body["session_types"]):
        raise BadRequest("Session IDs and session types must have the same length")
    database = resolve_database(db_id, table)
    storage = media_storage_of(database) if delete_media else None
    keys = await database.run(
        _delete_sessions, body["session_ids"], user_id=user_id, media=storage and storage.settings, write=True
    )
    await _delete_media(storage, keys)
    return None, 204


def _delete_sessions(db, m, session_ids, *, user_id, media):
    """Delete the sessions (those of ``user_id``, if given); the keys of the media they offloaded
    to ``media``, read before their runs are deleted."""
    session_ids = store.existing_sessions(db, m, session_ids, user_id=user_id)
    keys = store.media_keys(db, m, session_ids, media) if media else []
    store.delete_sessions_by_id(db, m, session_ids)
    return keys


async def _delete_media(storage: MediaStorage | None, keys: list[str]) -> None:
    """Delete the objects, once their sessions are: best effort, a failure is logged, not answered."""
    if storage is None or not keys:
        return
    try:
        gone = await anyio.to_thread.run_sync(storage.delete, keys)
    except Exception:
        logger.exception("Could not delete %d media objects", len(keys))
        return
    if gone < len(keys):
        logger.warning("Deleted %d of %d media objects; the rest stay in the storage", gone, len(keys))
