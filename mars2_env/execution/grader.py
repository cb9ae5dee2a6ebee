"""LiveCodeBench-compatible output comparison, and the value codec of functional tests.

stdin problems: strip the whole output, split into lines, strip each line; the line counts
must match and each line must be equal as text or as a list of ``Decimal`` tokens
(case-sensitive, no float tolerance). Functional problems: the call's return value, with a
top-level tuple turned into a list, must ``==`` the JSON-decoded expected output.

Return values travel from the sandboxed child to the grader as *tagged JSON* (never pickle:
the child is untrusted): lists are JSON arrays, scalars are JSON scalars, and every other
container is a one-key object (``{"t": [...]}`` tuple, ``{"s": ...}`` set, ``{"fs": ...}``
frozenset, ``{"d": [[k, v], ...]}`` dict). A value of any other type decodes to an
`Unsupported` placeholder that equals nothing, so an object with a forged ``__eq__`` cannot pass.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

_MAX_DEPTH = 200


# ---------------------------------------------------------------- stdin comparison

def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(tok) for tok in line.split()]
    except (InvalidOperation, ValueError):
        return None


def lines_match(actual: str, expected: str) -> bool:
    """LiveCodeBench's stdin rule: same stripped line count, each line equal as text or as Decimals."""
    got, want = _stripped_lines(actual), _stripped_lines(expected)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g == w:
            continue
        gd = _decimals(g)
        if gd is None:
            return False
        wd = _decimals(w)
        if wd is None or gd != wd:
            return False
    return True


# ---------------------------------------------------------------- functional values

class Unsupported:
    """A returned value of a type the grader does not compare (custom objects, bytes, deque...)."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return self.text


def encode_value(value: Any, _depth: int = 0) -> Any:
    """Turn a returned value into tagged-JSON-ready data (runs in the sandboxed child)."""
    if _depth > _MAX_DEPTH:
        return {"u": "nested", "r": "<value nested too deeply>"}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    d = _depth + 1
    if isinstance(value, list):
        return [encode_value(v, d) for v in value]
    if isinstance(value, tuple):
        return {"t": [encode_value(v, d) for v in value]}
    if isinstance(value, dict):
        return {"d": [[encode_value(k, d), encode_value(v, d)] for k, v in value.items()]}
    if isinstance(value, frozenset):
        return {"fs": [encode_value(v, d) for v in value]}
    if isinstance(value, set):
        return {"s": [encode_value(v, d) for v in value]}
    item = getattr(type(value), "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return encode_value(value.item(), _depth)  # numpy scalar: compares like its Python value
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__
        text = "<unprintable>"
    return {"u": type(value).__name__, "r": text[:200]}


def dumps_value(value: Any) -> str:
    """Encode a returned value as tagged JSON text; top-level tuple becomes a list (LCB)."""
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(encode_value(value), allow_nan=True)


def decode_value(data: Any, _depth: int = 0) -> Any:
    """Inverse of `encode_value`; raises ValueError on malformed data (the child is untrusted)."""
    if _depth > _MAX_DEPTH + 2:
        raise ValueError("value nested too deeply")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    d = _depth + 1
    if isinstance(data, list):
        return [decode_value(v, d) for v in data]
    if isinstance(data, dict) and len(data) in (1, 2):
        if "t" in data:
            return tuple(decode_value(v, d) for v in data["t"])
        if "s" in data:
            return {decode_value(v, d) for v in data["s"]}
        if "fs" in data:
            return frozenset(decode_value(v, d) for v in data["fs"])
        if "d" in data:
            return {decode_value(k, d): decode_value(v, d) for k, v in data["d"]}
        if "u" in data:
            return Unsupported(str(data.get("u")), str(data.get("r", "")))
    raise ValueError("malformed returned value")


def loads_value(text: str) -> Any:
    """Parse tagged JSON text from the child; raises ValueError when it is malformed."""
    try:
        return decode_value(json.loads(text))
    except (TypeError, RecursionError, json.JSONDecodeError) as e:  # hashing a list key, etc.
        raise ValueError(f"malformed returned value: {e}") from None


def values_match(actual: Any, expected_json: str) -> bool:
    """Functional rule: top-level tuple -> list, then ``==`` against ``json.loads(expected)``."""
    if isinstance(actual, tuple):
        actual = list(actual)
    try:
        return bool(actual == json.loads(expected_json))
    except Exception:  # comparing exotic values; never let it crash the grader
        return False


def show_value(value: Any) -> str:
    """Text shown as 'actual output' of a functional test (JSON-like, deterministic)."""
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):  # sets, tuple keys, unsupported values
        return repr(value)
