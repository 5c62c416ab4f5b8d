"""Every response carries a request id; a 500 says nothing of its cause and is logged under that id."""

from __future__ import annotations

import logging
import re

import pytest

from agentos_sessions.persistence import store


def test_the_clients_request_id_is_echoed(client):
    response = client.get("/sessions", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-42.a:b"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "ünïcode"])
def test_a_missing_or_unusable_request_id_is_replaced_by_a_new_one(client, given):
    headers = {} if given is None else {"X-Request-ID": given.encode()}
    response = client.get("/sessions", headers=headers)
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_ids_differ_between_requests(client):
    assert client.get("/health").headers["x-request-id"] != client.get("/health").headers["x-request-id"]


def test_errors_answered_before_routing_carry_it_too(client):
    assert client.get("/sessions/a%0Ab", headers={"X-Request-ID": "r1"}).headers["x-request-id"] == "r1"
    too_large = client.post(
        "/sessions",
        content=b" " * (1024 * 1024 + 1),
        headers={"X-Request-ID": "r2", "content-type": "application/json"},
    )
    assert (too_large.status_code, too_large.headers["x-request-id"]) == (413, "r2")


def test_a_500_reveals_nothing_and_is_logged_with_the_request_id(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM agno_sessions -- internal detail")

    monkeypatch.setattr(store, "get_session_with_runs", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/sessions/s", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert response.headers["x-request-id"] == "req-500"
    assert "secret" not in response.text and "Traceback" not in response.text
    [record] = [r for r in caplog.records if "req-500" in r.getMessage()]
    assert "GET /sessions/s" in record.getMessage()
    assert "SELECT secret" in str(record.exc_info[1])
