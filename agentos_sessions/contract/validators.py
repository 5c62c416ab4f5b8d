"""Connexion validators that check requests and responses with JSON Schema 2020-12.

Connexion 3.3 validates bodies with Draft 4, which silently ignores 2020-12 keywords such as
``const``. :data:`VALIDATOR_MAP` (``add_api(validator_map=...)``) replaces its validators with
compiled jsonschema-rs ones for parameters, request bodies and response bodies, and reports an
invalid request as FastAPI does (:mod:`.entries`), raised as :class:`RequestValidationFailed`.
Whatever a schema admits, a value no engine can store (NUL, integers past 64 bits, NaN) is
refused too.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import jsonschema_rs
import orjson
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, NonConformingResponseBody
from connexion.lifecycle import ConnexionRequest
from connexion.validators import (
    AbstractRequestBodyValidator,
    AbstractResponseBodyValidator,
    ParameterValidator,
)
from starlette.datastructures import QueryParams

from agentos_sessions import jsoncodec
from agentos_sessions.contract.entries import (
    RequestValidationFailed,
    entry,
    from_schema_error,
    json_invalid,
    not_an_object,
)

logger = logging.getLogger(__name__)

_compiled: dict[int, tuple[dict[str, Any], jsonschema_rs.Draft202012Validator]] = {}


def compiled(schema: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    """The compiled validator of a (ref-resolved) schema, built once per schema object."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        # Keeping the schema in the entry pins its id for the lifetime of the cache.
        entry = (schema, jsonschema_rs.Draft202012Validator(acyclic(schema), validate_formats=True))
        _compiled[id(schema)] = entry
    return entry[1]


def acyclic(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its recursion written as ``$ref`` to ``$defs`` again.

    Connexion resolves every ``$ref`` in place, so a recursive schema (``JsonValue``) becomes
    a cycle of dicts, which a validator cannot compile; each schema that contains itself is put
    back under ``$defs`` and referred to from where it recurs.
    """
    recursive: dict[int, str] = {}
    explored: set[int] = set()

    def find(node: Any, open_nodes: set[int]) -> None:
        if isinstance(node, list):
            for item in node:
                find(item, open_nodes)
        elif isinstance(node, dict):
            if id(node) in open_nodes:
                recursive.setdefault(id(node), f"recursive{len(recursive)}")
            elif id(node) not in explored:
                open_nodes.add(id(node))
                for value in node.values():
                    find(value, open_nodes)
                open_nodes.discard(id(node))
                explored.add(id(node))

    find(schema, set())
    if not recursive:
        return schema
    definitions: dict[str, Any] = {}

    def rebuilt(node: Any, *, defining: bool = False) -> Any:
        if isinstance(node, list):
            return [rebuilt(item) for item in node]
        if not isinstance(node, dict):
            return node
        name = recursive.get(id(node))
        if name is not None and not defining:
            if name not in definitions:
                definitions[name] = {}  # taken before its body is built: the body refers to it
                definitions[name] = rebuilt(node, defining=True)
            return {"$ref": f"#/$defs/{name}"}
        return {key: rebuilt(value) for key, value in node.items()}

    root = rebuilt(schema)
    return {**root, "$defs": {**root.get("$defs", {}), **definitions}}


# --- what no engine can store ----------------------------------------------------------

# The numbers a request may carry anywhere: PostgreSQL's bigint, SQLite's INTEGER, and what JSON
# readers hold exactly (orjson reads larger integers as floats; SQLite's JSON functions too).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def storable_errors(value: Any, loc: list) -> list[dict[str, Any]]:
    """Entries for what no engine can be trusted to store, wherever ``value`` holds it: a
    string or object key with NUL (PostgreSQL's text and JSONB refuse it), a number outside the
    signed 64-bit range, NaN or an infinity (JSON has neither; PostgreSQL's JSONB refuses them).
    The contract says as much for each input (patterns, bounds): this catches what it omits."""
    errors = []
    pending = [(value, loc)]
    while pending:
        node, at = pending.pop()
        if isinstance(node, str):
            if "\x00" in node:
                errors.append(_nul_character(at, node))
        elif isinstance(node, dict):
            for key, child in reversed(node.items()):
                pending.append((child, [*at, key]))
                if "\x00" in key:
                    pending.append((key, [*at, key]))
        elif isinstance(node, list):
            pending.extend((child, [*at, index]) for index, child in reversed(list(enumerate(node))))
        elif isinstance(node, (int, float)):
            if isinstance(node, float) and not math.isfinite(node):
                errors.append(entry("finite_number", at, "Input should be a finite number", node))
            elif node > INT64_MAX:
                errors.append(_beyond_limit("less_than_equal", "less than", "le", INT64_MAX, at, node))
            elif node < INT64_MIN:
                errors.append(_beyond_limit("greater_than_equal", "greater than", "ge", INT64_MIN, at, node))
    return errors


def _nul_character(loc: list, value: str) -> dict[str, Any]:
    return entry(
        "string_nul_character", loc, "String should not contain the NUL character (\\u0000): it cannot be stored", value
    )


def _beyond_limit(kind: str, relation: str, bound: str, limit: int, loc: list, value: int) -> dict[str, Any]:
    return entry(kind, loc, f"Input should be {relation} or equal to {limit}", value, {bound: limit})


def _unreported(entries: list[dict[str, Any]], reported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` about values that ``reported`` says nothing of (one error per value)."""
    seen = {tuple(entry["loc"]) for entry in reported}
    return [entry for entry in entries if tuple(entry["loc"]) not in seen]


def validation_errors(schema: dict[str, Any], instance: Any, prefix: list) -> list[dict[str, Any]]:
    """FastAPI-style error entries for ``instance`` against ``schema``.

    Like pydantic, one error per value: a wrong type hides the other constraints of that value.
    """
    validator = compiled(schema)
    if validator.is_valid(instance):
        return []
    first: dict[tuple, jsonschema_rs.ValidationError] = {}
    for error in validator.iter_errors(instance):
        path = tuple(error.instance_path)
        if type(error.kind).__name__ == "Required":
            path += (error.kind.property,)  # each missing field is its own value
        if path not in first or (type(error.kind).__name__ == "Type" and type(first[path].kind).__name__ != "Type"):
            first[path] = error
    return [entry for error in first.values() for entry in from_schema_error(error, prefix)]


# --- Connexion validators --------------------------------------------------------------


class Parameters(ParameterValidator):
    """Validates path, query, header and cookie parameters with JSON Schema 2020-12."""

    def validate_request(self, request: ConnexionRequest) -> None:
        errors: list[dict[str, Any]] = []
        # FastAPI reports the query string as sent, not as coerced.
        raw_query = QueryParams(request.scope.get("query_string", b""))
        sources = {
            "query": request.query_params,
            "path": request.path_params,
            "header": request.headers,
            "cookie": request.cookies,
        }
        for location, values in sources.items():
            for param in self.parameters.get(location, []):
                name = param["name"]
                key = name.replace("-", "_") if location == "path" else name
                value = values.get(key)
                if value is None:
                    if param.get("required"):
                        errors.append(entry("missing", [location, name], "Field required", None))
                    continue
                if "contentSchema" in param.get("schema", {}):
                    errors.extend(_content_errors(param["schema"]["contentSchema"], value, [location, name]))
                    continue
                found = validation_errors(param.get("schema", {}), value, [location, name])
                if not found:
                    found = _parameter_guard(location, name, value, request.scope)
                if location == "query" and param.get("schema", {}).get("type") != "array":
                    for error in found:
                        error["input"] = raw_query.get(name)
                errors.extend(found)
        if errors:
            raise RequestValidationFailed(errors)


def _parameter_guard(location: str, name: str, value: Any, scope) -> list[dict[str, Any]]:
    """Entries for a parameter value that its schema admits but no engine can store or compare
    (see :func:`storable_errors`), or that is not UTF-8 text (a lone surrogate's bytes, say)."""
    items = enumerate(value) if isinstance(value, list) else [(None, value)]
    errors = []
    for index, item in items:
        loc = [location, name] if index is None else [location, name, index]
        found = storable_errors(item, loc)
        if not found and isinstance(item, str) and not _is_utf8_text(location, name, item, scope):
            found = [entry("string_unicode", loc, _NOT_UNICODE, item)]
        errors.extend(found)
    return errors


_NOT_UNICODE = "Input should be a valid string, unable to parse raw data as a unicode string"


def _is_utf8_text(location: str, name: str, value: str, scope) -> bool:
    """Whether ``value`` was sent as UTF-8. Starlette reads a query or path as UTF-8, each byte
    that is not replaced by U+FFFD (so only a value with one needs its raw bytes checked), and a
    header as Latin-1."""
    if location == "header":
        return value.isascii() or _is_utf8(value.encode("latin-1"))
    if "\ufffd" not in value:
        return True
    if location == "query":
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        return all(_is_utf8(raw.encode("latin-1")) for key, raw in pairs if key == name)
    if location == "path":
        return _is_utf8(unquote_to_bytes(scope.get("raw_path", b"")))
    return True


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _content_errors(schema: dict[str, Any], raw: str, loc: list) -> list[dict[str, Any]]:
    """The errors of a JSON value in a parameter (see :func:`for_connexion`) against ``schema``."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return [json_invalid(loc, error.msg, raw)]
    if not depth_within(value, MAX_DEPTH):
        return [json_invalid(loc, "Nesting too deep", raw)]
    if _has_long_number(raw.encode()):
        value = json.loads(raw)  # its integers exactly (see JSONBody._parse)
    found = validation_errors(schema, value, loc)
    return found + _unreported(storable_errors(value, loc), found)


def _has_long_number(raw: bytes) -> bool:
    """Whether JSON text has a run of 19 digits, as 2**63 has: how any integer past 64 bits is
    spelled. Found with bytes.translate, ~10x faster than a regular expression on large bodies."""
    return b"0" * 19 in raw.translate(_DIGITS_AS_ZEROS)


_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


_ABSENT: Any = object()


class JSONBody(AbstractRequestBodyValidator):
    """Parses and validates JSON request bodies with JSON Schema 2020-12, reporting as FastAPI does.

    An absent body is accepted when the body is optional; a JSON ``null`` is a body that is not
    an object. A body schema marked ``x-fastapi-embed`` is FastAPI's single embedded body
    parameter (``Body(embed=True)``): whatever is wrong with the body, FastAPI reports that
    parameter as missing. Whatever its schema admits, a body is refused when it holds what no
    engine can store (:func:`storable_errors`).
    """

    # Whether the body may hold what storable_errors finds: most bodies' text shows it cannot.
    _unstorable_possible = False

    async def _parse(self, stream, scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        # FastAPI's rule: only an empty body is absent; whitespace is JSON that does not parse.
        if not raw:
            return _ABSENT
        if not any(name == b"content-type" for name, _ in scope["headers"]):
            # Without a Content-Type the body is not JSON, just text: FastAPI's answer, kept.
            raise RequestValidationFailed([not_an_object(raw.decode(self._encoding, errors="replace"))])
        fast_error = None
        utf8 = codecs.lookup(self._encoding).name == "utf-8"
        if utf8:
            try:
                body = orjson.loads(raw)  # the fast path, for the JSON almost every client sends
            except orjson.JSONDecodeError as error:
                fast_error = error
            else:
                # orjson reads an integer past 64 bits as a float (2**64 as 1.8446744073709552e19):
                # a body that may hold one is read again below, where integers stay exact.
                if not _has_long_number(raw):
                    # JSON can only spell NUL as an escape; orjson refuses NaN and infinities.
                    self._unstorable_possible = b"\\u0000" in raw
                    return self._shallow(body, raw)
        self._unstorable_possible = True
        # The standard library's reading, and its error positions and messages (FastAPI's).
        try:
            text = raw.decode(self._encoding)
            body = json.loads(text)
        except UnicodeDecodeError as error:
            raise RequestValidationFailed([_json_invalid(error.start, "Invalid UTF-8")]) from error
        except json.JSONDecodeError as error:
            raise RequestValidationFailed([_json_invalid(error.pos, error.msg)]) from error
        except RecursionError as error:
            # Deeper than orjson's 1,024 levels, and than Python's own recursion limit.
            position = fast_error.pos if fast_error is not None else 0
            raise RequestValidationFailed([_json_invalid(position, "Nesting too deep")]) from error
        except ValueError as error:
            # An integer of more than 4,300 digits, past what Python reads from text.
            digits = re.search(r"[0-9]{4301}", text)
            position = digits.start() if digits else 0
            raise RequestValidationFailed([_json_invalid(position, "Number too large")]) from error
        if fast_error is not None or not utf8:  # what orjson read has no lone surrogate
            try:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as error:
                # A \ud800-style escape without its pair: no Unicode text, nothing UTF-8 can carry.
                position = fast_error.pos if fast_error is not None else 0
                raise RequestValidationFailed([_json_invalid(position, "Lone surrogate in string")]) from error
        return self._shallow(body, raw)

    def _shallow(self, body: Any, raw: bytes) -> Any:
        """``body``, unless it nests deeper than MAX_DEPTH levels (``raw`` is its text)."""
        # Fewer brackets than the limit cannot nest that deep: most bodies stop here.
        if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH or depth_within(body, MAX_DEPTH):
            return body
        text = raw.decode(self._encoding)
        raise RequestValidationFailed([_json_invalid(_opening_beyond(text, MAX_DEPTH), "Nesting too deep")])

    def _validate(self, body: Any) -> None:
        embedded = self._embedded_field()
        if body is _ABSENT:
            if self._required:
                raise RequestValidationFailed([self._missing_body()])
            return
        if self._schema.get("type") == "object" and not isinstance(body, dict):
            raise RequestValidationFailed([self._missing_body() if embedded else not_an_object(body)])
        errors = validation_errors(self._schema, body, ["body"])
        if self._unstorable_possible:
            errors += _unreported(storable_errors(self._read_members(body), ["body"]), errors)
        if embedded:
            for error in errors:
                if error["type"] == "missing" and error["loc"] == ["body", embedded]:
                    error["input"] = None
        if errors:
            raise RequestValidationFailed(errors)

    def _read_members(self, body: Any) -> Any:
        """``body`` without the members its schema admits by default but does not declare: no
        handler reads them. Where ``additionalProperties`` is given, they are read."""
        declared = self._schema.get("properties")
        if not isinstance(body, dict) or declared is None or "additionalProperties" in self._schema:
            return body
        return {key: value for key, value in body.items() if key in declared}

    def _embedded_field(self) -> str | None:
        return next(iter(self._schema.get("required", [])), None) if self._schema.get("x-fastapi-embed") else None

    def _missing_body(self) -> dict[str, Any]:
        embedded = self._embedded_field()
        return entry("missing", ["body", embedded] if embedded else ["body"], "Field required", None)

    async def wrap_receive(self, receive, *, scope):
        try:
            return await super().wrap_receive(receive, scope=scope)
        except BadRequestProblem as problem:
            # Connexion answers an absent required body itself, before parsing.
            raise RequestValidationFailed([self._missing_body()]) from problem


# How deep a JSON body may nest arrays and objects. Python code (Connexion reading the body for the
# handler, json.dumps storing it, agno loading it) recurses once per level, and Python's recursion
# limit is 1,000 frames in all: a body nested 990 levels deep got through parsing and failed later.
MAX_DEPTH = 512


def depth_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects at most ``limit`` levels deep (itself one)."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def _opening_beyond(text: str, limit: int) -> int:
    """The position in JSON ``text`` of the first ``[`` or ``{`` nested deeper than ``limit``."""
    depth, in_string, escaped = 0, False, False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return position
        elif char in "]}":
            depth -= 1
    return 0


def _json_invalid(position: int, reason: str) -> dict[str, Any]:
    return json_invalid(["body", position], reason, {})


class JSONResponse(AbstractResponseBodyValidator):
    """Validates JSON response bodies with JSON Schema 2020-12."""

    def _parse(self, stream) -> Any:
        raw = b"".join(stream)
        if not raw:
            return None
        try:
            return jsoncodec.loads(raw)
        except json.JSONDecodeError as error:
            raise NonConformingResponseBody(str(error)) from error

    def _validate(self, body: Any) -> None:
        validator = compiled(self._schema)
        if body is None and self._nullable:
            return
        error = next(iter(validator.iter_errors(body)), None)
        if error is not None:
            path = "/".join(str(part) for part in error.instance_path)
            logger.error("Response does not conform to the contract at /%s: %s", path, error.message)
            raise NonConformingResponseBody(
                detail=f"Response body does not conform to specification. {error.message} at /{path}"
            )


class OpaqueResponse(AbstractResponseBodyValidator):
    """Any other response body (media bytes, Prometheus text): the contract declares no structure
    to check in it. Passed through as it is sent, never gathered (Connexion's base validator
    holds the whole body: a 200 MB video would be held in memory), and without Connexion's log
    line per response for a type it has no validator for."""

    def wrap_send(self, send):
        return send


VALIDATOR_MAP = {
    "parameter": Parameters,
    "body": MediaTypeDict({"*/*json": JSONBody}),
    # The most specific type wins: JSON bodies are validated, every other passes.
    "response": MediaTypeDict({"*/*json": JSONResponse, "*/*": OpaqueResponse}),
}
