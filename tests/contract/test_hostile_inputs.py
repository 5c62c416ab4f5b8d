"""No input makes the server fail: hostile values in every input that openapi.yaml declares.

The cases are made at collection time from the contract: every query, path and header parameter
of every operation, and every string or number in its request bodies and JSON parameters
(``$ref``, ``allOf``/``anyOf``/``oneOf``, arrays and nested objects followed). A free-form object
(session_state, metadata) gets them under a key of its own, one level deeper (in an array, in
an object), and as keys. The values: NUL, a lone surrogate, a string past its limit (its
``maxLength``, else past the body limit in a body and 50,000 characters elsewhere), integers past
64 bits, NaN and an infinity. Each goes into one input of a request that is otherwise valid (the
base request, which ``test_the_base_request_is_valid`` sends as it is), and the answer must be a
422 naming that input (a 413 for a body past the limit, a 404 for NUL in a path, refused before
routing), declared by the operation with the body it declares, and nothing written. A parameter
or field added to the contract later is covered without a change here; one without a limit on
its length fails here until it has one.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.contract.spec import CONTRACT, load_document
from agentos_sessions.settings import DEFAULT_SESSION_TABLE, MediaStorageSettings, Settings
from tests.api.helpers import add_run
from tests.databases import fresh_database
from tests.direct import DirectDatabase

DOCUMENT = load_document(CONTRACT)
DB_ID = "main"
BODY_LIMIT = Settings.max_body_bytes
# Past any limit a parameter needs, yet well within what a URL or a header line can carry.
LONG_PARAMETER = 50_000
METHODS = ("get", "post", "patch", "delete")

# Values of inputs whose schema does not say which value makes a valid request: the seeded
# session and run, the configured database and table, conditions that hold. Every other input
# takes its schema's const, default, first enum value or example, else a value of its type.
PARAMETER_VALUES: dict[str, Any] = {
    "session_id": "base",
    "run_id": "run-1",
    "user_id": "alice",
    "db_id": DB_ID,
    "table": DEFAULT_SESSION_TABLE,
    "If-Match": "*",
    "If-None-Match": '"stale"',
    "storage_key": "base.png",
    "agent_id": "agent-1",
    "team_id": "team-1",
}
BODY_VALUES: dict[str, Any] = {
    "session_id": "created",
    "up_to_run_id": "run-1",
    "user_id": "alice",
    "session_ids": ["base"],
    "session_types": ["agent"],
}

NUMBERS = [
    ("2**63", 2**63),
    ("2**64", 2**64),
    ("-(2**63)-1", -(2**63) - 1),
    ("10**30", 10**30),
    ("NaN", math.nan),
    ("infinity", math.inf),
]


# --- reading the contract ----------------------------------------------------------------


def resolve(node: Any) -> Any:
    """``node`` with its ``$ref`` (into this document) followed."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


ANY_TYPE = {"string", "integer", "number", "boolean", "array", "object", "null"}


def types_of(schema: dict) -> set[str]:
    """The JSON types ``schema`` admits by its own ``type`` or values (all of them without)."""
    declared = schema.get("type")
    if declared is not None:
        return {declared} if isinstance(declared, str) else set(declared)
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if values is not None:
        return {JSON_TYPES[type(value)] for value in values}
    return set() if any(key in schema for key in ("allOf", "anyOf", "oneOf")) else ANY_TYPE


JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def is_free_form(schema: dict) -> bool:
    """An object with keys chosen by the client (session_state, metadata)."""
    additional = schema.get("additionalProperties", "properties" not in schema)
    return additional is not False


@dataclass(frozen=True)
class Leaf:
    """Where a hostile value can go: a value at ``path``, or a key of the object at ``path``."""

    path: tuple
    schema: dict
    is_key: bool = False
    # The value a hostile key is given (valid for the object's values).
    key_value: Any = None


def leaves(schema: Any, path: tuple = (), visits: tuple = ()) -> Iterator[Leaf]:
    """Every string or number in a value of ``schema``, and every object's keys; a recursive
    schema (JsonValue) is followed one level into itself."""
    schema = resolve(schema)
    if not isinstance(schema, dict) or visits.count(id(schema)) >= 2:
        return
    visits = (*visits, id(schema))
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator, []):
            yield from leaves(branch, path, visits)
    types = types_of(schema)
    if "object" in types:
        for name, property_schema in schema.get("properties", {}).items():
            yield from leaves(property_schema, (*path, name), visits)
        if is_free_form(schema):
            values = schema.get("additionalProperties", {})
            values = {} if values is True else values
            yield Leaf(path, resolve(schema.get("propertyNames", {})), is_key=True, key_value=base_value(values))
            yield from leaves(values, (*path, "hostile"), visits)
    if "array" in types and "items" in schema:
        yield from leaves(schema["items"], (*path, 0), visits)
    if types & {"string", "integer", "number"}:
        yield Leaf(path, schema)


def base_value(schema: Any, name: str | None = None, known: dict[str, Any] | None = None) -> Any:
    """A valid value for ``schema`` (``known`` values by name first, then the schema's own)."""
    if known is not None and name in known:
        return copy.deepcopy(known[name])
    schema = resolve(schema)
    for keyword in ("const", "default"):
        if keyword in schema:
            return schema[keyword]
    if "enum" in schema:
        return schema["enum"][0]
    if "examples" in schema:
        return schema["examples"][0]
    for combinator in ("allOf", "anyOf", "oneOf"):
        branches = [resolve(branch) for branch in schema.get(combinator, [])]
        branches = [branch for branch in branches if types_of(branch) != {"null"}]
        if branches:
            return base_value(branches[0], name, known)
    types = types_of(schema)
    if types == ANY_TYPE:
        return "x"
    if "object" in types:
        properties = schema.get("properties", {})
        return {key: base_value(value, key, known) for key, value in properties.items()}
    if "array" in types:
        return [base_value(schema.get("items", {}), None, known)] * max(1, schema.get("minItems", 0))
    if "string" in types:
        if schema.get("format") == "date-time":
            return "2026-01-01T00:00:00Z"
        return "x" * max(1, schema.get("minLength", 0))
    if types & {"integer", "number"}:
        return min(max(0, schema.get("minimum", 0)), schema.get("maximum", 0))
    if "boolean" in types:
        return False
    return None


@dataclass
class Request:
    """One request of an operation, its values as Python values (``send`` encodes them)."""

    method: str
    template: str
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    json_parameters: set[str] = field(default_factory=set)
    media_type: str | None = None
    body: Any = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict

    @property
    def id(self) -> str:
        return self.spec["operationId"]

    def parameters(self) -> list[dict]:
        return [resolve(parameter) for parameter in self.spec.get("parameters", [])]

    def media_types(self) -> list[tuple[str | None, Any]]:
        content = resolve(self.spec.get("requestBody", {})).get("content", {})
        return [(media_type, entry["schema"]) for media_type, entry in content.items()] or [(None, None)]

    def base_request(self, media_type: str | None, body_schema: Any) -> Request:
        """The valid request every case of this operation changes in one place."""
        request = Request(self.method, self.path, media_type=media_type)
        for parameter in self.parameters():
            schema = parameter.get("schema") or next(iter(parameter["content"].values()))["schema"]
            if "content" in parameter:
                request.json_parameters.add(parameter["name"])
            value = base_value(schema, parameter["name"], PARAMETER_VALUES)
            getattr(request, parameter["in"])[parameter["name"]] = value
        if body_schema is not None:
            request.body = base_value(body_schema, None, BODY_VALUES)
        return request


OPERATIONS = [
    Operation(method, path, spec)
    for path, item in DOCUMENT["paths"].items()
    for method, spec in item.items()
    if method in METHODS
]


# --- the cases ---------------------------------------------------------------------------


def hostile_strings(schema: dict, in_body: bool) -> list[tuple[str, str]]:
    limit = schema.get("maxLength")
    length = limit + 1 if limit is not None else (BODY_LIMIT + 1 if in_body else LONG_PARAMETER)
    return [("NUL", "a\x00b"), ("lone surrogate", "a\ud800b"), (f"{length} characters", "x" * length)]


def hostile_values(leaf: Leaf, in_body: bool) -> list[tuple[str, Any]]:
    types = {"string"} if leaf.is_key else types_of(leaf.schema)
    values = hostile_strings(leaf.schema, in_body) if "string" in types else []
    if types & {"integer", "number"}:
        values += NUMBERS
    return values


def placed(value: Any, path: tuple, hostile: Any, leaf: Leaf) -> Any:
    """``value`` with ``hostile`` at ``path`` (as a key there, for a key leaf), containers made as needed."""
    if not path:
        return {hostile: leaf.key_value} if leaf.is_key else hostile
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        container = list(value) if isinstance(value, list) else []
        child = container[head] if head < len(container) else None
        container[head : head + 1] = [placed(child, rest, hostile, leaf)]
        return container
    container = dict(value) if isinstance(value, dict) else {}
    container[head] = placed(container.get(head), rest, hostile, leaf)
    return container


@dataclass(frozen=True)
class Case:
    operation: Operation
    request: Request
    # Where the value is: ("query", "session_name"), ("body", "session_state", "hostile"), ...
    loc: tuple
    # A body larger than the server accepts is refused before it is read: 413, not 422.
    too_large: bool = False

    @property
    def nul_in_path(self) -> bool:
        return self.loc[0] == "path" and "\x00" in self.request.path[self.loc[1]]


def cases_of(operation: Operation) -> Iterator[tuple[str, Case]]:
    """Each case of ``operation``, with its test id; parameters once, each request body's media type."""
    for index, (media_type, body_schema) in enumerate(operation.media_types()):
        base = operation.base_request(media_type, body_schema)
        label = f"{operation.id}[{media_type}]" if len(operation.media_types()) > 1 else operation.id
        if index == 0:
            for parameter in operation.parameters():
                yield from parameter_cases(operation, base, label, parameter)
        if body_schema is not None:
            yield from body_cases(operation, base, label, body_schema)


def parameter_cases(operation: Operation, base: Request, label: str, parameter: dict) -> Iterator[tuple[str, Case]]:
    location, name = parameter["in"], parameter["name"]
    if "content" in parameter:
        # A JSON value: hostile values inside it, and its text itself.
        schema = next(iter(parameter["content"].values()))["schema"]
        targets = [*leaves(schema), None]
    else:
        targets = [leaf for leaf in leaves(parameter["schema"]) if not leaf.is_key]
    for leaf in targets:
        text = leaf is None
        leaf = leaf or Leaf((), {"type": "string"})
        for what, hostile in hostile_values(leaf, in_body=False):
            request = copy.deepcopy(base)
            values = getattr(request, location)
            if text:
                request.json_parameters.discard(name)
                values[name] = hostile
            else:
                values[name] = placed(values[name], leaf.path, hostile, leaf)
            loc = (location, name, *leaf.path)
            yield case_id(label, loc, leaf, what), Case(operation, request, loc)


def body_cases(operation: Operation, base: Request, label: str, schema: Any) -> Iterator[tuple[str, Case]]:
    for leaf in leaves(schema):
        for what, hostile in hostile_values(leaf, in_body=True):
            request = copy.deepcopy(base)
            request.body = placed(request.body, leaf.path, hostile, leaf)
            loc = ("body", *leaf.path)
            too_large = len(encoded_body(request)) > BODY_LIMIT
            yield case_id(label, loc, leaf, what), Case(operation, request, loc, too_large)


def case_id(label: str, loc: tuple, leaf: Leaf, what: str) -> str:
    """``update_session[application/json]-body/session_state/hostile key-NUL``, say."""
    return f"{label}-{'/'.join(map(str, loc))}{' key' if leaf.is_key else ''}-{what}"


# --- sending -----------------------------------------------------------------------------


def as_bytes(value: Any, is_json: bool = False) -> bytes:
    """A value as it goes on the wire; a lone surrogate as the bytes UTF-8 would give it."""
    if is_json:
        return json.dumps(value).encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode("utf-8", "surrogatepass")


def encoded_body(request: Request) -> bytes:
    return json.dumps(request.body).encode() if request.media_type else b""


def send(client: TestClient, request: Request):
    path = request.template.format(**{name: quote(as_bytes(v), safe="") for name, v in request.path.items()})
    pairs = [
        (name, item)
        for name, value in request.query.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    query = "&".join(f"{name}={quote(as_bytes(v, name in request.json_parameters), safe='')}" for name, v in pairs)
    headers = {name: quote(as_bytes(value), safe="") for name, value in request.header.items()}
    if request.media_type:
        headers["Content-Type"] = request.media_type.encode()
    return client.request(request.method, f"{path}?{query}", content=encoded_body(request) or None, headers=headers)


# The header parameters the contract declares, sent percent-encoded (see WireHeaders).
HEADER_PARAMETERS = {
    parameter["name"].lower().encode()
    for operation in OPERATIONS
    for parameter in operation.parameters()
    if parameter["in"] == "header"
}


class WireHeaders:
    """Declared headers as the bytes the test percent-encoded in them. Starlette's test client
    re-encodes header values as UTF-8, so bytes that are not UTF-8 (a lone surrogate's) would
    otherwise never reach the app as an HTTP client sends them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = [
                (name, unquote_to_bytes(value) if name in HEADER_PARAMETERS else value)
                for name, value in scope["headers"]
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def conforms(response_spec: dict, body: Any) -> list[str]:
    """What is wrong with ``body`` against the declared response's JSON schema."""
    schema = next(iter(resolve(response_spec)["content"].values()))["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    return [error.message for error in validator.iter_errors(body)]


def names_the_input(entry: dict, loc: tuple) -> bool:
    """Whether a 422 entry is about the hostile value: its location, an enclosing one down to
    the parameter or body field, or one inside it; a body that does not parse, by position."""
    at = tuple(entry["loc"])
    if entry["type"] == "json_invalid" and len(at) == 2 and at[0] == "body" and isinstance(at[1], int):
        return loc[0] == "body"
    return len(at) >= 2 and (at == loc[: len(at)] or loc == at[: len(loc)])


CASES = dict(case for operation in OPERATIONS for case in cases_of(operation))


# --- the tests ---------------------------------------------------------------------------


# The base run's image, in the served media directory as agno's LocalMediaStorage keeps it.
BASE_IMAGE = {
    "media_id": "image-1",
    "storage_key": "base.png",
    "session_id": "base",
    "storage_backend": "local",
    "mime_type": "image/png",
    "size": 4,
}


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[TestClient, DirectDatabase]]:
    """The app on ``settings``' database, holding the base session (alice's) and its run, whose
    image is in ``settings``' media directory."""
    directory = Path(settings.media_storage.location)
    (directory / "base.png").write_bytes(b"\x89PNG")
    with TestClient(WireHeaders(create_app(settings))) as client:
        client.media_directory = directory
        database = DirectDatabase(settings.databases[DB_ID])
        try:
            seed(client, database)
            yield client, database
        finally:
            database.dispose()


def seed(client: TestClient, database: DirectDatabase) -> None:
    """Only the base session and its run in the database."""
    with database.engine.begin() as connection:
        connection.execute(database.models.runs.delete())
        connection.execute(database.models.sessions.delete())
    response = client.post("/sessions", json={"session_id": "base", "user_id": "alice", "agent_id": "agent-1"})
    assert response.status_code == 201, response.text
    # An agent's and a team's at once, so that AgentOS's fork paths of either find it theirs.
    with database.engine.begin() as connection:
        connection.execute(database.models.sessions.update().values(team_id="team-1"))
    image = {"id": "image-1", "media_reference": {**BASE_IMAGE, "bucket": str(Path(client.media_directory).resolve())}}
    add_run(database, "base", "run-1", 0, created_at=1_700_000_000, user_id="alice", images=[image])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One app for all the cases: none of them may change its database."""
    directory = tmp_path_factory.mktemp("hostile")
    (directory / "media").mkdir()
    media = MediaStorageSettings.from_url(str(directory / "media"), source="test")
    with serving(Settings(databases={DB_ID: fresh_database(directory)}, media_storage=media)) as served:
        yield served


@pytest.fixture
def reseeded(served):
    """``served``, its database holding the base session alone before and after the test."""
    seed(*served)
    yield served
    seed(*served)


def test_every_parameter_and_body_has_cases():
    """The walk misses nothing it should reach: each parameter but a boolean, and each body."""
    reached = {(case.operation.id, case.request.media_type, *case.loc[:2]) for case in CASES.values()}
    expected = {
        (op.id, op.media_types()[0][0], parameter["in"], parameter["name"])
        for op in OPERATIONS
        for parameter in op.parameters()
        if resolve(parameter.get("schema", {})).get("type") != "boolean"
    }
    assert expected <= reached
    bodies = {(op.id, media_type) for op in OPERATIONS for media_type, schema in op.media_types() if schema}
    assert bodies == {(op_id, media_type) for op_id, media_type, location, *_ in reached if location == "body"}


@pytest.mark.parametrize(
    ("operation", "media_type"),
    [(op, media_type) for op in OPERATIONS for media_type, _ in op.media_types()],
    ids=lambda value: value.id if isinstance(value, Operation) else str(value),
)
def test_the_base_request_is_valid(reseeded, operation, media_type):
    """Each case changes one value of a request that, as it is, succeeds."""
    client, _database = reseeded
    body_schema = dict(operation.media_types())[media_type]
    success = min(status for status in operation.spec["responses"] if status.startswith("2"))
    response = send(client, operation.base_request(media_type, body_schema))
    assert response.status_code == int(success), response.text


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_hostile_value_is_refused_with_a_declared_4xx_and_nothing_changes(served, case):
    client, database = served
    before = database.snapshot()
    response = send(client, case.request)
    status = str(response.status_code)
    assert status in case.operation.spec["responses"], (status, response.text[:1000])
    body = response.json()
    assert conforms(case.operation.spec["responses"][status], body) == [], body
    if case.too_large:
        assert (status, body) == ("413", {"detail": f"Request body too large: the limit is {BODY_LIMIT} bytes"})
    elif case.nul_in_path:
        assert (status, body) == ("404", {"detail": "Not Found"})  # before routing (app.RequestGuard)
    else:
        assert status == "422", response.text[:1000]
        assert all(names_the_input(entry, case.loc) for entry in body["detail"]), (case.loc, body)
    assert database.snapshot() == before


def test_a_long_string_in_a_free_form_object_is_stored_whole(client, database):
    """Long strings and keys where the contract sets no limit but the body's (JSONB, its index)."""
    long = "x" * 300_000
    response = client.post(
        "/sessions", json={"session_id": "long", "session_state": {"text": long}, "metadata": {long: long}}
    )
    assert response.status_code == 201, response.text
    [[row], []] = database.snapshot()
    assert (row.session_data["session_state"], row.metadata) == ({"text": long}, {long: long})


NUL_PATTERN = "^[^\\x00]*$"
FINITE_MESSAGE = "Input should be a finite number"


def nul_refused(loc: list, value: str) -> dict:
    return {
        "type": "string_pattern_mismatch",
        "loc": loc,
        "msg": f"String should match pattern '{NUL_PATTERN}'",
        "input": value,
        "ctx": {"pattern": NUL_PATTERN},
    }


@pytest.mark.parametrize(
    ("method", "url", "body", "error"),
    [
        ("GET", "/sessions?session_name=%00", None, nul_refused(["query", "session_name"], "\0")),
        ("GET", "/sessions?session_name=a%00b&user_id=u", None, nul_refused(["query", "session_name"], "a\0b")),
        (
            "DELETE",
            "/sessions",
            b'{"session_ids": ["a\\u0000"], "session_types": ["agent"]}',
            nul_refused(["body", "session_ids", 0], "a\0"),
        ),
        # NaN and infinities are written back as JSON's null.
        (
            "POST",
            "/sessions",
            b'{"session_state": {"a": [NaN]}}',
            {"type": "finite_number", "loc": ["body", "session_state", "a", 0], "msg": FINITE_MESSAGE, "input": None},
        ),
        (
            "POST",
            "/sessions",
            b'{"metadata": {"a": 1e400}}',
            {"type": "finite_number", "loc": ["body", "metadata", "a"], "msg": FINITE_MESSAGE, "input": None},
        ),
        (
            "POST",
            "/sessions",
            b'{"session_state": {"n": ' + b"1" * 4301 + b"}}",
            {
                "type": "json_invalid",
                "loc": ["body", 24],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Number too large"},
            },
        ),
    ],
)
def test_requests_that_failed_with_a_500_are_a_422(client, database, method, url, body, error):
    """PostgreSQL answered the first five 500 (NUL in text, NaN and infinities in JSONB), and
    both engines the last (more digits than Python reads into an integer)."""
    headers = {"Content-Type": "application/json"} if body else {}
    response = client.request(method, url, content=body, headers=headers)
    assert (response.status_code, response.json()) == (422, {"detail": [error]})
    assert database.snapshot() == [[], []]


def test_what_only_looks_hostile_is_accepted(client, database):
    """What the guards look for first is no error itself: an integer at either 64-bit bound, a
    string of many digits (read again for exact integers), a U+FFFD sent as UTF-8."""
    state = {"largest": 2**63 - 1, "smallest": -(2**63), "digits": "1" * 40}
    response = client.post("/sessions", json={"session_id": "\ufffd", "session_name": "\ufffd", "session_state": state})
    assert (response.status_code, response.json()["session_state"]) == (201, state)
    [[row], []] = database.snapshot()
    assert row.session_data == {"session_name": "\ufffd", "session_state": state}
    listed = client.get("/sessions?session_name=%EF%BF%BD").json()["data"]
    assert [session["session_id"] for session in listed] == ["\ufffd"]
    response = client.get("/sessions/%EF%BF%BD", headers={"If-None-Match": '"caf\xc3\xa9"'.encode("latin-1")})
    assert (response.status_code, response.json()["session_id"]) == (200, "\ufffd")
