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
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

_MAX_DEPTH = 200
_BIG_INT_BITS = 13000  # ~3900 decimal digits, under Python's 4300-digit str() limit


# ---------------------------------------------------------------- stdin comparison

def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimal(token: str) -> Decimal | None:
    """The token as a number, or None when it is not one. NaN (quiet or signalling) is None
    too: LiveCodeBench's list comparison never finds two NaN tokens equal, and comparing a
    signalling NaN raises instead of answering."""
    try:
        d = Decimal(token)
    except (InvalidOperation, ValueError, ArithmeticError):
        return None
    return None if d.is_nan() else d


def _tokens_match(got: str, want: str) -> bool:
    """Same number of whitespace-separated tokens, pairwise equal as ``Decimal``s; one token
    at a time, so a 30 MB line of numbers costs no list of millions of objects."""
    g_iter, w_iter = _TOKEN.finditer(got), _TOKEN.finditer(want)
    while True:
        g, w = next(g_iter, None), next(w_iter, None)
        if g is None or w is None:
            return g is None and w is None
        gd, wd = _decimal(g.group()), _decimal(w.group())
        if gd is None or wd is None:
            return False
        try:
            if gd != wd:
                return False
        except ArithmeticError:  # not expected once NaNs are out; never let it escape
            return False


_TOKEN = re.compile(r"\S+")  # str.split()'s notion of whitespace


def lines_match(actual: str, expected: str) -> bool:
    """LiveCodeBench's stdin rule: same stripped line count, each line equal as text or as Decimals.

    Never raises on what a program printed: tokens that are not numbers (or are NaN) make the
    line unequal unless the text is identical.
    """
    got, want = _stripped_lines(actual), _stripped_lines(expected)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g != w and not _tokens_match(g, w):
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


def encode_value(value: Any, _depth: int = 0, export: Callable[[Any], Any] | None = None) -> Any:
    """Turn a returned value into tagged-JSON-ready data (runs in the sandboxed child).

    A value of another type becomes ``export(value)`` when given (the assert harness's object
    handles, see `bridge`), else an ``{"u": type, "r": repr}`` placeholder.
    """
    if _depth > _MAX_DEPTH:
        return {"u": "nested", "r": "<value nested too deeply>"}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        value = int(value)
        # json writes ints in decimal, which Python refuses beyond 4300 digits: hex has no limit
        return {"ix": format(value, "x")} if value.bit_length() > _BIG_INT_BITS else value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    d = _depth + 1
    if isinstance(value, list):
        return [encode_value(v, d, export) for v in value]
    if isinstance(value, tuple):
        return {"t": [encode_value(v, d, export) for v in value]}
    if isinstance(value, dict):
        return {"d": [[encode_value(k, d, export), encode_value(v, d, export)] for k, v in value.items()]}
    if isinstance(value, frozenset):
        return {"fs": [encode_value(v, d, export) for v in value]}
    if isinstance(value, set):
        return {"s": [encode_value(v, d, export) for v in value]}
    item = getattr(type(value), "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return encode_value(value.item(), _depth, export)  # numpy scalar: compares like its Python value
    if export is not None:
        return export(value)
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


def decode_value(data: Any, _depth: int = 0,
                 resolve: Callable[[str, Any], Any] | None = None) -> Any:
    """Inverse of `encode_value`; raises ValueError on malformed data (the child is untrusted).

    Object handles (``{"h": ...}`` / ``{"a": ...}``) and node graphs (``{"n": ...}``, see
    `nodes`) are accepted only with ``resolve``, which turns ``(tag, payload)`` into the object.
    """
    if _depth > _MAX_DEPTH + 2:
        raise ValueError("value nested too deeply")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    d = _depth + 1
    if isinstance(data, list):
        return [decode_value(v, d, resolve) for v in data]
    if isinstance(data, dict) and len(data) in (1, 2):
        if "t" in data:
            return tuple(decode_value(v, d, resolve) for v in _items(data["t"]))
        if "s" in data:
            return {decode_value(v, d, resolve) for v in _items(data["s"])}
        if "fs" in data:
            return frozenset(decode_value(v, d, resolve) for v in _items(data["fs"]))
        if "d" in data:
            return {decode_value(k, d, resolve): decode_value(v, d, resolve) for k, v in _items(data["d"])}
        if "ix" in data and isinstance(data["ix"], str) and len(data) == 1:
            return int(data["ix"], 16)
        if "u" in data:
            return Unsupported(str(data.get("u")), str(data.get("r", "")))
        if resolve is not None and len(data) == 1 and ("h" in data or "a" in data or "n" in data):
            tag = next(iter(data))
            return resolve(tag, data[tag])
    raise ValueError("malformed returned value")


def _items(data: Any) -> list:
    if not isinstance(data, list):
        raise ValueError("malformed returned value")
    return data


def loads_value(text: str) -> Any:
    """Parse tagged JSON text from the child; raises ValueError when it is malformed."""
    try:
        return decode_value(json.loads(text))
    except (TypeError, RecursionError, ValueError) as e:  # hashing a list key, a bad int, etc.
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
