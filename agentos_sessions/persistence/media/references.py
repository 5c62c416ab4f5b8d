"""The media references agno 3.1.10 writes into stored runs, found where agno looks for them.

A run whose media agno offloaded to a media storage keeps, in place of each object's bytes, a
``media_reference`` (``agno.media.reference.MediaReference``: ``storage_key``, ``session_id``,
``storage_backend``, ``bucket``, ``region``, ``mime_type``, ``size``, ``content_hash``, ...).
:func:`media_of_run` walks a stored run dict as agno's ``iter_run_media`` walks a run object
(``agno/utils/media_offload.py``): the run's input, messages, outputs, team members' runs and
workflow steps. A reference anywhere else (say, in a tool's result) is not one agno serves.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from agentos_sessions.settings import MediaStorageSettings

Reference = dict[str, Any]

# The media lists of a message, a run and a workflow step; a run's input says "audios".
_MEDIA_LISTS = ("images", "videos", "audio", "files")
_INPUT_MEDIA_LISTS = ("images", "videos", "audios", "files")


def references_of_run(run: Any, *, workflow: bool = False) -> Iterator[Reference]:
    """The media references of a stored run (of a workflow session's, if ``workflow``), in
    agno's order: one per media object that has one with a storage key."""
    for media in media_of_run(run, workflow=workflow):
        reference = media.get("media_reference")
        if (
            isinstance(reference, dict)
            and isinstance(reference.get("storage_key"), str)
            and reference["storage_key"]
            and isinstance(reference.get("storage_backend"), str)
        ):
            yield reference


def media_of_run(run: Any, *, workflow: bool = False, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every media object (a dict) of a stored run, as agno's ``iter_run_media`` finds them on
    the run agno reads back: an agent's or a team's run (``RunOutput``, ``TeamRunOutput``) has
    an input with media lists, messages and members' runs; a workflow's (``WorkflowRunOutput``)
    keeps its input as the caller gave it, where agno looks for nothing, and has steps."""
    if not isinstance(run, dict) or depth > _MAX_DEPTH:
        return
    if not workflow:
        yield from _listed(run.get("input"), _INPUT_MEDIA_LISTS)
        for message in _dicts(run.get("messages")):
            yield from _listed(message, _MEDIA_LISTS)
            if isinstance(message.get("audio_output"), dict):
                yield message["audio_output"]
    yield from _listed(run, _MEDIA_LISTS)
    if isinstance(run.get("response_audio"), dict):
        yield run["response_audio"]
    if not workflow:
        for collection in ("additional_input", "reasoning_messages"):
            for message in _dicts(run.get(collection)):
                yield from _listed(message, _MEDIA_LISTS)
        for member_run in _dicts(run.get("member_responses")):
            yield from media_of_run(member_run, depth=depth + 1)
        return
    for step in _step_outputs(run, depth):
        yield from _listed(step, _MEDIA_LISTS)
    for executor_run in _dicts(run.get("step_executor_runs")):
        yield from media_of_run(executor_run, workflow=_is_workflow_run(executor_run), depth=depth + 1)
    yield from media_of_run(run.get("workflow_agent_run"), depth=depth + 1)


# Runs within runs (members, a workflow's executors) and steps within steps: far deeper than
# agno nests them, and a stored run nested deeper cannot exhaust the stack (it is read no further).
_MAX_DEPTH = 32


def _is_workflow_run(run: dict[str, Any]) -> bool:
    """How agno reads a workflow's executor run back: a team's or an agent's run if it names one,
    else a workflow's if it names a workflow, else an agent's."""
    if any(name in run for name in ("team_id", "team_name", "agent_id", "agent_name")):
        return False
    return "workflow_id" in run or "workflow_name" in run


def _step_outputs(run: dict[str, Any], depth: int) -> Iterator[dict[str, Any]]:
    """A workflow run's steps (agno's ``iter_step_outputs``): its step results and the steps
    nested in them, and the inputs and outputs of the steps a paused run waits on."""
    for result in run.get("step_results") or ():
        yield from _steps(result if isinstance(result, list) else [result], depth)
    for requirement in _dicts(run.get("step_requirements")):
        step_input = requirement.get("step_input")
        if isinstance(step_input, dict):
            yield step_input
            previous = step_input.get("previous_step_outputs")
            if isinstance(previous, dict):
                yield from _steps(list(previous.values()), depth)
        yield from _steps([requirement.get("step_output")], depth)


def _steps(outputs: Iterable[Any], depth: int) -> Iterator[dict[str, Any]]:
    if depth > _MAX_DEPTH:
        return
    for output in _dicts(outputs):
        yield output
        yield from _steps(output.get("steps") or (), depth + 1)


def _listed(holder: Any, names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    if isinstance(holder, dict):
        for name in names:
            yield from _dicts(holder.get(name))


def _dicts(items: Any) -> Iterator[dict[str, Any]]:
    if isinstance(items, (list, tuple)):
        yield from (item for item in items if isinstance(item, dict))


def find_reference(runs: Iterable[Any], storage_key: str, *, workflow: bool = False) -> Reference | None:
    """The first reference to ``storage_key`` in these runs (of a workflow session's, if
    ``workflow``), or None (agno's ``_find_media_reference``)."""
    for run in runs:
        for reference in references_of_run(run, workflow=workflow):
            if reference["storage_key"] == storage_key:
                return reference
    return None


def session_media_keys(
    runs: Iterable[Any], session_id: str, storage: MediaStorageSettings, *, workflow: bool = False
) -> list[str]:
    """The storage keys of the objects a session's runs (a workflow session's, if ``workflow``)
    uploaded to ``storage`` (agno's ``session_media_keys``): a reference a run inherited from
    another session is left alone."""
    return [
        reference["storage_key"]
        for run in runs
        for reference in references_of_run(run, workflow=workflow)
        if reference.get("session_id") == session_id and served_by(reference, storage)
    ]


def served_by(reference: Reference, storage: MediaStorageSettings) -> bool:
    """Whether ``storage`` is the backend that wrote the reference (agno's
    ``reference_matches_storage``): the same backend and bucket, and the same region when both
    name one."""
    if reference.get("storage_backend") != storage.backend or reference.get("bucket") != storage.bucket:
        return False
    region = reference.get("region")
    return not (region and storage.region) or region == storage.region


def forked_key(reference: Reference, session_id: str, prefix: str) -> str:
    """A new key for a copy of the referenced object made for session ``session_id``: agno's
    ``{session id}-{media id}-{hash}`` with the extension kept, and a part of this copy's own, so
    that no other copy (another attempt at the same fork) ever has the same key."""
    tail = reference["storage_key"].rsplit("/", 1)[-1]
    extension = tail.rsplit(".", 1)[1] if "." in tail else ""
    extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:16]
    digest = reference.get("content_hash")
    digest = digest if isinstance(digest, str) else hashlib.sha256(reference["storage_key"].encode()).hexdigest()
    media_id = f"{session_id[:120]}-{reference.get('media_id') or 'media'}-{uuid.uuid4().hex[:8]}-{digest[:16]}"
    media_id = re.sub(r"[^A-Za-z0-9._-]", "_", media_id).strip("._") or "media"
    return f"{prefix}{media_id}{'.' + extension if extension else ''}"
