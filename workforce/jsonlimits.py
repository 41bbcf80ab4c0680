"""How deep JSON we take: one limit for the API, the admin's JSON fields and item imports.

Python reads JSON a little deeper than it can walk or write back (to the database, or to the page), and a
row that parsed can still fail later in code that recurses, so anything deeper than ``MAX_JSON_DEPTH`` is
refused with ``JSON_NESTED_TOO_DEEPLY`` as soon as it is read.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Deeper JSON than this is refused: Python reads JSON a little deeper than it can write back (to the database,
# or to the page), so the limit sits well below the interpreter's recursion limit.
MAX_JSON_DEPTH = 100
JSON_NESTED_TOO_DEEPLY = f"The JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels)."


def json_depth(value: Any) -> int:
    """How many lists and objects deep ``value`` nests (0 for a scalar), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


class UnstorableNumber(ValueError):
    """A number JSON can spell but a database JSON column cannot hold (NaN, Infinity, 1e999)."""


def refuse_constant(name: str) -> Any:
    """``json.loads``'s ``parse_constant``: NaN, Infinity and -Infinity are refused."""
    raise UnstorableNumber(f"{name} is not a number that can be stored")


def finite_float(text: str) -> float:
    """``json.loads``'s ``parse_float``: a number that overflows to infinity (1e999) is refused."""
    number = float(text)
    if not math.isfinite(number):
        raise UnstorableNumber(f"the number {text[:40]} is too large to store")
    return number


class TooDeep(ValueError):
    """JSON nested deeper than ``MAX_JSON_DEPTH`` (or than Python's parser can follow)."""


def load_storable(text: str | bytes | bytearray, *, decoder: type[json.JSONDecoder] | None = None) -> Any:
    """``json.loads`` for text from users' files: ``ValueError`` (``json.JSONDecodeError``, ``UnstorableNumber``
    or ``TooDeep``) with the reason for JSON that is malformed, holds NaN, Infinity or 1e999, or nests deeper
    than ``MAX_JSON_DEPTH``."""
    try:
        value = json.loads(text, cls=decoder, parse_constant=refuse_constant, parse_float=finite_float)
    except RecursionError as exc:
        raise TooDeep(JSON_NESTED_TOO_DEEPLY) from exc
    if json_depth(value) > MAX_JSON_DEPTH:
        raise TooDeep(JSON_NESTED_TOO_DEEPLY)
    return value


def reason(exc: ValueError) -> str:
    """What ``load_storable``'s error says, as a clause (``json.JSONDecodeError``'s own message, else its text)."""
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc).rstrip(".")
