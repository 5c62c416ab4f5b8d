"""Many clients writing one session at once, through two server processes on one database.

With If-Match or a merge patch no update is lost; with neither, the session holds exactly one
of the acknowledged writes, never a mix of two; and nothing answers 5xx. SQLite by default (two
processes contending for its write lock), PostgreSQL under `tox -e pg` (row locks).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from contextlib import ExitStack

import httpx
import pytest

from tests.api.helpers import stored_session
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.servers import running_server

# Starts server processes: left out by `tox -e quick`.
pytestmark = pytest.mark.slow

CLIENTS = 12
WRITES = 6  # per client
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def servers(tmp_path):
    """Two `serve` processes on one fresh database, and direct access to that database."""
    database = fresh_database(tmp_path)
    with ExitStack() as stack:
        urls = [stack.enter_context(running_server(database, tmp_path, "--no-access-log")) for _ in range(2)]
        direct = DirectDatabase(database)
        stack.callback(direct.dispose)
        yield urls, direct


def _client() -> httpx.AsyncClient:
    # Idle connections expire before uvicorn's 5 s keep-alive can close one under a request.
    return httpx.AsyncClient(timeout=30, limits=httpx.Limits(keepalive_expiry=1))


async def _gather(work, count: int) -> list:
    return await asyncio.gather(*(work(n) for n in range(count)))


def _state(direct, session_id: str):
    row = stored_session(direct, session_id)
    return (row.session_data or {}).get("session_state"), row.metadata_


def test_merge_patches_of_different_keys_all_survive(servers):
    urls, direct = servers

    async def run() -> list[int]:
        async with _client() as http:
            created = await http.post(f"{urls[0]}/sessions", json={"session_id": "merged", "session_state": {}})
            assert created.status_code == 201

            async def writer(n: int) -> list[int]:
                statuses = []
                for j in range(WRITES):
                    patch = {"session_state": {f"c{n}": {f"w{j}": j}}, "metadata": {f"c{n}-w{j}": True}}
                    response = await http.patch(
                        f"{random.choice(urls)}/sessions/merged", content=json.dumps(patch), headers=MERGE
                    )
                    statuses.append(response.status_code)
                return statuses

            return [status for statuses in await _gather(writer, CLIENTS) for status in statuses]

    statuses = asyncio.run(run())
    assert statuses == [200] * CLIENTS * WRITES
    state, metadata = _state(direct, "merged")
    assert state == {f"c{n}": {f"w{j}": j for j in range(WRITES)} for n in range(CLIENTS)}
    assert metadata == {f"c{n}-w{j}": True for n in range(CLIENTS) for j in range(WRITES)}


def test_read_modify_write_with_if_match_loses_no_increment(servers):
    urls, direct = servers

    async def run() -> list[int]:
        async with _client() as http:
            created = await http.post(f"{urls[0]}/sessions", json={"session_id": "counter", "session_state": {"n": 0}})
            assert created.status_code == 201

            async def incrementer(n: int) -> list[int]:
                statuses = []
                for _ in range(WRITES):
                    while True:
                        current = await http.get(f"{random.choice(urls)}/sessions/counter")
                        statuses.append(current.status_code)
                        state = current.json()["session_state"]
                        state = {"n": state["n"] + 1, "last": n}
                        answer = await http.patch(
                            f"{random.choice(urls)}/sessions/counter",
                            json={"session_state": state},
                            headers={"If-Match": current.headers["etag"]},
                        )
                        statuses.append(answer.status_code)
                        if answer.status_code != 412:
                            break
                return statuses

            return [status for statuses in await _gather(incrementer, CLIENTS) for status in statuses]

    statuses = asyncio.run(run())
    assert set(statuses) <= {200, 412}, sorted(set(statuses))
    assert statuses.count(412) > 0, "the writers never raced: the test proved nothing"
    state, _ = _state(direct, "counter")
    assert state["n"] == CLIENTS * WRITES


def _write(n: int, j: int) -> dict:
    """A whole write whose parts all say who wrote it, large enough to be torn if it could be."""
    marker = f"{n}-{j}"
    payload = [marker] * 200
    digest = hashlib.sha256(json.dumps(payload).encode()).hexdigest()
    return {
        "session_state": {"writer": marker, "payload": payload, "digest": digest},
        "metadata": {"writer": marker},
        "session_name": f"written by {marker}",
    }


def test_without_preconditions_the_last_writer_wins_whole(servers):
    urls, direct = servers
    writes = {f"{n}-{j}": _write(n, j) for n in range(CLIENTS) for j in range(WRITES)}

    async def run() -> tuple[list[int], list[dict]]:
        async with _client() as http:
            created = await http.post(f"{urls[0]}/sessions", json={"session_id": "shared", **_write(-1, 0)})
            assert created.status_code == 201
            seen: list[dict] = []

            async def writer(n: int) -> list[int]:
                statuses = []
                for j in range(WRITES):
                    response = await http.patch(f"{random.choice(urls)}/sessions/shared", json=writes[f"{n}-{j}"])
                    statuses.append(response.status_code)
                    read = await http.get(f"{random.choice(urls)}/sessions/shared")
                    statuses.append(read.status_code)
                    seen.append(read.json())
                return statuses

            statuses = [status for statuses in await _gather(writer, CLIENTS) for status in statuses]
            return statuses, seen

    statuses, seen = asyncio.run(run())
    assert statuses == [200] * CLIENTS * WRITES * 2
    writes["-1-0"] = _write(-1, 0)
    # Every read, while the writes raced, saw one write whole: state, metadata and name agree.
    for body in seen:
        marker = body["session_state"]["writer"]
        expected = writes[marker]
        assert (body["session_state"], body["metadata"], body["session_name"]) == (
            expected["session_state"],
            expected["metadata"],
            expected["session_name"],
        )
    state, metadata = _state(direct, "shared")
    marker = state["writer"]
    assert marker != "-1-0"
    assert (state, metadata) == (writes[marker]["session_state"], writes[marker]["metadata"])
