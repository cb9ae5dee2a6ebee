"""Build the bundled problem set ``builtin:demo`` (``mars2_env/data/demo.jsonl``).

The 30 problems (10 stdin, 10 functional, 10 assert) are written below as plain Python data:
statement, kind, entry point, signature, a reference solution, wrong solutions tagged with the
verdict each should get, and test inputs. Expected outputs are computed by running the reference
solution in a subprocess. Then every program is judged again by the small LiveCodeBench-style
grader in this file, and the file is written only if every reference passes every test and every
wrong solution fails with the verdict it is tagged with.

    python mars2_env/data/build_demo.py            # (re)write demo.jsonl next to this script
    python mars2_env/data/build_demo.py --out F    # write to F instead
    python mars2_env/data/build_demo.py --check    # exit 1 unless demo.jsonl is up to date

The output is deterministic: no clocks or hash-order dependence, and generated inputs come from
a fixed linear congruential generator, so re-running gives a byte-identical file. Stdlib only; it
deliberately does not import ``mars2_env.execution`` (the real executor).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "demo.jsonl"
SOURCE = "mars2-demo"
MEMORY_LIMIT_MB = 256
VERDICTS = ("passed", "wrong_answer", "runtime_error", "time_limit", "compile_error")
WRONG_VERDICTS = VERDICTS[1:]
# Time limits count CPU seconds (RLIMIT_CPU), so a loaded machine does not turn a correct
# program into a time-out; a program that blocks is stopped after this many times the limit.
WALL_FACTOR = 5


class BuildError(RuntimeError):
    """A problem's data is inconsistent (a reference fails, a wrong solution passes, ...)."""


# --------------------------------------------------------------------------------------------
# Authoring helpers
# --------------------------------------------------------------------------------------------

_UNSET: Any = object()


@dataclass(frozen=True)
class T:
    """A test to author: stdin text, a tuple of arguments (functional) or an expression (assert).

    ``expect`` (optional) is the output written by hand; the reference must reproduce it.
    """

    input: Any
    expect: Any = _UNSET


def io(text: str, expect: str | Any = _UNSET) -> T:
    return T(text, expect)


def call(*args: Any, expect: Any = _UNSET) -> T:
    return T(tuple(args), expect)


def ex(expression: str, expect: Any = _UNSET) -> T:
    return T(expression, expect)


def src(text: str) -> str:
    """A program written as an indented triple-quoted string, dedented."""
    return textwrap.dedent(text).lstrip("\n")


@dataclass
class Spec:
    """One problem as authored. ``wrong`` holds (expected verdict, program) pairs."""

    kind: str
    number: int
    title: str
    difficulty: str
    statement: str
    reference: str
    wrong: list[tuple[str, str]]
    public: list[T]
    private: list[T]
    entry_point: str | None = None
    signature: str = ""          # parameters with annotations, without self
    returns: str = ""
    method: bool = False         # functional: a method of class Solution
    time_limit_s: float = 2.0

    @property
    def id(self) -> str:
        return f"demo-{self.kind}-{self.number:03d}"

    @property
    def starter_code(self) -> str:
        if self.kind == "stdin":
            return ""
        if self.method:
            return (f"class Solution:\n    def {self.entry_point}(self, {self.signature})"
                    f" -> {self.returns}:\n        ")
        return f"def {self.entry_point}({self.signature}) -> {self.returns}:\n    "

    @property
    def param_names(self) -> list[str]:
        tree = ast.parse(f"def f({self.signature}): pass")
        return [a.arg for a in tree.body[0].args.args]  # type: ignore[attr-defined]


class Lcg:
    """Tiny deterministic generator (64-bit LCG) for test inputs; stable across Python versions."""

    def __init__(self, seed: int):
        self.state = seed & (2**64 - 1)

    def bits31(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return self.state >> 33

    def below(self, n: int) -> int:
        x = 0
        for _ in range(4):
            x = (x << 31) | self.bits31()
        return x % n

    def randint(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)

    def choice(self, seq: Any) -> Any:
        return seq[self.below(len(seq))]


def _lines(*rows: Any) -> str:
    return "".join(f"{row}\n" for row in rows)


# --------------------------------------------------------------------------------------------
# Generated inputs
# --------------------------------------------------------------------------------------------

def _random_text_line(rng: Lcg, length: int, alphabet: str) -> str:
    body = "".join(rng.choice(alphabet) for _ in range(length - 2))
    return rng.choice("abcdefghijklmnopqrstuvwxyz") + body + rng.choice("ABCDEFGHIJ0123456789")


def _word_text(rng: Lcg, lines: int) -> str:
    words = ["apple", "Banana", "cherry", "apple", "the", "The", "a", "tree", "green", "apple"]
    punct = ["", "", "", ",", ".", "!", "?", ";"]
    out = []
    for _ in range(lines):
        n = rng.randint(3, 12)
        out.append(" ".join(rng.choice(words) + rng.choice(punct) for _ in range(n)))
    return _lines(*out)


def _balanced(rng: Lcg, pairs: int) -> str:
    opens, closes = "([{", ")]}"
    out, stack = [], []
    remaining = pairs
    while remaining or stack:
        if remaining and (not stack or rng.below(2) == 0):
            k = rng.below(3)
            out.append(opens[k])
            stack.append(closes[k])
            remaining -= 1
        else:
            out.append(stack.pop())
    return "".join(out)


def _grid(rng: Lcg, rows: int, cols: int, wall_percent: int) -> str:
    cells = [["#" if rng.below(100) < wall_percent else "." for _ in range(cols)]
             for _ in range(rows)]
    cells[0][0], cells[rows - 1][cols - 1] = "S", "E"
    return _lines(f"{rows} {cols}", *("".join(r) for r in cells))


def _serpentine(rows: int, cols: int) -> str:
    cells = [["." for _ in range(cols)] for _ in range(rows)]
    for r in range(1, rows, 2):
        gap = cols - 1 if (r // 2) % 2 == 0 else 0
        for c in range(cols):
            if c != gap:
                cells[r][c] = "#"
    cells[0][0], cells[rows - 1][0] = "S", "E"
    return _lines(f"{rows} {cols}", *("".join(r) for r in cells))


def _two_sum_case(rng: Lcg, n: int) -> tuple[list[int], int]:
    """Multiples of 4 plus exactly two numbers = 1 (mod 4): only they can sum to 2 (mod 4)."""
    values: list[int] = []
    seen: set[int] = set()
    while len(values) < n - 2:
        v = 4 * rng.randint(-50000, 50000)
        if v not in seen:
            seen.add(v)
            values.append(v)
    a, b = 4 * rng.randint(0, 1000) + 1, 4 * rng.randint(-1000, -1) + 1
    values.insert(rng.below(len(values) + 1), a)
    values.insert(rng.below(len(values) + 1), b)
    return values, a + b


def _expression(rng: Lcg, depth: int) -> str:
    if depth == 0 or rng.below(4) == 0:
        return str(rng.randint(0, 99))
    op = rng.choice("+-*")
    left, right = _expression(rng, depth - 1), _expression(rng, depth - 1)
    text = f"{left} {op} {right}"
    return f"({text})" if rng.below(2) else text


R = Lcg(20260101)

# --------------------------------------------------------------------------------------------
# stdin problems
# --------------------------------------------------------------------------------------------

STDIN: list[Spec] = [
    Spec(
        "stdin", 1, "Sum of Two Integers", "easy",
        """
        Read two integers a and b and print their sum a + b.

        Input: a single line with two integers a and b separated by one space
        (-10^9 <= a, b <= 10^9).
        Output: one line with the integer a + b.
        """,
        src("""
            a, b = map(int, input().split())
            print(a + b)
        """),
        [
            ("runtime_error", src("""
                a = int(input())
                b = int(input())
                print(a + b)
            """)),
            ("wrong_answer", src("""
                a, b = input().split()
                print(a + b)
            """)),
        ],
        [io("2 3\n", "5\n"), io("-4 10\n", "6\n")],
        [io("0 0\n"), io("1000000000 1000000000\n"), io("-1000000000 -1000000000\n"),
         io("7 -7\n"), io("123456789 987654321\n")],
    ),
    Spec(
        "stdin", 2, "Reverse a String", "easy",
        """
        Read a string s and print it reversed (last character first).

        Input: one line containing s, 1 to 1000 printable ASCII characters. s may contain
        spaces but does not start or end with a space.
        Output: one line with the characters of s in reverse order.
        """,
        src("""
            import sys

            s = sys.stdin.readline().rstrip("\\n")
            print(s[::-1])
        """),
        [
            ("wrong_answer", src("""
                s = input()
                print(" ".join(s.split()[::-1]))
            """)),
            ("compile_error", src("""
                s = raw_input()
                print s[::-1]
            """)),
        ],
        [io("hello\n", "olleh\n"), io("ab cd\n", "dc ba\n")],
        [io("a\n"), io("racecar\n"), io("Hello, World!\n"), io("12345\n"), io("x y  z\n"),
         io(_random_text_line(R, 1000, "abcxyz XYZ0189,.!?") + "\n")],
    ),
    Spec(
        "stdin", 3, "Maximum of a List", "easy",
        """
        Print the largest of n integers.

        Input: the first line holds n (1 <= n <= 1000). The second line holds n integers
        a_1 ... a_n separated by spaces (-10^6 <= a_i <= 10^6).
        Output: one line with the maximum of the a_i.
        """,
        src("""
            import sys

            data = sys.stdin.read().split()
            n = int(data[0])
            nums = [int(x) for x in data[1:1 + n]]
            print(max(nums))
        """),
        [
            ("wrong_answer", src("""
                import sys

                data = sys.stdin.read().split()
                n = int(data[0])
                best = 0
                for x in data[1:1 + n]:
                    if int(x) > best:
                        best = int(x)
                print(best)
            """)),
        ],
        [io("5\n3 9 -2 7 9\n", "9\n"), io("1\n42\n", "42\n")],
        [io("3\n-5 -2 -9\n", "-2\n"), io("4\n0 0 0 0\n"), io("2\n-1 -1\n"),
         io("6\n1000000 -1000000 5 6 7 8\n"),
         io(_lines(1000, " ".join(str(R.randint(-10**6, 10**6)) for _ in range(1000))))],
    ),
    Spec(
        "stdin", 4, "Count Vowels", "easy",
        """
        For every line of the input, count its vowels. The vowels are a, e, i, o and u, in
        either case (A, E, I, O and U count too); y is not a vowel.

        Input: one or more lines, each with 1 to 200 printable ASCII characters.
        Output: for each input line, in order, one line with the number of vowels in it.
        """,
        src("""
            import sys

            for line in sys.stdin:
                print(sum(1 for ch in line if ch in "aeiouAEIOU"))
        """),
        [
            ("wrong_answer", src("""
                import sys

                for line in sys.stdin:
                    print(sum(1 for ch in line if ch in "aeiou"))
            """)),
        ],
        [io("hello world\n", "3\n"), io("rhythm\nqueue\n", "0\n4\n")],
        [io("AEIOU aeiou\n", "10\n"), io("Programming In Python\n"), io("xyz\n"),
         io("a\nE\ni\nO\nu\n"),
         io(_lines(*(_random_text_line(R, 60, "aeiouAEIOUbcdyY .,!") for _ in range(20))))],
    ),
    Spec(
        "stdin", 5, "Even or Odd", "easy",
        """
        Decide for each of several integers whether it is even or odd.

        Input: the first line holds T (1 <= T <= 100). Each of the next T lines holds one
        integer n (-10^18 <= n <= 10^18).
        Output: T lines; line i is the word even if the i-th integer is even and odd otherwise
        (lowercase).
        """,
        src("""
            tokens = open(0).read().split()
            t = int(tokens[0])
            for token in tokens[1:1 + t]:
                print("even" if int(token) % 2 == 0 else "odd")
        """),
        [
            ("wrong_answer", src("""
                t = int(input())
                for _ in range(t):
                    n = int(input())
                    print("Even" if n % 2 == 0 else "Odd")
            """)),
        ],
        [io("3\n4\n7\n0\n", "even\nodd\neven\n"), io("1\n-3\n", "odd\n")],
        [io("2\n1000000000000000000\n999999999999999999\n"), io("4\n-2\n-1\n1\n2\n"),
         io("1\n0\n"),
         io(_lines(100, *(R.randint(-10**18, 10**18) for _ in range(100))))],
    ),
    Spec(
        "stdin", 6, "Word Frequency", "medium",
        """
        Count how often each word occurs in a text. A word is a maximal run of ASCII letters
        (a-z, A-Z); every other character separates words. Words are compared ignoring case.

        Input: one or more lines of printable ASCII text (at most 10^5 characters in all).
        Output: one line per distinct word: the word in lowercase, a space, and its count.
        Order the lines by count, largest first; break ties alphabetically. If the text has no
        words, print nothing.
        """,
        src("""
            import re
            import sys
            from collections import Counter

            text = sys.stdin.buffer.read().decode("ascii", "replace").lower()
            counts = Counter(re.findall(r"[a-z]+", text))
            for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
                sys.stdout.write(f"{word} {count}\\n")
        """),
        [
            ("wrong_answer", src("""
                import sys
                from collections import Counter

                counts = Counter(sys.stdin.read().lower().split())
                for word, count in counts.most_common():
                    print(word, count)
            """)),
            ("wrong_answer", src("""
                import re
                import sys
                from collections import Counter

                counts = Counter(re.findall(r"[a-z]+", sys.stdin.read().lower()))
                for word, count in counts.most_common():
                    print(word, count)
            """)),
        ],
        [io("the cat and the hat\n", "the 2\nand 1\ncat 1\nhat 1\n"),
         io("Hello, hello world!\n", "hello 2\nworld 1\n")],
        [io("Go go GO stop\nstop\n"), io("123 456 !!!\n", ""), io("don't stop-me now\n"),
         io("b a c\na b\nc\n"), io(_word_text(R, 12))],
    ),
    Spec(
        "stdin", 7, "Balanced Brackets", "medium",
        """
        A bracket string is balanced when every opening bracket is closed by the matching
        closing bracket of the same type, in the right order: "([]{})" is balanced, "([)]" and
        "((" are not.

        Input: the first line holds T (1 <= T <= 100). Each of the next T lines holds a
        non-empty string of at most 10^4 characters, each one of ()[]{}.
        Output: T lines; line i is YES if the i-th string is balanced and NO otherwise.
        """,
        src("""
            import sys


            def balanced(s: str) -> bool:
                pairs = {")": "(", "]": "[", "}": "{"}
                stack = []
                for ch in s:
                    if ch in "([{":
                        stack.append(ch)
                    elif not stack or stack.pop() != pairs[ch]:
                        return False
                return not stack


            def main() -> None:
                t = int(sys.stdin.readline())
                for _ in range(t):
                    print("YES" if balanced(sys.stdin.readline().strip()) else "NO")


            if __name__ == "__main__":
                main()
        """),
        [
            ("wrong_answer", src("""
                t = int(input())
                for _ in range(t):
                    s = input().strip()
                    ok = True
                    for open_, close in ("()", "[]", "{}"):
                        depth = 0
                        for ch in s:
                            if ch == open_:
                                depth += 1
                            elif ch == close:
                                depth -= 1
                                if depth < 0:
                                    ok = False
                        if depth != 0:
                            ok = False
                    print("YES" if ok else "NO")
            """)),
            ("runtime_error", src("""
                import sys

                pairs = {")": "(", "]": "[", "}": "{"}
                t = int(sys.stdin.readline())
                for _ in range(t):
                    stack = []
                    ok = True
                    for ch in sys.stdin.readline().strip():
                        if ch in "([{":
                            stack.append(ch)
                        elif stack.pop() != pairs[ch]:
                            ok = False
                    print("YES" if ok and not stack else "NO")
            """)),
        ],
        [io("3\n()\n([]{})\n(]\n", "YES\nYES\nNO\n"), io("2\n((\n{[()()]}\n", "NO\nYES\n")],
        [io("1\n([)]\n", "NO\n"), io("1\n)(\n", "NO\n"), io("3\n]\n[\n[]\n"),
         io(_lines(1, "(" * 5000 + ")" * 5000)),
         io(_lines(2, _balanced(R, 2000), _balanced(R, 1500)[:-1] + "(")),
         io(_lines(5, *(_balanced(R, 20) for _ in range(5))))],
    ),
    Spec(
        "stdin", 8, "Count Primes", "medium",
        """
        Count the prime numbers that are less than or equal to N. A prime is an integer
        greater than 1 whose only positive divisors are 1 and itself.

        Input: one line with the integer N (1 <= N <= 2 * 10^6).
        Output: one line with the number of primes p with p <= N.
        """,
        src("""
            import sys


            def main() -> None:
                n = int(sys.stdin.readline())
                if n < 2:
                    sys.stdout.write("0\\n")
                    return
                sieve = bytearray([1]) * (n + 1)
                sieve[0] = sieve[1] = 0
                i = 2
                while i * i <= n:
                    if sieve[i]:
                        sieve[i * i :: i] = bytes(len(range(i * i, n + 1, i)))
                    i += 1
                sys.stdout.write(f"{sum(sieve)}\\n")


            main()
        """),
        [
            ("wrong_answer", src("""
                n = int(input())
                if n < 2:
                    print(0)
                else:
                    sieve = [True] * n
                    sieve[0] = sieve[1] = False
                    for i in range(2, int(n ** 0.5) + 1):
                        if sieve[i]:
                            for j in range(i * i, n, i):
                                sieve[j] = False
                    print(sum(sieve))
            """)),
            ("time_limit", src("""
                n = int(input())
                count = 0
                for k in range(2, n + 1):
                    d = 2
                    while d * d <= k:
                        if k % d == 0:
                            break
                        d += 1
                    else:
                        count += 1
                print(count)
            """)),
        ],
        [io("10\n", "4\n"), io("1\n", "0\n")],
        [io("2\n", "1\n"), io("100\n", "25\n"), io("97\n", "25\n"), io("7919\n", "1000\n"),
         io("2000000\n", "148933\n")],
    ),
    Spec(
        "stdin", 9, "Shortest Path in a Grid", "hard",
        """
        A grid has R rows and C columns of cells: '.' is open, '#' is a wall, 'S' is the start
        and 'E' is the exit (both open). In one move you go from a cell to one of its up to four
        neighbours (up, down, left, right; no diagonal moves) if that neighbour is not a wall.
        Find the smallest number of moves from S to E.

        Input: the first line holds R and C (1 <= R, C <= 100). Each of the next R lines holds
        C characters from ".#SE"; there is exactly one S and exactly one E.
        Output: one line with the smallest number of moves, or -1 if E cannot be reached.
        """,
        src("""
            import sys
            from collections import deque


            def main() -> None:
                data = sys.stdin.buffer.read().split()
                rows, cols = int(data[0]), int(data[1])
                grid = [line.decode() for line in data[2:2 + rows]]
                start = end = (0, 0)
                for r, line in enumerate(grid):
                    for c, ch in enumerate(line):
                        if ch == "S":
                            start = (r, c)
                        elif ch == "E":
                            end = (r, c)
                dist = [[-1] * cols for _ in range(rows)]
                dist[start[0]][start[1]] = 0
                queue = deque([start])
                while queue:
                    r, c = queue.popleft()
                    for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                        if 0 <= nr < rows and 0 <= nc < cols and grid[nr][nc] != "#" \\
                                and dist[nr][nc] < 0:
                            dist[nr][nc] = dist[r][c] + 1
                            queue.append((nr, nc))
                print(dist[end[0]][end[1]])


            if __name__ == "__main__":
                main()
        """),
        [
            ("wrong_answer", src("""
                from collections import deque

                rows, cols = map(int, input().split())
                grid = [input() for _ in range(rows)]
                for r in range(rows):
                    for c in range(cols):
                        if grid[r][c] == "S":
                            start = (r, c)
                        if grid[r][c] == "E":
                            end = (r, c)
                dist = {start: 0}
                queue = deque([start])
                while queue:
                    r, c = queue.popleft()
                    for dr in (-1, 0, 1):
                        for dc in (-1, 0, 1):
                            nr, nc = r + dr, c + dc
                            if 0 <= nr < rows and 0 <= nc < cols and grid[nr][nc] != "#" \\
                                    and (nr, nc) not in dist:
                                dist[(nr, nc)] = dist[(r, c)] + 1
                                queue.append((nr, nc))
                print(dist.get(end, -1))
            """)),
        ],
        [io("3 4\nS..#\n.#..\n...E\n", "5\n"), io("2 2\nS#\n#E\n", "-1\n")],
        [io("1 2\nSE\n", "1\n"), io("1 3\nS#E\n", "-1\n"), io(_grid(R, 100, 100, 0)),
         io(_grid(R, 100, 100, 25)), io(_grid(R, 60, 80, 35)), io(_serpentine(21, 30))],
        time_limit_s=4.0,
    ),
    Spec(
        "stdin", 10, "Longest Increasing Subsequence", "hard",
        """
        Given a sequence of n integers, find the length of its longest strictly increasing
        subsequence. A subsequence keeps the original order but may skip elements; strictly
        increasing means every element is larger than the one before it.

        Input: the first line holds n (1 <= n <= 2 * 10^5). The second line holds the n
        integers, separated by spaces (-10^9 <= a_i <= 10^9).
        Output: one line with the length of the longest strictly increasing subsequence.
        """,
        src("""
            import sys
            from bisect import bisect_left


            def main() -> None:
                input = sys.stdin.readline
                n = int(input())
                nums = list(map(int, input().split()))[:n]
                tails: list[int] = []
                for x in nums:
                    i = bisect_left(tails, x)
                    if i == len(tails):
                        tails.append(x)
                    else:
                        tails[i] = x
                sys.stdout.write(str(len(tails)) + "\\n")


            if __name__ == "__main__":
                main()
        """),
        [
            ("wrong_answer", src("""
                from bisect import bisect_right

                n = int(input())
                nums = list(map(int, input().split()))
                tails = []
                for x in nums:
                    i = bisect_right(tails, x)
                    if i == len(tails):
                        tails.append(x)
                    else:
                        tails[i] = x
                print(len(tails))
            """)),
            ("wrong_answer", src("""
                n = int(input())
                nums = list(map(int, input().split()))
                best = run = 1
                for i in range(1, n):
                    run = run + 1 if nums[i] > nums[i - 1] else 1
                    best = max(best, run)
                print(best)
            """)),
        ],
        [io("8\n10 9 2 5 3 7 101 18\n", "4\n"), io("6\n0 1 0 3 2 3\n", "4\n")],
        [io("5\n7 7 7 7 7\n", "1\n"), io("1\n-5\n", "1\n"), io("5\n5 4 3 2 1\n", "1\n"),
         io(_lines(2000, " ".join(str(i) for i in range(2000)))),
         io(_lines(5000, " ".join(str(R.randint(0, 10**4)) for _ in range(5000)))),
         io(_lines(300, " ".join(str(R.randint(-10**9, 10**9)) for _ in range(300))))],
        time_limit_s=4.0,
    ),
]

# --------------------------------------------------------------------------------------------
# functional problems (LeetCode style)
# --------------------------------------------------------------------------------------------

_TWO_SUM_BIG = _two_sum_case(R, 500)

FUNCTIONAL: list[Spec] = [
    Spec(
        "functional", 1, "Sum of Two Numbers", "easy",
        """
        Implement the method sumOfTwo of class Solution: given two integers a and b, return
        their sum a + b as an integer.

        Constraints: -10^9 <= a, b <= 10^9.
        """,
        src("""
            class Solution:
                def sumOfTwo(self, a: int, b: int) -> int:
                    return a + b
        """),
        [
            ("runtime_error", src("""
                class Solution:
                    def sumOfTwo(a, b):
                        return a + b
            """)),
            ("wrong_answer", src("""
                class Solution:
                    def sumOfTwo(self, a: int, b: int) -> int:
                        return str(a + b)
            """)),
        ],
        [call(2, 3, expect=5), call(-1, 1, expect=0)],
        [call(0, 0), call(10**9, 10**9), call(-7, -8), call(123456789, -987654321),
         call(-10**9, 10**9)],
        entry_point="sumOfTwo", signature="a: int, b: int", returns="int", method=True,
    ),
    Spec(
        "functional", 2, "Valid Palindrome", "easy",
        """
        Implement the method isPalindrome of class Solution: return True if the string s reads
        the same forwards and backwards after removing every character that is not an ASCII
        letter or digit and ignoring the difference between upper and lower case; otherwise
        return False. An empty string (or one with no letters or digits) is a palindrome.

        Constraints: 0 <= len(s) <= 2 * 10^5; s consists of printable ASCII characters.
        """,
        src("""
            class Solution:
                def isPalindrome(self, s: str) -> bool:
                    cleaned = [ch.lower() for ch in s if ch.isascii() and ch.isalnum()]
                    return cleaned == cleaned[::-1]
        """),
        [
            ("wrong_answer", src("""
                class Solution:
                    def isPalindrome(self, s: str) -> bool:
                        t = s.lower()
                        return t == t[::-1]
            """)),
        ],
        [call("A man, a plan, a canal: Panama", expect=True), call("race a car", expect=False)],
        [call(""), call(" "), call("0P", expect=False), call("ab_a", expect=True),
         call("Was it a car or a cat I saw?"), call("No 'x' in Nixon"), call("123ab321")],
        entry_point="isPalindrome", signature="s: str", returns="bool", method=True,
    ),
    Spec(
        "functional", 3, "Count Even Numbers", "easy",
        """
        Write a function count_evens(nums) that returns how many integers in the list nums are
        even. Zero and negative even numbers are even too.

        Constraints: 0 <= len(nums) <= 10^4; -10^9 <= nums[i] <= 10^9.
        """,
        src("""
            def count_evens(nums: list[int]) -> int:
                return sum(1 for x in nums if x % 2 == 0)
        """),
        [
            ("wrong_answer", src("""
                def count_evens(nums):
                    count = 0
                    for x in nums:
                        if x and x % 2 == 0:
                            count += 1
                    return count
            """)),
            ("wrong_answer", src("""
                def count_evens(nums):
                    return sum(x % 2 for x in nums)
            """)),
        ],
        [call([1, 2, 3, 4], expect=2), call([1, 3, 5], expect=0)],
        [call([], expect=0), call([0], expect=1), call([-2, -3, -4]), call([2] * 10),
         call([R.randint(-10**9, 10**9) for _ in range(200)])],
        entry_point="count_evens", signature="nums: list[int]", returns="int",
    ),
    Spec(
        "functional", 4, "FizzBuzz", "easy",
        """
        Implement the method fizzBuzz of class Solution: return a list of n strings where the
        i-th string (1-indexed) is "FizzBuzz" if i is divisible by both 3 and 5, "Fizz" if i is
        divisible by 3 only, "Buzz" if i is divisible by 5 only, and the decimal digits of i
        otherwise.

        Constraints: 1 <= n <= 10^4.
        """,
        src("""
            class Solution:
                def fizzBuzz(self, n: int) -> list[str]:
                    answer = []
                    for i in range(1, n + 1):
                        if i % 15 == 0:
                            answer.append("FizzBuzz")
                        elif i % 3 == 0:
                            answer.append("Fizz")
                        elif i % 5 == 0:
                            answer.append("Buzz")
                        else:
                            answer.append(str(i))
                    return answer
        """),
        [
            ("wrong_answer", src("""
                class Solution:
                    def fizzBuzz(self, n: int) -> list[str]:
                        answer = []
                        for i in range(1, n + 1):
                            if i % 3 == 0:
                                answer.append("Fizz")
                            elif i % 5 == 0:
                                answer.append("Buzz")
                            elif i % 15 == 0:
                                answer.append("FizzBuzz")
                            else:
                                answer.append(str(i))
                        return answer
            """)),
            ("wrong_answer", src("""
                class Solution:
                    def fizzBuzz(self, n: int) -> list[str]:
                        answer = []
                        for i in range(1, n + 1):
                            if i % 15 == 0:
                                answer.append("FizzBuzz")
                            elif i % 3 == 0:
                                answer.append("Fizz")
                            elif i % 5 == 0:
                                answer.append("Buzz")
                            else:
                                answer.append(i)
                        return answer
            """)),
        ],
        [call(3, expect=["1", "2", "Fizz"]), call(5, expect=["1", "2", "Fizz", "4", "Buzz"])],
        [call(15), call(1, expect=["1"]), call(16), call(100)],
        entry_point="fizzBuzz", signature="n: int", returns="list[str]", method=True,
    ),
    Spec(
        "functional", 5, "Two Sum", "medium",
        """
        Implement the method twoSum of class Solution: given a list of integers nums and an
        integer target, return the indices [i, j] with i < j of the two elements whose sum is
        target. Each input has exactly one such pair of positions; an element may not be used
        twice.

        Constraints: 2 <= len(nums) <= 10^4; -10^9 <= nums[i], target <= 10^9.
        """,
        src("""
            class Solution:
                def twoSum(self, nums: list[int], target: int) -> list[int]:
                    seen: dict[int, int] = {}
                    for j, x in enumerate(nums):
                        if target - x in seen:
                            return [seen[target - x], j]
                        seen[x] = j
                    return []
        """),
        [
            ("wrong_answer", src("""
                class Solution:
                    def twoSum(self, nums: list[int], target: int) -> list[int]:
                        seen = {}
                        for j, x in enumerate(nums):
                            seen[x] = j
                            if target - x in seen:
                                return [seen[target - x], j]
                        return []
            """)),
        ],
        [call([2, 7, 11, 15], 9, expect=[0, 1]), call([3, 2, 4], 6, expect=[1, 2])],
        [call([3, 3], 6, expect=[0, 1]), call([-1, -2, -3, -4, -5], -8, expect=[2, 4]),
         call([0, 4, 3, 0], 0, expect=[0, 3]), call([10**9, -10**9, 5, 0], 5, expect=[2, 3]),
         call(*_TWO_SUM_BIG)],
        entry_point="twoSum", signature="nums: list[int], target: int", returns="list[int]",
        method=True,
    ),
    Spec(
        "functional", 6, "Merge Intervals", "medium",
        """
        Write a function merge_intervals(intervals) that merges overlapping intervals. Each
        interval is a list [start, end] with start <= end, covering every point from start to
        end inclusive. Two intervals overlap when they share at least one point, so [1, 2] and
        [2, 3] merge into [1, 3]. Return the merged intervals sorted by start. The input list
        is not necessarily sorted.

        Constraints: 0 <= len(intervals) <= 10^4; 0 <= start <= end <= 10^9.
        """,
        src("""
            def merge_intervals(intervals: list[list[int]]) -> list[list[int]]:
                merged: list[list[int]] = []
                for start, end in sorted(intervals):
                    if merged and start <= merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], end)
                    else:
                        merged.append([start, end])
                return merged
        """),
        [
            ("wrong_answer", src("""
                def merge_intervals(intervals):
                    merged = []
                    for start, end in sorted(intervals):
                        if merged and start < merged[-1][1]:
                            merged[-1][1] = max(merged[-1][1], end)
                        else:
                            merged.append([start, end])
                    return merged
            """)),
            ("wrong_answer", src("""
                def merge_intervals(intervals):
                    merged = []
                    for start, end in intervals:
                        if merged and start <= merged[-1][1]:
                            merged[-1][1] = max(merged[-1][1], end)
                        else:
                            merged.append([start, end])
                    return merged
            """)),
        ],
        [call([[1, 3], [2, 6], [8, 10], [15, 18]], expect=[[1, 6], [8, 10], [15, 18]]),
         call([[5, 7], [1, 2]], expect=[[1, 2], [5, 7]])],
        [call([[1, 4], [4, 5]], expect=[[1, 5]]), call([], expect=[]),
         call([[1, 10], [2, 3], [4, 5]], expect=[[1, 10]]), call([[0, 0]]),
         call([[2, 3], [1, 1], [0, 5], [7, 7]]),
         call([sorted((R.randint(0, 500), R.randint(0, 500))) for _ in range(40)])],
        entry_point="merge_intervals", signature="intervals: list[list[int]]",
        returns="list[list[int]]",
    ),
    Spec(
        "functional", 7, "Group Anagrams", "medium",
        """
        Implement the method groupAnagrams of class Solution: split the list of lowercase words
        into groups of anagrams (words made of exactly the same letters, each letter the same
        number of times; a repeated word belongs to the group of its copies). Return the groups
        as a list of lists where each group is sorted alphabetically and the groups are ordered
        by their first word.

        Constraints: 0 <= len(words) <= 10^4; each word has 0 to 100 letters a-z.
        """,
        src("""
            class Solution:
                def groupAnagrams(self, words: list[str]) -> list[list[str]]:
                    groups: dict[str, list[str]] = {}
                    for word in words:
                        groups.setdefault("".join(sorted(word)), []).append(word)
                    return sorted(sorted(group) for group in groups.values())
        """),
        [
            ("wrong_answer", src("""
                class Solution:
                    def groupAnagrams(self, words: list[str]) -> list[list[str]]:
                        groups = {}
                        for word in words:
                            groups.setdefault(frozenset(word), []).append(word)
                        return sorted(sorted(group) for group in groups.values())
            """)),
            ("wrong_answer", src("""
                class Solution:
                    def groupAnagrams(self, words: list[str]) -> list[list[str]]:
                        groups = {}
                        for word in words:
                            groups.setdefault("".join(sorted(word)), []).append(word)
                        return list(groups.values())
            """)),
        ],
        [call(["eat", "tea", "tan", "ate", "nat", "bat"],
              expect=[["ate", "eat", "tea"], ["bat"], ["nat", "tan"]]),
         call(["a"], expect=[["a"]])],
        [call(["aab", "abb", "bab"], expect=[["aab"], ["abb", "bab"]]), call([], expect=[]),
         call([""], expect=[[""]]), call(["abc", "cba", "bca", "xyz", "zyx", "a"]),
         call(["ab", "ba", "ab"]),
         call(["".join(R.choice("abcd") for _ in range(3)) for _ in range(60)])],
        entry_point="groupAnagrams", signature="words: list[str]", returns="list[list[str]]",
        method=True,
    ),
    Spec(
        "functional", 8, "Rotate a Matrix", "medium",
        """
        Write a function rotate(matrix) that returns a new matrix: the given R x C matrix
        (a list of R rows, each a list of C integers) rotated 90 degrees clockwise. The result
        has C rows of R integers; its first row is the original first column read from bottom
        to top.

        Constraints: 1 <= R, C <= 100.
        """,
        src("""
            def rotate(matrix: list[list[int]]) -> list[list[int]]:
                return [list(row) for row in zip(*matrix[::-1])]
        """),
        [
            ("wrong_answer", src("""
                def rotate(matrix):
                    return [list(row) for row in zip(*matrix)][::-1]
            """)),
            ("wrong_answer", src("""
                def rotate(matrix):
                    n = len(matrix)
                    result = [[0] * n for _ in range(n)]
                    for i in range(n):
                        for j in range(n):
                            result[j][n - 1 - i] = matrix[i][j]
                    return result
            """)),
        ],
        [call([[1, 2], [3, 4]], expect=[[3, 1], [4, 2]]),
         call([[1, 2, 3], [4, 5, 6], [7, 8, 9]], expect=[[7, 4, 1], [8, 5, 2], [9, 6, 3]])],
        [call([[1]], expect=[[1]]), call([[1, 2, 3]], expect=[[1], [2], [3]]),
         call([[1], [2], [3]], expect=[[3, 2, 1]]),
         call([[1, 2, 3], [4, 5, 6]], expect=[[4, 1], [5, 2], [6, 3]]),
         call([[R.randint(-99, 99) for _ in range(7)] for _ in range(5)])],
        entry_point="rotate", signature="matrix: list[list[int]]", returns="list[list[int]]",
    ),
    Spec(
        "functional", 9, "Coin Change", "hard",
        """
        Implement the method coinChange of class Solution: given coin values coins (an
        unlimited supply of each) and an amount, return the fewest coins whose values add up
        to exactly amount, or -1 if no combination of the coins makes amount. Making 0 takes 0
        coins.

        Constraints: 1 <= len(coins) <= 12; 1 <= coins[i] <= 10^4; 0 <= amount <= 10^4.
        """,
        src("""
            class Solution:
                def coinChange(self, coins: list[int], amount: int) -> int:
                    unreachable = amount + 1
                    best = [0] + [unreachable] * amount
                    for value in range(1, amount + 1):
                        for coin in coins:
                            if coin <= value and best[value - coin] + 1 < best[value]:
                                best[value] = best[value - coin] + 1
                    return best[amount] if best[amount] <= amount else -1
        """),
        [
            ("time_limit", src("""
                class Solution:
                    def coinChange(self, coins: list[int], amount: int) -> int:
                        coins = sorted(coins, reverse=True)
                        count = 0
                        while amount > 0:
                            for coin in coins:
                                if coin <= amount:
                                    amount -= coin
                                    count += 1
                                    break
                        return count
            """)),
            ("wrong_answer", src("""
                class Solution:
                    def coinChange(self, coins: list[int], amount: int) -> int:
                        count = 0
                        for coin in sorted(coins, reverse=True):
                            count += amount // coin
                            amount %= coin
                        return count if amount == 0 else -1
            """)),
        ],
        [call([1, 2, 5], 11, expect=3), call([2], 3, expect=-1)],
        [call([1, 3, 4], 6, expect=2), call([1], 0, expect=0), call([2, 5, 10, 1], 27, expect=4),
         call([186, 419, 83, 408], 6249, expect=20), call([3, 7], 5, expect=-1),
         call([7, 13, 29], 9999), call([9999, 10000], 10000, expect=1)],
        entry_point="coinChange", signature="coins: list[int], amount: int", returns="int",
        method=True,
    ),
    Spec(
        "functional", 10, "Edit Distance", "hard",
        """
        Write a function edit_distance(a, b) that returns the Levenshtein distance between the
        strings a and b: the fewest single-character insertions, deletions and substitutions
        that turn a into b.

        Constraints: 0 <= len(a), len(b) <= 500; the strings hold lowercase letters a-z.
        """,
        src("""
            def edit_distance(a: str, b: str) -> int:
                previous = list(range(len(b) + 1))
                for i, ca in enumerate(a, start=1):
                    current = [i] + [0] * len(b)
                    for j, cb in enumerate(b, start=1):
                        current[j] = min(previous[j] + 1, current[j - 1] + 1,
                                         previous[j - 1] + (ca != cb))
                    previous = current
                return previous[len(b)]
        """),
        [
            ("wrong_answer", src("""
                def edit_distance(a, b):
                    mismatches = sum(1 for x, y in zip(a, b) if x != y)
                    return mismatches + abs(len(a) - len(b))
            """)),
            ("wrong_answer", src("""
                def edit_distance(a, b):
                    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
                    for i in range(1, len(a) + 1):
                        for j in range(1, len(b) + 1):
                            if a[i - 1] == b[j - 1]:
                                dp[i][j] = dp[i - 1][j - 1]
                            else:
                                dp[i][j] = 1 + min(dp[i - 1][j], dp[i][j - 1], dp[i - 1][j - 1])
                    return dp[len(a)][len(b)]
            """)),
        ],
        [call("horse", "ros", expect=3), call("intention", "execution", expect=5)],
        [call("", "", expect=0), call("", "abc", expect=3), call("abc", "", expect=3),
         call("kitten", "sitting", expect=3), call("flaw", "lawn", expect=2),
         call("".join(R.choice("abc") for _ in range(300)),
              "".join(R.choice("abc") for _ in range(280)))],
        entry_point="edit_distance", signature="a: str, b: str", returns="int",
        time_limit_s=4.0,
    ),
]

# --------------------------------------------------------------------------------------------
# assert problems (HumanEval / MBPP style)
# --------------------------------------------------------------------------------------------

ASSERT: list[Spec] = [
    Spec(
        "assert", 1, "Is Even", "easy",
        """
        Write a function is_even(n) that returns True if the integer n is even and False
        otherwise. n may be zero or negative.
        """,
        src("""
            def is_even(n: int) -> bool:
                return n % 2 == 0
        """),
        [
            ("wrong_answer", src("""
                def is_even(n):
                    return n % 2 == 1
            """)),
            ("compile_error", src("""
                def is_even(n)
                    return n % 2 == 0
            """)),
        ],
        [ex("is_even(4)", True), ex("is_even(7)", False)],
        [ex("is_even(0)", True), ex("is_even(-2)", True), ex("is_even(-3)", False),
         ex("is_even(10**18)"), ex("is_even(10**18 + 1)")],
        entry_point="is_even", signature="n: int", returns="bool",
    ),
    Spec(
        "assert", 2, "Factorial", "easy",
        """
        Write a function factorial(n) that returns n! = 1 * 2 * ... * n for an integer
        0 <= n <= 100. By definition 0! = 1.
        """,
        src("""
            def factorial(n: int) -> int:
                result = 1
                for k in range(2, n + 1):
                    result *= k
                return result
        """),
        [
            ("runtime_error", src("""
                def factorial(n):
                    if n == 1:
                        return 1
                    return n * factorial(n - 1)
            """)),
            ("wrong_answer", src("""
                def factorial(n):
                    result = 1
                    for k in range(1, n):
                        result *= k
                    return result
            """)),
        ],
        [ex("factorial(5)", 120), ex("factorial(1)", 1)],
        [ex("factorial(0)", 1), ex("factorial(3)", 6), ex("factorial(10)", 3628800),
         ex("factorial(20)"), ex("factorial(25)")],
        entry_point="factorial", signature="n: int", returns="int",
    ),
    Spec(
        "assert", 3, "Sum of Digits", "easy",
        """
        Write a function digit_sum(n) that returns the sum of the decimal digits of the integer
        n. For a negative n, use the digits of its absolute value: digit_sum(-47) is 11.
        """,
        src("""
            def digit_sum(n: int) -> int:
                return sum(int(ch) for ch in str(abs(n)))
        """),
        [
            ("runtime_error", src("""
                def digit_sum(n):
                    return sum(int(ch) for ch in str(n))
            """)),
            ("wrong_answer", src("""
                def digit_sum(n):
                    n = abs(n)
                    while n > 9:
                        n = sum(int(ch) for ch in str(n))
                    return n
            """)),
        ],
        [ex("digit_sum(123)", 6), ex("digit_sum(9045)", 18)],
        [ex("digit_sum(-47)", 11), ex("digit_sum(0)", 0), ex("digit_sum(7)", 7),
         ex("digit_sum(10**18)", 1), ex("digit_sum(999999999)", 81)],
        entry_point="digit_sum", signature="n: int", returns="int",
    ),
    Spec(
        "assert", 4, "Remove Duplicates Keeping Order", "medium",
        """
        Write a function dedupe(items) that returns a new list with the repeated elements of
        items removed: each distinct element appears once, at the position of its first
        occurrence, and the order of first occurrences is kept. The elements are integers or
        strings (hashable, compared with ==).
        """,
        src("""
            def dedupe(items: list) -> list:
                seen = set()
                result = []
                for item in items:
                    if item not in seen:
                        seen.add(item)
                        result.append(item)
                return result
        """),
        [
            ("wrong_answer", src("""
                def dedupe(items):
                    return list(set(items))
            """)),
            ("wrong_answer", src("""
                def dedupe(items):
                    result = []
                    for item in items:
                        if not result or result[-1] != item:
                            result.append(item)
                    return result
            """)),
        ],
        [ex("dedupe([3, 1, 3, 2, 1])", [3, 1, 2]), ex("dedupe(['b', 'a', 'b'])", ["b", "a"])],
        [ex("dedupe([])", []), ex("dedupe([1, 1, 1])", [1]), ex("dedupe([5, 4, 3, 2, 1])"),
         ex("dedupe(['a', 'A', 'a'])", ["a", "A"]),
         ex(f"dedupe({[R.randint(0, 50) for _ in range(200)]})")],
        entry_point="dedupe", signature="items: list", returns="list",
    ),
    Spec(
        "assert", 5, "Run-Length Encoding", "medium",
        """
        Write a function rle(s) that returns the run-length encoding of the string s: every
        maximal run of one repeated character is written as that character followed by the
        length of the run in decimal. For example rle("aaabccdddd") is "a3b1c2d4", and the
        encoding of the empty string is the empty string.
        """,
        src("""
            def rle(s: str) -> str:
                parts = []
                i = 0
                while i < len(s):
                    j = i
                    while j < len(s) and s[j] == s[i]:
                        j += 1
                    parts.append(f"{s[i]}{j - i}")
                    i = j
                return "".join(parts)
        """),
        [
            ("wrong_answer", src("""
                def rle(s):
                    out = ""
                    count = 1
                    for i in range(1, len(s)):
                        if s[i] == s[i - 1]:
                            count += 1
                        else:
                            out += s[i - 1] + str(count)
                            count = 1
                    return out
            """)),
            ("runtime_error", src("""
                def rle(s):
                    out = ""
                    count = 1
                    for i in range(1, len(s)):
                        if s[i] == s[i - 1]:
                            count += 1
                        else:
                            out += s[i - 1] + str(count)
                            count = 1
                    return out + s[-1] + str(count)
            """)),
        ],
        [ex("rle('aaabccdddd')", "a3b1c2d4"), ex("rle('xyz')", "x1y1z1")],
        [ex("rle('')", ""), ex("rle('a')", "a1"), ex("rle('zzzzzzzzzzzz')", "z12"),
         ex("rle('aabbaa')", "a2b2a2"),
         ex(repr("".join(R.choice("aab") for _ in range(200))).join(("rle(", ")")))],
        entry_point="rle", signature="s: str", returns="str",
    ),
    Spec(
        "assert", 6, "Second Largest Distinct Value", "medium",
        """
        Write a function second_largest(nums) that returns the second largest distinct value
        in the list of integers nums, or None if nums has fewer than two distinct values.
        For example second_largest([5, 5, 4]) is 4.
        """,
        src("""
            def second_largest(nums: list[int]) -> int | None:
                distinct = sorted(set(nums))
                return distinct[-2] if len(distinct) >= 2 else None
        """),
        [
            ("wrong_answer", src("""
                def second_largest(nums):
                    return sorted(nums)[-2]
            """)),
            ("runtime_error", src("""
                def second_largest(nums):
                    distinct = sorted(set(nums))
                    return distinct[-2]
            """)),
        ],
        [ex("second_largest([1, 3, 2])", 2), ex("second_largest([5, 5, 4])", 4)],
        [ex("second_largest([7])", None), ex("second_largest([])", None),
         ex("second_largest([2, 2, 2])", None), ex("second_largest([-1, -5, -3])", -3),
         ex("second_largest([10**9, -10**9])", -10**9),
         ex(f"second_largest({[R.randint(-1000, 1000) for _ in range(100)]})")],
        entry_point="second_largest", signature="nums: list[int]", returns="int | None",
    ),
    Spec(
        "assert", 7, "Caesar Cipher", "medium",
        """
        Write a function caesar(text, shift) that shifts every ASCII letter of text by shift
        places in the alphabet, wrapping around from z to a, and keeps its case; every other
        character stays as it is. shift may be negative or larger than 26.
        For example caesar("xyz", 3) is "abc".
        """,
        src("""
            def caesar(text: str, shift: int) -> str:
                out = []
                for ch in text:
                    if "a" <= ch <= "z":
                        out.append(chr((ord(ch) - ord("a") + shift) % 26 + ord("a")))
                    elif "A" <= ch <= "Z":
                        out.append(chr((ord(ch) - ord("A") + shift) % 26 + ord("A")))
                    else:
                        out.append(ch)
                return "".join(out)
        """),
        [
            ("wrong_answer", src("""
                def caesar(text, shift):
                    return "".join(chr(ord(ch) + shift) if ch.isalpha() else ch for ch in text)
            """)),
            ("wrong_answer", src("""
                def caesar(text, shift):
                    out = ""
                    for ch in text.lower():
                        if ch.isalpha():
                            out += chr((ord(ch) - 97 + shift) % 26 + 97)
                        else:
                            out += ch
                    return out
            """)),
        ],
        [ex("caesar('abc', 1)", "bcd"), ex("caesar('Hello, World!', 3)", "Khoor, Zruog!")],
        [ex("caesar('xyz', 3)", "abc"), ex("caesar('abc', -1)", "zab"),
         ex("caesar('Zebra', 52)", "Zebra"), ex("caesar('', 5)", ""),
         ex("caesar('Python 3.11!', 13)", "Clguba 3.11!"), ex("caesar('ABC', -27)", "ZAB")],
        entry_point="caesar", signature="text: str, shift: int", returns="str",
    ),
    Spec(
        "assert", 8, "Binary Search", "medium",
        """
        Write a function binary_search(nums, target) that returns the index of target in the
        list nums, which is sorted in increasing order and has no repeated values, or -1 if
        target is not in nums. It should take O(log n) steps.
        """,
        src("""
            def binary_search(nums: list[int], target: int) -> int:
                lo, hi = 0, len(nums) - 1
                while lo <= hi:
                    mid = (lo + hi) // 2
                    if nums[mid] == target:
                        return mid
                    if nums[mid] < target:
                        lo = mid + 1
                    else:
                        hi = mid - 1
                return -1
        """),
        [
            ("wrong_answer", src("""
                def binary_search(nums, target):
                    lo, hi = 0, len(nums) - 1
                    while lo < hi:
                        mid = (lo + hi) // 2
                        if nums[mid] == target:
                            return mid
                        if nums[mid] < target:
                            lo = mid + 1
                        else:
                            hi = mid - 1
                    return -1
            """)),
        ],
        [ex("binary_search([1, 3, 5, 7, 9], 7)", 3), ex("binary_search([1, 3, 5, 7, 9], 4)", -1)],
        [ex("binary_search([5], 5)", 0), ex("binary_search([], 3)", -1),
         ex("binary_search([1, 3, 5, 7, 9], 9)", 4), ex("binary_search([1, 3, 5, 7, 9], 1)", 0),
         ex("binary_search([1, 3, 5, 7, 9], 10)", -1),
         ex("binary_search(list(range(0, 2000, 2)), 1234)", 617),
         ex("binary_search(list(range(0, 2000, 2)), 1235)", -1)],
        entry_point="binary_search", signature="nums: list[int], target: int", returns="int",
    ),
    Spec(
        "assert", 9, "Evaluate an Arithmetic Expression", "hard",
        """
        Write a function evaluate(expr) that returns the integer value of the arithmetic
        expression in the string expr. The expression contains non-negative integer literals,
        the binary operators +, - and *, parentheses, and spaces. * binds tighter than + and -,
        and operators of the same precedence are applied from left to right, so "10 - 2 - 3"
        is 5. There is no unary minus. Parentheses nest at most 50 deep.
        """,
        src("""
            def evaluate(expr: str) -> int:
                tokens: list = []
                i = 0
                while i < len(expr):
                    ch = expr[i]
                    if ch.isdigit():
                        j = i
                        while j < len(expr) and expr[j].isdigit():
                            j += 1
                        tokens.append(int(expr[i:j]))
                        i = j
                    elif ch in "+-*()":
                        tokens.append(ch)
                        i += 1
                    elif ch == " ":
                        i += 1
                    else:
                        raise ValueError(f"unexpected character {ch!r}")
                pos = 0

                def peek():
                    return tokens[pos] if pos < len(tokens) else None

                def take():
                    nonlocal pos
                    pos += 1
                    return tokens[pos - 1]

                def expression() -> int:
                    value = term()
                    while peek() in ("+", "-"):
                        if take() == "+":
                            value += term()
                        else:
                            value -= term()
                    return value

                def term() -> int:
                    value = factor()
                    while peek() == "*":
                        take()
                        value *= factor()
                    return value

                def factor() -> int:
                    token = take()
                    if token == "(":
                        value = expression()
                        take()  # the closing parenthesis
                        return value
                    return token

                return expression()
        """),
        [
            ("wrong_answer", src("""
                def evaluate(expr):
                    tokens = expr.replace("(", "").replace(")", "").split()
                    value = int(tokens[0])
                    for i in range(1, len(tokens), 2):
                        op, number = tokens[i], int(tokens[i + 1])
                        if op == "+":
                            value += number
                        elif op == "-":
                            value -= number
                        else:
                            value *= number
                    return value
            """)),
            ("wrong_answer", src("""
                def evaluate(expr):
                    def parse(s):
                        for ops in ("+-", "*"):
                            depth = 0
                            for i, ch in enumerate(s):
                                if ch == "(":
                                    depth += 1
                                elif ch == ")":
                                    depth -= 1
                                elif depth == 0 and ch in ops:
                                    left, right = parse(s[:i]), parse(s[i + 1:])
                                    if ch == "+":
                                        return left + right
                                    if ch == "-":
                                        return left - right
                                    return left * right
                        if s.startswith("("):
                            return parse(s[1:-1])
                        return int(s)

                    return parse(expr.replace(" ", ""))
            """)),
        ],
        [ex("evaluate('2 + 3 * 4')", 14), ex("evaluate('(1 + 2) * (3 + 4)')", 21)],
        [ex("evaluate('10 - 2 - 3')", 5), ex("evaluate('42')", 42),
         ex("evaluate('2*(3+4)*5')", 70), ex("evaluate('((7))')", 7),
         ex("evaluate('1-1-1-1')", -2), ex("evaluate('100*(2+12)-4*(3-10)')", 1428),
         ex(f"evaluate({_expression(R, 6)!r})"), ex(f"evaluate({_expression(R, 8)!r})")],
        entry_point="evaluate", signature="expr: str", returns="int",
        time_limit_s=4.0,
    ),
    Spec(
        "assert", 10, "N-Queens Count", "hard",
        """
        Write a function count_queens(n) that returns the number of ways to place n queens on
        an n x n chessboard so that no two queens attack each other (no two share a row, a
        column or a diagonal). 1 <= n <= 9.
        """,
        src("""
            def count_queens(n: int) -> int:
                def place(row: int, cols: int, diag: int, anti: int) -> int:
                    if row == n:
                        return 1
                    total = 0
                    for col in range(n):
                        d, a = row + col, row - col + n
                        if not (cols >> col & 1 or diag >> d & 1 or anti >> a & 1):
                            total += place(row + 1, cols | 1 << col, diag | 1 << d, anti | 1 << a)
                    return total

                return place(0, 0, 0, 0)
        """),
        [
            ("wrong_answer", src("""
                def count_queens(n):
                    def place(row, cols, diag):
                        if row == n:
                            return 1
                        total = 0
                        for col in range(n):
                            if col not in cols and row - col not in diag:
                                total += place(row + 1, cols | {col}, diag | {row - col})
                        return total

                    return place(0, set(), set())
            """)),
        ],
        [ex("count_queens(4)", 2), ex("count_queens(1)", 1)],
        [ex("count_queens(2)", 0), ex("count_queens(3)", 0), ex("count_queens(5)", 10),
         ex("count_queens(6)", 4), ex("count_queens(8)", 92), ex("count_queens(9)", 352)],
        entry_point="count_queens", signature="n: int", returns="int",
        time_limit_s=4.0,
    ),
]

SPECS: list[Spec] = STDIN + FUNCTIONAL + ASSERT

# --------------------------------------------------------------------------------------------
# Running programs (one fresh interpreter per test)
# --------------------------------------------------------------------------------------------

# Runs a functional / assert program. The job arrives as JSON on stdin. The solution's own
# prints go to stderr; the driver reports on the original stdout.
_DRIVER = r'''
import ast, json, os, sys
job = json.loads(sys.stdin.read())
report = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
namespace = {"__name__": "__main__"}
exec(compile(job["code"], "<solution>", "exec"), namespace)
if job["kind"] == "functional":
    name = job["entry_point"]
    cls = namespace.get("Solution")
    if isinstance(cls, type) and hasattr(cls, name):
        func = getattr(cls(), name)
    else:
        func = namespace[name]
    args = [json.loads(line) for line in job["input"].split("\n") if line.strip()]
    value = func(*args)
    if isinstance(value, tuple):
        value = list(value)
    if job["mode"] == "compute":
        text = json.dumps(value)
        if json.loads(text) != value:
            raise SystemExit("result %r does not survive a JSON round trip" % (value,))
        report.write(text)
    else:
        report.write("ok" if value == json.loads(job["expected"]) else "wrong %.200r" % (value,))
elif job["mode"] == "compute":
    value = eval(compile(job["input"], "<test>", "eval"), namespace)
    text = repr(value)
    back = ast.literal_eval(text)
    if back != value or type(back) is not type(value):
        raise SystemExit("value %.200r has no literal repr" % (value,))
    report.write(text)
else:
    try:
        exec(compile(job["input"], "<test>", "exec"), namespace)
    except AssertionError:
        report.write("wrong")
    else:
        report.write("ok")
report.close()
'''


@dataclass
class Outcome:
    verdict: str          # one of VERDICTS; "passed" in compute mode when the program ran
    output: str = ""      # compute mode: stdout (stdin kind) or the value's text
    error: str = ""


def _python() -> list[str]:
    # -S: skip site (faster start, no user site-packages); the programs need only the stdlib.
    return [sys.executable, "-S"]


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}


def run_test(kind: str, code: str, test_input: str, *, entry_point: str | None,
             expected: str | None, time_limit_s: float) -> Outcome:
    """Run ``code`` on one test. ``expected=None`` computes the output instead of judging."""
    try:
        compile(code, "<solution>", "exec")
    except (SyntaxError, ValueError) as e:
        return Outcome("compile_error", error=str(e))
    if kind == "stdin":
        argv, stdin = _python() + ["-c", code], test_input
    else:
        mode = "compute" if expected is None else "judge"
        job = {"kind": kind, "code": code, "entry_point": entry_point, "input": test_input,
               "mode": mode, "expected": expected}
        argv, stdin = _python() + ["-c", _DRIVER], json.dumps(job)
    with tempfile.TemporaryDirectory(prefix="mars2-demo-") as cwd:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=cwd, env=_env())
        _limit_cpu(proc.pid, time_limit_s)
        try:
            stdout, stderr = proc.communicate(stdin, timeout=WALL_FACTOR * time_limit_s + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return Outcome("time_limit", error="wall-clock limit")
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return Outcome("time_limit", error="CPU-time limit")
    if proc.returncode != 0:
        return Outcome("runtime_error", error=stderr[-2000:])
    if expected is None:
        return Outcome("passed", output=stdout)
    if kind == "stdin":
        ok = stdin_outputs_match(stdout, expected)
    else:
        ok = stdout == "ok"
    return Outcome("passed" if ok else "wrong_answer", output=stdout)


def _limit_cpu(pid: int, seconds: float) -> None:
    """Cap the child's CPU time (SIGXCPU at the limit): a fair time limit on a busy machine."""
    limit = math.ceil(seconds)
    try:
        resource.prlimit(pid, resource.RLIMIT_CPU, (limit, limit + 1))
    except (AttributeError, ProcessLookupError, PermissionError):
        pass  # no prlimit here, or the child is already gone: the wall-clock limit still applies


def stdin_outputs_match(actual: str, expected: str) -> bool:
    """LiveCodeBench's rule: strip, split lines, strip each; lines equal as text or as Decimals."""
    got, want = actual.strip().split("\n"), expected.strip().split("\n")
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        g, w = g.strip(), w.strip()
        if g == w:
            continue
        try:
            if [Decimal(t) for t in g.split()] != [Decimal(t) for t in w.split()]:
                return False
        except InvalidOperation:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Building rows
# --------------------------------------------------------------------------------------------

def check_spec(spec: Spec) -> None:
    """Static checks on the authored data, before anything runs."""
    where = spec.id
    if spec.kind not in ("stdin", "functional", "assert"):
        raise BuildError(f"{where}: unknown kind {spec.kind!r}")
    if spec.difficulty not in ("easy", "medium", "hard"):
        raise BuildError(f"{where}: difficulty must be easy, medium or hard")
    if not 2 <= len(spec.public) <= 3 or not 4 <= len(spec.private) <= 8:
        raise BuildError(f"{where}: needs 2-3 public and 4-8 private tests, has "
                         f"{len(spec.public)} and {len(spec.private)}")
    if not spec.wrong:
        raise BuildError(f"{where}: needs at least one wrong solution")
    for verdict, _ in spec.wrong:
        if verdict not in WRONG_VERDICTS:
            raise BuildError(f"{where}: wrong-solution verdict {verdict!r} not in {WRONG_VERDICTS}")
    if spec.kind == "stdin":
        if spec.entry_point is not None or spec.signature:
            raise BuildError(f"{where}: a stdin problem has no entry point")
        for t in spec.public + spec.private:
            if not isinstance(t.input, str) or not t.input.endswith("\n"):
                raise BuildError(f"{where}: stdin test input must be text ending in a newline")
        return
    if not spec.entry_point or not spec.signature or not spec.returns:
        raise BuildError(f"{where}: needs entry_point, signature and returns")
    if spec.kind == "assert" and spec.method:
        raise BuildError(f"{where}: assert problems use a top-level function")
    for t in spec.public + spec.private:
        if spec.kind == "functional" and not isinstance(t.input, tuple):
            raise BuildError(f"{where}: functional tests are call(...) argument tuples")
        if spec.kind == "assert" and not isinstance(t.input, str):
            raise BuildError(f"{where}: assert tests are ex('expression', value)")
    if spec.kind == "functional":
        if any(len(t.input) != len(spec.param_names) for t in spec.public + spec.private):
            raise BuildError(f"{where}: a test's argument count differs from the signature")
    _check_definition(spec)


def _check_definition(spec: Spec) -> None:
    """The reference defines the entry point with the parameters of the signature."""
    tree = ast.parse(spec.reference)
    scope: list[ast.stmt] = tree.body
    if spec.method:
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Solution"]
        if not classes:
            raise BuildError(f"{spec.id}: reference has no class Solution")
        scope = classes[0].body
    funcs = [n for n in scope if isinstance(n, ast.FunctionDef) and n.name == spec.entry_point]
    if not funcs:
        raise BuildError(f"{spec.id}: reference does not define {spec.entry_point}")
    params = [a.arg for a in funcs[0].args.args]
    if spec.method:
        params = params[1:]
    if params != spec.param_names:
        raise BuildError(f"{spec.id}: reference parameters {params} != signature "
                         f"{spec.param_names}")


def _materialise(spec: Spec, t: T) -> dict[str, str]:
    """Turn an authored test into a canonical {input, output} row via the reference."""
    if spec.kind == "functional":
        test_input = "\n".join(json.dumps(arg) for arg in t.input)
    else:
        test_input = t.input
    got = run_test(spec.kind, spec.reference, test_input, entry_point=spec.entry_point,
                   expected=None, time_limit_s=spec.time_limit_s)
    if got.verdict != "passed":
        raise BuildError(f"{spec.id}: reference gave {got.verdict} computing the output of "
                         f"{test_input[:80]!r}: {got.error[-500:]}")
    if spec.kind == "stdin":
        if t.expect is not _UNSET and not stdin_outputs_match(got.output, t.expect):
            raise BuildError(f"{spec.id}: reference printed {got.output!r} for "
                             f"{test_input[:80]!r}, the test says {t.expect!r}")
        return {"input": test_input, "output": got.output}
    if spec.kind == "functional":
        value = json.loads(got.output)
        if t.expect is not _UNSET and value != t.expect:
            raise BuildError(f"{spec.id}: reference returned {value!r} for {t.input!r}, "
                             f"the test says {t.expect!r}")
        return {"input": test_input, "output": got.output}
    value = ast.literal_eval(got.output)
    if t.expect is not _UNSET and (value != t.expect or type(value) is not type(t.expect)):
        raise BuildError(f"{spec.id}: reference gave {value!r} for {t.input}, "
                         f"the test says {t.expect!r}")
    check = "is None" if value is None else f"== {got.output}"
    return {"input": f"assert {t.input} {check}", "output": ""}


def _examples(spec: Spec, public: list[dict[str, str]]) -> str:
    """The statement's example section, written from the public tests."""
    parts = []
    for i, test in enumerate(public, start=1):
        if spec.kind == "stdin":
            parts.append(f"Example {i}\nInput:\n{test['input']}Output:\n{test['output']}")
        elif spec.kind == "functional":
            args = [json.loads(line) for line in test["input"].split("\n")]
            shown = ", ".join(f"{name} = {value!r}"
                              for name, value in zip(spec.param_names, args, strict=True))
            parts.append(f"Example {i}\nInput: {shown}\nOutput: {json.loads(test['output'])!r}")
        else:
            parts.append(test["input"])
    if spec.kind == "assert":
        return "Examples (each of these must hold):\n" + "\n".join(parts)
    return "\n\n".join(p.rstrip("\n") for p in parts)


def build_row(spec: Spec) -> dict[str, Any]:
    """The canonical JSONL row for one authored problem (runs the reference)."""
    check_spec(spec)
    public = [_materialise(spec, t) for t in spec.public]
    private = [_materialise(spec, t) for t in spec.private]
    statement = textwrap.dedent(spec.statement).strip() + "\n\n" + _examples(spec, public)
    metadata = {
        "reference_solution": spec.reference,
        "wrong_solutions": [code for _, code in spec.wrong],
        "wrong_verdicts": [verdict for verdict, _ in spec.wrong],
    }
    return {
        "id": spec.id, "title": spec.title, "statement": statement, "kind": spec.kind,
        "entry_point": spec.entry_point, "starter_code": spec.starter_code,
        "public_tests": public, "private_tests": private,
        "time_limit_s": spec.time_limit_s, "memory_limit_mb": MEMORY_LIMIT_MB,
        "source": SOURCE, "difficulty": spec.difficulty, "metadata": metadata,
    }


# --------------------------------------------------------------------------------------------
# Verifying rows (judging every program against the stored tests)
# --------------------------------------------------------------------------------------------

@dataclass
class Judgement:
    verdict: str                  # verdict of the first failing test, or "passed"
    public_passed: bool
    failed_at: int | None = None  # index into public + private
    error: str = ""


def judge(row: dict[str, Any], code: str, *, stop_on_first_failure: bool = True) -> Judgement:
    """Judge ``code`` on a row's public then private tests, as the executor would."""
    tests = row["public_tests"] + row["private_tests"]
    first: tuple[int, Outcome] | None = None
    for i, test in enumerate(tests):
        got = run_test(row["kind"], code, test["input"], entry_point=row["entry_point"],
                       expected=test["output"], time_limit_s=row["time_limit_s"])
        if got.verdict != "passed" and first is None:
            first = (i, got)
            if stop_on_first_failure:
                break
    if first is None:
        return Judgement("passed", True)
    index, outcome = first
    return Judgement(outcome.verdict, index >= len(row["public_tests"]), index,
                     outcome.error or outcome.output)


def verify(rows: list[dict[str, Any]], pool: ThreadPoolExecutor) -> list[str]:
    """Judge every reference and wrong solution; return a list of problems (empty when fine)."""
    jobs: list[tuple[dict[str, Any], int, str]] = []   # (row, wrong index or -1, code)
    for row in rows:
        jobs.append((row, -1, row["metadata"]["reference_solution"]))
        for k, code in enumerate(row["metadata"]["wrong_solutions"]):
            jobs.append((row, k, code))
    # Start the programs expected to run into the time limit first: they take longest.
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][1] < 0 or
                   jobs[i][0]["metadata"]["wrong_verdicts"][jobs[i][1]] != "time_limit")
    judged = pool.map(lambda i: judge(jobs[i][0], jobs[i][2]), order)
    done = dict(zip(order, judged, strict=True))
    results = [done[i] for i in range(len(jobs))]
    problems: list[str] = []
    passes_public = 0
    for (row, k, _), result in zip(jobs, results, strict=True):
        if k < 0:
            if result.verdict != "passed":
                problems.append(f"{row['id']}: reference gets {result.verdict} on test "
                                f"{result.failed_at}: {result.error[-300:]}")
            continue
        tag = row["metadata"]["wrong_verdicts"][k]
        if result.verdict == "passed":
            problems.append(f"{row['id']}: wrong solution {k} passes every test")
        elif result.verdict != tag:
            problems.append(f"{row['id']}: wrong solution {k} gets {result.verdict} on test "
                            f"{result.failed_at}, tagged {tag}: {result.error[-300:]}")
        passes_public += result.public_passed and result.verdict != "passed"
    if rows and passes_public == 0:
        problems.append("no wrong solution passes the public tests and fails a private one")
    tags = {v for row in rows for v in row["metadata"]["wrong_verdicts"]}
    missing = set(WRONG_VERDICTS) - tags
    if rows and missing:
        problems.append(f"no wrong solution is tagged {sorted(missing)}")
    return problems


def check_set(specs: list[Spec]) -> None:
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise BuildError("problem ids are not unique")
    for kind in ("stdin", "functional", "assert"):
        if sum(s.kind == kind for s in specs) != 10:
            raise BuildError(f"expected 10 {kind} problems")


def build(specs: list[Spec], workers: int) -> list[dict[str, Any]]:
    check_set(specs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(build_row, specs))
        problems = verify(rows, pool)
    if problems:
        raise BuildError("verification failed:\n  " + "\n  ".join(problems))
    return rows


def render(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the JSONL (default {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true",
                        help="build and verify, then exit 1 if --out differs instead of writing")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2),
                        help="subprocesses run at once")
    args = parser.parse_args(argv)
    try:
        rows = build(SPECS, args.workers)
    except BuildError as e:
        print(f"build_demo: {e}\nnothing written", file=sys.stderr)
        return 1
    data = render(rows)
    if args.check:
        current = args.out.read_bytes() if args.out.exists() else b""
        if current != data:
            print(f"build_demo: {args.out} is out of date; re-run without --check",
                  file=sys.stderr)
            return 1
        print(f"build_demo: {args.out} is up to date ({len(rows)} problems)", file=sys.stderr)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, args.out)
    print(f"build_demo: wrote {len(rows)} problems to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
