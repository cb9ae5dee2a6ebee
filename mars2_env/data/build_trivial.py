"""Build the bundled set ``builtin:trivial`` (``mars2_env/data/trivial.jsonl``).

Trivially easy problems — print a fixed string, echo the input, add two numbers — sized for the
embedded SmolLM2-135M, which almost never solves the ``builtin:demo`` problems. Their measured
base solve rates (``measure_trivial.py``, recorded in ``trivial_rates.json`` and the README of
this folder) let the demo and small learning runs pick problems the model solves sometimes,
but not always.

Every problem is written below with its expected outputs typed by hand; the builder checks with
the project's real executor that the reference passes every test and the wrong solution fails
at least one, then writes the file (deterministic: same input, byte-identical output).

    python mars2_env/data/build_trivial.py            # (re)write trivial.jsonl
    python mars2_env/data/build_trivial.py --check    # exit 1 if trivial.jsonl is out of date
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "trivial.jsonl"
DEMO_OUT = HERE / "trivial_demo.jsonl"
RATES = HERE / "trivial_rates.json"
SOURCE = "mars2-trivial"


@dataclass
class P:
    """One authored problem. ``tests`` are (input, output) pairs; the first ``public`` are public.

    stdin: input is the text piped in, output the expected stdout. functional: input is a tuple
    of arguments, output the return value. assert: input is a Python expression, output its
    value (the row's test becomes ``assert EXPR == VALUE``).
    """

    kind: str
    slug: str
    title: str
    statement: str
    reference: str
    wrong: str
    tests: list[tuple[Any, Any]]
    public: int = 2
    entry_point: str | None = None
    signature: str = ""
    returns: str = ""
    tags: list[str] = field(default_factory=list)


def s(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


NO_INPUT = "The program reads no input."

PROBLEMS: list[P] = [
    # ---- print a fixed text ------------------------------------------------------------------
    P("stdin", "hello-world", "Hello, World!",
      f"Print the text Hello, World! exactly.\n\n{NO_INPUT}",
      'print("Hello, World!")\n', 'print("Hello World")\n', [("", "Hello, World!\n")] * 2,
      public=1, tags=["print"]),
    P("stdin", "print-hello", "Print hello",
      f"Print the word hello in lower case.\n\n{NO_INPUT}",
      'print("hello")\n', 'print("Hello")\n', [("", "hello\n")] * 2, public=1, tags=["print"]),
    P("stdin", "print-42", "Print 42",
      f"Print the number 42.\n\n{NO_INPUT}",
      "print(42)\n", "print(24)\n", [("", "42\n")] * 2, public=1, tags=["print"]),
    P("stdin", "print-yes", "Print YES",
      f"Print the word YES in capital letters.\n\n{NO_INPUT}",
      'print("YES")\n', 'print("yes")\n', [("", "YES\n")] * 2, public=1, tags=["print"]),
    P("stdin", "one-to-five", "Count to five",
      f"Print the numbers 1, 2, 3, 4 and 5, each on its own line.\n\n{NO_INPUT}",
      "for i in range(1, 6):\n    print(i)\n", "for i in range(5):\n    print(i)\n",
      [("", "1\n2\n3\n4\n5\n")] * 2, public=1, tags=["print"]),
    P("stdin", "two-lines", "Two lines",
      f"Print Hello on the first line and World on the second line.\n\n{NO_INPUT}",
      'print("Hello")\nprint("World")\n', 'print("Hello World")\n',
      [("", "Hello\nWorld\n")] * 2, public=1, tags=["print"]),
    P("stdin", "ten-stars", "Ten stars",
      f"Print a line of exactly ten asterisks: **********\n\n{NO_INPUT}",
      'print("*" * 10)\n', 'print("*" * 9)\n', [("", "**********\n")] * 2, public=1,
      tags=["print"]),
    P("stdin", "two-plus-three", "Two plus three",
      f"Print the value of 2 + 3.\n\n{NO_INPUT}",
      "print(2 + 3)\n", 'print("2 + 3")\n', [("", "5\n")] * 2, public=1, tags=["print"]),
    # ---- echo and transform the input --------------------------------------------------------
    P("stdin", "echo-line", "Echo",
      "Read one line of text and print it unchanged.",
      "print(input())\n", "print(input()[:-1])\n",
      [("hello world\n", "hello world\n"), ("abc\n", "abc\n"), ("Python 3\n", "Python 3\n"),
       ("x\n", "x\n")], tags=["echo"]),
    P("stdin", "greet-name", "Greet",
      "Read a name and print Hello, followed by the name and an exclamation mark, "
      "as in Hello, Alice!",
      'name = input()\nprint(f"Hello, {name}!")\n', 'name = input()\nprint("Hello", name)\n',
      [("Alice\n", "Hello, Alice!\n"), ("Bob\n", "Hello, Bob!\n"), ("Zoe\n", "Hello, Zoe!\n"),
       ("Max\n", "Hello, Max!\n")], tags=["echo"]),
    P("stdin", "upper-case", "Upper case",
      "Read a word and print it in upper case.",
      "print(input().upper())\n", "print(input().capitalize())\n",
      [("hello\n", "HELLO\n"), ("abc\n", "ABC\n"), ("python\n", "PYTHON\n"),
       ("mIxEd\n", "MIXED\n")], tags=["echo"]),
    P("stdin", "lower-case", "Lower case",
      "Read a word and print it in lower case.",
      "print(input().lower())\n", "print(input())\n",
      [("HELLO\n", "hello\n"), ("ABC\n", "abc\n"), ("PyThOn\n", "python\n"),
       ("Z\n", "z\n")], tags=["echo"]),
    P("stdin", "reverse-string", "Reverse",
      "Read a word and print it reversed.",
      "print(input()[::-1])\n", "print(input())\n",
      [("hello\n", "olleh\n"), ("abc\n", "cba\n"), ("racecar\n", "racecar\n"),
       ("ab\n", "ba\n")], tags=["echo"]),
    P("stdin", "string-length", "Length",
      "Read a word and print the number of characters in it.",
      "print(len(input()))\n", "print(len(input()) - 1)\n",
      [("hello\n", "5\n"), ("abc\n", "3\n"), ("a\n", "1\n"), ("abcdefghij\n", "10\n")],
      tags=["echo"]),
    P("stdin", "echo-twice", "Twice",
      "Read a word and print it twice, each time on its own line.",
      "w = input()\nprint(w)\nprint(w)\n", "w = input()\nprint(w + w)\n",
      [("hi\n", "hi\nhi\n"), ("abc\n", "abc\nabc\n"), ("x\n", "x\nx\n"),
       ("code\n", "code\ncode\n")], tags=["echo"]),
    P("stdin", "echo-integer", "Echo a number",
      "Read an integer n and print it.",
      "print(int(input()))\n", "print(int(input()) + 1)\n",
      [("7\n", "7\n"), ("-3\n", "-3\n"), ("0\n", "0\n"), ("123456\n", "123456\n")],
      tags=["echo"]),
    P("stdin", "first-char", "First character",
      "Read a word and print its first character.",
      "print(input()[0])\n", "print(input()[-1])\n",
      [("hello\n", "h\n"), ("abc\n", "a\n"), ("zebra\n", "z\n"), ("Q\n", "Q\n")],
      tags=["echo"]),
    # ---- arithmetic --------------------------------------------------------------------------
    P("stdin", "a-plus-b", "A + B",
      "Read two integers a and b, given on one line separated by a space, and print a + b.",
      "a, b = map(int, input().split())\nprint(a + b)\n",
      "a, b = input().split()\nprint(a + b)\n",
      [("2 3\n", "5\n"), ("10 -4\n", "6\n"), ("0 0\n", "0\n"), ("100 250\n", "350\n")],
      tags=["arithmetic"]),
    P("stdin", "a-plus-b-lines", "A + B on two lines",
      "Read an integer a from the first line and an integer b from the second line, and "
      "print a + b.",
      "a = int(input())\nb = int(input())\nprint(a + b)\n",
      "a = input()\nb = input()\nprint(a + b)\n",
      [("2\n3\n", "5\n"), ("10\n-4\n", "6\n"), ("0\n0\n", "0\n"), ("7\n8\n", "15\n")],
      tags=["arithmetic"]),
    P("stdin", "double", "Double",
      "Read an integer n and print 2 * n.",
      "print(2 * int(input()))\n", "print(int(input()) + 2)\n",
      [("4\n", "8\n"), ("7\n", "14\n"), ("0\n", "0\n"), ("-5\n", "-10\n")],
      tags=["arithmetic"]),
    P("stdin", "increment", "Plus one",
      "Read an integer n and print n + 1.",
      "print(int(input()) + 1)\n", "print(int(input()) - 1)\n",
      [("4\n", "5\n"), ("99\n", "100\n"), ("-1\n", "0\n"), ("0\n", "1\n")],
      tags=["arithmetic"]),
    P("stdin", "square", "Square",
      "Read an integer n and print n * n.",
      "n = int(input())\nprint(n * n)\n", "n = int(input())\nprint(n * 2)\n",
      [("3\n", "9\n"), ("5\n", "25\n"), ("0\n", "0\n"), ("-4\n", "16\n")],
      tags=["arithmetic"]),
    P("stdin", "a-times-b", "A times B",
      "Read two integers a and b, given on one line separated by a space, and print a * b.",
      "a, b = map(int, input().split())\nprint(a * b)\n",
      "a, b = map(int, input().split())\nprint(a + b)\n",
      [("2 3\n", "6\n"), ("4 5\n", "20\n"), ("0 9\n", "0\n"), ("-3 7\n", "-21\n")],
      tags=["arithmetic"]),
    P("stdin", "a-minus-b", "A minus B",
      "Read two integers a and b, given on one line separated by a space, and print a - b.",
      "a, b = map(int, input().split())\nprint(a - b)\n",
      "a, b = map(int, input().split())\nprint(b - a)\n",
      [("5 3\n", "2\n"), ("10 4\n", "6\n"), ("3 5\n", "-2\n"), ("0 0\n", "0\n")],
      tags=["arithmetic"]),
    P("stdin", "max-of-two", "Larger of two",
      "Read two integers a and b, given on one line separated by a space, and print the "
      "larger one.",
      "a, b = map(int, input().split())\nprint(max(a, b))\n",
      "a, b = map(int, input().split())\nprint(a)\n",
      [("2 3\n", "3\n"), ("9 4\n", "9\n"), ("-1 -5\n", "-1\n"), ("7 7\n", "7\n")],
      tags=["arithmetic"]),
    P("stdin", "min-of-two", "Smaller of two",
      "Read two integers a and b, given on one line separated by a space, and print the "
      "smaller one.",
      "a, b = map(int, input().split())\nprint(min(a, b))\n",
      "a, b = map(int, input().split())\nprint(a)\n",
      [("2 3\n", "2\n"), ("9 4\n", "4\n"), ("-1 -5\n", "-5\n"), ("7 7\n", "7\n")],
      tags=["arithmetic"]),
    P("stdin", "absolute-value", "Absolute value",
      "Read an integer n and print its absolute value.",
      "print(abs(int(input())))\n", "print(int(input()))\n",
      [("-5\n", "5\n"), ("3\n", "3\n"), ("0\n", "0\n"), ("-12\n", "12\n")],
      tags=["arithmetic"]),
    P("stdin", "even-odd", "Even or odd",
      "Read an integer n and print even if n is even, or odd if n is odd.",
      'n = int(input())\nprint("even" if n % 2 == 0 else "odd")\n',
      'n = int(input())\nprint("odd" if n % 2 == 0 else "even")\n',
      [("4\n", "even\n"), ("7\n", "odd\n"), ("0\n", "even\n"), ("13\n", "odd\n")],
      tags=["arithmetic"]),
    P("stdin", "sum-of-list", "Sum of numbers",
      "Read a line of integers separated by spaces and print their sum.",
      "print(sum(map(int, input().split())))\n",
      "print(len(input().split()))\n",
      [("1 2 3\n", "6\n"), ("10 20\n", "30\n"), ("5\n", "5\n"), ("-1 1 4 4\n", "8\n")],
      tags=["arithmetic"]),
    P("stdin", "sum-to-n", "Sum from 1 to n",
      "Read an integer n (n >= 1) and print 1 + 2 + ... + n.",
      "n = int(input())\nprint(n * (n + 1) // 2)\n",
      "n = int(input())\nprint(sum(range(n)))\n",
      [("3\n", "6\n"), ("10\n", "55\n"), ("1\n", "1\n"), ("100\n", "5050\n")],
      tags=["arithmetic"]),
    P("stdin", "factorial", "Factorial",
      "Read an integer n (0 <= n <= 20) and print n! (the product 1 * 2 * ... * n; 0! is 1).",
      "import math\nprint(math.factorial(int(input())))\n",
      "n = int(input())\nr = 1\nfor i in range(1, n):\n    r *= i\nprint(r)\n",
      [("3\n", "6\n"), ("5\n", "120\n"), ("0\n", "1\n"), ("10\n", "3628800\n")],
      tags=["arithmetic"]),
    P("stdin", "count-words", "Count words",
      "Read a line of words separated by single spaces and print how many words it has.",
      "print(len(input().split()))\n", "print(input().count(' '))\n",
      [("hello world\n", "2\n"), ("a b c d\n", "4\n"), ("one\n", "1\n"),
       ("the quick brown fox\n", "4\n")], tags=["echo"]),
    P("stdin", "palindrome", "Palindrome",
      "Read a word and print yes if it reads the same backwards, otherwise print no.",
      'w = input()\nprint("yes" if w == w[::-1] else "no")\n',
      'w = input()\nprint("yes")\n',
      [("racecar\n", "yes\n"), ("hello\n", "no\n"), ("a\n", "yes\n"), ("ab\n", "no\n")],
      tags=["echo"]),
    P("stdin", "fizzbuzz-one", "FizzBuzz for one number",
      "Read an integer n and print FizzBuzz if n is divisible by 15, Fizz if it is divisible "
      "by 3, Buzz if it is divisible by 5, and n itself otherwise.",
      s("""
        n = int(input())
        if n % 15 == 0:
            print("FizzBuzz")
        elif n % 3 == 0:
            print("Fizz")
        elif n % 5 == 0:
            print("Buzz")
        else:
            print(n)
      """),
      s("""
        n = int(input())
        if n % 3 == 0:
            print("Fizz")
        elif n % 5 == 0:
            print("Buzz")
        else:
            print(n)
      """),
      [("3\n", "Fizz\n"), ("10\n", "Buzz\n"), ("15\n", "FizzBuzz\n"), ("7\n", "7\n"),
       ("30\n", "FizzBuzz\n")], tags=["arithmetic"]),
    # ---- functions called with JSON arguments (LeetCode style, top-level function) -----------
    P("functional", "add", "Add two numbers", "Return the sum of a and b.",
      "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n",
      [((2, 3), 5), ((10, -4), 6), ((0, 0), 0), ((100, 1), 101)],
      entry_point="add", signature="a: int, b: int", returns="int", tags=["function"]),
    P("functional", "square-fn", "Square a number", "Return x * x.",
      "def square(x):\n    return x * x\n", "def square(x):\n    return x * 2\n",
      [((3,), 9), ((5,), 25), ((0,), 0), ((-4,), 16)],
      entry_point="square", signature="x: int", returns="int", tags=["function"]),
    P("functional", "is-even", "Is even", "Return True if n is even, otherwise False.",
      "def is_even(n):\n    return n % 2 == 0\n", "def is_even(n):\n    return n % 2 == 1\n",
      [((4,), True), ((7,), False), ((0,), True), ((-3,), False)],
      entry_point="is_even", signature="n: int", returns="bool", tags=["function"]),
    P("functional", "reverse-fn", "Reverse a string", "Return the string s reversed.",
      "def reverse_string(s):\n    return s[::-1]\n", "def reverse_string(s):\n    return s\n",
      [(("hello",), "olleh"), (("abc",), "cba"), (("",), ""), (("ab",), "ba")],
      entry_point="reverse_string", signature="s: str", returns="str", tags=["function"]),
    P("functional", "max-of-list", "Largest number", "Return the largest number in the "
      "non-empty list nums.",
      "def max_of_list(nums):\n    return max(nums)\n",
      "def max_of_list(nums):\n    return nums[0]\n",
      [(([1, 5, 3],), 5), (([7, 2],), 7), (([-3, -1, -2],), -1), (([4],), 4)],
      entry_point="max_of_list", signature="nums: list[int]", returns="int", tags=["function"]),
    P("functional", "greet-fn", "Greeting", "Return the string 'Hello, ' followed by name and "
      "'!', for example 'Hello, Alice!'.",
      "def greet(name):\n    return f'Hello, {name}!'\n",
      "def greet(name):\n    return 'Hello ' + name\n",
      [(("Alice",), "Hello, Alice!"), (("Bob",), "Hello, Bob!"), (("Zoe",), "Hello, Zoe!"),
       (("X",), "Hello, X!")],
      entry_point="greet", signature="name: str", returns="str", tags=["function"]),
    P("functional", "double-fn", "Double", "Return 2 * x.",
      "def double(x):\n    return 2 * x\n", "def double(x):\n    return x + 2\n",
      [((4,), 8), ((7,), 14), ((0,), 0), ((-5,), -10)],
      entry_point="double", signature="x: int", returns="int", tags=["function"]),
    P("functional", "length-fn", "String length", "Return the number of characters in s.",
      "def string_length(s):\n    return len(s)\n",
      "def string_length(s):\n    return len(s) - 1\n",
      [(("hello",), 5), (("abc",), 3), (("",), 0), (("a b",), 3)],
      entry_point="string_length", signature="s: str", returns="int", tags=["function"]),
    P("functional", "count-vowels", "Count vowels", "Return how many of the characters of the "
      "lower-case word s are vowels (a, e, i, o, u).",
      "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s)\n",
      "def count_vowels(s):\n    return sum(c in 'aeio' for c in s)\n",
      [(("hello",), 2), (("sky",), 0), (("queue",), 4), (("aeiou",), 5)],
      entry_point="count_vowels", signature="s: str", returns="int", tags=["function"]),
    # ---- functions checked by assert statements (HumanEval / MBPP style) ---------------------
    P("assert", "add-assert", "Add", "Write a function add(a, b) that returns a + b.",
      "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a * b\n",
      [("add(2, 3)", 5), ("add(-1, 1)", 0), ("add(2, 2)", 4), ("add(10, 20)", 30)],
      entry_point="add", tags=["function"]),
    P("assert", "multiply-assert", "Multiply",
      "Write a function multiply(a, b) that returns a * b.",
      "def multiply(a, b):\n    return a * b\n", "def multiply(a, b):\n    return a + b\n",
      [("multiply(2, 3)", 6), ("multiply(4, 5)", 20), ("multiply(0, 7)", 0),
       ("multiply(2, 2)", 4)], entry_point="multiply", tags=["function"]),
    P("assert", "is-positive", "Is positive",
      "Write a function is_positive(n) that returns True if n > 0, else False.",
      "def is_positive(n):\n    return n > 0\n", "def is_positive(n):\n    return n >= 0\n",
      [("is_positive(5)", True), ("is_positive(-2)", False), ("is_positive(0)", False),
       ("is_positive(1)", True)], entry_point="is_positive", tags=["function"]),
    P("assert", "first-element", "First element",
      "Write a function first_element(lst) that returns the first item of the list lst.",
      "def first_element(lst):\n    return lst[0]\n", "def first_element(lst):\n    return lst[-1]\n",
      [("first_element([1, 2, 3])", 1), ("first_element(['a', 'b'])", "a"),
       ("first_element([9])", 9), ("first_element([4, 5])", 4)],
      entry_point="first_element", tags=["function"]),
    P("assert", "to-upper", "To upper case",
      "Write a function to_upper(s) that returns s in upper case.",
      "def to_upper(s):\n    return s.upper()\n", "def to_upper(s):\n    return s.title()\n",
      [("to_upper('abc')", "ABC"), ("to_upper('Hello')", "HELLO"), ("to_upper('x y')", "X Y"),
       ("to_upper('')", "")], entry_point="to_upper", tags=["function"]),
    P("assert", "last-char", "Last character",
      "Write a function last_char(s) that returns the last character of the non-empty "
      "string s.",
      "def last_char(s):\n    return s[-1]\n", "def last_char(s):\n    return s[0]\n",
      [("last_char('hello')", "o"), ("last_char('ab')", "b"), ("last_char('z')", "z"),
       ("last_char('xyz')", "z")], entry_point="last_char", tags=["function"]),
    P("assert", "sum-list-assert", "Sum of a list",
      "Write a function sum_list(lst) that returns the sum of the numbers in the list lst.",
      "def sum_list(lst):\n    return sum(lst)\n", "def sum_list(lst):\n    return len(lst)\n",
      [("sum_list([1, 2, 3])", 6), ("sum_list([])", 0), ("sum_list([5])", 5),
       ("sum_list([-1, 1, 10])", 10)], entry_point="sum_list", tags=["function"]),
    P("assert", "concat", "Join two strings",
      "Write a function concat(a, b) that returns the string a followed by the string b.",
      "def concat(a, b):\n    return a + b\n", "def concat(a, b):\n    return b + a\n",
      [("concat('ab', 'cd')", "abcd"), ("concat('', 'x')", "x"), ("concat('x', 'y')", "xy"),
       ("concat('hello ', 'world')", "hello world")], entry_point="concat", tags=["function"]),
    P("assert", "is-palindrome", "Palindrome check",
      "Write a function is_palindrome(s) that returns True if the string s reads the same "
      "backwards, else False.",
      "def is_palindrome(s):\n    return s == s[::-1]\n",
      "def is_palindrome(s):\n    return s[0] == s[-1]\n",
      [("is_palindrome('racecar')", True), ("is_palindrome('hello')", False),
       ("is_palindrome('a')", True), ("is_palindrome('abca')", False)],
      entry_point="is_palindrome", tags=["function"]),
    # ---- more function problems (added after the first measurement: the model solves
    # function-style problems far more often than stdin programs) ---------------------------
    P("assert", "subtract-assert", "Subtract",
      "Write a function subtract(a, b) that returns a - b.",
      "def subtract(a, b):\n    return a - b\n", "def subtract(a, b):\n    return b - a\n",
      [("subtract(5, 3)", 2), ("subtract(10, 4)", 6), ("subtract(3, 5)", -2),
       ("subtract(0, 0)", 0)], entry_point="subtract", tags=["function"]),
    P("assert", "negate", "Negate", "Write a function negate(n) that returns -n.",
      "def negate(n):\n    return -n\n", "def negate(n):\n    return abs(n)\n",
      [("negate(5)", -5), ("negate(-3)", 3), ("negate(0)", 0), ("negate(12)", -12)],
      entry_point="negate", tags=["function"]),
    P("assert", "max-of-two-assert", "Larger of two",
      "Write a function max_of_two(a, b) that returns the larger of a and b.",
      "def max_of_two(a, b):\n    return max(a, b)\n", "def max_of_two(a, b):\n    return a\n",
      [("max_of_two(2, 3)", 3), ("max_of_two(9, 4)", 9), ("max_of_two(-1, -5)", -1),
       ("max_of_two(1, 8)", 8)], entry_point="max_of_two", tags=["function"]),
    P("assert", "is-zero", "Is zero",
      "Write a function is_zero(n) that returns True if n is 0, else False.",
      "def is_zero(n):\n    return n == 0\n", "def is_zero(n):\n    return n <= 0\n",
      [("is_zero(0)", True), ("is_zero(5)", False), ("is_zero(-1)", False),
       ("is_zero(0)", True)], entry_point="is_zero", tags=["function"]),
    P("assert", "repeat-string", "Repeat a string",
      "Write a function repeat_string(s, n) that returns the string s repeated n times.",
      "def repeat_string(s, n):\n    return s * n\n",
      "def repeat_string(s, n):\n    return s * (n - 1)\n",
      [("repeat_string('ab', 3)", "ababab"), ("repeat_string('x', 1)", "x"),
       ("repeat_string('hi', 0)", ""), ("repeat_string('z', 4)", "zzzz")],
      entry_point="repeat_string", tags=["function"]),
    P("assert", "count-items", "Count items",
      "Write a function count_items(lst) that returns the number of items in the list lst.",
      "def count_items(lst):\n    return len(lst)\n",
      "def count_items(lst):\n    return len(lst) - 1\n",
      [("count_items([1, 2, 3])", 3), ("count_items([])", 0), ("count_items(['a'])", 1),
       ("count_items([4, 4, 4, 4])", 4)], entry_point="count_items", tags=["function"]),
    P("assert", "triple", "Triple", "Write a function triple(x) that returns 3 * x.",
      "def triple(x):\n    return 3 * x\n", "def triple(x):\n    return x + 3\n",
      [("triple(2)", 6), ("triple(5)", 15), ("triple(0)", 0), ("triple(-1)", -3)],
      entry_point="triple", tags=["function"]),
    P("assert", "is-empty", "Is empty",
      "Write a function is_empty(s) that returns True if the string s is empty, else False.",
      "def is_empty(s):\n    return len(s) == 0\n", "def is_empty(s):\n    return len(s) < 2\n",
      [("is_empty('')", True), ("is_empty('a')", False), ("is_empty('hello')", False),
       ("is_empty('')", True)], entry_point="is_empty", tags=["function"]),
    P("functional", "absolute-fn", "Absolute value", "Return the absolute value of n.",
      "def absolute(n):\n    return abs(n)\n", "def absolute(n):\n    return n\n",
      [((-5,), 5), ((3,), 3), ((0,), 0), ((-12,), 12)],
      entry_point="absolute", signature="n: int", returns="int", tags=["function"]),
    P("functional", "is-odd", "Is odd", "Return True if n is odd, otherwise False.",
      "def is_odd(n):\n    return n % 2 == 1\n", "def is_odd(n):\n    return n % 2 == 0\n",
      [((3,), True), ((4,), False), ((0,), False), ((7,), True)],
      entry_point="is_odd", signature="n: int", returns="bool", tags=["function"]),
    P("functional", "last-element", "Last element",
      "Return the last item of the non-empty list items.",
      "def last_element(items):\n    return items[-1]\n",
      "def last_element(items):\n    return items[0]\n",
      [(([1, 2, 3],), 3), (([7],), 7), (([5, 9],), 9), (([0, 4, 8, 2],), 2)],
      entry_point="last_element", signature="items: list[int]", returns="int",
      tags=["function"]),
    P("functional", "min-of-list", "Smallest number",
      "Return the smallest number in the non-empty list nums.",
      "def min_of_list(nums):\n    return min(nums)\n",
      "def min_of_list(nums):\n    return nums[0]\n",
      [(([3, 1, 2],), 1), (([7, 9],), 7), (([-3, -1, -2],), -3), (([4],), 4)],
      entry_point="min_of_list", signature="nums: list[int]", returns="int",
      tags=["function"]),
]


#: `builtin:trivial_demo`, what `make demo` searches: problems the embedded model solves
#: sometimes but not always at the demo's setting (see trivial_rates.json and the README).
#: Chosen from the measured rates at `compact@T0.7` (8 samples): 1 to 4 of 8 solved, every kind.
DEMO_IDS: list[str] = [
    "trivial-001-hello-world", "trivial-006-two-lines",             # stdin, 2/8 and 1/8
    "trivial-048-to-upper", "trivial-049-last-char",                # assert, 2/8 and 1/8
    "trivial-052-is-palindrome", "trivial-057-repeat-string",       # assert, 3/8 and 2/8
    "trivial-040-greet-fn", "trivial-038-reverse-fn",               # functional, 3/8 and 4/8
]


def _examples(p: P, public: list[dict[str, str]]) -> str:
    if p.kind == "stdin":
        if all(t["input"] == "" for t in public):
            return "Expected output:\n" + public[0]["output"].rstrip("\n")
        return "\n\n".join(f"Example {i}\nInput:\n{t['input']}Output:\n{t['output'].rstrip()}"
                           for i, t in enumerate(public, 1))
    if p.kind == "functional":
        return "\n".join(f"Example: {p.entry_point}({', '.join(map(repr, args))}) returns "
                         f"{value!r}" for args, value in p.tests[:p.public])
    return "Examples (each of these must hold):\n" + "\n".join(t["input"] for t in public)


def _test_row(p: P, given: Any, expected: Any) -> dict[str, str]:
    if p.kind == "stdin":
        return {"input": given, "output": expected}
    if p.kind == "functional":
        return {"input": "\n".join(json.dumps(a) for a in given), "output": json.dumps(expected)}
    return {"input": f"assert {given} == {expected!r}", "output": ""}


def build_row(index: int, p: P, rates: dict[str, Any]) -> dict[str, Any]:
    """The canonical JSONL row of one authored problem (measured rates go into metadata)."""
    rows = [_test_row(p, given, expected) for given, expected in p.tests]
    public, private = rows[:p.public], rows[p.public:]
    if not private:
        raise ValueError(f"{p.slug}: needs at least one private test")
    pid = f"trivial-{index:03d}-{p.slug}"
    starter = ""
    if p.kind == "functional":
        starter = f"def {p.entry_point}({p.signature}) -> {p.returns}:\n    "
    metadata: dict[str, Any] = {"reference_solution": p.reference, "wrong_solutions": [p.wrong],
                                "tags": p.tags}
    if pid in rates:
        metadata["base_solve_rate"] = rates[pid]
    return {
        "id": pid, "title": p.title,
        "statement": p.statement.strip() + "\n\n" + _examples(p, public), "kind": p.kind,
        "entry_point": p.entry_point, "starter_code": starter,
        "public_tests": public, "private_tests": private,
        "time_limit_s": 2.0, "memory_limit_mb": 256, "source": SOURCE, "difficulty": "trivial",
        "metadata": metadata,
    }


def load_rates(path: Path = RATES) -> dict[str, Any]:
    """Per-problem measured rates ({problem id: {setting: rate, ...}}) if measured, else {}."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["per_problem"]


def verify(rows: list[dict[str, Any]]) -> list[str]:
    """Judge every reference (must pass all) and wrong solution (must fail one) for real."""
    sys.path.insert(0, str(HERE.parents[1]))
    from mars2_env.execution import Executor
    from mars2_env.problems import Problem

    problems = [Problem.from_dict(r) for r in rows]
    jobs = [(p, p.metadata["reference_solution"]) for p in problems]
    jobs += [(p, p.metadata["wrong_solutions"][0]) for p in problems]
    with Executor() as ex:
        results = ex.run_many(jobs, tests="all")
    errors = []
    n = len(problems)
    for i, p in enumerate(problems):
        ref, wrong = results[i], results[n + i]
        if ref.verdict != "passed":
            errors.append(f"{p.id}: reference gets {ref.verdict} ({ref.passed}/{ref.total})")
        if wrong.verdict == "passed":
            errors.append(f"{p.id}: wrong solution passes every test")
    return errors


def render(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--demo-out", type=Path, default=DEMO_OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --out differs from what the build gives, write nothing")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip judging the reference and wrong programs")
    args = parser.parse_args(argv)
    rows = [build_row(i, p, load_rates()) for i, p in enumerate(PROBLEMS, 1)]
    if len({r["id"] for r in rows}) != len(rows):
        print("build_trivial: problem ids are not unique", file=sys.stderr)
        return 1
    if not args.no_verify:
        errors = verify(rows)
        if errors:
            print("build_trivial: verification failed, nothing written:\n  " + "\n  ".join(errors),
                  file=sys.stderr)
            return 1
    by_id = {r["id"]: r for r in rows}
    missing = [i for i in DEMO_IDS if i not in by_id]
    if missing:
        print(f"build_trivial: DEMO_IDS not in the set: {missing}", file=sys.stderr)
        return 1
    outputs = {args.out: render(rows), args.demo_out: render([by_id[i] for i in DEMO_IDS])}
    if args.check:
        stale = [str(p) for p, data in outputs.items()
                 if not p.exists() or p.read_bytes() != data]
        if stale:
            print(f"build_trivial: out of date: {', '.join(stale)}; re-run without --check",
                  file=sys.stderr)
            return 1
        print(f"build_trivial: up to date ({len(rows)} problems, demo {len(DEMO_IDS)})",
              file=sys.stderr)
        return 0
    for path, data in outputs.items():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    print(f"build_trivial: wrote {len(rows)} problems to {args.out} and {len(DEMO_IDS)} to "
          f"{args.demo_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
