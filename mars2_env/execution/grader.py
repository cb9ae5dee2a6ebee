"""LiveCodeBench-compatible output comparison, and the value codec of functional tests.

stdin problems: strip the whole output, split into lines, strip each line; the line counts
must match and each line must be equal as text or as a list of ``Decimal`` tokens
(case-sensitive, no float tolerance). Functional problems: the call's return value, with a
top-level tuple turned into a list, must ``==`` the JSON-decoded expected output.

Return values travel from the sandboxed child to the grader as *tagged JSON* (never pickle:
the child is untrusted): lists are JSON arrays, scalars are JSON scalars, and every other
container is a one-key object (``{"t": [...]}`` tuple, ``{"s": ...}`` set, ``{"fs": ...}``
frozenset, ``{"d": [[k, v], ...]}`` dict), and three more builtin kinds of value that tests pass
and compare (MBPP's): ``{"c": [re, im]}`` a complex number, ``{"bi": name}`` a builtin type
(``remove_datatype(t, int)``), ``{"m": ...}`` a ``re.Match`` (as a `MatchValue`: truthy, with
its groups and spans, as MBPP's ``assert check_str("annie")`` needs). A value of any other
type decodes to an `Unsupported` placeholder that equals nothing, so an object with a forged
``__eq__`` cannot pass.
"""

from __future__ import annotations

import builtins
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


class MatchValue:
    """A ``re.Match`` the program returned, as data: always true (like a match), with
    ``group`` / ``groups`` / ``groupdict`` / ``span`` / ``start`` / ``end``; equal to nothing
    but itself (a match object has no value equality either)."""

    __slots__ = ("_groups", "_spans", "_names")

    def __init__(self, groups: list, spans: list, names: dict):
        self._groups, self._spans, self._names = groups, spans, names

    def __bool__(self) -> bool:
        return True

    def _index(self, g: Any) -> int:
        i = self._names.get(g, g) if isinstance(g, str) else g
        if type(i) is not int or not 0 <= i < len(self._groups):
            raise IndexError("no such group")
        return i

    def group(self, *gs: Any) -> Any:
        found = tuple(self._groups[self._index(g)] for g in (gs or (0,)))
        return found[0] if len(found) == 1 else found

    __getitem__ = group

    def groups(self, default: Any = None) -> tuple:
        return tuple(default if g is None else g for g in self._groups[1:])

    def groupdict(self, default: Any = None) -> dict:
        return {n: default if self._groups[i] is None else self._groups[i]
                for n, i in self._names.items()}

    def span(self, g: Any = 0) -> tuple[int, int]:
        return tuple(self._spans[self._index(g)])  # type: ignore[return-value]

    def start(self, g: Any = 0) -> int:
        return self._spans[self._index(g)][0]

    def end(self, g: Any = 0) -> int:
        return self._spans[self._index(g)][1]

    def __repr__(self) -> str:
        return f"<re.Match object; span={self.span()!r}, match={self._groups[0]!r}>"


def _match_data(m: re.Match) -> Any:
    n = len(m.groups()) + 1
    return [[m.group(i) for i in range(n)], [list(m.span(i)) for i in range(n)],
            [[k, v] for k, v in m.re.groupindex.items()]]


def _builtin_type_name(value: type) -> str | None:
    try:
        name = value.__name__
        return name if isinstance(name, str) and getattr(builtins, name, None) is value else None
    except Exception:  # a hostile metaclass
        return None


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
    if isinstance(value, complex):
        return {"c": [float(value.real), float(value.imag)]}
    if type(value) is re.Match and isinstance(value.string, str):
        return {"m": _match_data(value)}
    if isinstance(value, type) and _builtin_type_name(value) is not None:
        return {"bi": _builtin_type_name(value)}
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
        if "c" in data and len(data) == 1:
            parts = _items(data["c"])
            if len(parts) != 2 or not all(type(x) in (int, float) for x in parts):
                raise ValueError("malformed complex number")
            return complex(parts[0], parts[1])
        if "bi" in data and len(data) == 1:
            found = getattr(builtins, data["bi"], None) if isinstance(data["bi"], str) else None
            if not isinstance(found, type):
                raise ValueError("malformed builtin type")
            return found
        if "m" in data and len(data) == 1:
            return _decode_match(data["m"])
        if "u" in data:
            return Unsupported(str(data.get("u")), str(data.get("r", "")))
        if resolve is not None and len(data) == 1 and ("h" in data or "a" in data or "n" in data):
            tag = next(iter(data))
            return resolve(tag, data[tag])
    raise ValueError("malformed returned value")


def _decode_match(data: Any) -> MatchValue:
    groups, spans, names = _items(data) if len(_items(data)) == 3 else (None, None, None)
    if (type(groups) is not list or not groups or type(spans) is not list
            or len(spans) != len(groups) or type(names) is not list
            or not all(g is None or type(g) is str for g in groups)
            or not all(type(sp) is list and len(sp) == 2 and all(type(x) is int for x in sp)
                       for sp in spans)
            or not all(type(p) is list and len(p) == 2 and type(p[0]) is str
                       and type(p[1]) is int and 0 < p[1] < len(groups) for p in names)):
        raise ValueError("malformed match value")
    return MatchValue(groups, spans, {k: i for k, i in names})


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
