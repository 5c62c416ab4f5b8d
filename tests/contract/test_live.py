"""The real program: `agentos-sessions serve` in its own process, fuzzed over HTTP by the Schemathesis CLI.

Twice: open (fuzzed by the contract that server serves, where credentials are optional), and
with JWTs required and user isolation on (fuzzed by openapi.yaml itself, with a token). Each
server runs on a database of its own: a SQLite file, or under `tox -e pg` a PostgreSQL schema,
where the sessions the fuzzer created are then found.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from agentos_sessions.settings import DatabaseSettings
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.servers import command, running_server
from tests.tokens import hs_secret, token

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def open_database(tmp_path) -> DatabaseSettings:
    """The open server's database."""
    return fresh_database(tmp_path, "open")


@pytest.fixture
def jwt_database(tmp_path) -> DatabaseSettings:
    """The JWT server's database."""
    return fresh_database(tmp_path, "jwt")


@pytest.fixture
def served(tmp_path, open_database):
    """An open server."""
    (tmp_path / "open-media").mkdir()
    with running_server(open_database, tmp_path / "open", "--media-storage", str(tmp_path / "open-media")) as url:
        yield url


@pytest.fixture
def served_with_jwt(tmp_path, jwt_database):
    """A server that requires JWTs (HS256) and isolates users."""
    (tmp_path / "jwt-media").mkdir()
    with running_server(
        jwt_database,
        tmp_path / "jwt",
        JWT_VERIFICATION_KEY=hs_secret(),
        AGENTOS_USER_ISOLATION="true",
        AGENTOS_SESSIONS_MEDIA_STORAGE=f"file://{tmp_path / 'jwt-media'}",
    ) as url:
        yield url


def test_serve_answers_health_docs_and_spec(served):
    assert httpx.get(f"{served}/health").json()["status"] == "ok"
    assert "swagger-ui" in httpx.get(f"{served}/docs/").text
    assert httpx.get(f"{served}/openapi.json").json()["openapi"] == "3.1.0"


def _schemathesis(*arguments: str) -> subprocess.CompletedProcess:
    """`schemathesis run` as CI would type it: every setting from schemathesis.toml (found in REPO)."""
    schemathesis = command("schemathesis")
    return subprocess.run([schemathesis, "run", *arguments], cwd=REPO, capture_output=True, text=True, timeout=600)


def _ran_everything(output: str) -> None:
    """Every operation, every phase (the stateful one too), and no failure in any."""
    assert "Configuration:    " + str(REPO / "schemathesis.toml") in output
    assert "Tested: 17" in output
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ +{phase} \(in ", output), phase
    assert re.search(r"Test cases:\n  (\d+) generated, \1 passed", output), output[-2000:]


def _stored_sessions(database: DatabaseSettings) -> int:
    """How many sessions ``database`` holds: the fuzzed server wrote where the test says it did."""
    direct = DirectDatabase(database)
    try:
        return len(direct.snapshot()[0])
    finally:
        direct.dispose()


def test_schemathesis_cli_against_the_open_server_finds_no_failures(served, open_database):
    result = _schemathesis(f"{served}/openapi.json")
    assert result.returncode == 0, result.stdout[-5000:]
    _ran_everything(result.stdout)
    assert _stored_sessions(open_database) > 0


def test_schemathesis_cli_with_a_token_finds_no_failures(served_with_jwt, jwt_database):
    bearer = f"Authorization: Bearer {token('fuzzer', expires_in=3600)}"
    result = _schemathesis("openapi.yaml", "--url", served_with_jwt, "-H", bearer)
    assert result.returncode == 0, result.stdout[-5000:]
    _ran_everything(result.stdout)
    assert _stored_sessions(jwt_database) > 0


def test_the_open_server_answers_without_credentials_and_the_jwt_server_does_not(served, served_with_jwt):
    assert httpx.get(f"{served}/sessions").status_code == 200
    refused = httpx.get(f"{served_with_jwt}/sessions")
    assert (refused.status_code, refused.json()) == (401, {"detail": "Authorization header missing"})
    for path in ("/health", "/openapi.json", "/docs/"):
        assert httpx.get(f"{served_with_jwt}{path}", headers={"Authorization": "Bearer wrong"}).status_code == 200
