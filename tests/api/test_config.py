"""GET /config: AgentOS's configuration shape for an OS that serves sessions only."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import SecuritySettings, Settings
from tests.databases import fresh_database
from tests.tokens import bearer, hs_secret, token

pytestmark = pytest.mark.pooler


def _databases(tmp_path) -> dict:
    return {
        "main": fresh_database(tmp_path, "main"),
        "archive": fresh_database(tmp_path, "archive", session_table="old_sessions"),
    }


def test_the_config_names_each_database_and_its_sessions_table(tmp_path):
    settings = Settings(databases=_databases(tmp_path), os_id="sessions-os")
    with TestClient(create_app(settings)) as client:
        response = client.get("/config")
    assert response.status_code == 200
    assert response.json() == {
        "os_id": "sessions-os",
        "available_models": [],
        "databases": ["main", "archive"],
        "session": {
            "dbs": [
                {"db_id": "main", "domain_config": {"display_name": "main"}, "tables": ["agno_sessions"]},
                {"db_id": "archive", "domain_config": {"display_name": "archive"}, "tables": ["old_sessions"]},
            ]
        },
        "agents": [],
        "teams": [],
        "workflows": [],
        "interfaces": [],
        "company": None,
    }


def test_the_default_os_id_is_the_same_for_the_same_databases(tmp_path):
    """Every worker, and a restart, give the same id; other databases, another one."""
    databases = _databases(tmp_path)
    ids = []
    for settings in (Settings(databases=databases), Settings(databases=dict(reversed(databases.items())))):
        with TestClient(create_app(settings)) as client:
            ids.append(client.get("/config").json()["os_id"])
    assert ids[0] == ids[1] == str(uuid.uuid5(uuid.NAMESPACE_DNS, "agentos-sessions:archive,main"))
    assert Settings(databases={"main": databases["main"]}).os_id != ids[0]


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (["config:read"], 200),
        (["system:read"], 200),  # AgentOS's legacy alias
        (["config:*:read"], 200),
        (["agent_os:admin"], 200),
        (["sessions:read", "sessions:write", "sessions:delete"], 403),
        (["config:write"], 403),
    ],
)
def test_the_config_needs_config_read(tmp_path, scopes, status):
    settings = Settings(
        databases={"main": fresh_database(tmp_path)}, security=SecuritySettings(jwt_verification_key=hs_secret())
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/config", headers=bearer(token("alice", scopes)))
        unauthenticated = client.get("/config")
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"detail": "Insufficient permissions. Required scope(s): config:read"}
    assert unauthenticated.status_code == 401
