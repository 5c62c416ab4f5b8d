"""The one place that turns stored sessions and runs into AgentOS 3.1.10's response bodies.

Field order, defaults and which nulls are sent follow agno's ``agno.os.schema`` models: the
list, get and create routes omit null fields (``response_model_exclude_none``), rename, update
and the single-run route send them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

RESERVED_METADATA_KEYS = frozenset({"agno_component_version", "agno_dispatch_chain", "agno_dispatch_depth"})
RUN_PREVIEW_CHARS = 280


def without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def timestamp(value: Any) -> str | None:
    """Unix seconds (or an ISO string) as ISO-8601 UTC with a ``Z``, as pydantic writes it."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    else:
        parsed = datetime.fromtimestamp(value, tz=UTC)
    text = parsed.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def strip_reserved_metadata(metadata: dict | None) -> dict | None:
    """Metadata without the keys agno's runtime owns (None if nothing else is left)."""
    if not isinstance(metadata, dict) or not RESERVED_METADATA_KEYS.intersection(metadata):
        return metadata
    cleaned = {key: value for key, value in metadata.items() if key not in RESERVED_METADATA_KEYS}
    return cleaned or None


def stringify_input(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, indent=2, default=str)
    if isinstance(value, list) and value and isinstance(value[0], dict) and value[0].get("role") == "user":
        return value[0].get("content", str(value))
    return str(value)


# --- session names ---------------------------------------------------------------------


def stored_name(session_data: Any) -> str | None:
    if isinstance(session_data, dict) and session_data.get("session_name") is not None:
        return session_data["session_name"]
    return None


def derived_name(session_type: str, workflow_data: Any, runs: Iterable[dict[str, Any]]) -> str:
    """The name AgentOS shows for a session without one: from its first user input."""
    if session_type == "workflow":
        first = next(iter(runs), None)
        if first is None:
            return ""
        workflow_input = first.get("input")
        if isinstance(workflow_input, str):
            return workflow_input
        if isinstance(workflow_input, dict):
            return json.dumps(workflow_input)
        name = (workflow_data or {}).get("name") if isinstance(workflow_data, dict) else None
        return f"New {name} Session" if name else ""
    for run in runs:
        if session_type == "team" and run.get("agent_id"):
            continue
        for message in run.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "user" and message.get("content"):
                return message["content"]
        if run.get("input") is not None:
            return stringify_input(run["input"])
    return ""


def session_type_of(row) -> str:
    """The stored session_type, else inferred from component ids (agno's detect_session_type)."""
    if row.session_type:
        return row.session_type
    if row.agent_id:
        return "agent"
    if row.team_id:
        return "team"
    if row.workflow_id:
        return "workflow"
    return "agent"


def _agent_metadata(metadata: Any, agent_data: Any) -> dict | None:
    sdk = (agent_data.get("sdk") or agent_data.get("framework")) if isinstance(agent_data, dict) else None
    if isinstance(sdk, str) and sdk:
        return {**(metadata or {}), "sdk": sdk}
    return dict(metadata) if metadata is not None else None


def chat_history(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """User and assistant messages of the top-level runs, as agno's get_chat_history returns them."""
    history = []
    for run in runs:
        if run.get("parent_run_id") is not None:
            continue
        for message in run.get("messages") or []:
            if not isinstance(message, dict) or message.get("from_history"):
                continue
            if message.get("role") in ("system", "tool"):
                continue
            history.append(message)
    return history


# --- sessions ----------------------------------------------------------------------------


def session_list_item(row, name: str) -> dict[str, Any]:
    """An entry of GET /sessions (SessionSchema, nulls omitted)."""
    data = row.session_data if isinstance(row.session_data, dict) else {}
    metrics = data.get("session_metrics")
    session_type = session_type_of(row)
    created_at = timestamp(row.created_at or 0)
    updated_at = timestamp(row.updated_at) if row.updated_at is not None else created_at
    return without_nulls(
        {
            "session_id": row.session_id,
            "session_name": name,
            "session_state": data.get("session_state"),
            "created_at": created_at,
            "updated_at": updated_at,
            "session_type": session_type,
            "user_id": row.user_id,
            "agent_id": row.agent_id,
            "team_id": row.team_id,
            "workflow_id": row.workflow_id,
            "session_summary": row.summary,
            "metrics": metrics,
            "total_tokens": metrics.get("total_tokens") if isinstance(metrics, dict) else None,
            "metadata": _agent_metadata(row.metadata_, row.agent_data) if session_type == "agent" else row.metadata_,
        }
    )


def runs_of_kind(session_type: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs agno keeps when it loads a session as ``session_type``.

    Agent and team sessions keep agent and team runs; workflow sessions keep workflow runs only
    (their steps' agent and team runs share the session id but are not the session's own).
    """
    if session_type == "workflow":
        return [run for run in runs if _run_kind(run) == "workflow"]
    return [run for run in runs if "agent_id" in run or "team_id" in run]


def _run_kind(run: dict[str, Any]) -> str:
    if run.get("agent_id") or run.get("agent_name"):
        return "agent"
    if run.get("team_id") or run.get("team_name"):
        return "team"
    return "workflow"


def session_detail(row, runs: list[dict[str, Any]], session_type: str, *, omit_nulls: bool) -> dict[str, Any]:
    """The agent, team or workflow detail body of one session, as agno loads it as ``session_type``."""
    runs = runs_of_kind(session_type, runs)
    data = row.session_data if isinstance(row.session_data, dict) else None
    name = stored_name(data)
    if name is None:
        name = derived_name(session_type, row.workflow_data, runs)
    created_at = timestamp(row.created_at) if row.created_at else None
    updated_at = timestamp(row.updated_at) if row.updated_at else created_at
    state = data.get("session_state") if data else None
    metrics = data.get("session_metrics", {}) if data else None
    total_tokens = metrics.get("total_tokens") if data and isinstance(metrics, dict) else None
    summary = row.summary if row.summary else None
    if session_type == "agent":
        body = {
            "user_id": row.user_id,
            "agent_session_id": row.session_id,
            "session_id": row.session_id,
            "session_name": name,
            "session_summary": summary,
            "session_state": state,
            "agent_id": row.agent_id or None,
            "total_tokens": total_tokens,
            "agent_data": row.agent_data,
            "metrics": metrics,
            "metadata": _agent_metadata(row.metadata_, row.agent_data),
            "chat_history": chat_history(runs),
            "created_at": created_at,
            "updated_at": updated_at,
        }
    elif session_type == "team":
        body = {
            "session_id": row.session_id,
            "session_name": name,
            "user_id": row.user_id,
            "team_id": row.team_id,
            "session_summary": summary,
            "session_state": state,
            "metrics": metrics,
            "team_data": row.team_data,
            "metadata": row.metadata_,
            "chat_history": chat_history(runs),
            "created_at": created_at,
            "updated_at": updated_at,
            "total_tokens": total_tokens,
        }
    else:
        # agno's WorkflowSession turns missing session_data, workflow_data and metadata into {}, and
        # never stores workflow_name, so AgentOS always reports it as null.
        body = {
            "user_id": row.user_id,
            "workflow_id": row.workflow_id,
            "workflow_name": None,
            "session_id": row.session_id,
            "session_name": name,
            "session_data": _or_empty(row.session_data),
            "session_state": state,
            "workflow_data": _or_empty(row.workflow_data),
            "metadata": _or_empty(row.metadata_),
            "created_at": created_at,
            "updated_at": updated_at,
        }
    return without_nulls(body) if omit_nulls else body


def _or_empty(value: Any) -> Any:
    return {} if value is None else value


# --- runs -----------------------------------------------------------------------------------


def _run_input(run: dict[str, Any], *, workflow: bool = False) -> str:
    if not workflow and isinstance(run.get("input"), dict) and run["input"].get("input_content") is not None:
        return stringify_input(run["input"]["input_content"])
    if workflow:
        if run.get("input") is not None:
            return stringify_input(run["input"])
        executor_runs = run.get("step_executor_runs") or []
        if executor_runs:
            for message in reversed(executor_runs[0].get("messages", []) or []):
                if message.get("role") == "user":
                    return message.get("content", "")
    for message in reversed(run.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message.get("content", "")
    return ""


def _input_media(run: dict[str, Any]) -> dict[str, list]:
    media: dict[str, list] = {"images": [], "videos": [], "audios": [], "files": []}
    run_input = run.get("input", {})
    if isinstance(run_input, dict):
        for kind in media:
            media[kind].extend(run_input.get(kind, []) or [])
    return media


def _lineage(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "forked_from_run_id": run.get("forked_from_run_id"),
        "forked_from_message_index": run.get("forked_from_message_index"),
        "forked_from_session_id": run.get("forked_from_session_id"),
        "regenerated_from": run.get("regenerated_from"),
        "last_checkpoint_at_message_index": run.get("last_checkpoint_at_message_index"),
    }


def agent_run(run: dict[str, Any], *, agent_data: Any = None) -> dict[str, Any]:
    """RunSchema.from_dict, field for field."""
    return {
        "run_id": run.get("run_id", ""),
        "parent_run_id": run.get("parent_run_id", ""),
        "agent_id": run.get("agent_id", ""),
        "user_id": run.get("user_id", ""),
        "status": run.get("status"),
        "cancellation_stage": run.get("cancellation_stage"),
        "run_input": _run_input(run),
        "content": run.get("content", ""),
        "run_response_format": "text" if run.get("content_type", "str") == "str" else "json",
        "reasoning_content": run.get("reasoning_content", ""),
        "reasoning_steps": run.get("reasoning_steps", []),
        "metrics": run.get("metrics", {}),
        "metadata": _agent_metadata(run.get("metadata"), agent_data),
        "messages": list(run["messages"]) if run.get("messages") else None,
        "tools": list(run["tools"]) if run.get("tools") else None,
        "events": list(run["events"]) if run.get("events") else None,
        "created_at": timestamp(run.get("created_at")),
        "references": run.get("references", []),
        "citations": run.get("citations"),
        "reasoning_messages": run.get("reasoning_messages", []),
        "session_state": run.get("session_state"),
        "images": run.get("images", []),
        "videos": run.get("videos", []),
        "audio": run.get("audio", []),
        "files": run.get("files", []),
        "response_audio": run.get("response_audio"),
        "input_media": _input_media(run),
        "followups": run.get("followups"),
        **_lineage(run),
    }


def team_run(run: dict[str, Any]) -> dict[str, Any]:
    """TeamRunSchema.from_dict, field for field."""
    return {
        "run_id": run.get("run_id", ""),
        "parent_run_id": run.get("parent_run_id", ""),
        "team_id": run.get("team_id", ""),
        "user_id": run.get("user_id"),
        "status": run.get("status"),
        "cancellation_stage": run.get("cancellation_stage"),
        "content": run.get("content", ""),
        "reasoning_content": run.get("reasoning_content", ""),
        "reasoning_steps": run.get("reasoning_steps", []),
        "run_input": _run_input(run),
        "run_response_format": "text" if run.get("content_type", "str") == "str" else "json",
        "metrics": run.get("metrics", {}),
        "tools": list(run["tools"]) if run.get("tools") else None,
        "messages": list(run["messages"]) if run.get("messages") else None,
        "events": list(run["events"]) if run.get("events") else None,
        "created_at": timestamp(run.get("created_at")),
        "references": run.get("references", []),
        "citations": run.get("citations"),
        "reasoning_messages": run.get("reasoning_messages", []),
        "session_state": run.get("session_state"),
        "input_media": _input_media(run),
        "images": run.get("images", []),
        "videos": run.get("videos", []),
        "audio": run.get("audio", []),
        "files": run.get("files", []),
        "response_audio": run.get("response_audio"),
        "followups": run.get("followups"),
        **_lineage(run),
    }


def workflow_run(run: dict[str, Any]) -> dict[str, Any]:
    """WorkflowRunSchema.from_dict, field for field."""
    return {
        "run_id": run.get("run_id", ""),
        "run_input": _run_input(run, workflow=True),
        "events": run.get("events", []),
        "workflow_id": run.get("workflow_id", ""),
        "user_id": run.get("user_id", ""),
        "content": run.get("content", ""),
        "content_type": run.get("content_type", ""),
        "status": run.get("status", ""),
        "cancellation_stage": run.get("cancellation_stage"),
        "step_results": run.get("step_results", []),
        "step_executor_runs": run.get("step_executor_runs", []),
        "step_requirements": run.get("step_requirements"),
        "pause_kind": run.get("pause_kind"),
        "paused_step_name": run.get("paused_step_name"),
        "paused_step_index": run.get("paused_step_index"),
        "metrics": run.get("metrics", {}),
        "created_at": timestamp(run.get("created_at")),
        "reasoning_content": run.get("reasoning_content", ""),
        "reasoning_steps": run.get("reasoning_steps", []),
        "references": run.get("references", []),
        "citations": run.get("citations"),
        "reasoning_messages": run.get("reasoning_messages", []),
        "images": run.get("images", []),
        "videos": run.get("videos", []),
        "audio": run.get("audio", []),
        "files": run.get("files", []),
        "response_audio": run.get("response_audio"),
    }


def session_run(run: dict[str, Any], session_type: str, *, session_row=None) -> dict[str, Any] | None:
    """A run of a session listing, shaped by the run's own kind (AgentOS's classify_session_run)."""
    if session_type == "agent":
        agent_data = None
        if session_row is not None and run.get("agent_id") in (None, session_row.agent_id):
            agent_data = session_row.agent_data
        return agent_run(run, agent_data=agent_data)
    if session_type == "team":
        if run.get("agent_id") is not None:
            return agent_run(run)
        if run.get("team_id") is not None:
            return team_run(run)
        return None
    if run.get("workflow_id") is not None:
        return workflow_run(run)
    if run.get("team_id") is not None:
        return team_run(run)
    return agent_run(run)


def single_run(run: dict[str, Any], session_row) -> dict[str, Any]:
    """GET /sessions/{id}/runs/{run_id}: shaped by the ids the run carries."""
    if run.get("workflow_id") is not None:
        return workflow_run(run)
    if run.get("team_id") is not None:
        return team_run(run)
    agent_data = None
    if session_type_of(session_row) == "agent" and run.get("agent_id") in (None, session_row.agent_id):
        agent_data = session_row.agent_data
    return agent_run(run, agent_data=agent_data)


def _preview(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:RUN_PREVIEW_CHARS]


def run_preview(run_body: dict[str, Any]) -> dict[str, Any]:
    """SessionRunPreviewSchema.from_run over an already shaped run (nulls omitted)."""
    return without_nulls(
        {
            "run_id": run_body["run_id"],
            "parent_run_id": run_body.get("parent_run_id"),
            "agent_id": run_body.get("agent_id"),
            "team_id": run_body.get("team_id"),
            "workflow_id": run_body.get("workflow_id"),
            "user_id": run_body.get("user_id"),
            "status": run_body.get("status"),
            "run_input": _preview(run_body.get("run_input")),
            "content_preview": _preview(run_body.get("content")),
            "created_at": run_body.get("created_at"),
        }
    )


def etag(row, runs: list[dict[str, Any]]) -> str:
    """The strong ETag of a session's stored state: its row and its runs (any change to either
    changes it; the representation asked for does not)."""
    state = [list(row), runs]
    try:
        canonical = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses (a lone surrogate stored by an agent)
        canonical = json.dumps(state, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
    return f'"{hashlib.blake2b(canonical, digest_size=16).hexdigest()}"'


def etag_matches(header: str | None, current: str, *, weak: bool) -> bool:
    """Whether an If-Match (strong comparison) or If-None-Match (``weak=True``) header names
    ``current`` (RFC 9110, 13.1.1 and 13.1.2)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if weak:
            tag = tag.removeprefix("W/")
        if tag == current:
            return True
    return False
