"""PostgreSQL behind a pooler, and connections the server closes: no request sees an error.

Run by `tox -e pg` (AGENTOS_SESSIONS_TEST_PG_URL) with Debian's PgBouncer installed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.persistence import store
from agentos_sessions.persistence.database import APPLICATION_NAME, open_database
from agentos_sessions.settings import DatabaseSettings, Settings
from tests.api.helpers import add_run, stored_session
from tests.databases import PG_URL, fresh_database
from tests.direct import DirectDatabase
from tests.pgbouncer import POOL_MODES, pgbouncer
from tests.servers import command, environment_for, running_server

pytestmark = pytest.mark.pg


def _server_connections(direct: DirectDatabase) -> set[int]:
    """The backend pids of this database's connections that the server under test opened (by
    their application_name: run these tests against a database no other agentos-sessions uses)."""
    with direct.engine.connect() as db:
        rows = db.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"),
            {"name": APPLICATION_NAME},
        )
        return {pid for (pid,) in rows}


def _end(direct: DirectDatabase, pids: set[int]) -> None:
    """End those connections from the server's side, as a restart of PostgreSQL, a failover or a
    pooler's idle timeout does."""
    with direct.engine.connect() as db:
        for pid in pids:
            db.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        db.commit()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/sessions/kept", None, 200),
        ("GET", "/sessions", None, 200),
        ("PATCH", "/sessions/kept", {"session_state": {"after": "restart"}}, 200),
        ("POST", "/sessions", {"session_id": "new"}, 201),
    ],
)
def test_a_pooled_connection_the_server_closed_is_replaced_before_the_request_sees_it(
    tmp_path, method, path, body, status
):
    """The pool does not ping a connection before each use: one the server ended fails its first
    statement, and the unit of work runs again on a new connection, reads and writes alike."""
    database = fresh_database(tmp_path)
    direct = DirectDatabase(database)
    try:
        with TestClient(create_app(Settings(databases={"main": database}))) as client:
            assert client.post("/sessions", json={"session_id": "kept"}).status_code == 201
            ended = _server_connections(direct)
            assert ended, "the server holds a pooled connection"
            _end(direct, ended)

            response = client.request(method, path, json=body)

            assert response.status_code == status, response.text
            now = _server_connections(direct)
            assert now and now.isdisjoint(ended), "served on a new connection"
        if method == "PATCH":
            assert stored_session(direct, "kept").session_data == {"session_state": {"after": "restart"}}
        if method == "POST":
            assert stored_session(direct, "new") is not None
    finally:
        direct.dispose()


def _prepared_on_this_connection(db, _models) -> int:
    return db.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()


@pytest.mark.parametrize(("enabled", "prepared"), [(False, 0), (True, 1)])
def test_statements_are_prepared_only_when_asked(tmp_path, enabled, prepared):
    """Off by default, safe behind any pooler; AGENTOS_SESSIONS_PREPARED_STATEMENTS=true lets
    psycopg prepare a statement a connection has run 5 times."""
    database = open_database("main", fresh_database(tmp_path), timeout=10, prepared_statements=enabled)

    async def read_often() -> int:
        try:
            await database.migrate()
            for _ in range(6):  # one connection: each unit of work returns it before the next
                await database.run(store.get_session, "absent")
            return await database.run(_prepared_on_this_connection)
        finally:
            await database.close()

    assert min(asyncio.run(read_often()), 1) == prepared


# --- PgBouncer ---------------------------------------------------------------------------------

CLIENTS = 32
ROUNDS = 4
SHARED_RUNS = 3


@pytest.mark.parametrize("pool_mode", POOL_MODES)
def test_every_operation_through_pgbouncer_under_load_answers_without_error(tmp_path, pool_mode):
    """32 clients, each on its own connection, run every operation in turn through PgBouncer:
    every answer is the expected one, and the tables hold what was acknowledged. In transaction
    mode (4 server connections for up to 5 of ours) each transaction may land on another server
    connection: no statement is prepared, so none can be another client's."""
    direct_settings = fresh_database(tmp_path)
    with pgbouncer(PG_URL, pool_mode) as pooled_url:
        database = DatabaseSettings(pooled_url, db_schema=direct_settings.db_schema)
        # Migrations go through the pooler too (their advisory lock is a transaction's).
        migrate = [command("agentos-sessions"), "migrate", "--database-url", database.url]
        subprocess.run(migrate, env=environment_for(database), check=True, capture_output=True)
        direct = DirectDatabase(direct_settings)
        try:
            assert _seed_shared_session(tmp_path, database, direct)
            with running_server(database, tmp_path, "--no-access-log") as url:
                unexpected = asyncio.run(_load(url))
                log = next(tmp_path.glob("server-*.log")).read_text()
            assert unexpected == [], log[-3000:]
            with direct.engine.connect() as db:
                rows = list(db.execute(direct.models.sessions.select()))
        finally:
            direct.dispose()

    stored = {row.session_id: row for row in rows}
    # Each client's last session is left; every earlier one was deleted, singly or in bulk.
    assert set(stored) == {"shared"} | {f"load-{n}-{ROUNDS - 1}" for n in range(CLIENTS)}
    for n in range(CLIENTS):
        row = stored[f"load-{n}-{ROUNDS - 1}"]
        assert row.session_data == {"session_name": "renamed", "session_state": {"n": n, "patched": True}}
        assert row._mapping["metadata"] == {"client": n, "round": ROUNDS - 1}
        assert row.user_id == f"user-{n % 4}"


def _seed_shared_session(tmp_path, database: DatabaseSettings, direct: DirectDatabase) -> bool:
    """A session with runs (written as agno writes them) that every client reads."""
    with TestClient(create_app(Settings(databases={"main": database}))) as client:
        created = client.post("/sessions", json={"session_id": "shared", "agent_id": "agent-1"}).status_code == 201
    for index in range(SHARED_RUNS):
        add_run(direct, "shared", f"shared-run-{index}", index, created_at=1_750_000_000 + index, agent_id="agent-1")
    return created


async def _load(url: str) -> list[tuple]:
    """Run the clients; every answer that was not the expected one."""
    unexpected: list[tuple] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

            async def expect(status: int, method: str, path: str, **options) -> httpx.Response:
                response = await http.request(method, path, **options)
                if response.status_code != status:
                    unexpected.append((n, method, path, response.status_code, response.text[:300]))
                return response

            for r in range(ROUNDS):
                session_id = f"load-{n}-{r}"
                mine = {"client": n}
                await expect(
                    201,
                    "POST",
                    "/sessions",
                    json={
                        "session_id": session_id,
                        "session_name": f"Load {n} {r}",
                        "session_state": {"n": n},
                        "user_id": f"user-{n % 4}",
                        "agent_id": "agent-1",
                        "metadata": mine,
                    },
                )
                got = await expect(200, "GET", f"/sessions/{session_id}")
                await expect(
                    304, "GET", f"/sessions/{session_id}", headers={"If-None-Match": got.headers.get("etag", "")}
                )
                await expect(200, "GET", "/sessions", params={"limit": 5, "page": 1 + r})
                listed = await expect(
                    200,
                    "GET",
                    "/sessions",
                    params={"type": "agent", "user_id": f"user-{n % 4}", "metadata": json.dumps(mine)},
                )
                # This round's session and the last round's: deleted at the end of each round.
                if listed.status_code == 200 and listed.json()["meta"]["total_count"] != min(r + 1, 2):
                    unexpected.append((n, "count", r, listed.json()["meta"]))
                await expect(200, "GET", "/sessions/shared/runs")
                await expect(200, "GET", "/sessions/shared/run-previews")
                await expect(200, "GET", "/sessions/shared/runs/shared-run-1")
                renamed = await expect(200, "POST", f"/sessions/{session_id}/rename", json={"session_name": "renamed"})
                await expect(
                    200,
                    "PATCH",
                    f"/sessions/{session_id}",
                    json={"session_state": {"n": n, "patched": True}},
                    headers={"If-Match": renamed.headers.get("etag", "")},
                )
                await expect(
                    200,
                    "PATCH",
                    f"/sessions/{session_id}",
                    content=json.dumps({"metadata": {"round": r}}),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
                if r > 0:
                    previous = f"load-{n}-{r - 1}"
                    if r % 2:
                        await expect(204, "DELETE", f"/sessions/{previous}")
                    else:
                        ids = {"session_ids": [previous], "session_types": ["agent"]}
                        await expect(204, "DELETE", "/sessions", json=ids)
                await expect(200, "GET", "/health")

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return unexpected
