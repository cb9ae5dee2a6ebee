"""Held-out Pass@1 of a sampling agent: n independent first attempts per problem, the unbiased
estimator, and a 95% confidence interval — the number that says whether training helped.

Each problem gets ``samples`` responses to its first-attempt prompt; the code is extracted as the
environment does and judged with the real executor on the chosen tests. Per problem the unbiased
pass@1 estimator is c / n; Pass@1 is their mean over problems. The interval is for *this* set of
problems (the problems are fixed, the samples are random): each problem's estimate c / n has
variance p(1 - p) / n, estimated with p̃ = (c + 1) / (n + 2) (Laplace's rule, so a problem solved
0 or n times still counts as uncertain, as in Wilson's interval, instead of adding nothing), the
mean's variance is their sum over P², and the interval is ±1.96 standard errors, clipped to [0, 1].
Two evaluations on the same problems with independent samples differ with variance the sum of
theirs (`difference`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mars2_env.prompts import parses_as_python

Z95 = 1.959963984540054


@dataclass
class HeldoutEval:
    """One evaluation: per-problem counts and the summary numbers derived from them."""

    samples: int
    solved: dict[str, int]
    pass_at_1: float = 0.0
    stderr: float = 0.0
    ci95: tuple[float, float] = (0.0, 0.0)
    mean_length: float = 0.0          # completion tokens per response
    code_block_rate: float = 0.0      # responses holding a closed ```python block
    parses_rate: float = 0.0          # responses whose extracted code compiles
    verdicts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pass_at_1, self.stderr = pass_at_1_and_stderr(self.solved, self.samples)
        self.ci95 = (max(0.0, self.pass_at_1 - Z95 * self.stderr),
                     min(1.0, self.pass_at_1 + Z95 * self.stderr))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d


def pass_at_1_and_stderr(solved: dict[str, int], samples: int) -> tuple[float, float]:
    """(mean over problems of c/n, its standard error for this problem set); see the module doc."""
    if samples < 2:
        raise ValueError(f"need at least 2 samples per problem for an interval, got {samples}")
    if not solved:
        raise ValueError("no problems were evaluated")
    for pid, c in solved.items():
        if not 0 <= c <= samples:
            raise ValueError(f"{pid}: {c} solved of {samples} samples")
    rates = [c / samples for c in solved.values()]
    smoothed = [(c + 1) / (samples + 2) for c in solved.values()]
    var = sum(q * (1 - q) / samples for q in smoothed) / len(rates) ** 2
    return sum(rates) / len(rates), math.sqrt(var)


def difference(after: HeldoutEval, before: HeldoutEval) -> dict[str, float]:
    """after − before on the same problems (independent samples), with its 95% interval."""
    if set(after.solved) != set(before.solved):
        raise ValueError("the two evaluations cover different problems")
    d = after.pass_at_1 - before.pass_at_1
    se = math.sqrt(after.stderr ** 2 + before.stderr ** 2)
    return {"delta": d, "stderr": se, "ci95": [d - Z95 * se, d + Z95 * se],
            "ci_includes_zero": d - Z95 * se <= 0 <= d + Z95 * se}


def evaluate_pass_at_1(agent: Any, problems: Sequence[Any], samples: int, executor: Any,
                       templates: Any = None, tests: str = "all",
                       problems_per_call: int = 2) -> HeldoutEval:
    """Sample ``samples`` first attempts per problem from ``agent`` (``generate_messages``), judge
    them on ``tests`` and return the evaluation. Problems of similar prompt length share a
    generate call (less padding)."""
    from mars2_env.prompts import (
        DEFAULT_TEMPLATES,
        extract_code,
        has_closed_code_block,
        render_messages,
    )

    templates = templates or DEFAULT_TEMPLATES
    solved = {p.id: 0 for p in problems}
    verdicts: Counter[str] = Counter()
    lengths: list[int] = []
    blocks = parses = 0
    order = sorted(problems, key=lambda p: (len(str(render_messages(p, templates=templates))), p.id))
    for start in range(0, len(order), max(1, problems_per_call)):
        group = order[start:start + max(1, problems_per_call)]
        gens = agent.generate_messages([render_messages(p, templates=templates)
                                        for p in group for _ in range(samples)])
        jobs = [(group[i // samples], extract_code(g.text)) for i, g in enumerate(gens)]
        for (p, code), g, r in zip(jobs, gens, executor.run_many(jobs, tests=tests), strict=True):
            verdicts[r.verdict.value] += 1
            solved[p.id] += r.verdict.value == "passed"
            lengths.append(len(g.completion_token_ids or ()))
            blocks += has_closed_code_block(g.text)
            parses += parses_as_python(code)
    total = max(len(lengths), 1)
    return HeldoutEval(samples=samples, solved=solved, mean_length=sum(lengths) / total,
                       code_block_rate=blocks / total, parses_rate=parses / total,
                       verdicts=dict(sorted(verdicts.items())))
