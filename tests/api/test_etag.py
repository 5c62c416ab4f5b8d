"""ETags on every response that carries one session; If-Match and If-None-Match honoured.

Without those headers every operation behaves exactly as before (AgentOS's last writer wins).
"""

from __future__ import annotations

import re

import pytest

from tests.api.helpers import add_run

# Also run through PgBouncer, in transaction and in session mode, by `tox -e pgbouncer`.
pytestmark = pytest.mark.pooler

ETAG = re.compile(r'"[0-9a-f]{32}"')


def _create(client, session_id="s", **body):
    response = client.post("/sessions", json={"session_id": session_id, **body})
    assert response.status_code == 201
    return response.headers["etag"]


def test_every_response_with_one_session_has_a_strong_etag_of_its_state(client):
    created = _create(client, session_state={"a": 1})
    assert ETAG.fullmatch(created)
    got = client.get("/sessions/s")
    assert got.headers["etag"] == created  # same state, same tag, whatever the view
    renamed = client.post("/sessions/s/rename", json={"session_name": "n"})
    patched = client.patch("/sessions/s", json={"session_state": {"a": 2}})
    tags = {created, renamed.headers["etag"], patched.headers["etag"]}
    assert len(tags) == 3
    assert client.get("/sessions/s").headers["etag"] == patched.headers["etag"]


def test_a_new_run_changes_the_etag(client, database):
    before = _create(client)
    add_run(database, "s", "r1", 0, created_at=1_700_000_000)
    assert client.get("/sessions/s").headers["etag"] != before


def test_if_none_match_with_the_current_etag_is_304_without_a_body(client):
    tag = _create(client)
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        response = client.get("/sessions/s", headers={"If-None-Match": header})
        assert (response.status_code, response.content, response.headers["etag"]) == (304, b"", tag)
    changed = client.get("/sessions/s", headers={"If-None-Match": '"stale"'})
    assert (changed.status_code, changed.json()["session_id"]) == (200, "s")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/sessions/s", {"session_state": {"mine": True}}),
        ("POST", "/sessions/s/rename", {"session_name": "mine"}),
        ("DELETE", "/sessions/s", None),
    ],
)
def test_a_stale_if_match_is_412_and_changes_nothing(client, database, method, path, body):
    stale = _create(client)
    client.patch("/sessions/s", json={"metadata": {"someone": "else"}})
    before = database.snapshot()
    for header in (stale, f'W/{stale[:-1]}x"', '"nonsense"'):
        response = client.request(method, path, json=body, headers={"If-Match": header})
        assert (response.status_code, response.json()) == (
            412,
            {"detail": "Session with id 's' has changed: If-Match does not name its ETag"},
        )
    assert database.snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PATCH", "/sessions/s", {"session_state": {"mine": True}}, 200),
        ("POST", "/sessions/s/rename", {"session_name": "mine"}, 200),
        ("DELETE", "/sessions/s", None, 204),
    ],
)
def test_the_current_etag_or_star_lets_the_change_through(client, database, method, path, body, status):
    for header in ("current", "*"):
        database_tag = _create(client, session_id="s")
        tag = database_tag if header == "current" else "*"
        response = client.request(method, path, json=body, headers={"If-Match": tag})
        assert response.status_code == status
        if status == 200:
            assert response.headers["etag"] == client.get("/sessions/s").headers["etag"] != database_tag
        client.delete("/sessions/s")


def test_preconditions_on_an_absent_session_answer_as_without_them(client):
    """RFC 9110: a request that would fail anyway is answered as it would be."""
    assert client.patch("/sessions/none", json={"session_name": "x"}, headers={"If-Match": "*"}).status_code == 404
    assert client.get("/sessions/none", headers={"If-None-Match": "*"}).status_code == 404
    assert client.delete("/sessions/none", headers={"If-Match": '"x"'}).status_code == 204


def test_a_weak_etag_never_matches_if_match(client):
    tag = _create(client)
    response = client.patch("/sessions/s", json={"session_name": "x"}, headers={"If-Match": f"W/{tag}"})
    assert response.status_code == 412


def test_concurrent_increments_with_if_match_lose_none(client):
    """Read, add one, write back with If-Match, again on 412: every increment survives."""
    from concurrent.futures import ThreadPoolExecutor

    _create(client, session_state={"count": 0})
    writers, increments = 8, 5

    def increment_many(_writer: int) -> None:
        for _ in range(increments):
            while True:
                current = client.get("/sessions/s")
                state = current.json()["session_state"]
                answer = client.patch(
                    "/sessions/s",
                    json={"session_state": {"count": state["count"] + 1}},
                    headers={"If-Match": current.headers["etag"]},
                )
                if answer.status_code == 200:
                    break
                assert answer.status_code == 412, answer.text

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(increment_many, range(writers)))
    assert client.get("/sessions/s").json()["session_state"] == {"count": writers * increments}
