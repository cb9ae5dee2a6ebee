"""Sandboxed program execution and LiveCodeBench-compatible grading.

``Executor`` runs untrusted programs against a problem's tests, each test in a fresh process
forked from a warm worker server; ``format_feedback`` turns a result into refinement text.
"""

from mars2_env.execution.executor import Executor, Limits
from mars2_env.execution.feedback import format_feedback
from mars2_env.execution.results import ExecutionResult, TestResult, Verdict

__all__ = ["Executor", "ExecutionResult", "Limits", "TestResult", "Verdict", "format_feedback"]
