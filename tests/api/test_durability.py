"""Durability: every write the server acknowledged survives the server being killed at any moment.

Clients write through the real server (`agentos-sessions serve`) while it is killed with SIGKILL
at random moments and started again on the same database. After each start the database is read
directly and through the API: each session holds exactly what its last acknowledged write left,
or what the write whose answer the kill cut off would have left; never a mix of two writes, never
a part of one. On SQLite that is WAL with synchronous=FULL (persistence/database.py); `tox -e pg`
runs the same test on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import pytest

from agentos_sessions.persistence.store import (
    merge_patch,  # RFC 7396, checked on its examples in tests/unit/test_store.py
)
from agentos_sessions.settings import DatabaseSettings
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.servers import Server, running_server, started_server

SEED = 20260604
KILLS = 6
CLIENTS = 6
SESSIONS_PER_CLIENT = 3
MERGE = {"Content-Type": "application/merge-patch+json"}
# A write's marker: the session it writes and its number; the name every write of ours sets.
MARKER = re.compile(r"c\d+-s\d+-w\d+")

# What a write leaves in a session: its name, state and metadata (None: no such session).
Content = tuple[Any, Any, Any] | None


@dataclass
class Ledger:
    """What each session must hold: what its last acknowledged write left (or what was found
    there after the last start), and, if the kill cut off the answer to a later write, what that
    write leaves if it was applied."""

    holds: dict[str, Content]
    unanswered: dict[str, Content] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)


class Write(NamedTuple):
    """One write: its request, the status that acknowledges it and what it leaves in the session."""

    kind: str
    method: str
    path: str
    options: dict
    status: int
    after: Content


@pytest.mark.slow
def test_every_acknowledged_write_survives_the_server_being_killed(tmp_path):
    print(f"seed {SEED}")  # shown with the failure
    rng = random.Random(SEED)
    database = fresh_database(tmp_path)
    sessions = [f"c{client}-s{index}" for client in range(CLIENTS) for index in range(SESSIONS_PER_CLIENT)]
    ledger = Ledger(holds=dict.fromkeys(sessions))
    started = time.perf_counter()
    for _ in range(KILLS):
        with started_server(database, tmp_path, "--no-access-log") as server:
            _check_stored(database, server.url, ledger)
            asyncio.run(_write_until_killed(server, ledger, rng, seconds=rng.uniform(0.05, 0.4)))
            server.process.wait(timeout=10)
        assert server.process.returncode == -9
    with running_server(database, tmp_path, "--no-access-log") as url:
        _check_stored(database, url, ledger)

    counts = ledger.counts
    # Writes were acknowledged, and the kills cut off writes in flight: the checks had work to do.
    assert counts["acknowledged"] > 0
    assert counts["unanswered"] > 0
    assert counts["writes"] == counts["acknowledged"] + counts["unanswered"]
    kinds = ", ".join(f"{counts[kind]} {kind}" for kind in ("create", "replace", "merge", "rename", "delete"))
    print(
        f"\ndurability: {KILLS} kills in {time.perf_counter() - started:.1f} s, {counts['writes']} writes, "
        f"{counts['acknowledged']} acknowledged ({kinds}), {counts['unanswered']} cut off by a kill "
        f"({counts['applied']} of them applied), 5xx 0"
    )


async def _write_until_killed(server: Server, ledger: Ledger, rng: random.Random, *, seconds: float) -> None:
    """Each client writes to its own sessions, one write at a time, until the server is killed
    ``seconds`` in; a write then in flight may or may not have been applied."""
    killed = False
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

        async def client(number: int) -> None:
            while not killed:
                session_id = f"c{number}-s{rng.randrange(SESSIONS_PER_CLIENT)}"
                ledger.counts["writes"] += 1
                write = _next_write(session_id, ledger.holds[session_id], ledger.counts["writes"], rng)
                request = f"{write.method} {write.path}"
                try:
                    response = await http.request(write.method, write.path, **write.options)
                except httpx.TransportError as error:
                    assert killed, f"{request} got no answer from a running server: {error!r}\n{_tail(server)}"
                    ledger.unanswered[session_id] = write.after
                    ledger.counts["unanswered"] += 1
                    return
                assert response.status_code == write.status, f"{request}: {response.text[:500]}\n{_tail(server)}"
                if write.after is not None:
                    assert _fingerprint(_answered(response.json())) == _fingerprint(write.after), request
                ledger.holds[session_id] = write.after
                ledger.counts["acknowledged"] += 1
                ledger.counts[write.kind] += 1

        clients = [asyncio.create_task(client(number)) for number in range(CLIENTS)]
        await asyncio.sleep(seconds)
        killed = True
        server.process.kill()
        await asyncio.gather(*clients)


def _next_write(session_id: str, before: Content, number: int, rng: random.Random) -> Write:
    """A write to the session, picked at random; a create if there is no such session."""
    marker = f"{session_id}-w{number}"
    state, metadata = _payload(marker, rng)
    path = f"/sessions/{session_id}"
    if before is None:
        body = {"session_id": session_id, "session_name": marker, "session_state": state, "metadata": metadata}
        return Write("create", "POST", "/sessions", {"json": body}, 201, (marker, state, metadata))
    _, before_state, before_metadata = before
    kind = rng.choices(("replace", "merge", "rename", "delete"), weights=(3, 3, 2, 1))[0]
    if kind == "replace":
        body = {"session_name": marker, "session_state": state, "metadata": metadata}
        return Write("replace", "PATCH", path, {"json": body}, 200, (marker, state, metadata))
    if kind == "merge":
        # Sets the payload's keys, adds a key and removes one, keeping the rest of the state.
        added, removed = rng.sample(range(4), 2)
        state |= {f"k{added}": number, f"k{removed}": None}
        patch = {"session_name": marker, "session_state": state, "metadata": metadata}
        after = (marker, merge_patch(before_state, state), merge_patch(before_metadata, metadata))
        return Write("merge", "PATCH", path, {"content": json.dumps(patch), "headers": MERGE}, 200, after)
    if kind == "rename":
        after = (marker, before_state, before_metadata)
        return Write("rename", "POST", f"{path}/rename", {"json": {"session_name": marker}}, 200, after)
    return Write("delete", "DELETE", path, {}, 204, None)


def _payload(marker: str, rng: random.Random) -> tuple[dict, dict]:
    """A state of 8 to 64 KB that checks itself (a random blob and its SHA-256), and metadata
    that names the same write."""
    blob = rng.randbytes(rng.randrange(4_000, 32_000)).hex()
    digest = hashlib.sha256(blob.encode()).hexdigest()
    return {"marker": marker, "blob": blob, "sha256": digest}, {"marker": marker, "sha256": digest}


def _check_stored(database: DatabaseSettings, url: str, ledger: Ledger) -> None:
    """The database, read directly and through the API, holds what the ledger allows, whole; the
    ledger then records what it holds (each cut-off write is now known to be applied or not)."""
    # Opened for the check alone: the server started after a kill must be the first to open a
    # SQLite file again, and so recover its WAL, as it would in production.
    direct = DirectDatabase(database)
    try:
        with direct.unit_of_work() as db:
            stored = {row.session_id: _stored(row) for row in db.execute(direct.select_sessions())}
        if direct.engine.dialect.name == "sqlite":
            with direct.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
    finally:
        direct.dispose()
    assert set(stored) <= set(ledger.holds), f"sessions nobody wrote: {sorted(set(stored) - set(ledger.holds))}"
    for session_id, acknowledged in ledger.holds.items():
        found = stored.get(session_id)
        whole = found is None or _is_whole(found)
        assert whole, f"{session_id} holds a part of a write, or parts of two: {_fingerprint(found)}"
        allowed = [acknowledged]
        if session_id in ledger.unanswered:
            allowed.append(ledger.unanswered.pop(session_id))
            ledger.counts["applied"] += _fingerprint(found) == _fingerprint(allowed[1])
        assert _fingerprint(found) in [_fingerprint(content) for content in allowed], (
            f"{session_id} lost its last acknowledged write (or holds one nobody made)"
        )
        ledger.holds[session_id] = found

    with httpx.Client(base_url=url) as http:
        for session_id, content in ledger.holds.items():
            response = http.get(f"/sessions/{session_id}")
            if content is None:
                assert response.status_code == 404, session_id
            else:
                assert response.status_code == 200, session_id
                assert _fingerprint(_answered(response.json())) == _fingerprint(content), session_id
        listed = http.get("/sessions", params={"limit": 1}).json()["meta"]["total_count"]
    assert listed == sum(content is not None for content in ledger.holds.values())


def _stored(row) -> Content:
    """A session's content as its row holds it."""
    data = row.session_data if isinstance(row.session_data, dict) else {}
    return data.get("session_name"), data.get("session_state"), row.metadata_


def _answered(body: dict) -> Content:
    """A session's content as the API answers it."""
    return body["session_name"], body["session_state"], body["metadata"]


def _is_whole(content: Content) -> bool:
    """Whether the content is whole writes of ours: a marker for a name, and state and metadata
    from one write, the blob matching its checksum (a rename sets the name alone)."""
    name, state, metadata = content
    if not (isinstance(name, str) and isinstance(state, dict) and isinstance(metadata, dict)):
        return False
    blob = state.get("blob")
    return (
        MARKER.fullmatch(name) is not None
        and isinstance(blob, str)
        and hashlib.sha256(blob.encode()).hexdigest() == state.get("sha256") == metadata.get("sha256")
        and state.get("marker") == metadata.get("marker")
    )


def _fingerprint(content: Content) -> str:
    """The content in short, for comparisons whose failures stay readable: the whole of it goes
    into a hash, the markers are shown."""
    if content is None:
        return "absent"
    name, state, metadata = content
    written = [value.get("marker") if isinstance(value, dict) else None for value in (state, metadata)]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    return f"name {name}, state of {written[0]}, metadata of {written[1]}, #{digest}"


def _tail(server: Server) -> str:
    return server.log.read_text()[-3000:]
