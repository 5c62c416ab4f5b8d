"""What openapi.yaml promises about access, checked on the file itself."""

from __future__ import annotations

from agentos_sessions.contract.spec import CONTRACT, load_document

# AgentOS 3.1.10's route-to-scope mapping (agno/os/scopes.py): GET reads, DELETE deletes, the rest writes.
SCOPE_OF_METHOD = {
    "get": "sessions:read",
    "post": "sessions:write",
    "patch": "sessions:write",
    "delete": "sessions:delete",
}


def _operations():
    for path, item in load_document(CONTRACT)["paths"].items():
        for method, operation in item.items():
            if method in SCOPE_OF_METHOD:
                yield path, method, operation


def test_every_sessions_operation_needs_a_bearer_token_with_agentos_scope():
    declared = {
        (method, path): operation.get("security")
        for path, method, operation in _operations()
        if path.startswith("/sessions")
    }
    assert len(declared) == 12
    assert declared == {key: [{"HTTPBearer": [SCOPE_OF_METHOD[key[0]]]}] for key in declared}


def test_every_sessions_operation_declares_401_and_403():
    for path, method, operation in _operations():
        if path.startswith("/sessions"):
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_only_health_and_metrics_are_open():
    open_operations = [(method, path) for path, method, op in _operations() if op.get("security") == []]
    assert open_operations == [("get", "/health"), ("get", "/metrics")]
