"""Verdicts and result records of the executor (plain data, JSON round-trippable)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(str, enum.Enum):
    """Outcome of one test, or of a whole program (the first failing test's verdict)."""

    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    OUTPUT_LIMIT = "output_limit"

    def __str__(self) -> str:  # "passed", not "Verdict.PASSED"
        return self.value


@dataclass
class TestResult:
    """One executed test: its verdict, the (truncated) input, expected and actual output, error text."""

    __test__ = False  # not a pytest test class

    verdict: Verdict
    input: str = ""
    expected: str = ""
    actual: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"verdict": self.verdict.value, "input": self.input, "expected": self.expected,
                "actual": self.actual, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestResult:
        return cls(Verdict(d["verdict"]), d.get("input", ""), d.get("expected", ""),
                   d.get("actual", ""), d.get("error", ""))


@dataclass
class ExecutionResult:
    """A program judged on a list of tests.

    ``passed`` counts passing tests out of ``total`` selected tests; ``reward`` is
    ``passed / total`` (or 0/1 in binary mode). ``tests`` holds the tests that ran, in order:
    with ``stop_on_first_failure`` it ends at the first failure and the rest count as not passed.
    """

    verdict: Verdict
    passed: int
    total: int
    reward: float
    tests: list[TestResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The small dict search trees store per node."""
        return {"verdict": self.verdict.value, "passed": self.passed, "total": self.total,
                "reward": self.reward}

    def to_dict(self) -> dict[str, Any]:
        d = self.summary()
        d["tests"] = [t.to_dict() for t in self.tests]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutionResult:
        return cls(Verdict(d["verdict"]), int(d["passed"]), int(d["total"]), float(d["reward"]),
                   [TestResult.from_dict(t) for t in d.get("tests", [])])
