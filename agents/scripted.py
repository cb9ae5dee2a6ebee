"""Scripted agents for benchmarks and tests: `ReplayAgent` (programs from a file) and
`RandomAgent` (seeded random short programs, mostly wrong).

Both are deterministic: the same calls in the same order give the same responses.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agents.base import BaseAgent, Generation, check_seeds, derive_seed, resolve_seed
from mars2_env.prompts import messages_from_observation

WILDCARD = "*"


def _problem_key(obs: dict, by_statement: dict[str, str]) -> str | None:
    pid = obs.get("problem_id")
    if isinstance(pid, str) and pid:
        return pid
    statement = obs.get("statement")
    if isinstance(statement, str):
        return by_statement.get(statement.strip())
    return None


class ReplayAgent(BaseAgent):
    """Answers with programs read from a file, cycling through each problem's list in order.

    ``path`` is a JSONL file of ``{"problem_id": ..., "response": ...}`` rows (``"code"`` is
    accepted for ``"response"``; ``"*"`` as problem id matches every problem), or a ``.py``
    file whose text is the answer to every problem. The i-th request for a problem gets that
    problem's response ``i mod n``. The problem is taken from ``obs["problem_id"]`` when the
    observation has it, else by matching ``obs["statement"]`` against ``problems`` (a list of
    `Problem`s, given when observations carry no id).
    """

    _static_attrs = ("responses", "_by_statement")

    def __init__(self, path: str | Path, name: str | None = None, *,
                 problems: Iterable[Any] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"replay file not found: {self.path}")
        self.name = name or f"replay:{self.path.name}"
        self.responses: dict[str, list[str]] = defaultdict(list)
        if self.path.suffix == ".py":
            self.responses[WILDCARD].append(self.path.read_text())
        else:
            self._read_jsonl()
        self._by_statement = {p.statement.strip(): p.id for p in (problems or [])}
        self._counters: dict[str, int] = defaultdict(int)

    def _read_jsonl(self) -> None:
        with self.path.open() as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{self.path}: line {line_no}: not JSON: {exc}") from exc
                if not isinstance(row, dict):
                    raise ValueError(f"{self.path}: line {line_no}: expected an object")
                pid = row.get("problem_id", WILDCARD)
                response = row.get("response", row.get("code"))
                if not isinstance(pid, str) or not pid:
                    raise ValueError(f"{self.path}: line {line_no}: field 'problem_id' must be "
                                     f"a non-empty string")
                if not isinstance(response, str):
                    raise ValueError(f"{self.path}: line {line_no}: field 'response' (or "
                                     f"'code') must be a string")
                self.responses[pid].append(response)
        if not self.responses:
            raise ValueError(f"{self.path}: no rows; expected JSONL of "
                             f'{{"problem_id": ..., "response": ...}}')

    def respond(self, obs: dict) -> str:
        key = _problem_key(obs, self._by_statement)
        pool_key = key if key in self.responses else WILDCARD
        if pool_key not in self.responses:
            raise KeyError(
                f"{self.path} has no response for problem {key!r}" if key else
                "cannot tell which problem this observation is for (no 'problem_id' key and "
                "its statement matches none of the problems given to ReplayAgent(problems=...))"
                "; add rows for it or a row with \"problem_id\": \"*\"")
        pool = self.responses[pool_key]
        counter = key if key is not None else pool_key  # each problem cycles on its own
        i = self._counters[counter]
        self._counters[counter] += 1
        return pool[i % len(pool)]

    def generate(self, observations: list[dict],
                 seeds: Sequence[int] | None = None) -> list[Generation]:
        """Responses in order; ``seeds`` are accepted and unused (replay draws nothing)."""
        if isinstance(observations, dict):
            raise TypeError("generate takes a list of observations; use act(obs) for one")
        check_seeds(seeds, len(observations))
        return [Generation(text=self.respond(o), finish_reason="stop") for o in observations]

    def generate_messages(self, batch, seeds=None):  # pragma: no cover - needs observations
        raise TypeError("ReplayAgent answers observations (it needs the problem), not messages")


_ENTRY_PATTERNS = (
    re.compile(r"method `(\w+)` of `class Solution`"),
    re.compile(r"function named `(\w+)`"),
)


def _entry_point(obs: dict) -> tuple[str | None, bool]:
    """(entry point name, is a Solution method) guessed from starter code and prompt text."""
    starter = obs.get("starter_code") or ""
    m = re.search(r"^\s*def\s+(\w+)\s*\(", starter, re.MULTILINE)
    if m:
        return m.group(1), "class Solution" in starter
    try:
        text = "\n".join(msg["content"] for msg in messages_from_observation(obs))
    except ValueError:
        text = ""
    for i, pattern in enumerate(_ENTRY_PATTERNS):
        m = pattern.search(text)
        if m:
            return m.group(1), i == 0
    return None, False


class RandomAgent(BaseAgent):
    """Seeded random short programs (mostly wrong): constant answers, echoes, sums, crashes and
    the odd syntax error, shaped for the problem's kind (stdin program, function or method)."""

    _static_attrs = ()

    def __init__(self, name: str = "random", *, seed: int | None = None,
                 fence_probability: float = 0.7) -> None:
        self.name = name
        self.seed = resolve_seed(seed)
        self.fence_probability = float(fence_probability)
        self.rng = random.Random(self.seed)

    def _stdin_program(self) -> str:
        r = self.rng
        choices = [
            f"print({r.randint(-3, 10)})",
            "import sys\ndata = sys.stdin.read().split()\nprint(sum(int(x) for x in data if "
            "x.lstrip('-').isdigit()))",
            "import sys\nprint(sys.stdin.read().strip())",
            "import sys\nlines = sys.stdin.read().splitlines()\nprint(len(lines))",
            "import sys\ndata = sys.stdin.read().split()\nprint(max(map(int, data)))",
            "print('YES')" if r.random() < 0.5 else "print('NO')",
            "raise ValueError('random agent')",
            "print(input()",  # syntax error
        ]
        return r.choice(choices)

    def _function_body(self) -> str:
        r = self.rng
        return r.choice([
            f"return {r.randint(-3, 10)}",
            "return args[0] if args else None",
            "return sum(a for a in args if isinstance(a, int))",
            "return [] if not args else args[-1]",
            "return True" if r.random() < 0.5 else "return False",
            "raise NotImplementedError",
        ])

    def program(self, obs: dict) -> str:
        entry, method = _entry_point(obs)
        if entry is None:
            return self._stdin_program()
        body = self._function_body()
        if method:
            return f"class Solution:\n    def {entry}(self, *args):\n        {body}\n"
        return f"def {entry}(*args):\n    {body}\n"

    def respond(self, obs: dict) -> str:
        code = self.program(obs)
        if self.rng.random() < self.fence_probability:
            return f"Here is my attempt.\n\n```python\n{code}\n```\n"
        return code

    def generate(self, observations: list[dict],
                 seeds: Sequence[int] | None = None) -> list[Generation]:
        """Responses in order; with ``seeds`` each is drawn from its own generator."""
        if isinstance(observations, dict):
            raise TypeError("generate takes a list of observations; use act(obs) for one")
        seeds = check_seeds(seeds, len(observations))
        if seeds is None:
            return [Generation(text=self.respond(o), finish_reason="stop") for o in observations]
        out = []
        own = self.rng
        try:
            for o, s in zip(observations, seeds, strict=True):
                self.rng = random.Random(derive_seed(self.seed, s))
                out.append(Generation(text=self.respond(o), finish_reason="stop"))
        finally:
            self.rng = own
        return out

    def generate_messages(self, batch, seeds=None):  # pragma: no cover - needs observations
        raise TypeError("RandomAgent answers observations, not messages")
