"""JSON in and out through orjson, falling back to the standard library where orjson refuses.

orjson is several times faster than the standard library on run payloads. Reading, it gives what
``json.loads`` gives, and refuses what only the standard library accepts (NaN, infinities,
lone surrogates): those are read by ``json.loads``. Writing, its output is the same JSON
values as AgentOS's, spelled the same except for floats (``1e-05`` becomes ``0.00001``);
NaN and infinities are written as ``null``, as AgentOS (pydantic) writes them, where
``json.dumps`` would write bare words that are not JSON. A string with a lone surrogate,
which UTF-8 cannot carry, is written \\u-escaped.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: str | bytes) -> Any:
    """``json.loads``, faster."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps_compact(value: Any) -> bytes:
    """UTF-8 JSON without spaces, as FastAPI writes responses."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # Lone surrogates (orjson refuses them): \u-escaped, the only way to write them in JSON.
        return json.dumps(value, separators=(",", ":")).encode()
