"""PettingZoo AEC environment: several coding agents grow one search tree per problem (MARS²).

| Import             | `from mars2_env.aec import env, raw_env`                                 |
|--------------------|---------------------------------------------------------------------------|
| Registered id      | `pettingzoo.make("aec", "mars2/CodeTreeSearch-v0", problems=..., ...)`    |
| Agents             | `agents=("coder_0", "coder_1")`, all present the whole episode            |
| Action space       | `CodeText(max_text_length)`: the response text (reasoning allowed)        |
| Observation space  | `Dict` of `CodeText` and `Discrete` fields (below)                        |
| Episode            | one problem's tree; `budget` nodes, one node per step                     |

### Observation (`Dict`; no key is named `observation`)

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

`observe(agent)` returns the observation of the pending expansion for every agent; only
`agent_selection` (the agent the scheduler drew) acts on it. Observations and infos hold no
timings, so seeded episodes repeat exactly.

### Step

The env extracts the code from the response (`prompts.extract_code`), runs it on `tests`
(reward) and `judge_tests` (judging, stored in `node.private`) through the executor, adds the node
and updates the scheduler, which then draws the next agent and parent.

### Rewards

| `reward_mode` | acting agent at its step | at the end of the episode                               |
|---------------|--------------------------|---------------------------------------------------------|
| `"raw"`       | the node's raw reward    | nothing more                                            |
| `"shaped"`    | 0                        | each agent: sum of its nodes' shaped rewards            |

Agents that did not act get 0.

### Termination (never truncation)

- Budget spent: every agent is **terminated**; `infos[agent]["nodes"]` lists, for each node the
  agent wrote, `node_id, agent, parent, reward, shaped_reward, advantage`
  (`rewards.node_records`), plus `infos[agent]["solved"]` and `["problem_id"]`.
- `stop_on_solve=True`: every agent is terminated as soon as a node passes the judging tests
  (`judge_tests`, or `tests` when `judge_tests` is None); the infos are the same.
- Why terminated: the node budget is part of the task, and `budget_left` is in the observation,
  so the state after the last node is a terminal state of the (Markov) process — Gymnasium's
  rule for a time limit the agent observes. `truncated` is for cut-offs outside the task (a
  `TimeLimit` wrapper, an interrupted run), after which a learner would bootstrap a value; here
  nothing follows the last node. `mars2_env.gym_env` and `mars2_env.vector` say the same.
- Each finished agent then steps `None` once, as usual in PettingZoo. Stepping after that (or
  before `reset`) raises `RuntimeError`.

### Parallel API

There is no native `ParallelEnv`: at every step the scheduler draws *one* agent (Thompson
sampling over the agents' posteriors) to write the next node, so agents do not act
simultaneously, and making all of them act every step would remove the agent choice that MARS²
learns. PettingZoo's `aec_to_parallel` refuses such an env (`is_parallelizable` is False); use
`pettingzoo.utils.conversions.turn_based_aec_to_parallel(env(...))`, whose `step` takes an
action for every live agent and applies the one of the agent whose turn it is (it passes
`parallel_api_test`). For many trees at once use `mars2_env.vector.BatchedSearch`.

### Arguments

`problems` (list of `Problem` or a `load_problems` source, default `"builtin:demo"`), `agents`,
`budget=16`, `scheduler` (a Scheduler instance, reset for every episode with a seed drawn from the
env's generator; default `ThompsonScheduler(agents)`), `tests="public"`,
`judge_tests="private"` (None: skip), `reward_mode="raw"|"shaped"`, `lam` and `beta` (shaping;
λ weights the siblings, see `mars2_env.rewards`; the old `alpha=` is refused),
`stop_on_solve=False`, `stop_on_first_failure=False` (True: the executor stops a program at its
first failed test, which is faster, and the tests after it count as failed), `executor=None` (an
`Executor`, may be shared; None: the env creates its own with 2 workers, so a node's reward and
judge runs go in parallel, on first use and closes it in `close()`), `templates`
(`PromptTemplates`), `max_text_length` (`CodeText` bound), `seed`, `render_mode` (`"ansi"`:
tree as text, `"human"`: printed).

`reset(seed=None, options={"problem": id_or_Problem})`: a seed restarts the episode sequence (the
problem cycle and the schedulers' seeds); without `"problem"` the env cycles through `problems` in
order. Other option keys are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
from gymnasium.utils import seeding
from pettingzoo import AECEnv
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

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

__all__ = ["env", "raw_env"]


class raw_env(AECEnv):  # noqa: N801 - PettingZoo's naming convention
    """Multi-agent tree search over code generation (see the module docstring for the tables)."""

    metadata = {"name": "mars2_code_tree_search_v0", "render_modes": ["ansi", "human"],
                "is_parallelizable": False}

    @refuse_alpha
    def __init__(self, problems: Sequence[Problem] | str = "builtin:demo",
                 agents: Sequence[str] = ("coder_0", "coder_1"), budget: int = 16,
                 scheduler: Any = None, tests: str | list = "public",
                 judge_tests: str | list | None = "private", reward_mode: str = "raw",
                 lam: float = 0.5, beta: float = 0.5, stop_on_solve: bool = False,
                 stop_on_first_failure: bool = False, executor: Any = None, templates: Any = None,
                 max_text_length: int | None = None, seed: int | None = None,
                 render_mode: str | None = None) -> None:
        super().__init__()
        self.problems = resolve_problems(problems)
        self.possible_agents = check_agents(agents)
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
            scheduler = ThompsonScheduler(list(self.possible_agents))
        for method in ("reset", "select", "update"):
            if not callable(getattr(scheduler, method, None)):
                raise TypeError(f"scheduler must follow the Scheduler protocol (no {method}()): "
                                f"got {type(scheduler).__name__}")
        self.scheduler = scheduler
        self._executor = executor
        self._owns_executor = executor is None
        self.observation_spaces = {a: observation_space(self.config) for a in self.possible_agents}
        self.action_spaces = {a: action_space(self.config) for a in self.possible_agents}
        self._np_random, self._np_random_seed = seeding.np_random(seed)
        self._tree_seeds: TreeSeedStream | None = None
        self._cursor = 0
        self.episode: SearchEpisode | None = None
        self._expansion: Any = None
        self.agents = []

    # --- spaces ---------------------------------------------------------------------------
    def observation_space(self, agent: str) -> gymnasium.spaces.Dict:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self.action_spaces[agent]

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

    # --- episode ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
            self._cursor = 0
            self._tree_seeds = None
        choice = (options or {}).get("problem")
        if choice is None:
            problem = self.problems[self._cursor % len(self.problems)]
            self._cursor += 1
        else:
            problem = pick_problem(self.problems, choice)
        if self._tree_seeds is None:
            self._tree_seeds = TreeSeedStream(derive_seed(self._np_random))
        seeds = self._tree_seeds.next(problem.id)
        self.scheduler.reset(list(self.possible_agents), seed=seeds.scheduler)
        self.episode = SearchEpisode(problem, self.scheduler, self.config, seed=seeds.scheduler,
                                     agent_seed=seeds.agent)
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self._skip_agent_selection = None
        self._next_expansion()

    def _next_expansion(self) -> None:
        self._expansion = self.scheduler.select(self.episode.tree)
        if self._expansion.agent not in self.possible_agents:
            raise RuntimeError(f"scheduler chose unknown agent {self._expansion.agent!r}; "
                               f"agents are {self.possible_agents}")
        self.agent_selection = self._expansion.agent
        self._obs = self.episode.observation(self._expansion)

    def observe(self, agent: str) -> dict[str, Any]:
        if self.episode is None:
            raise RuntimeError("call reset() before observe()")
        if agent not in self.possible_agents:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        return dict(self._obs)

    def step(self, action: str | None) -> None:
        if self.episode is None:
            raise RuntimeError("call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over (every agent has finished); call reset() to start "
                               "the next problem")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if not isinstance(action, str):
            raise TypeError(f"the action of {agent!r} must be its response text (str), got "
                            f"{type(action).__name__}")
        ep = self.episode
        text, _, _ = ep.check_response(action, f"the action of {agent!r}")
        code, items = ep.work(text)
        results = self.executor.run_many(items, stop_on_first_failure=self.config.stop_on_first_failure)
        node = ep.land(self._expansion, text, code, results)

        self._cumulative_rewards[agent] = 0.0
        self.rewards = {a: 0.0 for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        if self.config.reward_mode == "raw":
            self.rewards[agent] = float(node.reward)
        self.infos[agent] = {"node_id": node.id, "verdict": (node.public or {}).get("verdict", "not_run")}
        if ep.done:
            if self.config.reward_mode == "shaped":
                self.rewards.update(ep.shaped_returns(self.agents))
            final = ep.final_infos(self.agents)
            for a in self.agents:
                self.infos[a] = {**self.infos[a], **final[a]}
                # budget spent or solved: a terminal state (budget_left is observed), see above
                self.terminations[a] = True
                self.truncations[a] = False
            self._expansion = None
            self._obs = ep.observation(None)
        else:
            self._next_expansion()
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    # --- output ----------------------------------------------------------------------------
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

    def __str__(self) -> str:
        return self.metadata["name"]


class _StrictOrderEnforcingWrapper(OrderEnforcingWrapper):
    """PettingZoo's order enforcement, but stepping before `reset` or after the episode raises
    `RuntimeError` (PettingZoo asserts before reset and only warns after the end)."""

    def step(self, action: Any) -> None:
        if not self._has_reset:
            raise RuntimeError("call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over (every agent has finished); call reset() to start "
                               "the next problem")
        super().step(action)


def env(*args: Any, **kwargs: Any) -> AECEnv:
    """`raw_env(...)` wrapped in PettingZoo's order-enforcing wrapper (the usual factory)."""
    return _StrictOrderEnforcingWrapper(raw_env(*args, **kwargs))
