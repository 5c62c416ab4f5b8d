"""FastAPI's (pydantic's) error entries for requests that do not match the contract.

Each entry is ``{"type", "loc", "msg", "input"}`` (with ``ctx`` where pydantic gives one), as
AgentOS answers a 422; :func:`from_schema_error` turns a jsonschema-rs validation error into
them, through a table of pydantic's types and messages for each JSON Schema keyword.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jsonschema_rs


class RequestValidationFailed(Exception):
    """A request does not match the contract; ``errors`` is FastAPI's list of error entries."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(errors)
        self.errors = errors


def entry(kind: str, loc: list, msg: str, value: Any, ctx: dict | None = None) -> dict[str, Any]:
    """One error entry: pydantic's error ``kind`` at ``loc`` for ``value``."""
    found = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        found["ctx"] = ctx
    return found


_TYPE_ERRORS = {
    "string": ("string_type", "Input should be a valid string"),
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "array": ("list_type", "Input should be a valid list"),
}
_PARSING_ERRORS = {
    "integer": ("int_parsing", "Input should be a valid integer, unable to parse string as an integer"),
    "number": ("float_parsing", "Input should be a valid number, unable to parse string as a number"),
    "boolean": ("bool_parsing", "Input should be a valid boolean, unable to interpret input"),
}


def _quote_choices(options: Iterable[Any]) -> str:
    quoted = [f"'{option}'" if isinstance(option, str) else repr(option) for option in options]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _type_error(types: list[str], loc: list, value: Any) -> dict[str, Any]:
    expected = next((t for t in types if t != "null"), "null")
    if expected == "integer" and isinstance(value, float):
        return entry(
            "int_from_float", loc, "Input should be a valid integer, got a number with a fractional part", value
        )
    if isinstance(value, str) and expected in _PARSING_ERRORS:
        kind, msg = _PARSING_ERRORS[expected]
        return entry(kind, loc, msg, value)
    kind, msg = _TYPE_ERRORS.get(expected, ("value_error", f"Input should be of type {expected}"))
    return entry(kind, loc, msg, value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(shape: str, bound: str, kind_name: str) -> Callable[[Any, Any], tuple[str, str, dict]]:
    """The entry of a size keyword (minItems, maxProperties, ...) for a list or a dictionary."""
    limit_key = "min_length" if bound == "least" else "max_length"

    def described(kind, value) -> tuple[str, str, dict]:
        unit = "item" if kind.limit == 1 else "items"
        message = f"{shape} should have at {bound} {kind.limit} {unit} after validation, not {len(value)}"
        return kind_name, message, {"field_type": shape, limit_key: kind.limit, "actual_length": len(value)}

    return described


# pydantic's error type, message and context for each JSON Schema keyword that fails on a value,
# by the name of jsonschema-rs's error kind (``kind`` is that error kind, ``value`` the value).
_KEYWORD_ENTRIES: dict[str, Callable[[Any, Any], tuple[str, str, dict]]] = {
    "Enum": lambda kind, _: (
        "enum",
        f"Input should be {_quote_choices(kind.options)}",
        {"expected": _quote_choices(kind.options)},
    ),
    "Minimum": lambda kind, _: (
        "greater_than_equal",
        f"Input should be greater than or equal to {kind.limit}",
        {"ge": kind.limit},
    ),
    "Maximum": lambda kind, _: (
        "less_than_equal",
        f"Input should be less than or equal to {kind.limit}",
        {"le": kind.limit},
    ),
    "MinLength": lambda kind, _: (
        "string_too_short",
        f"String should have at least {_plural(kind.limit, 'character')}",
        {"min_length": kind.limit},
    ),
    "MaxLength": lambda kind, _: (
        "string_too_long",
        f"String should have at most {_plural(kind.limit, 'character')}",
        {"max_length": kind.limit},
    ),
    "Pattern": lambda kind, _: (
        "string_pattern_mismatch",
        f"String should match pattern '{kind.pattern}'",
        {"pattern": kind.pattern},
    ),
    "MinItems": _size("List", "least", "too_short"),
    "MaxItems": _size("List", "most", "too_long"),
    "MinProperties": _size("Dictionary", "least", "too_short"),
    "MaxProperties": _size("Dictionary", "most", "too_long"),
}


def from_schema_error(error: jsonschema_rs.ValidationError, prefix: list) -> Iterator[dict[str, Any]]:
    """FastAPI's entries for one jsonschema-rs error (``prefix``: where the validated value is)."""
    loc = prefix + list(error.instance_path)
    value = error.instance
    kind = error.kind
    name = type(kind).__name__
    if name == "AnyOf":
        # A nullable field failed: report why the non-null branch failed.
        branches = [branch for branch in kind.context if not _is_null_branch(branch)]
        if len(branches) == 1:
            for sub in branches[0]:
                yield from from_schema_error(sub, prefix)
            return
    if name == "PropertyNames":
        # A key that breaks the rule for keys: reported at the key, as for a value.
        for found in from_schema_error(kind.error, prefix):
            found["loc"].append(kind.error.instance)
            yield found
    elif name == "Required":
        yield entry("missing", [*loc, kind.property], "Field required", value)
    elif name == "AdditionalProperties":
        for key in kind.unexpected:
            yield entry("extra_forbidden", [*loc, key], "Extra inputs are not permitted", value[key])
    elif name == "Type":
        yield _type_error(list(kind.types), loc, value)
    elif name in _KEYWORD_ENTRIES:
        pydantic_type, message, context = _KEYWORD_ENTRIES[name](kind, value)
        yield entry(pydantic_type, loc, message, value, context)
    else:
        yield entry("value_error", loc, error.message, value)


def _is_null_branch(branch: list[jsonschema_rs.ValidationError]) -> bool:
    return any(type(e.kind).__name__ == "Type" and list(e.kind.types) == ["null"] for e in branch)


def not_an_object(value: Any) -> dict[str, Any]:
    """FastAPI's error entry for a body that is not a JSON object (``value`` as received)."""
    return entry(
        "model_attributes_type", ["body"], "Input should be a valid dictionary or object to extract fields from", value
    )


def json_invalid(loc: list, reason: str, value: Any) -> dict[str, Any]:
    """FastAPI's entry for JSON that does not parse."""
    return entry("json_invalid", loc, "JSON decode error", value, {"error": reason})
