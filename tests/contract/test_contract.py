"""The served app keeps its contract: Schemathesis fuzzes every operation from openapi.yaml.

Schemathesis's own engine runs in-process against the ASGI app, with every phase the CLI runs
(examples, coverage, fuzzing, and stateful sequences built from the OpenAPI links), positive
and negative data, and every check; settings come from schemathesis.toml. It runs twice: on an
open server, and with JWTs required and user isolation on, where Schemathesis holds a token and
its ignored_auth check also sends each operation without it and with a wrong one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.contract.spec import CONTRACT, load_document
from agentos_sessions.settings import MediaStorageSettings, SecuritySettings, Settings
from tests.databases import fresh_database
from tests.tokens import hs_secret, token

CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
# Every operation of the contract, as (METHOD, path).
OPERATIONS = {
    (method.upper(), path)
    for path, item in load_document(CONTRACT)["paths"].items()
    for method in item
    if method in ("get", "post", "patch", "delete")
}
MODES = {
    "open": SecuritySettings(),
    "jwt": SecuritySettings(jwt_verification_key=hs_secret(), user_isolation=True),
}


@pytest.fixture(scope="module", params=MODES)
def served_app(request, tmp_path_factory):
    """One started app (tables created) on a fresh database with an empty media directory, in
    each security mode."""
    directory = tmp_path_factory.mktemp("contract")
    (directory / "media").mkdir()
    media = MediaStorageSettings(backend="local", location=str(directory / "media"), prefix="")
    database = fresh_database(directory)
    app = create_app(Settings(databases={"main": database}, security=MODES[request.param], media_storage=media))
    with TestClient(app):
        yield request.param, app


@pytest.fixture(scope="module")
def engine_run(served_app):
    """Every event of one full Schemathesis run against the app (with a token where one is needed)."""
    mode, app = served_app
    settings = CONFIG.read_text()
    if mode == "jwt":
        settings += f'\n[auth.openapi.HTTPBearer]\nbearer = "{token("fuzzer", expires_in=3600)}"\n'
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_str(settings))
    return list(from_schema(schema).execute())


def _failures(run) -> list[str]:
    problems = []
    for event in run:
        if isinstance(event, events.ScenarioFinished) and event.status in (Status.FAILURE, Status.ERROR):
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        problems.append(
                            f"[{event.phase.value}] {check.name}: {check.failure_info.failure.title}\n"
                            f"    {check.failure_info.code_sample}"
                        )
            if event.status == Status.ERROR and not problems:
                problems.append(f"[{event.phase.value}] {event.label}: error")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            problems.append(f"{type(event).__name__}: {getattr(event, 'info', None) or event.exception!r}")
    return problems


def test_no_check_fails_in_any_phase(engine_run):
    problems = _failures(engine_run)
    assert problems == [], "\n".join(problems)


def test_every_phase_ran_every_operation(engine_run):
    finished = [e for e in engine_run if isinstance(e, events.ScenarioFinished) and e.is_test_scenario]
    for phase in ("coverage", "fuzzing"):
        tested = {e.label for e in finished if e.phase.value == phase and e.status == Status.SUCCESS}
        assert len(tested) == len(OPERATIONS), (phase, sorted(tested))
    assert any(e.phase.value == "stateful" and e.status == Status.SUCCESS for e in finished)


def test_stateful_sequences_follow_the_links(engine_run):
    """Create -> get/runs/previews/rename/patch/delete: the links are exercised with real ids."""
    followed = Counter()
    for event in engine_run:
        if isinstance(event, events.ScenarioFinished) and event.phase.value == "stateful":
            for node in event.recorder.cases.values():
                if node.transition is not None:
                    followed[node.value.operation.label] += 1
    linked = {
        "GET /sessions/{session_id}",
        "GET /sessions/{session_id}/runs",
        "GET /sessions/{session_id}/run-previews",
        "POST /sessions/{session_id}/rename",
        "PATCH /sessions/{session_id}",
        "DELETE /sessions/{session_id}",
    }
    assert linked <= set(followed), followed
