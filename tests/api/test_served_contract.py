"""/openapi.json is the contract as written (its $refs and schema names kept), true of this server."""

from __future__ import annotations

import copy

from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.contract.spec import CONTRACT, load_document
from agentos_sessions.settings import SecuritySettings, Settings


def test_a_server_with_credentials_serves_openapi_yaml_as_it_is(database_settings):
    settings = Settings(databases={"main": database_settings}, security=SecuritySettings(security_key="k"))
    with TestClient(create_app(settings)) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == load_document(CONTRACT)


def test_an_open_server_says_credentials_are_optional(client):
    expected = copy.deepcopy(load_document(CONTRACT))
    for item in expected["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"].append({})
    assert client.get("/openapi.json").json() == expected


def test_behind_a_proxy_the_root_path_is_the_server(database_settings):
    app = create_app(Settings(databases={"main": database_settings}))
    with TestClient(app, root_path="/api") as client:
        assert client.get("/openapi.json").json()["servers"] == [{"url": "/api"}]
