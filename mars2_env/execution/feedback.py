"""Deterministic text summary of an `ExecutionResult`, for refinement prompts.

Holds no timings, paths or pids, so seeded runs produce the same observation text.
"""

from __future__ import annotations

from mars2_env.execution.results import ExecutionResult, Verdict

_TRUNC = "...({n} characters cut)..."

def clip(text: str, max_chars: int) -> str:
    """Keep the head and the tail of ``text`` within about ``max_chars`` characters."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    marker = _TRUNC.format(n=cut)
    head = max_chars // 2
    return text[:head] + marker + text[len(text) - (max_chars - head):]


def tail_lines(text: str, max_lines: int) -> str:
    """The last ``max_lines`` lines (tracebacks end with the useful part)."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= max_lines:
        return "\n".join(lines)
    return "\n".join([f"...({len(lines) - max_lines} lines cut)"] + lines[-max_lines:])


def format_feedback(result: ExecutionResult, max_chars: int = 400, max_failures: int = 2,
                    max_error_lines: int = 8) -> str:
    """Verdict and passed/total, then for the first ``max_failures`` failing tests their input,
    expected and actual output (each clipped to ``max_chars``) and the traceback tail."""
    blocks = [f"Verdict: {result.verdict.value} ({result.passed}/{result.total} tests passed)"]
    failures = [(i, t) for i, t in enumerate(result.tests) if t.verdict != Verdict.PASSED]
    for i, t in failures[:max(0, max_failures)]:
        if t.verdict == Verdict.COMPILE_ERROR:
            lines = ["The program does not compile:" if t.error else "The program is empty."]
        else:
            lines = [f"Test {i + 1}: {t.verdict.value}", "Input:", _show(t.input, max_chars)]
            if t.expected or t.verdict == Verdict.WRONG_ANSWER:
                lines += ["Expected output:", _show(t.expected, max_chars)]
            if t.actual or t.verdict in (Verdict.WRONG_ANSWER, Verdict.OUTPUT_LIMIT):
                lines += ["Actual output:", _show(t.actual, max_chars)]
            if t.error:
                lines.append("Error:")
        if t.error:
            lines.append(clip(tail_lines(t.error, max_error_lines), max_chars))
        blocks.append("\n".join(lines))
    if len(failures) > max_failures:
        blocks.append(f"({len(failures) - max_failures} more failing tests not shown)")
    return "\n\n".join(blocks)


def _show(text: str, max_chars: int) -> str:
    text = clip(text, max_chars).rstrip("\n")
    return text if text else "(empty)"
