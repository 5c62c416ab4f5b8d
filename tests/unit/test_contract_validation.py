"""contract: Connexion serves OpenAPI 3.1 documents with JSON Schema 2020-12 validation."""

from __future__ import annotations

import math

import connexion
import pytest
from connexion.exceptions import InvalidSpecification
from starlette.testclient import TestClient

from agentos_sessions.contract import responses, validators
from agentos_sessions.contract.entries import RequestValidationFailed
from agentos_sessions.contract.serving import ContractApp
from agentos_sessions.contract.spec import CONTRACT, check_document, load_document, quiet_media_type_warnings

ECHO_DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "echo", "version": "1"},
    "paths": {
        "/echo": {
            "post": {
                "operationId": "tests.unit.test_contract_validation.echo",
                "parameters": [
                    {"name": "n", "in": "query", "schema": {"type": "integer", "exclusiveMinimum": 0}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Echo"}}},
                },
                "responses": {
                    "200": {
                        "description": "the body back",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Echo"}}},
                    }
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Echo": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"const": "echo"},
                    "note": {"type": ["string", "null"], "maxLength": 3},
                    "say": {"type": "string"},
                    "data": {"type": "object"},
                },
            }
        }
    },
}


def echo(body, n=None):
    """Answer with the body, or break the contract when asked to."""
    if body.get("say") == "break":
        return {"kind": "not-echo"}, 200
    return body, 200


@pytest.fixture
def echo_client():
    """A Connexion app serving ECHO_DOCUMENT through the contract package."""
    app = ContractApp(__name__)
    app.add_api(ECHO_DOCUMENT, validator_map=validators.VALIDATOR_MAP, validate_responses=True)
    app.add_error_handler(RequestValidationFailed, responses.request_validation_failed)
    with TestClient(app) as client:
        yield client


def test_a_31_document_loads_and_routes(echo_client):
    response = echo_client.post("/echo", json={"kind": "echo", "note": None})
    assert response.status_code == 200
    assert response.json() == {"kind": "echo", "note": None}


def test_const_is_enforced_on_requests(echo_client):
    response = echo_client.post("/echo", json={"kind": "other"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "value_error", "loc": ["body", "kind"], "msg": '"echo" was expected', "input": "other"}]
    }


def test_numeric_exclusive_minimum_is_enforced_on_parameters(echo_client):
    response = echo_client.post("/echo", params={"n": "0"}, json={"kind": "echo"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "n"]


def test_type_arrays_with_null_report_the_non_null_type(echo_client):
    response = echo_client.post("/echo", json={"kind": "echo", "note": 5})
    assert response.json() == {
        "detail": [
            {"type": "string_type", "loc": ["body", "note"], "msg": "Input should be a valid string", "input": 5}
        ]
    }


def test_responses_are_validated_with_2020_12(echo_client):
    response = echo_client.post("/echo", json={"kind": "echo", "say": "break"})
    assert response.status_code == 500


def test_invalid_31_document_is_refused():
    document = {**ECHO_DOCUMENT, "paths": {"/x": {"get": {"responses": "nope"}}}}
    with pytest.raises(InvalidSpecification):
        check_document(document)


def test_connexion_itself_is_left_as_it_is(echo_client):
    """Only a ContractApp reads 3.1: with one built and serving, Connexion's own app still checks
    documents against its 3.0 meta-schema, refusing a 3.1 one and an invalid 3.0 one."""
    invalid_30 = {"openapi": "3.0.3", "info": {"title": "x", "version": "1"}, "paths": {"/x": {"get": {}}}}
    for document in (ECHO_DOCUMENT, invalid_30):
        with pytest.raises(InvalidSpecification):
            connexion.AsyncApp(__name__).add_api(document)


def test_a_contract_app_refuses_an_invalid_31_document():
    document = {**ECHO_DOCUMENT, "paths": {"/x": {"get": {"responses": "nope"}}}}
    with pytest.raises(InvalidSpecification, match=r"Invalid OpenAPI 3\.1 document"):
        ContractApp(__name__).add_api(document)


def test_the_project_contract_is_a_valid_31_document():
    document = load_document(CONTRACT)
    assert document["openapi"] == "3.1.0"


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        (
            {"type": "integer", "minimum": 1},
            0,
            {
                "type": "greater_than_equal",
                "loc": ["q"],
                "msg": "Input should be greater than or equal to 1",
                "input": 0,
                "ctx": {"ge": 1},
            },
        ),
        (
            {"type": "string", "maxLength": 2},
            "abc",
            {
                "type": "string_too_long",
                "loc": ["q"],
                "msg": "String should have at most 2 characters",
                "input": "abc",
                "ctx": {"max_length": 2},
            },
        ),
        (
            {"type": "array", "minItems": 1},
            [],
            {
                "type": "too_short",
                "loc": ["q"],
                "msg": "List should have at least 1 item after validation, not 0",
                "input": [],
                "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0},
            },
        ),
        (
            {"enum": ["a", "b", "c"]},
            "z",
            {
                "type": "enum",
                "loc": ["q"],
                "msg": "Input should be 'a', 'b' or 'c'",
                "input": "z",
                "ctx": {"expected": "'a', 'b' or 'c'"},
            },
        ),
        (
            {"type": "integer"},
            "x",
            {
                "type": "int_parsing",
                "loc": ["q"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": "x",
            },
        ),
        (
            {"type": "boolean"},
            "x",
            {
                "type": "bool_parsing",
                "loc": ["q"],
                "msg": "Input should be a valid boolean, unable to interpret input",
                "input": "x",
            },
        ),
    ],
)
def test_errors_take_fastapi_shape(schema, instance, expected):
    assert validators.validation_errors(schema, instance, ["q"]) == [expected]


def test_compiled_validators_are_reused_per_schema_object():
    schema = {"type": "string"}
    assert validators.compiled(schema) is validators.compiled(schema)
    assert validators.compiled({"type": "string"}) is not validators.compiled(schema)


def test_one_error_per_value_with_the_type_error_first():
    schema = {"type": "boolean", "enum": [False]}
    assert validators.validation_errors(schema, "bogus", ["query", "delete_media"]) == [
        {
            "type": "bool_parsing",
            "loc": ["query", "delete_media"],
            "msg": "Input should be a valid boolean, unable to interpret input",
            "input": "bogus",
        }
    ]


def test_a_recursive_schema_resolved_into_a_cycle_compiles():
    """Connexion resolves a recursive $ref into dicts that contain themselves."""
    value: dict = {"pattern": "^[^\\x00]*$"}
    value["items"] = value
    value["additionalProperties"] = value
    schema = {"type": "object", "additionalProperties": value}

    assert validators.validation_errors(schema, {"a": [{"b": ["ok", 1, None]}]}, ["body"]) == []
    [error] = validators.validation_errors(schema, {"a": [{"b": ["no\0"]}]}, ["body"])
    assert (error["type"], error["loc"]) == ("string_pattern_mismatch", ["body", "a", 0, "b", 0])
    acyclic = validators.acyclic(schema)
    assert acyclic["additionalProperties"] == {"$ref": "#/$defs/recursive0"}
    assert acyclic["$defs"]["recursive0"]["items"] == {"$ref": "#/$defs/recursive0"}


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "within"),
    [
        (1, True),
        ({}, True),
        (_nested(512), True),
        (_nested(513), False),
        ({"a": [1, {"b": _nested(509)}]}, True),
        ({"a": [1, {"b": _nested(510)}], "c": {}}, False),
    ],
)
def test_depth_within_counts_nested_arrays_and_objects(value, within):
    assert validators.depth_within(value, 512) is within


def test_the_opening_beyond_the_limit_is_found_outside_strings():
    text = '{"s": "[[[[\\"{{{", "a": [[[1]]]}'
    assert validators._opening_beyond(text, 3) == text.index("[[[1") + 2
    assert validators._opening_beyond(text, 4) == 0


FINITE = "Input should be a finite number"
NUL = "String should not contain the NUL character (\\u0000): it cannot be stored"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"ok": [1, 1.5, "a", None, True, {"b": -(2**63)}], "max": 2**63 - 1}, []),
        (
            {"a": [{"b": "x\0"}]},
            [{"type": "string_nul_character", "loc": ["body", "a", 0, "b"], "msg": NUL, "input": "x\0"}],
        ),
        ({"k\0": 1}, [{"type": "string_nul_character", "loc": ["body", "k\0"], "msg": NUL, "input": "k\0"}]),
        (
            [2**63, -(2**63) - 1, 1e30],
            [
                {
                    "type": "less_than_equal",
                    "loc": ["body", 0],
                    "msg": "Input should be less than or equal to 9223372036854775807",
                    "input": 2**63,
                    "ctx": {"le": 2**63 - 1},
                },
                {
                    "type": "greater_than_equal",
                    "loc": ["body", 1],
                    "msg": "Input should be greater than or equal to -9223372036854775808",
                    "input": -(2**63) - 1,
                    "ctx": {"ge": -(2**63)},
                },
                {
                    "type": "less_than_equal",
                    "loc": ["body", 2],
                    "msg": "Input should be less than or equal to 9223372036854775807",
                    "input": 1e30,
                    "ctx": {"le": 2**63 - 1},
                },
            ],
        ),
        (
            {"f": float("-inf")},
            [{"type": "finite_number", "loc": ["body", "f"], "msg": FINITE, "input": -math.inf}],
        ),
    ],
)
def test_storable_errors_name_what_no_engine_stores_at_any_depth_keys_included(value, expected):
    assert validators.storable_errors(value, ["body"]) == expected


def test_an_integer_parameter_without_a_maximum_is_bounded_by_64_bits(echo_client):
    response = echo_client.post("/echo", params={"n": str(2**64)}, json={"kind": "echo"})
    assert (response.status_code, response.json()) == (
        422,
        {
            "detail": [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "n"],
                    "msg": "Input should be less than or equal to 9223372036854775807",
                    "input": str(2**64),
                    "ctx": {"le": 2**63 - 1},
                }
            ]
        },
    )


def test_a_body_integer_past_64_bits_is_read_exactly_not_as_orjson_float(echo_client):
    body = b'{"kind": "echo", "data": {"n": 18446744073709551616}}'
    response = echo_client.post("/echo", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (
        422,
        {
            "detail": [
                {
                    "type": "less_than_equal",
                    "loc": ["body", "data", "n"],
                    "msg": "Input should be less than or equal to 9223372036854775807",
                    "input": 2**64,
                    "ctx": {"le": 2**63 - 1},
                }
            ]
        },
    )


def test_nul_in_a_string_the_contract_does_not_restrict_is_422(echo_client):
    response = echo_client.post("/echo", json={"kind": "echo", "say": "a\0", "data": {"k\0": 1}})
    assert (response.status_code, response.json()) == (
        422,
        {
            "detail": [
                {"type": "string_nul_character", "loc": ["body", "say"], "msg": NUL, "input": "a\0"},
                {"type": "string_nul_character", "loc": ["body", "data", "k\0"], "msg": NUL, "input": "k\0"},
            ]
        },
    )


def test_members_the_body_schema_does_not_declare_are_not_checked(echo_client):
    """No handler reads them: they are ignored, as FastAPI ignores them."""
    response = echo_client.post("/echo", json={"kind": "echo", "extra": ["a\0", 2**64]})
    assert (response.status_code, response.json()) == (200, {"kind": "echo", "extra": ["a\0", 2**64]})


def test_several_request_media_types_are_not_warned_about_on_every_request(caplog):
    """PATCH takes JSON and merge patches: Connexion would log a warning for each such request."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "two", "version": "1"},
        "paths": {
            "/echo": {
                "post": {
                    "operationId": "tests.unit.test_contract_validation.echo",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "application/merge-patch+json": {"schema": {"type": "object"}},
                        }
                    },
                    "responses": {"200": {"description": "the body back"}},
                }
            }
        },
    }
    quiet_media_type_warnings()
    app = ContractApp(__name__)
    app.add_api(document, validator_map=validators.VALIDATOR_MAP)
    with caplog.at_level("WARNING"), TestClient(app) as client:
        for media_type in ("application/json", "application/merge-patch+json"):
            response = client.post("/echo", content=b'{"a": 1}', headers={"Content-Type": media_type})
            assert response.status_code == 200, response.text
    assert [r.getMessage() for r in caplog.records if "content types" in r.getMessage()] == []


def test_a_contract_app_takes_integer_status_keys_and_a_name(echo_client):
    """As Connexion's own add_api: YAML's unquoted 200: is the key "200", and name= is accepted."""
    post = ECHO_DOCUMENT["paths"]["/echo"]["post"]
    document = {**ECHO_DOCUMENT, "paths": {"/echo": {"post": {**post, "responses": {200: post["responses"]["200"]}}}}}
    app = ContractApp(__name__)
    app.add_api(document, name="echo", validator_map=validators.VALIDATOR_MAP, validate_responses=True)
    with TestClient(app) as client:
        response = client.post("/echo", json={"kind": "echo", "say": "break"})
    assert response.status_code == 500  # the response is checked against the 200 response's schema
