"""What the AEC, Gymnasium and batched environments share: one problem's search episode.

`SearchEpisode` owns a `SearchTree` and its scheduler for one problem. It turns a scheduler
`Expansion` into the observation dict, turns a response into executor work items, and lands the
executed result as a node. The environments only decide who acts when and how rewards are paid,
so a batched run and separate AEC episodes build identical trees from the same seeds.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from mars2_env.problems import Problem, TestCase, load_problems
from mars2_env.spaces import CodeText

#: Longest text (characters) an observation field or a response may have by default.
DEFAULT_MAX_TEXT_LENGTH = 1 << 20
#: Text fields of an observation (all `CodeText`).
TEXT_KEYS = ("problem_id", "statement", "starter_code", "parent_code", "parent_feedback", "prompt")
#: Integer fields of an observation (all `Discrete(budget + 1)`, except `kind`: `Discrete(2)`).
INT_KEYS = ("kind", "depth", "node_id", "budget_left")
GENERATE, REFINE = 0, 1
#: Feedback for a response with no program in it (no fenced block, and not Python as a whole).
NO_CODE_FEEDBACK = ("The program is empty: the response has no code block. Answer with the "
                    "complete program in one ```python code block.")
_TEST_CHOICES = ("public", "private", "all")
#: Feedback of a node whose problem has no reward tests (see `judge_plan`).
NO_REWARD_TESTS_FEEDBACK = "No tests were run: this problem has no example tests."


@dataclass
class SearchConfig:
    """Options every environment shares (see the environment docstrings for their meaning)."""

    budget: int = 16
    tests: str | list = "public"
    judge_tests: str | list | None = "private"
    reward_mode: str = "raw"
    lam: float = 0.5
    beta: float = 0.5
    stop_on_solve: bool = False
    stop_on_first_failure: bool = False
    templates: Any = None
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, np.integer)) \
                or self.budget < 1:
            raise ValueError(f"budget must be an int >= 1 (nodes per tree), got {self.budget!r}")
        self.budget = int(self.budget)
        _check_tests("tests", self.tests)
        if self.judge_tests is not None:
            _check_tests("judge_tests", self.judge_tests)
        if self.reward_mode not in ("raw", "shaped"):
            raise ValueError(f"reward_mode must be 'raw' or 'shaped', got {self.reward_mode!r}")
        for name in ("lam", "beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if isinstance(self.max_text_length, bool) or not isinstance(self.max_text_length, int) \
                or self.max_text_length < 1:
            raise ValueError(f"max_text_length must be an int >= 1, got {self.max_text_length!r}")
        if self.templates is None:
            from mars2_env.prompts import DEFAULT_TEMPLATES
            self.templates = DEFAULT_TEMPLATES


def _check_tests(name: str, value: Any) -> None:
    if isinstance(value, list):
        return
    if value not in _TEST_CHOICES:
        raise ValueError(f"{name} must be one of {_TEST_CHOICES} or a list of TestCase, got {value!r}")


class JudgePolicyWarning(UserWarning):
    """Some problems have too few tests for the requested reward / judge split (see `judge_plan`)."""


@dataclass(frozen=True)
class JudgePlan:
    """How one problem's tree is rewarded and judged under a `SearchConfig`.

    ``reward_tests`` reward each node (stored in ``node.public``); empty when the problem has none
    of them (a LiveCodeBench row with no public tests): every node then gets reward 0 and no
    feedback. ``judge_tests`` run a second time per node (``node.private``); None when there is
    no separate judge run. ``judged_on`` is what judges the tree (kept in
    ``tree.metadata["judge"]``): the ``judge_tests`` choice ("private", "all", "given"),
    ``"public"`` when the problem has no judge tests of its own (single-test rows, HumanEval-like
    sets with ``private`` empty): the reward run, over all the problem's tests, then judges;
    None when judging is off.
    """

    reward_tests: list[TestCase]
    judge_tests: list[TestCase] | None
    judged_on: str | None

    @property
    def fallback(self) -> bool:
        return self.judged_on == "public"


def judge_plan(problem: Problem, config: SearchConfig) -> JudgePlan:
    """The documented rule for problems with too few tests; never an error for a loadable problem.

    1. No judge tests (``judge_tests="private"`` and the problem has no private tests): judge
       on the reward run, which then holds every test, and mark the tree ``judge="public"``.
    2. No reward tests (``tests="public"`` and no public tests): reward 0 for every node, no
       feedback; judged as usual on the judge tests.
    """
    reward = problem.select_tests(config.tests)
    if not problem.tests:
        raise ValueError(f"problem {problem.id!r} has no tests at all")
    if config.judge_tests is None:
        return JudgePlan(reward, None, None)
    judge = problem.select_tests(config.judge_tests)
    if judge:
        label = config.judge_tests if isinstance(config.judge_tests, str) else "given"
        return JudgePlan(reward, judge, label)
    if not reward:  # neither side has tests (e.g. tests="private", judge_tests="public" on a row with none)
        return JudgePlan(reward, problem.tests, "all")
    return JudgePlan(reward, None, "public")


def warn_judge_policy(problems: Sequence[Problem], config: SearchConfig) -> dict[str, int]:
    """Count the problems that fall under `judge_plan`'s rules; warn once (one warning with the
    counts) when there are any. Returns ``{"judged_on_public": n, "no_reward_tests": m}``."""
    counts = {"judged_on_public": 0, "no_reward_tests": 0}
    for p in problems:
        plan = judge_plan(p, config)
        counts["judged_on_public"] += plan.fallback
        counts["no_reward_tests"] += not plan.reward_tests
    parts = []
    n = len(problems)
    judge = config.judge_tests if isinstance(config.judge_tests, str) else "given judge"
    reward = config.tests if isinstance(config.tests, str) else "given reward"
    if counts["judged_on_public"]:
        parts.append(f"{counts['judged_on_public']} of {n} problems have no {judge} "
                     "tests: they are judged on all their tests, the reward run's (trees marked "
                     "judge='public')")
    if counts["no_reward_tests"]:
        parts.append(f"{counts['no_reward_tests']} of {n} problems have no {reward} tests: "
                     "their nodes get reward 0 and no test feedback, and they are judged as usual")
    if parts:
        warnings.warn("mars2: " + "; ".join(parts) + " (README, 'Problems and datasets')",
                      JudgePolicyWarning, stacklevel=3)
    return counts


def resolve_problems(problems: Sequence[Problem] | str | Problem, *,
                     unique: bool = True) -> list[Problem]:
    """A non-empty list of problems from a list, a single `Problem` or a `load_problems` source.
    ``unique``: refuse a repeated id (an environment picks its problem by id); a search queue
    passes False, since a problem queued twice is searched twice."""
    if isinstance(problems, Problem):
        problems = [problems]
    elif isinstance(problems, str):
        problems = load_problems(problems)
    problems = list(problems)
    if not problems:
        raise ValueError("problems is empty: give at least one Problem or a source such as 'builtin:demo'")
    for i, p in enumerate(problems):
        if not isinstance(p, Problem):
            raise TypeError(f"problems[{i}] must be a mars2_env.problems.Problem, got {type(p).__name__}")
    ids = [p.id for p in problems]
    if unique and len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"problem ids must be unique, repeated: {dup[:5]}")
    return problems


def pick_problem(problems: list[Problem], choice: Problem | str) -> Problem:
    """The problem named by `choice` (an id from `problems`, or a `Problem` used as is)."""
    if isinstance(choice, Problem):
        return choice
    if not isinstance(choice, str):
        raise TypeError(f"options['problem'] must be a problem id (str) or a Problem, got "
                        f"{type(choice).__name__}")
    for p in problems:
        if p.id == choice:
            return p
    shown = ", ".join(repr(p.id) for p in problems[:8]) + (", ..." if len(problems) > 8 else "")
    raise KeyError(f"unknown problem id {choice!r}; this environment has {len(problems)} problems: {shown}")


def check_agents(agents: Sequence[str]) -> list[str]:
    """Agent names: a non-empty list of distinct non-empty strings."""
    if isinstance(agents, str):
        agents = [agents]
    agents = list(agents)
    if not agents:
        raise ValueError("agents must name at least one agent")
    for a in agents:
        if not isinstance(a, str) or not a:
            raise TypeError(f"agent names must be non-empty strings, got {a!r}")
    if len(set(agents)) != len(agents):
        raise ValueError(f"agent names must be distinct, got {agents}")
    return agents


def observation_space(config: SearchConfig, seed: int | None = None) -> spaces.Dict:
    """The observation space of one agent: text fields plus small integers."""
    n = config.budget + 1
    fields: dict[str, spaces.Space] = {k: CodeText(config.max_text_length) for k in TEXT_KEYS}
    fields.update(kind=spaces.Discrete(2), depth=spaces.Discrete(n), node_id=spaces.Discrete(n),
                  budget_left=spaces.Discrete(n))
    return spaces.Dict(fields, seed=seed)


def action_space(config: SearchConfig) -> CodeText:
    """The action space: the response text."""
    return CodeText(config.max_text_length)


def derive_seed(rng: np.random.Generator) -> int:
    """Draw a 63-bit seed from an environment's generator (the run's base seed)."""
    return int(rng.integers(0, 2**63 - 1))


def _mix(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class TreeSeeds:
    """The seeds of one tree, a pure function of (run base seed, problem id, visit).

    ``scheduler`` seeds the tree's scheduler; ``agent`` is the root of the per-expansion
    sampling seeds (`expansion_seed`). Neither depends on which other problems are searched,
    in what order, how many trees are in flight or on which machine, so a resumed or
    sharded run rebuilds exactly the trees of one uninterrupted run.
    """

    scheduler: int
    agent: int


def tree_seeds(base: int, problem_id: str, visit: int = 0) -> TreeSeeds:
    """Seeds of the ``visit``-th search (0 = first) of problem ``problem_id`` in a run seeded
    ``base`` (see `TreeSeeds`)."""
    return TreeSeeds(scheduler=_mix(base, "scheduler", problem_id, visit),
                     agent=_mix(base, "agent", problem_id, visit))


class TreeSeedStream:
    """`tree_seeds` of the successive searches of a run seeded ``base``: each problem's
    ``visit`` counts how often it was searched before, so repeats differ and the k-th search of
    a problem has the same seeds whatever else ran in between."""

    def __init__(self, base: int) -> None:
        self.base = int(base)
        self._visits: dict[str, int] = {}

    def next(self, problem_id: str) -> TreeSeeds:
        visit = self._visits.get(problem_id, 0)
        self._visits[problem_id] = visit + 1
        return tree_seeds(self.base, problem_id, visit)


def expansion_seed(agent_seed: int, index: int) -> int:
    """Sampling seed of a tree's ``index``-th expansion (0-based, in selection order)."""
    return _mix(agent_seed, "expansion", index)


def unpack_response(response: Any, who: str) -> tuple[str, list[int] | None, list[float] | None]:
    """(text, token_ids, logprobs) from a str or a generation-like object with `.text`."""
    if isinstance(response, str):
        return str(response), None, None
    text = getattr(response, "text", None)
    if not isinstance(text, str):
        raise TypeError(f"{who} must be the response text (str) or an object with a str `.text` "
                        f"(e.g. agents.Generation), got {type(response).__name__}")
    token_ids = getattr(response, "completion_token_ids", None)
    if token_ids is None:
        token_ids = getattr(response, "token_ids", None)
    logprobs = getattr(response, "logprobs", None)
    return (text, None if token_ids is None else [int(t) for t in token_ids],
            None if logprobs is None else [float(x) for x in logprobs])


class SearchEpisode:
    """One problem's tree search: observations, executor work and node bookkeeping.

    Args:
        problem: the problem searched.
        scheduler: a Scheduler (already `reset` for this tree).
        config: shared options.
        seed: the scheduler's seed for this tree (kept in the tree's metadata).
        agent_seed: root of the tree's per-expansion sampling seeds (`next_seed`); None: none.
    """

    def __init__(self, problem: Problem, scheduler: Any, config: SearchConfig,
                 seed: int | None = None, agent_seed: int | None = None) -> None:
        from mars2_env.tree import SearchTree

        self.problem = problem
        self.scheduler = scheduler
        self.config = config
        meta: dict[str, Any] = {"budget": config.budget, "scheduler_seed": seed}
        if agent_seed is not None:
            meta["agent_seed"] = agent_seed
        self.tree = SearchTree(problem.id, metadata=meta)
        self.agent_seed = agent_seed
        self.selected = 0  # expansions selected so far (numbers the per-expansion seeds)
        self.solved = False
        self.in_flight = 0
        plan = judge_plan(problem, config)
        self._public_tests = plan.reward_tests  # may be empty: reward 0, see `judge_plan`
        self._judge_tests = plan.judge_tests
        if plan.judged_on is not None:
            self.tree.metadata["judge"] = plan.judged_on
        if not plan.reward_tests:
            self.tree.metadata["reward_tests"] = "none"

    # --- state ---------------------------------------------------------------------------
    @property
    def budget_left(self) -> int:
        """Nodes still to write (landed and in-flight expansions count as written)."""
        return self.config.budget - len(self.tree) - self.in_flight

    @property
    def done(self) -> bool:
        """True when the budget is spent or (with `stop_on_solve`) a node passed the judge tests."""
        return len(self.tree) >= self.config.budget or (self.config.stop_on_solve and self.solved)

    def next_seed(self) -> int | None:
        """The sampling seed of the next selected expansion (counts the selection); None when
        the episode has no agent seed."""
        index = self.selected
        self.selected += 1
        return None if self.agent_seed is None else expansion_seed(self.agent_seed, index)

    # --- observations --------------------------------------------------------------------
    def observation(self, expansion: Any | None) -> dict[str, Any]:
        """The observation for `expansion` (None: the terminal observation after the episode)."""
        from mars2_env.prompts import render_messages

        p = self.problem
        if expansion is None or expansion.parent_id == 0:
            parent = None
        else:
            parent = self.tree.node(expansion.parent_id)
        parent_code = "" if parent is None else parent.code
        feedback = "" if parent is None else parent.feedback
        messages = render_messages(p, None if parent is None else parent_code,
                                   None if parent is None else feedback,
                                   templates=self.config.templates)
        obs: dict[str, Any] = {
            "problem_id": p.id,
            "statement": p.statement,
            "starter_code": p.starter_code,
            "parent_code": parent_code,
            "parent_feedback": feedback,
            "prompt": json.dumps(messages, ensure_ascii=False),
            "kind": GENERATE if parent is None else REFINE,
            "depth": 0 if parent is None else int(parent.depth),
            "node_id": 0 if parent is None else int(parent.id),
            "budget_left": 0 if expansion is None else self.budget_left,
        }
        for key in TEXT_KEYS:
            if len(obs[key]) > self.config.max_text_length:
                raise ValueError(
                    f"observation field {key!r} of problem {p.id!r} has {len(obs[key])} characters, "
                    f"more than max_text_length={self.config.max_text_length}; raise max_text_length")
        return obs

    # --- execution -----------------------------------------------------------------------
    def check_response(self, response: Any, who: str) -> tuple[str, list[int] | None, list[float] | None]:
        """Validate a response (type, length) and split it into text, token ids and logprobs."""
        text, token_ids, logprobs = unpack_response(response, who)
        if len(text) > self.config.max_text_length:
            raise ValueError(f"{who} has {len(text)} characters, more than max_text_length="
                             f"{self.config.max_text_length}; raise max_text_length")
        return text, token_ids, logprobs

    def work(self, text: str) -> tuple[str, list[tuple[Problem, str, list]]]:
        """The extracted code and the executor items (public run, then judge run if any)."""
        from mars2_env.prompts import extract_code

        code = extract_code(text)
        items = [(self.problem, code, self._public_tests)] if self._public_tests else []
        if self._judge_tests is not None:
            items.append((self.problem, code, self._judge_tests))
        return code, items

    def land(self, expansion: Any, text: str, code: str, results: Sequence[Any],
             token_ids: list[int] | None = None, logprobs: list[float] | None = None) -> Any:
        """Add the executed expansion as a node, update the scheduler, return the node."""
        from mars2_env.execution import format_feedback

        results = list(results)
        public = results.pop(0) if self._public_tests else None
        private = results[0] if results else None
        if public is None:
            feedback = NO_REWARD_TESTS_FEEDBACK
        elif not code.strip():  # nothing to run: say what was missing, not "does not compile"
            feedback = (f"Verdict: {public.verdict.value} ({public.passed}/{public.total} tests "
                        f"passed)\n\n{NO_CODE_FEEDBACK}")
        else:
            feedback = format_feedback(public)
        node = self.tree.add(
            expansion.parent_id, expansion.agent, response=text, code=code,
            reward=0.0 if public is None else float(public.reward),
            public=None if public is None else public.summary(),
            private=None if private is None else private.summary(),
            feedback=feedback, token_ids=token_ids, logprobs=logprobs)
        self.scheduler.update(self.tree, node)
        judge = node.private if node.private is not None else node.public
        if judge is not None and judge.get("verdict") == "passed":
            self.solved = True
        return node

    # --- end of episode ------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """`rewards.node_records` of the tree (one row per node, expansion order)."""
        from mars2_env.rewards import node_records

        return node_records(self.tree, lam=self.config.lam, beta=self.config.beta)

    def final_infos(self, agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per-agent end-of-episode info: its node records, whether the tree solved the problem."""
        rows = self.records()
        return {a: {"problem_id": self.problem.id, "solved": self.solved,
                    "nodes": [dict(r) for r in rows if r["agent"] == a]} for a in agents}

    def shaped_returns(self, agents: Sequence[str]) -> dict[str, float]:
        """Sum of each agent's shaped node rewards (what `reward_mode="shaped"` pays at the end)."""
        rows = self.records()
        return {a: float(sum(r["shaped_reward"] for r in rows if r["agent"] == a)) for a in agents}

    def render_text(self) -> str:
        """The tree as text, one line a node: id, agent, parent, verdict, reward."""
        lines = [f"problem {self.problem.id}: {len(self.tree)}/{self.config.budget} nodes"
                 + (", solved" if self.solved else "")]
        for n in self.tree.nodes():
            verdict = (n.public or {}).get("verdict", "-")
            judge = "" if n.private is None else f" judge={n.private.get('verdict', '-')}"
            lines.append(f"  node {n.id:>3} agent={n.agent} parent={n.parent} depth={n.depth} "
                         f"verdict={verdict} reward={n.reward:.3f}{judge}")
        return "\n".join(lines) + "\n"


def make_scheduler_factory(scheduler: Any, agents: Sequence[str]) -> Callable[[], Any]:
    """A zero-argument factory of schedulers (default: `ThompsonScheduler(agents)`)."""
    if scheduler is None:
        def factory() -> Any:
            from mars2_env.scheduler import ThompsonScheduler
            return ThompsonScheduler(list(agents))
        return factory
    if callable(scheduler) and not hasattr(scheduler, "select"):
        return scheduler
    raise TypeError("scheduler_factory must be a callable returning a Scheduler")
