"""A client that openapi-python-client generates from openapi.yaml drives the real server.

The client is generated at test time from the repository's contract, imported, and pointed at
`agentos-sessions serve`: create, get, list, update and delete go through its typed functions
and models only, and the database is checked behind them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.api.helpers import stored_session
from tests.direct import DirectDatabase
from tests.servers import command, running_server
from tests.tokens import hs_secret, token

# Starts server processes: left out by `tox -e quick`.
pytestmark = pytest.mark.slow

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
PACKAGE = "agentos_sessions_generated_client"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

# Parameters the generator leaves out without a warning: it makes none of a parameter declared
# by `content` instead of `schema`, such as the JSON `metadata` filter of GET /sessions.
NOT_GENERATED = {("get_sessions", "metadata")}


@dataclass(frozen=True)
class GeneratedClient:
    """The generated package, imported: its client classes, models, types, and one module per operation."""

    package: ModuleType
    models: ModuleType
    types: ModuleType
    operations: dict[str, ModuleType]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Iterator[GeneratedClient]:
    """The client generated from openapi.yaml, importable while this module's tests run."""
    directory = tmp_path_factory.mktemp("generated")
    config = directory / "config.json"
    # No post hooks (ruff check/format): the code is imported, not read, and the generator warns
    # (so fails, with --fail-on-warning) when ruff is not on PATH.
    config.write_text(json.dumps({"post_hooks": []}))
    result = subprocess.run(
        [
            command("openapi-python-client"),
            "generate",
            "--path",
            str(SPEC),
            "--output-path",
            str(directory / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"openapi-python-client failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(directory))
    try:
        api = importlib.import_module(f"{PACKAGE}.api")
        operations = {
            module.name.rpartition(".")[2]: importlib.import_module(module.name)
            for module in pkgutil.walk_packages(api.__path__, f"{PACKAGE}.api.")
            if not module.ispkg
        }
        yield GeneratedClient(
            importlib.import_module(PACKAGE),
            importlib.import_module(f"{PACKAGE}.models"),
            importlib.import_module(f"{PACKAGE}.types"),
            operations,
        )
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def served(database_settings, tmp_path):
    """The base URL of an open server on the test's database."""
    with running_server(database_settings, tmp_path / "server") as url:
        yield url


@pytest.fixture
def direct(database_settings):
    """Direct access to the server's database, to check what it stored."""
    database = DirectDatabase(database_settings)
    yield database
    database.dispose()


def _declared_operations() -> dict[str, dict]:
    """openapi.yaml's operations by operationId, their parameters resolved."""
    document = yaml.safe_load(SPEC.read_text())
    components = document["components"]["parameters"]

    def resolved(parameter: dict) -> dict:
        return components[parameter["$ref"].rpartition("/")[2]] if "$ref" in parameter else parameter

    return {
        operation["operationId"]: {
            **operation,
            "parameters": [resolved(p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]],
        }
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }


def _python_names(parameter: str) -> set[str]:
    """The names the generator may give a parameter: snake case, `_` added to one that shadows a builtin."""
    snake = re.sub(r"\W", "_", parameter).lower()
    return {snake, f"{snake}_"}


def test_the_generator_makes_a_function_for_every_operation_and_parameter(generated):
    declared = _declared_operations()
    assert set(generated.operations) == set(declared)
    skipped = set()
    for operation_id, operation in declared.items():
        arguments = set(inspect.signature(generated.operations[operation_id].sync_detailed).parameters)
        skipped |= {
            (operation_id, parameter["name"])
            for parameter in operation["parameters"]
            if not _python_names(parameter["name"]) & arguments
        }
        assert ("body" in arguments) == ("requestBody" in operation), operation_id
    assert skipped == NOT_GENERATED


def test_a_generated_client_creates_gets_lists_updates_and_deletes_sessions(generated, served, direct):
    models, UNSET, api = generated.models, generated.types.UNSET, generated.operations
    with generated.package.Client(base_url=served, raise_on_unexpected_status=True) as client:
        created = api["create_session"].sync_detailed(
            client=client,
            body=models.CreateSessionRequest(
                session_id="trip-1",
                session_name="Trip to Rome",
                session_state=models.JsonObject.from_dict({"step": 1, "cart": ["flight"]}),
                metadata=models.JsonObject.from_dict({"team": "travel", "tags": ["eu"]}),
                user_id="ann",
            ),
        )
        assert created.status_code == HTTPStatus.CREATED
        session = created.parsed
        assert isinstance(session, models.AgentSessionDetailSchema)
        assert (session.session_id, session.agent_session_id, session.session_name, session.user_id) == (
            "trip-1",
            "trip-1",
            "Trip to Rome",
            "ann",
        )
        assert session.session_state.to_dict() == {"step": 1, "cart": ["flight"]}
        assert session.metadata.to_dict() == {"team": "travel", "tags": ["eu"]}
        assert (session.metrics.to_dict(), session.chat_history) == ({}, [])
        # A created (and a fetched) session's body leaves nulls out: they are UNSET.
        assert session.agent_id is session.session_summary is session.agent_data is session.total_tokens is UNSET
        row = stored_session(direct, "trip-1")
        assert session.created_at == session.updated_at == datetime.fromtimestamp(row.created_at, UTC)
        assert (row.session_type, row.user_id, row.agent_id, row.summary) == ("agent", "ann", None, None)
        assert row.session_data == {"session_name": "Trip to Rome", "session_state": {"step": 1, "cart": ["flight"]}}
        assert row.metadata_ == {"team": "travel", "tags": ["eu"]}
        etag = created.headers["ETag"]

        fetched = api["get_session_by_id"].sync_detailed("trip-1", client=client)
        assert (fetched.status_code, fetched.parsed, fetched.headers["ETag"]) == (HTTPStatus.OK, session, etag)
        unchanged = api["get_session_by_id"].sync_detailed("trip-1", client=client, if_none_match=etag)
        assert (unchanged.status_code, unchanged.parsed) == (HTTPStatus.NOT_MODIFIED, None)

        for session_id, name, user_id in [("trip-2", "Trip to Oslo", "ann"), ("trip-3", "Trip to Lima", "bob")]:
            body = models.CreateSessionRequest(session_id=session_id, session_name=name, user_id=user_id)
            assert api["create_session"].sync_detailed(client=client, body=body).status_code == HTTPStatus.CREATED
        listed = api["get_sessions"].sync_detailed(
            client=client,
            type_=models.SessionType.AGENT,
            user_id="ann",
            session_name="trip",
            sort_by=models.SortBy.SESSION_ID,
            sort_order=models.SortOrder.ASC,
            limit=1,
            page=2,
        )
        assert listed.status_code == HTTPStatus.OK
        assert isinstance(listed.parsed, models.PaginatedSessions)
        [item] = listed.parsed.data
        assert isinstance(item, models.SessionSchema)
        assert (item.session_id, item.session_name, item.session_type, item.user_id) == (
            "trip-2",
            "Trip to Oslo",
            "agent",
            "ann",
        )
        assert item.session_state is item.agent_id is item.session_summary is UNSET
        meta = listed.parsed.meta
        assert (meta.page, meta.limit, meta.total_pages, meta.total_count) == (2, 1, 2, 2)
        assert meta.search_time_ms >= 0

        stale = api["update_session"].sync_detailed(
            "trip-1", client=client, body=models.UpdateSessionRequest(session_name="x"), if_match='"stale"'
        )
        assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
        assert stale.parsed == models.ErrorResponse(
            detail="Session with id 'trip-1' has changed: If-Match does not name its ETag"
        )
        updated = api["update_session"].sync_detailed(
            "trip-1",
            client=client,
            body=models.UpdateSessionRequest(
                session_name="Trip to Naples",
                session_state=models.JsonObject.from_dict({"step": 2}),
                summary=models.SessionSummary(summary="Booked a flight", topics=["travel"]),
            ),
            if_match=etag,
        )
        assert updated.status_code == HTTPStatus.OK
        session = updated.parsed
        assert isinstance(session, models.AgentSessionDetailSchema)
        assert (session.session_name, session.session_state.to_dict(), session.metadata.to_dict()) == (
            "Trip to Naples",
            {"step": 2},
            {"team": "travel", "tags": ["eu"]},
        )
        assert session.session_summary.to_dict() == {"summary": "Booked a flight", "topics": ["travel"]}
        # An updated session's body carries its nulls: they are None.
        assert session.agent_id is session.agent_data is session.total_tokens is None
        # A merge patch: a null member removes the key it names.
        merged = api["update_session"].sync_detailed(
            "trip-1",
            client=client,
            body=models.SessionMergePatch(metadata=models.JsonObject.from_dict({"tags": None, "tier": "gold"})),
        )
        assert merged.status_code == HTTPStatus.OK
        assert merged.parsed.metadata.to_dict() == {"team": "travel", "tier": "gold"}
        row = stored_session(direct, "trip-1")
        assert row.session_data == {"session_name": "Trip to Naples", "session_state": {"step": 2}}
        assert row.metadata_ == {"team": "travel", "tier": "gold"}
        assert row.summary == {"summary": "Booked a flight", "topics": ["travel"]}

        refused = api["delete_session"].sync_detailed("trip-1", client=client, if_match=merged.headers["ETag"] + "x")
        assert refused.status_code == HTTPStatus.PRECONDITION_FAILED
        assert stored_session(direct, "trip-1") is not None
        deleted = api["delete_session"].sync_detailed("trip-1", client=client, if_match=merged.headers["ETag"])
        assert (deleted.status_code, deleted.parsed) == (HTTPStatus.NO_CONTENT, None)
        assert stored_session(direct, "trip-1") is None
        gone = api["get_session_by_id"].sync_detailed("trip-1", client=client)
        assert (gone.status_code, gone.parsed) == (
            HTTPStatus.NOT_FOUND,
            models.ErrorResponse(detail="Session with id 'trip-1' not found"),
        )

        bulk = api["delete_sessions"].sync_detailed(
            client=client,
            body=models.DeleteSessionRequest(
                session_ids=["trip-2", "trip-3"], session_types=[models.SessionType.AGENT, models.SessionType.AGENT]
            ),
        )
        assert bulk.status_code == HTTPStatus.NO_CONTENT
        assert direct.snapshot() == [[], []]


def test_a_generated_authenticated_client_acts_as_its_token_user(generated, database_settings, tmp_path):
    models, api = generated.models, generated.operations
    with running_server(
        database_settings, tmp_path / "jwt", JWT_VERIFICATION_KEY=hs_secret(), AGENTOS_USER_ISOLATION="true"
    ) as url:
        with generated.package.AuthenticatedClient(base_url=url, token=token("ann")) as client:
            created = api["create_session"].sync_detailed(
                client=client, body=models.CreateSessionRequest(session_id="mine", user_id="bob")
            )
            assert (created.status_code, created.parsed.user_id) == (HTTPStatus.CREATED, "ann")
            listed = api["get_sessions"].sync_detailed(client=client, user_id="bob")
            assert [item.session_id for item in listed.parsed.data] == ["mine"]
        with generated.package.Client(base_url=url) as anonymous:
            refused = api["get_sessions"].sync_detailed(client=anonymous)
            assert (refused.status_code, refused.parsed) == (
                HTTPStatus.UNAUTHORIZED,
                models.ErrorResponse(detail="Authorization header missing"),
            )


def test_a_generated_client_parses_a_workflow_session_as_one(generated, served):
    models, api = generated.models, generated.operations
    with generated.package.Client(base_url=served) as client:
        created = api["create_session"].sync_detailed(
            client=client, type_=models.SessionType.WORKFLOW, body=models.CreateSessionRequest(workflow_id="flow")
        )
    assert created.status_code == HTTPStatus.CREATED
    assert isinstance(created.parsed, models.WorkflowSessionDetailSchema)
