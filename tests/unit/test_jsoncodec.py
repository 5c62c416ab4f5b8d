"""orjson in, orjson out, and the standard library where orjson refuses."""

from __future__ import annotations

import json

import pytest

from agentos_sessions import jsoncodec

VALUES = [
    {"session_name": "Café ☕", "state": {"n": 1, "ok": True, "none": None, "list": [1.5, -2, "x"]}},
    {"big": 2**70, "negative": -(2**65)},
    {"line separators": "\u2028\u2029", "emoji": "🧭", "escapes": 'quote " backslash \\ tab \t'},
    [],
    "text",
]


@pytest.mark.parametrize("value", VALUES)
def test_written_as_fastapi_writes_and_read_back_as_json_loads_reads(value):
    written = jsoncodec.dumps_compact(value)
    assert written == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert jsoncodec.loads(written) == json.loads(written) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"x": NaN}', "nan"),
        ('{"x": Infinity}', float("inf")),
        ('{"x": "\\ud800"}', "\ud800"),
    ],
)
def test_what_only_the_standard_library_reads_is_read(text, value):
    read = jsoncodec.loads(text)["x"]
    assert read != read if value == "nan" else read == value


def test_nan_and_infinities_are_written_as_null_not_as_bare_words():
    assert jsoncodec.dumps_compact({"a": float("nan"), "b": float("-inf")}) == b'{"a":null,"b":null}'


def test_a_lone_surrogate_is_written_escaped():
    written = jsoncodec.dumps_compact({"s": "\ud800é"})
    assert written == b'{"s":"\\ud800\\u00e9"}'
    assert json.loads(written) == {"s": "\ud800é"}
