"""Gymnasium environment: one agent searches its own tree per problem (RS², or GRPO-style groups).

| Import             | `from mars2_env.gym_env import CodeSearchEnv`                           |
|--------------------|--------------------------------------------------------------------------|
| Registered id      | `gymnasium.make("mars2/CodeSearch-v0", problems=..., budget=..., ...)`   |
| Action space       | `CodeText(max_text_length)`: the response text (reasoning allowed)       |
| Observation space  | `Dict` of `CodeText` and `Discrete` fields, as in `mars2_env.aec`        |
| Episode            | one problem's tree of `budget` nodes, one node per step                  |

With the default `ThompsonScheduler` the agent alternates between new candidates and refinements
(RS²); with `scheduler=ParallelSampling()` every step is a fresh sample of the root, i.e. the
GRPO-style group of `budget` independent samples.

### Observation

| key               | space                 | meaning                                                       |
|-------------------|-----------------------|---------------------------------------------------------------|
| `problem_id`      | CodeText              | id of the problem this tree searches                          |
| `statement`       | CodeText              | problem statement                                             |
| `starter_code`    | CodeText              | starter code ("" if none)                                     |
| `kind`            | Discrete(2)           | 0 = generate a new candidate, 1 = refine the parent           |
| `parent_code`     | CodeText              | the parent node's program ("" when generating)                |
| `parent_feedback` | CodeText              | executor feedback on the parent ("" when generating)          |
| `depth`           | Discrete(budget + 1)  | depth of the parent node (0 = root)                           |
| `node_id`         | Discrete(budget + 1)  | id of the parent node (0 = root)                              |
| `budget_left`     | Discrete(budget + 1)  | nodes still to write, this one included (0 after the episode) |
| `prompt`          | CodeText              | `json.dumps` of the chat messages (`prompts.render_messages`) |

### Reward, termination, truncation, info

- `reward_mode="raw"`: each step pays the node's raw reward (the `tests` result, in [0, 1]);
  `"shaped"`: 0 per step and, at the last step, the sum of the tree's shaped rewards.
- `terminated=True` when the budget is spent, and with `stop_on_solve=True` as soon as a node
  passes the judging tests; `truncated` is always False. The budget is part of the task and
  `budget_left` is in the observation, so the end is a terminal state of the MDP (Gymnasium's
  rule for observed time limits; see `mars2_env.aec` for the full reasoning). `info["solved"]`
  and `obs["budget_left"] == 0` tell the two ends apart.
- `info` of a step: `node_id`, `verdict` (public tests). At the last step also `nodes` (the
  `rewards.node_records` rows: node id, raw reward, shaped reward, tree advantage), `solved` and
  `problem_id`.

Stepping a finished episode, or before `reset`, raises `RuntimeError`; an action that is not a
`str` raises `TypeError`.

### Vector environments

`SyncVectorEnv` works as is; seeded `reset(seed=s)` starts sub-environment i at problem
`(s + i) mod len(problems)`. Use `AsyncVectorEnv(fns, shared_memory=False)`: Gymnasium keeps a
`Text` observation in shared memory as a fixed `int32` array of indexes into the space's charset
(`max_length` entries per text field per env), and free text (statements, programs, feedback in
any unicode) has no finite charset; `CodeText` refuses to be flattened with a `TypeError` that
says so, and the observations travel through the worker pipes instead. Each env in an
`AsyncVectorEnv` worker creates its own executor there (executors are not shared across
processes); its worker servers are started with `subprocess`, so the default daemonic workers
are fine.

### Arguments

`problems` (list of `Problem` or a `load_problems` source; default `"builtin:demo"`), `budget=16`,
`scheduler` (Scheduler instance reset every episode; default `ThompsonScheduler([agent])`),
`agent="coder_0"` (the agent name written in the nodes), and `tests`, `judge_tests`,
`reward_mode`, `lam`, `beta`, `stop_on_solve`, `stop_on_first_failure`, `executor`,
`templates`, `max_text_length`, `seed`, `render_mode` as in `mars2_env.aec.raw_env`.
`reset(seed, options={"problem": id_or_Problem})`: a seed restarts the schedulers' seed sequence
and the problem cycle, at problem `seed mod len(problems)`, so the sub-environments of a vector
env (which Gymnasium seeds `s, s + 1, ...`) search different problems instead of the same one in
lockstep.

`gymnasium.make(..., executor=ex)` works, but `env.spec.make()` deep-copies the make kwargs and an
`Executor` cannot be copied (it holds a lock and worker processes): leave `executor` unset where
the spec is re-made, e.g. for `gymnasium.utils.env_checker.check_env`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium

from mars2_env.envcore import (
    SearchConfig,
    SearchEpisode,
    TreeSeedStream,
    action_space,
    check_agents,
    derive_seed,
    observation_space,
    pick_problem,
    resolve_problems,
    warn_judge_policy,
)
from mars2_env.problems import Problem
from mars2_env.rewards import refuse_alpha

__all__ = ["CodeSearchEnv"]


class CodeSearchEnv(gymnasium.Env):
    """Single-agent tree search over code generation (see the module docstring for the tables)."""

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 1}

    @refuse_alpha
    def __init__(self, problems: Sequence[Problem] | str = "builtin:demo", budget: int = 16,
                 scheduler: Any = None, agent: str = "coder_0", tests: str | list = "public",
                 judge_tests: str | list | None = "private", reward_mode: str = "raw",
                 lam: float = 0.5, beta: float = 0.5, stop_on_solve: bool = False,
                 stop_on_first_failure: bool = False, executor: Any = None, templates: Any = None,
                 max_text_length: int | None = None, seed: int | None = None,
                 render_mode: str | None = None) -> None:
        self.problems = resolve_problems(problems)
        self.agent = check_agents([agent])[0]
        kw = {} if max_text_length is None else {"max_text_length": max_text_length}
        self.config = SearchConfig(budget=budget, tests=tests, judge_tests=judge_tests,
                                   reward_mode=reward_mode, lam=lam, beta=beta,
                                   stop_on_solve=bool(stop_on_solve),
                                   stop_on_first_failure=bool(stop_on_first_failure),
                                   templates=templates, **kw)
        warn_judge_policy(self.problems, self.config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        if scheduler is None:
            from mars2_env.scheduler import ThompsonScheduler
            scheduler = ThompsonScheduler([self.agent])
        for method in ("reset", "select", "update"):
            if not callable(getattr(scheduler, method, None)):
                raise TypeError(f"scheduler must follow the Scheduler protocol (no {method}()): "
                                f"got {type(scheduler).__name__}")
        self.scheduler = scheduler
        self._executor = executor
        self._owns_executor = executor is None
        self.observation_space = observation_space(self.config)
        self.action_space = action_space(self.config)
        self._np_random, self._np_random_seed = gymnasium.utils.seeding.np_random(seed)
        self._tree_seeds: TreeSeedStream | None = None
        self._cursor = 0
        self.episode: SearchEpisode | None = None
        self._expansion: Any = None

    @property
    def tree(self) -> Any:
        """The current episode's `SearchTree` (None before the first reset)."""
        return None if self.episode is None else self.episode.tree

    @property
    def executor(self) -> Any:
        """The executor (created on first use when none was given)."""
        if self._executor is None:
            from mars2_env.execution import Executor
            self._executor = Executor(max_workers=2)
        return self._executor

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            # a vector env seeds its sub-environments s, s+1, ...: start each at another problem
            self._cursor = seed % len(self.problems)
            self._tree_seeds = None
        choice = (options or {}).get("problem")
        if choice is None:
            problem = self.problems[self._cursor % len(self.problems)]
            self._cursor += 1
        else:
            problem = pick_problem(self.problems, choice)
        if self._tree_seeds is None:
            self._tree_seeds = TreeSeedStream(derive_seed(self.np_random))
        seeds = self._tree_seeds.next(problem.id)
        self.scheduler.reset([self.agent], seed=seeds.scheduler)
        self.episode = SearchEpisode(problem, self.scheduler, self.config, seed=seeds.scheduler,
                                     agent_seed=seeds.agent)
        self._next_expansion()
        return self.episode.observation(self._expansion), {"problem_id": problem.id}

    def _next_expansion(self) -> None:
        self._expansion = self.scheduler.select(self.episode.tree)
        if self._expansion.agent != self.agent:
            raise RuntimeError(f"scheduler chose agent {self._expansion.agent!r}, but this "
                               f"environment's agent is {self.agent!r}")

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        ep = self.episode
        if ep is None:
            raise RuntimeError("call reset() before step()")
        if self._expansion is None:
            raise RuntimeError("the episode is over; call reset() to start the next problem")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the response text (str), got {type(action).__name__}")
        text, _, _ = ep.check_response(action, "the action")
        code, items = ep.work(text)
        results = self.executor.run_many(items, stop_on_first_failure=self.config.stop_on_first_failure)
        node = ep.land(self._expansion, text, code, results)
        reward = float(node.reward) if self.config.reward_mode == "raw" else 0.0
        info: dict[str, Any] = {"node_id": node.id, "verdict": (node.public or {}).get("verdict", "not_run")}
        terminated = truncated = False
        if ep.done:
            terminated = True  # budget spent or solved: terminal (budget_left is observed)
            if self.config.reward_mode == "shaped":
                reward = ep.shaped_returns([self.agent])[self.agent]
            info.update(ep.final_infos([self.agent])[self.agent])
            self._expansion = None
        else:
            self._next_expansion()
        if self.render_mode == "human":
            self.render()
        return ep.observation(self._expansion), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode; use render_mode='ansi' or 'human'")
            return None
        text = "(no episode yet)\n" if self.episode is None else self.episode.render_text()
        if self.render_mode == "human":
            print(text, end="")
            return None
        return text

    def close(self) -> None:
        if self._owns_executor and self._executor is not None:
            self._executor.close()
            self._executor = None
