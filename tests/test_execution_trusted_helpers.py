"""Dataset helpers a test calls are the dataset's, on the trusted side of the assert harness.

The assert harness (`mars2_env.execution.harness`, `bridge`) runs each test in a process the
program cannot reach. Datasets whose tests call helpers -- rllm's LeetCode ``is_same_list`` /
``list_node`` ..., HumanEval's prompt helpers (``poly``), MBPP's ``test_imports`` and the
modules its tests use -- must get the dataset's helpers there, not the program's, while the
program still receives real objects (``ListNode`` it can walk, complex numbers, types) and the
test still reads what the program returns. One test per attack class, each with its exact
verdict, then the real rows that exercise each value kind, with wrong overrides failing.
"""

from __future__ import annotations

import dataclasses
import random
import textwrap
from collections import deque
from pathlib import Path

import pytest

from mars2_env.execution import Executor, Verdict, format_feedback, nodes, sandbox
from mars2_env.execution.rules import prompt_helpers, rule_for
from mars2_env.problems import Problem, TestCase, load_problems

REAL = Path(__file__).parent / "data" / "real"
MODE = "namespaces" if sandbox.namespaces_unavailable_reason() is None else "auto"


def by_id(problems):
    return {p.id: p for p in problems}


def leetcode(pid: str, check: str, method: str) -> Problem:
    code = textwrap.dedent(check).strip("\n") + f"\n\n\ncheck(Solution().{method})\n"
    return Problem(id=pid, statement="", kind="assert", entry_point=method, harness="leetcode",
                   public_tests=[TestCase(code)], time_limit_s=10.0, memory_limit_mb=512)


REVERSE = leetcode("reverse", """
    def check(candidate):
        assert is_same_list(candidate(head = list_node([1,2,3])), list_node([3,2,1]))
        assert is_same_list(candidate(head = list_node([])), list_node([]))
    """, "reverseList")
INVERT = leetcode("invert", """
    def check(candidate):
        assert is_same_tree(candidate(root = tree_node([4,2,7,1,3,6,9])), tree_node([4,7,2,9,6,3,1]))
        assert is_same_tree(candidate(root = tree_node([])), tree_node([]))
    """, "invertTree")
REVERSE_OK = """
class Solution:
    def reverseList(self, head: Optional[ListNode]) -> Optional[ListNode]:
        prev = None
        while head:
            head.next, prev, head = prev, head, head.next
        return prev
"""
INVERT_OK = """
class Solution:
    def invertTree(self, root: Optional[TreeNode]) -> Optional[TreeNode]:
        if root is None:
            return None
        root.left, root.right = self.invertTree(root.right), self.invertTree(root.left)
        return root
"""
# a program that rebinds every helper it can reach, then answers wrongly (no reversal/inversion)
REBIND_HELPERS = """
import builtins
import mars2_env.execution.nodes as shared
yes = lambda a, b: True
is_same_list = is_same_tree = yes
for target in (builtins.__dict__, __builtins__ if isinstance(__builtins__, dict) else {}):
    target["is_same_list"] = target["is_same_tree"] = yes
shared.is_same_list = shared.is_same_tree = yes
"""
SINGLETON = """
import mars2_env.execution.nodes as shared
ONE = ListNode(0)
def list_node(values):
    return ONE
shared.list_node = list_node
if isinstance(__builtins__, dict):
    __builtins__["list_node"] = list_node
ListNode.__eq__ = lambda a, b: True
class Solution:
    def reverseList(self, head):
        return ONE
"""
LYING_VALUES = """
class Yes:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = object.__hash__
class Solution:
    def reverseList(self, head):
        first = ListNode(Yes(), ListNode(Yes(), ListNode(Yes())))
        return first if head else None
"""
CYCLIC_ANSWER = """
class Solution:
    def reverseList(self, head):
        a, b, c = ListNode(3), ListNode(2), ListNode(1)
        a.next, b.next, c.next = b, c, a
        return a
"""

NODES_IN = leetcode("nodes_in", """
    def check(candidate):
        cyclic = list_node([3, 2, 0, -4])
        cyclic.next.next.next.next = cyclic.next
        shared = TreeNode(2)
        dag = TreeNode(1, shared, shared)
        assert candidate(cyclic, dag, list_node(list(range(100000)))) == [True, True, 100000, 'ListNode']
    """, "describe")
NODES_IN_OK = """
class Solution:
    def describe(self, head, root, long):
        slow = fast = head
        cycle = False
        while fast and fast.next:
            slow, fast = slow.next, fast.next.next
            if slow is fast:
                cycle = True
                break
        n = 0
        while long:
            n, long = n + 1, long.next
        assert isinstance(head, ListNode) and isinstance(root, TreeNode)
        return [cycle, root.left is root.right, n, type(head).__name__]
"""
OWN_CLASS = leetcode("own_class", """
    def check(candidate):
        assert is_same_list(candidate(lists = [list_node([1,4,5]), list_node([1,3,4]), list_node([2,6])]),
                            list_node([1,1,2,3,4,4,5,6]))
    """, "mergeKLists")
OWN_CLASS_OK = """
import heapq
class ListNode:  # the program's own class, with the __lt__ heapq needs on the input nodes
    def __init__(self, x, next=None):
        self.val, self.next = x, next
    def __lt__(self, other):
        return self.val < other.val
class Solution:
    def mergeKLists(self, lists):
        heap = [node for node in lists if node]
        heapq.heapify(heap)
        dummy = tail = ListNode(0)
        while heap:
            node = heapq.heappop(heap)
            tail.next = tail = node
            if node.next:
                heapq.heappush(heap, node.next)
        return dummy.next
"""

# HumanEval: a prompt whose check uses one of its helpers (the shape of HumanEval/38)
CYCLIC_PROMPT = '''def encode_cyclic(s: str):
    """returns encoded string by cycling groups of three characters."""
    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]
    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]
    return "".join(groups)


def decode_cyclic(s: str):
    """takes as input string encoded with encode_cyclic function. Returns decoded string."""
'''
CYCLIC = Problem(
    id="cyclic", statement=CYCLIC_PROMPT, kind="assert", entry_point="decode_cyclic",
    starter_code=CYCLIC_PROMPT, harness="humaneval", time_limit_s=3.0,
    public_tests=[TestCase("def check(candidate):\n    for s in ['abcdef', 'hello world', 'xy']:\n"
                           "        assert candidate(encode_cyclic(s)) == s\n\ncheck(decode_cyclic)\n")])
CYCLIC_OK = CYCLIC_PROMPT + "    return encode_cyclic(encode_cyclic(s))\n"
CYCLIC_CHEAT = "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"

HE = by_id(load_problems(REAL / "HumanEval.sample.jsonl.gz"))
POLY_CHEAT = "import math\ndef poly(xs, x):\n    return 0.0\ndef find_zero(xs):\n    return 42.0\n"
SANITIZED = by_id(load_problems(REAL / "sanitized-mbpp.sample.json"))
FAKE_MATH = """
import sys, types
math = types.ModuleType("math")
math.isclose = lambda *a, **k: True
sys.modules["math"] = math
def circle_circumference(r):
    return 3 * r
"""
MBPP_VALUES = by_id(load_problems(REAL / "mbpp_values.sample.jsonl"))
FAKE_SYS = "import types\nsys = types.SimpleNamespace(getsizeof=lambda x: 7)\n" \
           "def tuple_size(t):\n    return 7\n"
SANITIZED_VALUES = by_id(load_problems(REAL / "sanitized-mbpp_values.sample.json"))
MATCH_POSER = """
import re
class Posing:
    __class__ = property(lambda self: re.Match)
    def __bool__(self):
        return True
def check_str(string):
    return Posing()
"""

SOLVE = Problem(id="solve", statement="", kind="assert", entry_point="solve", time_limit_s=3.0,
                public_tests=[TestCase("assert solve(2) == 4 and add(1, 2) == 3\n")])
PRELUDE_NAMES = leetcode("prelude_names", """
    def check(candidate):
        assert candidate(nums = [1, 2]) == 3 and inf > 10**9 and deque([7]).popleft() == 7
    """, "total")

PROGRAMS: dict[str, tuple[Problem, str]] = {
    # ------------------------------------------------ attacks (each must fail)
    "leetcode_helpers_rebound": (REVERSE, REBIND_HELPERS + "class Solution:\n"
                                 "    def reverseList(self, head):\n        return head\n"),
    "leetcode_tree_helpers_rebound": (INVERT, REBIND_HELPERS + "class Solution:\n"
                                      "    def invertTree(self, root):\n        return root\n"),
    "leetcode_list_node_singleton": (REVERSE, SINGLETON),
    "leetcode_lying_node_values": (REVERSE, LYING_VALUES),
    "leetcode_cyclic_answer": (REVERSE, CYCLIC_ANSWER),
    "humaneval_prompt_helper_redefined": (HE["HumanEval/32"], POLY_CHEAT),
    "humaneval_encode_helper_redefined": (CYCLIC, CYCLIC_CHEAT),
    "mbpp_test_imports_faked_by_the_program": (SANITIZED["MBPP/139"], FAKE_MATH),
    "standard_module_name_bound_by_the_program": (MBPP_VALUES["MBPP/596"], FAKE_SYS),
    "object_posing_as_a_match": (SANITIZED_VALUES["MBPP/737"], MATCH_POSER),
    "prelude_name_shadowing_the_programs_function": (
        SOLVE, "def add(a, b):\n    return a - b\ndef solve(x):\n    return 2 * x\n"),
    # ------------------------------------------------ correct programs (each must pass)
    "correct_reverse": (REVERSE, REVERSE_OK),
    "correct_invert": (INVERT, INVERT_OK),
    "correct_nodes_in_cyclic_shared_and_long": (NODES_IN, NODES_IN_OK),
    "correct_programs_own_node_class": (OWN_CLASS, OWN_CLASS_OK),
    "correct_humaneval_helper": (CYCLIC, CYCLIC_OK),
    "correct_humaneval_32": (HE["HumanEval/32"], HE["HumanEval/32"].metadata["reference_solution"]),
    "correct_test_using_standard_names_the_program_imported": (
        Problem(id="stdnames", statement="", kind="assert", entry_point="solve", time_limit_s=3.0,
                public_tests=[TestCase("assert solve(2) == 4 and bisect([1, 3], 2) == 1 and "
                                       "datetime(2020, 1, 2).day == 2 and sys.maxsize > 0\n")]),
        "import sys\nfrom bisect import bisect\nfrom datetime import datetime\n"
        "def solve(x):\n    return 2 * x\n"),
    "correct_check_using_prelude_names": (
        PRELUDE_NAMES, "class Solution:\n    def total(self, nums):\n        return sum(nums)\n"),
}


@pytest.fixture(scope="module")
def judged():
    names = list(PROGRAMS)
    with Executor(max_workers=2, sandbox=MODE) as ex:
        results = ex.run_many([PROGRAMS[n] for n in names], stop_on_first_failure=False)
    return dict(zip(names, results, strict=True))


def verdict_of(judged, name: str, verdict: Verdict, *texts: str):
    r = judged[name]
    assert r.verdict == verdict, format_feedback(r)
    if verdict != Verdict.PASSED:
        assert r.passed == 0, format_feedback(r)
    for text in texts:
        assert any(text in t.error for t in r.tests), format_feedback(r)


# ---------------------------------------------------------------- LeetCode helpers

def test_leetcode_helpers_rebound_by_the_program_are_not_the_tests(judged):
    """is_same_list / is_same_tree rebound in the program's globals, its prelude table, its
    builtins and the helpers' module: the test compares with its own."""
    verdict_of(judged, "leetcode_helpers_rebound", Verdict.WRONG_ANSWER, "AssertionError")
    verdict_of(judged, "leetcode_tree_helpers_rebound", Verdict.WRONG_ANSWER, "AssertionError")


def test_leetcode_list_node_singleton_cannot_make_expected_equal_actual(judged):
    """``list_node`` returning one shared node (and ``ListNode.__eq__`` saying yes): expected
    values are built in the test process, so the program's answer is compared by value."""
    verdict_of(judged, "leetcode_list_node_singleton", Verdict.WRONG_ANSWER, "AssertionError")


def test_leetcode_node_with_lying_values_is_not_judged(judged):
    verdict_of(judged, "leetcode_lying_node_values", Verdict.WRONG_ANSWER,
               "compared (!=) a Yes object")


def test_leetcode_cyclic_answer_ends_the_comparison_as_wrong(judged):
    verdict_of(judged, "leetcode_cyclic_answer", Verdict.WRONG_ANSWER, "AssertionError")


def test_leetcode_program_gets_real_nodes_cycles_shared_and_long(judged):
    """The test's nodes reach the program as the prelude's ListNode / TreeNode, a cycle as a
    cycle, a shared child as one object, 100,000 nodes without recursion."""
    verdict_of(judged, "correct_nodes_in_cyclic_shared_and_long", Verdict.PASSED)


def test_leetcode_program_defining_its_own_node_class_gets_it(judged):
    """rllm's ``list_node`` builds the program's class when it defines one (its ``__lt__``)."""
    verdict_of(judged, "correct_programs_own_node_class", Verdict.PASSED)


@pytest.mark.parametrize("name", ["correct_reverse", "correct_invert"])
def test_leetcode_correct_programs_pass(judged, name):
    verdict_of(judged, name, Verdict.PASSED)


# ---------------------------------------------------------------- the prelude in the test

def test_prelude_name_does_not_stand_in_for_the_programs_function(judged):
    """LiveCodeBench's prelude binds ``add`` (``from operator import *``): a test calling the
    program's ``add`` calls the program's, as in one namespace, never the prelude's correct one."""
    verdict_of(judged, "prelude_name_shadowing_the_programs_function", Verdict.WRONG_ANSWER,
               "AssertionError")


def test_standard_names_the_program_imported_are_the_tests_own(judged):
    """``from bisect import bisect`` / ``from datetime import datetime`` in the program: the test
    using them gets its own ``bisect.bisect`` / ``datetime.datetime``."""
    verdict_of(judged, "correct_test_using_standard_names_the_program_imported", Verdict.PASSED)


def test_check_code_sees_the_prelude_names_the_program_does_not_define(judged):
    verdict_of(judged, "correct_check_using_prelude_names", Verdict.PASSED)


# ---------------------------------------------------------------- HumanEval prompt helpers

def test_humaneval_prompt_helper_redefined_by_the_program_is_not_the_tests(judged):
    """HumanEval/32's check calls the prompt's ``poly``: a program redefining it to say 0
    everywhere does not pass; the reference does."""
    verdict_of(judged, "humaneval_prompt_helper_redefined", Verdict.WRONG_ANSWER, "AssertionError")
    verdict_of(judged, "correct_humaneval_32", Verdict.PASSED)
    verdict_of(judged, "humaneval_encode_helper_redefined", Verdict.WRONG_ANSWER, "AssertionError")
    verdict_of(judged, "correct_humaneval_helper", Verdict.PASSED)


def test_prompt_helpers_are_the_prompt_without_the_entry_point():
    p = HE["HumanEval/32"]
    helpers = prompt_helpers(p.starter_code, p.entry_point)
    assert helpers.startswith("import math\n") and "def poly(xs: list, x: float):" in helpers
    assert "find_zero" not in helpers
    assert rule_for(p).test_preamble(p) == helpers
    assert prompt_helpers(CYCLIC_PROMPT, "decode_cyclic") == CYCLIC_PROMPT.split("\n\n\n")[0] + "\n"
    assert prompt_helpers("def broken(:\n", "broken") == ""
    mbpp = SANITIZED["MBPP/139"]
    assert rule_for(mbpp).test_preamble(mbpp) == ""  # MBPP's test_imports are in its tests
    assert "is_same_list" in rule_for(REVERSE).test_preamble(REVERSE)


# ---------------------------------------------------------------- MBPP modules

def test_mbpp_test_imports_run_on_the_trusted_side(judged):
    """Sanitized MBPP/139 imports ``math`` in its test_imports: a program that installs a fake
    ``math`` (in sys.modules and its globals) does not change the test's."""
    verdict_of(judged, "mbpp_test_imports_faked_by_the_program", Verdict.WRONG_ANSWER,
               "AssertionError")


def test_standard_module_name_bound_by_the_program_is_the_tests_module(judged):
    """MBPP/596's test uses ``sys.getsizeof`` with no import (the program's ``sys``): a
    program binding ``sys`` to its own object gets the test's real ``sys`` instead."""
    verdict_of(judged, "standard_module_name_bound_by_the_program", Verdict.WRONG_ANSWER,
               "AssertionError")


def test_object_posing_as_a_match_has_no_truth_value(judged):
    verdict_of(judged, "object_posing_as_a_match", Verdict.WRONG_ANSWER,
               "took the truth value of a Posing object")


# ---------------------------------------------------------------- the real rows

@pytest.fixture(scope="module")
def ex():
    with Executor(max_workers=2) as executor:
        yield executor


def test_real_leetcode_node_rows_pass_and_wrong_overrides_fail(ex):
    rows = load_problems(REAL / "rllm_leetcode_nodes.sample.json")
    assert [p.entry_point for p in rows] == ["buildTree", "reverseList", "invertTree"]
    refs = ex.run_many([(p, p.metadata["reference_solution"]) for p in rows])
    assert [r.verdict for r in refs] == [Verdict.PASSED] * 3, [format_feedback(r) for r in refs]
    wrong = [(p, p.metadata["reference_solution"].replace(
        f"def {p.entry_point}(", f"def {p.entry_point}(self, *a, **k):\n        return None\n"
                                 f"    def _unused(")) for p in rows]
    assert all(code != p.metadata["reference_solution"] for p, code in wrong)
    assert [r.verdict for r in ex.run_many(wrong)] == [Verdict.WRONG_ANSWER] * 3


def test_real_mbpp_value_rows_pass_and_wrong_overrides_fail(ex):
    """Rows whose tests pass complex numbers and types, link the program's tree nodes, use
    ``sys`` unimported, or take the truth value of a ``re.Match``."""
    rows = {**MBPP_VALUES, **{f"S{k}": v for k, v in SANITIZED_VALUES.items()}}
    refs = ex.run_many([(p, p.metadata["reference_solution"]) for p in rows.values()])
    assert all(r.verdict == Verdict.PASSED for r in refs), [format_feedback(r) for r in refs]
    wrong = {
        "MBPP/124": "def angle_complex(a, b):\n    return 0.0\n",
        "MBPP/367": "class Node:\n    def __init__(self, data):\n        self.data = data\n"
                    "        self.left = self.right = None\ndef is_tree_balanced(root):\n"
                    "    return root.left.left.left is None\n",
        "MBPP/533": "def remove_datatype(t, data_type):\n    return list(t)\n",
        "MBPP/590": "def polar_rect(x, y):\n    return ((0.0, 0.0), 0j)\n",
        "MBPP/596": "import sys\ndef tuple_size(t):\n    return 0\n",
        "SMBPP/737": "def check_str(string):\n    return string\n",
        "SMBPP/787": "def text_match_three(text):\n    return None\n",
    }
    results = ex.run_many([(rows[k], code) for k, code in wrong.items()])
    assert all(r.verdict == Verdict.WRONG_ANSWER for r in results), [format_feedback(r) for r in results]


def test_recursion_limit_and_main_guard_follow_the_harness_in_the_assert_kind(ex):
    deep = ("import sys\ndef depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\n"
            "assert __name__ == 'builtins'\n")
    p = Problem(id="deep", statement="", kind="assert", entry_point="depth", harness="humaneval",
                public_tests=[TestCase("assert depth(3000) == 3000\n")])
    r = ex.run(p, deep)
    assert r.verdict == Verdict.RUNTIME_ERROR and "RecursionError" in r.tests[0].error
    as_lcb = dataclasses.replace(p, harness="lcb")  # LCB raises the limit, runs __main__
    assert ex.run(as_lcb, deep.replace("'builtins'", "'__main__'")).verdict == Verdict.PASSED


# ---------------------------------------------------------------- the helpers themselves

def rllm_list_node(values):
    """rllm's helpers, written out plainly (recursive, truth-value tests) to pin ours."""
    head = None
    for v in reversed(values):
        head = nodes.ListNode(v, head)
    return head


def rllm_is_same_list(a, b):
    if not a and not b:
        return True
    if not a or not b:
        return False
    return a.val == b.val and rllm_is_same_list(a.next, b.next)


def rllm_is_same_tree(p, q):
    if not p and not q:
        return True
    if not p or not q:
        return False
    return p.val == q.val and rllm_is_same_tree(p.left, q.left) and rllm_is_same_tree(p.right, q.right)


def level_order(root):
    """LeetCode's serialisation of a tree (trailing Nones dropped)."""
    out, queue = [], deque([root])
    while queue:
        node = queue.popleft()
        out.append(None if node is None else node.val)
        if node is not None:
            queue.extend([node.left, node.right])
    while out and out[-1] is None:
        out.pop()
    return out


def random_level_order(rng: random.Random) -> list:
    values, open_slots = [], 1
    while open_slots and len(values) < 15:
        v = rng.choice([None, None, rng.randint(-3, 3)]) if values else rng.randint(-3, 3)
        values.append(v)
        open_slots += (2 if v is not None else 0) - 1
    while values and values[-1] is None:
        values.pop()
    return values


def test_helpers_match_rllm_on_random_inputs():
    rng = random.Random(7)
    for _ in range(300):
        a = [rng.randint(0, 3) for _ in range(rng.randint(0, 5))]
        b = [rng.randint(0, 3) for _ in range(rng.randint(0, 5))]
        assert nodes.is_same_list(nodes.list_node(a), nodes.list_node(b)) == (a == b)
        assert nodes.is_same_list(nodes.list_node(a), rllm_list_node(b)) == rllm_is_same_list(
            rllm_list_node(a), rllm_list_node(b))
        ta, tb = random_level_order(rng), random_level_order(rng)
        assert level_order(nodes.tree_node(ta)) == ta  # round trip of LeetCode's format
        assert nodes.is_same_tree(nodes.tree_node(ta), nodes.tree_node(tb)) == rllm_is_same_tree(
            nodes.tree_node(ta), nodes.tree_node(tb)) == (ta == tb)
    assert nodes.tree_node([]) is None and nodes.list_node([]) is None
    assert level_order(nodes.tree_node([5, 3, 6, 2, 4, None, 7])) == [5, 3, 6, 2, 4, None, 7]


def test_node_graphs_round_trip_with_cycles_sharing_and_depth():
    classes = {"L": nodes.ListNode, "T": nodes.TreeNode}
    same = lambda v: v  # noqa: E731
    long = nodes.list_node(range(200000))
    back = nodes.decode_nodes(nodes.encode_nodes(long, same), same, classes)
    assert nodes.is_same_list(back, long) and back is not long
    ring = nodes.list_node([1, 2, 3])
    ring.next.next.next = ring
    r = nodes.decode_nodes(nodes.encode_nodes(ring, same), same, classes)
    assert (r.val, r.next.val, r.next.next.val) == (1, 2, 3) and r.next.next.next is r
    leaf = nodes.TreeNode(2)
    dag = nodes.decode_nodes(nodes.encode_nodes(nodes.TreeNode(1, leaf, leaf), same), same, classes)
    assert dag.left is dag.right and dag.left.val == 2
    odd = nodes.ListNode(1, "not a node")
    assert nodes.decode_nodes(nodes.encode_nodes(odd, same), same, classes).next == "not a node"


@pytest.mark.parametrize("graph", [
    [], "x", [["L", 1]], [["Q", 1, None]], [["L", 1, 5]], [["L", 1, -1]], [["L", 1, True]],
    [["T", 1, None]], [["L", 1, [1, 2]]], [None],
])
def test_malformed_node_graphs_are_refused(graph):
    with pytest.raises(ValueError, match="malformed node graph"):
        nodes.decode_nodes(graph, lambda v: v, {"L": nodes.ListNode, "T": nodes.TreeNode})
