"""`SimulatedAgent`: a cheap, seeded policy for benchmarking search strategies without a model.

It answers from each problem's bundled solution pool (``metadata["reference_solution"]`` and
``metadata["wrong_solutions"]``): a generate step writes the reference with probability
``skill``, else a wrong program; a refine step keeps a correct parent correct and turns a wrong
parent correct with probability ``refine_skill``, else writes another wrong program. Everything
else — execution, rewards, tree, scheduler — is real, so search dynamics can be compared at a
fixed node budget in seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from agents.base import BaseAgent, Generation, check_seeds
from mars2_env.problems import Problem

__all__ = ["SimulatedAgent", "format_response", "from_spec", "parse_spec", "pool_programs"]

#: Written when a problem has no wrong solutions: a program that fails every kind of test
#: (no output for stdin, no entry point for functional, undefined names for assert).
FALLBACK_WRONG = "# simulated wrong attempt: does nothing\npass\n"
_GENERATE, _REFINE = 0, 1
_PASSED_FEEDBACK = "Verdict: passed"


def _norm(code: str) -> str:
    return code.strip().replace("\r\n", "\n")


class _Pool:
    """One problem's programs: the reference and the wrong variants (normalised for lookup)."""

    def __init__(self, problem: Problem) -> None:
        meta = problem.metadata or {}
        reference = meta.get("reference_solution")
        if not isinstance(reference, str) or not reference.strip():
            raise ValueError(f"problem {problem.id!r} has no metadata['reference_solution']; "
                             "SimulatedAgent needs one per problem (builtin:demo has them)")
        wrong = meta.get("wrong_solutions") or []
        if not isinstance(wrong, list) or not all(isinstance(w, str) for w in wrong):
            raise ValueError(f"problem {problem.id!r}: metadata['wrong_solutions'] must be a list "
                             "of program strings")
        self.reference = reference
        self.wrong = [w for w in wrong if w.strip()] or [FALLBACK_WRONG]
        self._wrong_keys = [_norm(w) for w in self.wrong]
        self._reference_key = _norm(reference)

    def status(self, code: str, feedback: str) -> tuple[bool, int | None]:
        """(is correct, index among the wrong programs or None) of a parent program.

        Programs from the pool are known; a foreign one (another agent's) counts as correct
        when its feedback says it passed the reward tests.
        """
        key = _norm(code)
        if key == self._reference_key:
            return True, None
        if key in self._wrong_keys:
            return False, self._wrong_keys.index(key)
        return feedback.lstrip().startswith(_PASSED_FEEDBACK), None


def format_response(program: str, refine: bool = False) -> str:
    """The response text for a program: a sentence, then the program in a fenced block."""
    verb = "Here is the revised program." if refine else "Here is my solution."
    return f"{verb}\n\n```python\n{program.rstrip()}\n```\n"


def pool_programs(problem: Problem) -> list[str]:
    """Every program a simulated agent may write for `problem` (reference first)."""
    pool = _Pool(problem)
    return [pool.reference, *pool.wrong]


class SimulatedAgent(BaseAgent):
    """Draws programs from each problem's pool of correct and wrong solutions.

    Args:
        name: agent name.
        skill: probability that a generate step (a new root child) writes the reference.
        refine_skill: probability that refining a wrong parent writes the reference.
        seed: int or `numpy.random.Generator`; with the same calls in the same order the
            responses repeat exactly. Every observation consumes exactly two draws.
        problems: the problems the agent may be asked about; observations are matched to them
            by ``problem_id`` when present, else by statement.
    """

    _static_attrs = ("_by_id", "_by_statement", "_pools")

    def __init__(self, name: str = "simulated", skill: float = 0.5, refine_skill: float = 0.5,
                 seed: int | np.random.Generator | None = None,
                 problems: Iterable[Problem] | None = None) -> None:
        for label, value in (("skill", skill), ("refine_skill", refine_skill)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{label} must be a probability in [0, 1], got {value!r}")
        self.name = name
        self.skill = float(skill)
        self.refine_skill = float(refine_skill)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        # root of the per-request generators of generate(..., seeds=...): the int seed, else
        # one draw from `rng` made on first use
        self._seed_root = int(seed) if isinstance(seed, (int, np.integer)) else None
        self._by_id: dict[str, Problem] = {}
        self._by_statement: dict[str, list[Problem]] = {}
        self._pools: dict[str, _Pool] = {}
        for p in problems or []:
            self.add_problem(p)

    def add_problem(self, problem: Problem) -> None:
        """Make `problem` known (its pool is checked when first used)."""
        if not isinstance(problem, Problem):
            raise TypeError(f"problems must be mars2_env.problems.Problem, got {type(problem).__name__}")
        self._by_id[problem.id] = problem
        self._by_statement.setdefault(problem.statement.strip(), []).append(problem)

    # --- lookup ------------------------------------------------------------------------------
    def problem_of(self, obs: dict[str, Any]) -> Problem:
        """The problem an observation is about (by ``problem_id``, else by statement)."""
        pid = obs.get("problem_id")
        if isinstance(pid, str) and pid in self._by_id:
            return self._by_id[pid]
        statement = obs.get("statement")
        if not isinstance(statement, str):
            raise KeyError("observation has neither a known 'problem_id' nor a 'statement'")
        matches = self._by_statement.get(statement.strip(), [])
        if not matches:
            raise KeyError(f"{self.name}: the observation's statement matches none of the "
                           f"{len(self._by_id)} problems given to SimulatedAgent(problems=...); "
                           f"statement starts {statement[:60]!r}")
        if len(matches) > 1:
            same = all(_norm(m.metadata.get("reference_solution", "")) ==
                       _norm(matches[0].metadata.get("reference_solution", "")) for m in matches)
            if not same:
                raise KeyError(f"{self.name}: problems {[m.id for m in matches]} share a statement; "
                               "put 'problem_id' in the observation to tell them apart")
        return matches[0]

    def _pool(self, problem: Problem) -> _Pool:
        pool = self._pools.get(problem.id)
        if pool is None:
            pool = self._pools[problem.id] = _Pool(problem)
        return pool

    # --- the policy ----------------------------------------------------------------------------
    def choose(self, obs: dict[str, Any]) -> tuple[str, bool]:
        """(program, whether it is the correct one) for one observation."""
        pool = self._pool(self.problem_of(obs))
        u, pick = self.rng.random(), self.rng.random()   # always two draws: aligned streams
        if int(obs.get("kind", _GENERATE)) == _GENERATE:
            if u < self.skill:
                return pool.reference, True
            return pool.wrong[int(pick * len(pool.wrong))], False
        parent = obs.get("parent_code") or ""
        correct, wrong_index = pool.status(parent, obs.get("parent_feedback") or "")
        if correct:
            return (parent if _norm(parent) != _norm(pool.reference) else pool.reference), True
        if u < self.refine_skill:
            return pool.reference, True
        others = [i for i in range(len(pool.wrong)) if i != wrong_index] or [0]
        return pool.wrong[others[int(pick * len(others))]], False

    def respond(self, obs: dict[str, Any]) -> str:
        program, _ = self.choose(obs)
        return format_response(program, refine=int(obs.get("kind", _GENERATE)) == _REFINE)

    def generate(self, observations: list[dict],
                 seeds: Sequence[int] | None = None) -> list[Generation]:
        """Responses in order; with ``seeds`` each is drawn from its own generator (seeded
        with the agent's seed and that seed)."""
        if isinstance(observations, dict):
            raise TypeError("generate takes a list of observations; use act(obs) for one")
        seeds = check_seeds(seeds, len(observations))
        if seeds is None:
            return [Generation(text=self.respond(o), finish_reason="stop") for o in observations]
        if self._seed_root is None:
            self._seed_root = int(self.rng.integers(2**62))
        out = []
        own = self.rng
        try:
            for o, s in zip(observations, seeds, strict=True):
                self.rng = np.random.default_rng([self._seed_root, s])
                out.append(Generation(text=self.respond(o), finish_reason="stop"))
        finally:
            self.rng = own
        return out

    def generate_messages(self, batch, seeds=None):  # pragma: no cover - needs observations
        raise TypeError("SimulatedAgent answers observations (it needs the problem), not messages")

    def __repr__(self) -> str:
        return (f"SimulatedAgent(name={self.name!r}, skill={self.skill}, "
                f"refine_skill={self.refine_skill})")


_KEYS = {"skill": "skill", "refine": "refine_skill", "refine_skill": "refine_skill",
         "seed": "seed", "name": "name"}


def parse_spec(arg: str) -> dict[str, Any]:
    """``"skill=0.5,refine=0.6[,seed=3][,name=x]"`` -> constructor keyword arguments."""
    out: dict[str, Any] = {}
    for part in (s.strip() for s in arg.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in _KEYS:
            raise ValueError(f"bad simulated agent spec {arg!r}: expected comma-separated "
                             f"KEY=VALUE with keys skill, refine, seed, name; got {part!r}")
        field = _KEYS[key]
        value = value.strip()
        try:
            out[field] = value if field == "name" else int(value) if field == "seed" else float(value)
        except ValueError:
            raise ValueError(f"bad simulated agent spec {arg!r}: {key} must be "
                             f"{'an integer' if field == 'seed' else 'a number'}, got {value!r}") from None
    return out


def from_spec(arg: str, **overrides: Any) -> SimulatedAgent:
    """Build from the part after ``simulated:`` of an agent spec; `overrides` (``name``,
    ``seed``, ``problems``) fill what the spec leaves out (a seed in the spec wins)."""
    kwargs = parse_spec(arg)
    unknown = sorted(set(overrides) - {"name", "seed", "problems"})
    if unknown:
        raise TypeError(f"simulated agents take no option(s) {unknown}; valid: name, seed, problems")
    for key, value in overrides.items():
        kwargs.setdefault(key, value)
    return SimulatedAgent(**kwargs)
