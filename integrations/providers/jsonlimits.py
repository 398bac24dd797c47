"""Limits checked on a JSON body BEFORE it is parsed (issue 13: a deep body made RecursionError, a 500).

`json.loads` recurses once per nesting level; a body nested a few thousand levels deep raises RecursionError
(and can exhaust the stack). `nesting_depth` measures the depth without parsing: strings are removed first, so
brackets inside them do not count.
"""

import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class JsonRefused(ValueError):
    """The body is not JSON we accept: too deep, or not JSON at all. `message` is for the client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def nesting_depth(body: bytes | str, *, stop_at: int | None = None) -> int:
    """The deepest nesting of arrays/objects in a JSON text (0 for a scalar); stops counting past `stop_at`."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', bytes(body))):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    return deepest
        else:
            depth = max(0, depth - 1)
    return deepest


def loads_limited(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, refusing (JsonRefused) a body nested deeper than max_depth before parsing it."""
    if nesting_depth(body, stop_at=max_depth) > max_depth:
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
    except (TypeError, ValueError, UnicodeDecodeError) as e:
        raise JsonRefused(f"not JSON: {e}") from None
