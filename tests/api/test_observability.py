"""What operators see: /metrics, JSON access log lines with request ids, /health per database."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.databases import fresh_database
from tests.servers import started_server


def _samples(text: str) -> dict[tuple, float]:
    """Every sample of the exposition, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_by_operation_method_and_status_and_time_them(client):
    client.post("/sessions", json={"session_id": "a"})
    client.post("/sessions", json={"session_id": "a"})
    client.get("/sessions/a")
    client.get("/sessions/missing")
    client.get("/no/such/path")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    requests = {
        (dict(labels)["operation"], dict(labels)["method"], dict(labels)["status"]): value
        for (name, labels), value in samples.items()
        if name == "agentos_sessions_requests_total"
    }
    # /metrics itself is counted once it has answered: not in its own first answer.
    assert requests == {
        ("create_session", "POST", "201"): 1.0,
        ("create_session", "POST", "409"): 1.0,
        ("get_session_by_id", "GET", "200"): 1.0,
        ("get_session_by_id", "GET", "404"): 1.0,
        ("other", "GET", "404"): 1.0,
    }
    counts = {
        dict(labels)["operation"]: value
        for (name, labels), value in samples.items()
        if name == "agentos_sessions_request_duration_seconds_count"
    }
    assert counts == {"create_session": 2.0, "get_session_by_id": 2.0, "other": 1.0}
    assert samples[("agentos_sessions_request_duration_seconds_sum", (("operation", "create_session"),))] > 0
    # Counted from then on, like any operation.
    again = _samples(client.get("/metrics").text)
    metrics_scrapes = ("operation", "get_metrics"), ("method", "GET"), ("status", "200")
    assert again[("agentos_sessions_requests_total", tuple(sorted(metrics_scrapes)))] == 1.0


def test_each_request_is_one_json_access_line_with_its_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="agentos_sessions.access"):
        given = client.post("/sessions?type=agent", json={"session_id": "a"}, headers={"X-Request-ID": "trace-42"})
        generated = client.get("/sessions/missing")
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "agentos_sessions.access"]
    assert len(lines) == 2
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
        assert line.pop("duration_ms") > 0
    assert lines == [
        {
            "request_id": "trace-42",
            "method": "POST",
            "path": "/sessions",
            "query": "type=agent",
            "status": 201,
            "operation_id": "create_session",
            "client": "testclient",
        },
        {
            "request_id": generated.headers["x-request-id"],
            "method": "GET",
            "path": "/sessions/missing",
            "query": "",
            "status": 404,
            "operation_id": "get_session_by_id",
            "client": "testclient",
        },
    ]
    assert given.headers["x-request-id"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])


def test_health_reports_each_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["databases"]) == {"main"}
    assert body["databases"]["main"]["status"] == "ok"
    assert body["databases"]["main"]["latency_ms"] >= 0


@pytest.mark.slow
def test_serve_writes_access_lines_as_bare_json_on_stdout_and_can_be_quiet(tmp_path):
    for options, expected in (((), 1), (("--no-access-log",), 0)):
        directory = tmp_path / (options[0].strip("-") if options else "default")
        with started_server(fresh_database(directory), directory, *options) as server:
            httpx.get(f"{server.url}/sessions", headers={"X-Request-ID": "from-the-test"})
        lines = [
            json.loads(line)
            for line in server.log.read_text().splitlines()
            if line.startswith("{") and "from-the-test" in line
        ]
        assert len(lines) == expected, server.log.read_text()[-2000:]
        if lines:
            assert {key: lines[0][key] for key in ("request_id", "method", "path", "status", "operation_id")} == {
                "request_id": "from-the-test",
                "method": "GET",
                "path": "/sessions",
                "status": 200,
                "operation_id": "get_sessions",
            }
