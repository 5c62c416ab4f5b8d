"""Paged runs: GET /sessions/{id}/runs and /run-previews with limit, page and sort_order, the
total in X-Total-Count and the next and previous pages in a Link header (RFC 8288)."""

from __future__ import annotations

import pytest

from tests.api.helpers import add_run

pytestmark = pytest.mark.pooler

T0 = 1_750_000_000
RUNS = 25


@pytest.fixture
def session(client, database):
    """Session s with 25 runs r00..r24, one a second from T0; every third one an ERROR."""
    assert client.post("/sessions", json={"session_id": "s", "agent_id": "a"}).status_code == 201
    for index in range(RUNS):
        status = "ERROR" if index % 3 == 0 else "COMPLETED"
        add_run(database, "s", f"r{index:02}", index, created_at=T0 + index, agent_id="a", status=status)
    return "s"


def _ids(response) -> list[str]:
    return [run["run_id"] for run in response.json()]


def _expected(indexes) -> list[str]:
    return [f"r{index:02}" for index in indexes]


def test_without_limit_every_run_comes_oldest_first_with_the_total(client, session):
    response = client.get("/sessions/s/runs")
    assert (response.status_code, _ids(response)) == (200, _expected(range(RUNS)))
    assert (response.headers["x-total-count"], response.headers.get("link")) == ("25", None)


def test_pages_of_runs_link_to_each_other(client, session):
    pages = [client.get("/sessions/s/runs", params={"limit": 10, "page": page}) for page in (1, 2, 3)]
    assert [_ids(response) for response in pages] == [
        _expected(range(0, 10)),
        _expected(range(10, 20)),
        _expected(range(20, 25)),
    ]
    assert [response.headers["x-total-count"] for response in pages] == ["25"] * 3
    assert [response.headers.get("link") for response in pages] == [
        '</sessions/s/runs?limit=10&page=2>; rel="next"',
        '</sessions/s/runs?limit=10&page=3>; rel="next", </sessions/s/runs?limit=10&page=1>; rel="prev"',
        '</sessions/s/runs?limit=10&page=2>; rel="prev"',
    ]


def test_newest_first_and_filters_page_what_matches(client, session):
    params = {"limit": 4, "page": 2, "sort_order": "desc", "status": "error", "created_after": T0 + 1}
    response = client.get("/sessions/s/runs", params=params)
    # ERROR runs after T0: r03, r06, ..., r24 (8 of them); newest first, the second page of 4.
    assert (response.status_code, _ids(response)) == (200, _expected([12, 9, 6, 3]))
    assert response.headers["x-total-count"] == "8"
    # The request's other parameters kept, in their order; page last.
    query = "limit=4&sort_order=desc&status=error&created_after=1750000001&page=1"
    assert response.headers["link"] == f'</sessions/s/runs?{query}>; rel="prev"'


def test_a_page_past_the_last_is_empty_and_links_back_to_the_last(client, session):
    response = client.get("/sessions/s/runs", params={"limit": 10, "page": 7})
    assert (response.status_code, response.json(), response.headers["x-total-count"]) == (200, [], "25")
    assert response.headers["link"] == '</sessions/s/runs?limit=10&page=3>; rel="prev"'


def test_page_zero_is_the_first_page(client, session):
    response = client.get("/sessions/s/runs", params={"limit": 5, "page": 0})
    assert _ids(response) == _expected(range(5))
    assert response.headers["link"] == '</sessions/s/runs?limit=5&page=2>; rel="next"'


def test_previews_page_as_runs_do(client, session):
    response = client.get("/sessions/s/run-previews", params={"limit": 3, "page": 3, "sort_order": "desc"})
    assert [run["run_id"] for run in response.json()] == _expected([18, 17, 16])
    assert response.headers["x-total-count"] == "25"
    assert response.headers["link"] == (
        '</sessions/s/run-previews?limit=3&sort_order=desc&page=4>; rel="next", '
        '</sessions/s/run-previews?limit=3&sort_order=desc&page=2>; rel="prev"'
    )


def test_a_team_sessions_pages_count_only_the_runs_it_shows(client, database):
    """A team session shows the runs that name an agent or a team (as AgentOS): pages and totals
    count those only."""
    assert (
        client.post("/sessions", params={"type": "team"}, json={"session_id": "t", "team_id": "tm"}).status_code == 201
    )
    add_run(database, "t", "t0", 0, created_at=T0, run_type="team", team_id="tm")
    add_run(database, "t", "t1", 1, created_at=T0 + 1, run_type="team")
    add_run(database, "t", "t2", 2, created_at=T0 + 2, agent_id="member")
    every = client.get("/sessions/t/runs")
    paged = client.get("/sessions/t/runs", params={"limit": 1, "page": 2})
    assert (_ids(every), every.headers["x-total-count"]) == (["t0", "t2"], "2")
    assert (_ids(paged), paged.headers["x-total-count"], paged.headers["link"]) == (
        ["t2"],
        "2",
        '</sessions/t/runs?limit=1&page=1>; rel="prev"',
    )


def test_paging_a_missing_session_is_404(client):
    response = client.get("/sessions/nope/runs", params={"limit": 10})
    assert (response.status_code, response.json()) == (404, {"detail": "Session with ID nope not found"})


def test_a_limit_out_of_bounds_is_422(client, session):
    for limit in (0, 1001):
        response = client.get("/sessions/s/runs", params={"limit": limit})
        assert response.status_code == 422, limit
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]
