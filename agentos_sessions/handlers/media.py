"""Media tag: the run media agno offloaded to a media storage, as AgentOS 3.1.10 serves it
(agno/os/routers/media/media.py), streamed, with byte ranges and an ETag."""

from __future__ import annotations

import logging
import mimetypes
import re

import anyio.to_thread
from connexion import request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from agentos_sessions.errors import ApiError, NotFound, RangeNotSatisfiable, ServiceUnavailable
from agentos_sessions.handlers import views
from agentos_sessions.handlers.targets import NOT_CONFIGURED, media_storage_of, resolve_database
from agentos_sessions.persistence import media, store
from agentos_sessions.persistence.database import Database
from agentos_sessions.persistence.media import ByteRange, MediaStorage, StoredObject, references
from agentos_sessions.security import current_caller

__all__ = ["get_session_media"]

logger = logging.getLogger("agentos_sessions")

# A type/subtype of RFC 9110 tokens and nothing else; the rest is octet-stream (as AgentOS).
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Content types a browser can run on the API's origin: sent as an octet-stream attachment. AgentOS's
# list, and (not in it) every XML type (+xml: RSS, Atom, MathML, ... render as XML documents, where
# an XHTML <script> runs), XSL and multipart.
_ACTIVE_CONTENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/xml",
        "application/xml",
        "text/xsl",
    }
)
_RANGE = re.compile(r"\s*bytes\s*=\s*(?:(\d{1,18})\s*-\s*(\d{0,18})|-\s*(\d{1,18}))\s*", re.IGNORECASE)


async def get_session_media(
    *, session_id, storage_key, type=None, user_id=None, db_id=None, table=None, redirect=False
):
    """One object of a session's media: its bytes (a range of them), or a redirect to a fresh
    signed URL; the key must be one the session's runs name, stored on the configured backend."""
    storages: dict[str, MediaStorage | None] = request.state.media_storages
    if not any(storages.values()):
        raise ServiceUnavailable(NOT_CONFIGURED)
    user_id = current_caller().acting_for(user_id)
    database = resolve_database(db_id, table)
    storage = media_storage_of(database)
    reference = await _reference(database, storage, session_id, storage_key, type, user_id)
    if redirect and (url := await _signed_url(storage, storage_key)):
        return RedirectResponse(url)
    headers = _headers(reference, storage_key)
    tag = headers.get("ETag")
    if tag and views.etag_matches(request.headers.get("if-none-match"), tag, weak=True):
        return Response(status_code=304, headers={"ETag": tag})
    byte_range = _byte_range(request.headers.get("range"), request.headers.get("if-range"), tag)
    stored, first = await anyio.to_thread.run_sync(_open, storage, storage_key, byte_range)
    headers["Content-Length"] = str(stored.length)
    status = 200
    if stored.partial:
        status = 206
        headers["Content-Range"] = f"bytes {stored.start}-{stored.end}/{stored.size}"
    if first is not None:
        return Response(first, status_code=status, headers=headers)
    return _StreamedObject(stored, status_code=status, headers=headers)


async def _reference(database: Database, storage: MediaStorage, session_id, storage_key, session_type, user_id):
    """The session's reference to ``storage_key``, with AgentOS's 404s when there is none to serve."""
    found, reference = await database.run(
        _find_reference, session_id, storage_key, session_type=session_type, user_id=user_id
    )
    if not found:
        raise NotFound(f"Session '{session_id}' not found")
    if reference is None:
        raise NotFound("Media not found in this session")
    if not references.served_by(reference, storage.settings):
        raise NotFound("Media is not served by the configured storage backend")
    return reference


def _find_reference(db, m, session_id, storage_key, *, session_type, user_id):
    """Whether the session exists (for ``user_id``), and its runs' reference to the key, if any:
    only the runs that mention the key are read, as runs of ``session_type`` (as AgentOS reads
    them: the type asked for, else the stored one)."""
    row = store.get_session(db, m, session_id, user_id=user_id)
    if row is None:
        return False, None
    runs = store.runs_holding(db, m, session_id, storage_key)
    workflow = (session_type or views.session_type_of(row)) == "workflow"
    return True, references.find_reference(runs, storage_key, workflow=workflow)


async def _signed_url(storage: MediaStorage, storage_key: str) -> str | None:
    """A URL made from the key alone (never the one a run stored, which would make this an open
    redirect), if the backend can make one a browser can follow."""
    try:
        url = await anyio.to_thread.run_sync(storage.signed_url, storage_key)
    except Exception:
        logger.exception("Could not sign a URL for media %r", storage_key)
        raise ApiError("Failed to generate media URL") from None
    return url if url and url.startswith(("http://", "https://")) else None


def _headers(reference: dict, storage_key: str) -> dict[str, str]:
    """The content headers: the stored type unless a browser could run it on our origin, no
    sniffing, ranges accepted, and the content hash as the ETag when agno recorded one."""
    content_type = reference.get("mime_type")
    if not isinstance(content_type, str) or not content_type:
        guessed, encoding = mimetypes.guess_type(storage_key)
        # x.png.gz is not an image/png: the bytes are compressed.
        content_type = guessed if guessed and not encoding else "application/octet-stream"
    content_type = content_type.split(";")[0].strip().lower()
    if not _MIME_TYPE.fullmatch(content_type):
        content_type = "application/octet-stream"
    headers = {"Content-Type": content_type, "X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes"}
    if content_type in _ACTIVE_CONTENT_TYPES or content_type.endswith("+xml") or content_type.startswith("multipart/"):
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Disposition"] = "attachment"
    content_hash = reference.get("content_hash")
    if isinstance(content_hash, str) and re.fullmatch(r"[0-9a-f]{64}", content_hash):
        headers["ETag"] = f'"{content_hash}"'
    return headers


def _byte_range(header: str | None, if_range: str | None, tag: str | None) -> ByteRange | None:
    """The one byte range asked for, or None for the whole object: no Range, one that cannot be
    parsed or names several ranges (RFC 9110 lets a server ignore those), or an If-Range that
    does not name the current ETag."""
    if header is None or (if_range is not None and (tag is None or if_range.strip() != tag)):
        return None
    found = _RANGE.fullmatch(header)
    if not found:
        return None
    first, last, suffix = found.groups()
    if suffix is not None:
        return ByteRange(suffix=int(suffix))
    if last and int(last) < int(first):
        return None
    return ByteRange(first=int(first), last=int(last) if last else None)


def _open(storage: MediaStorage, key: str, byte_range: ByteRange | None) -> tuple[StoredObject, bytes | None]:
    """The object opened, and its bytes when they fit in one chunk (read at once: one thread hop
    for most media); in a worker thread."""
    try:
        stored = storage.open(key, byte_range)
        if stored.length > media.CHUNK_BYTES:
            return stored, None
        try:
            return stored, _read_all(stored)
        finally:
            stored.close()
    except media.MediaNotFound:
        raise NotFound("Media object not found") from None
    except media.RangeNotSatisfiable as error:
        raise RangeNotSatisfiable(error.size) from None
    except media.MediaUnavailable as error:
        logger.warning("Media storage: %s", error)
        raise ServiceUnavailable("Media storage is unavailable; try again shortly", retry_after=1) from None


def _read_all(stored: StoredObject) -> bytes:
    parts = []
    while chunk := stored.read():
        parts.append(chunk)
    return b"".join(parts)


class _StreamedObject(StreamingResponse):
    """The object's bytes a chunk at a time, each read in a worker thread: what a request holds
    is one chunk, whatever the object's size. The object is let go of when the response ends,
    whichever way: sent, failed, or cancelled by a client that went away. A read that fails once
    the status is sent ends the response early (the client sees fewer bytes than
    Content-Length)."""

    def __init__(self, stored: StoredObject, *, status_code: int, headers: dict[str, str]):
        super().__init__(_chunks(stored), status_code=status_code, headers=headers)
        self.stored = stored

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: a cancelled response must still close the file or the storage's connection.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.stored.close)


async def _chunks(stored: StoredObject):
    try:
        while chunk := await anyio.to_thread.run_sync(stored.read):
            yield chunk
    except media.MediaUnavailable as error:
        logger.warning("Media storage failed mid-response: %s", error)
        raise
