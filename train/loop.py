"""The rollout / update loop of GRPO, RS² and MARS² training.

A run is a sequence of *rounds*. Round ``r`` takes the next ``max_trees`` problems of
a seeded, epoch-shuffled stream and searches them with `mars2_env.vector.BatchedSearch`:

* ``mars2``: one search whose trees are shared by all agents (Thompson-sampling scheduler);
* ``rs2``: one search per agent, each agent alone on its own trees (same scheduler);
* ``grpo``: one search per agent with `ParallelSampling` (G = ``budget`` independent
  samples per problem) and shaping ``beta = 0``, so the tree advantage is the
  group-normalised reward.

Generation is batched per agent across all trees in flight. When a tree finishes, the DAPO
overlong penalty is added to each node's reward, the environment's `tree_advantages` /
`node_records` are computed from those rewards (``rewards=`` override), degenerate trees
(all advantages zero) are skipped, and each node becomes a `NodeSample` in its own agent's
buffer. Any learner whose buffer holds a full batch updates right away, independently of
the others (asynchronous per-agent updates); trees still in flight then continue with the
new weights (the HF agent shares the model object; a vLLM agent gets ``load_weights``),
and truncated importance sampling corrects the resulting policy lag.

Checkpoints are taken at round boundaries (no tree in flight) after every round whose number
is a multiple of ``checkpoint_every``, and always when the run stops; the ``keep_last`` newest
are kept. ``resume`` repeats the uninterrupted run exactly: everything a round depends on is
either saved (weights, optimizer, LR schedule, buffers, RNG states, agent sampling counters,
log sizes) or derived from ``(seed, round)``.

Outputs under ``out``: ``config.yaml``, ``metrics.jsonl`` (one JSON object per round and per
update), ``trees.jsonl`` (every searched tree), ``checkpoints/``, ``final/<agent>/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mars2_env.cpu import model_threads, torch_threads
from train.buffer import NodeSample
from train.checkpoint import (
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    truncate,
)
from train.config import Mars2TrainConfig

TIMING_SUFFIXES = (
    "_s",
    "step_time",
)  # metric keys that hold wall-clock values (excluded from repeat checks)


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed mixed from the run seed and counters."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") >> 1


MACHINE_KEYS = frozenset({"torch_threads"})  # set by the machine's load, not by the run


def is_timing_key(key: str) -> bool:
    """Metric keys that hold wall-clock values or what the machine's load chose (excluded
    from checks that a repeated or resumed run logs the same)."""
    return key.endswith(TIMING_SUFFIXES) or key in MACHINE_KEYS


# ---- agents --------------------------------------------------------------------------------


def build_agent(spec: str, name: str, cfg: Mars2TrainConfig, index: int) -> Any:
    """Agent ``index`` of the config (``agents.make_agent``) with the run's sampling settings."""
    from agents import make_agent

    return make_agent(spec, **agent_kwargs(spec, name, cfg, index))


def agent_kwargs(spec: str, name: str, cfg: Mars2TrainConfig, index: int) -> dict[str, Any]:
    """The ``make_agent`` keyword arguments of agent ``index`` (`build_agent`; a Ray
    generation actor builds its agent from the same)."""
    kwargs: dict[str, Any] = dict(
        name=name,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens_of(index),
        seed=derive_seed(cfg.seed, "agent", index),
    )
    if spec.startswith("hf:"):
        kwargs["batch_size"] = cfg.generation_batch_size
        kwargs["stop_at_code_block"] = cfg.stop_at_code_block
        if cfg.torch_threads:  # a fixed count holds for generation too, not just for updates
            kwargs["num_threads"] = cfg.torch_threads
    elif not spec.startswith("vllm:"):
        raise ValueError(
            f"cannot train agent spec {spec!r}: learners need hf:embedded, hf:PATH or vllm:PATH"
        )
    return kwargs


def trainable_parts(agent: Any, spec: str) -> tuple[Any, Any, bool]:
    """(model, tokenizer, shared) for an agent's learner.

    ``shared``: the agent samples from the very model object the learner trains (HFAgent);
    otherwise (vLLM) the learner loads its own copy and pushes weights with ``load_weights``.
    """
    import torch

    model, tok = getattr(agent, "model", None), getattr(agent, "tokenizer", None)
    if isinstance(model, torch.nn.Module) and tok is not None:
        return model, tok, True
    if hasattr(agent, "load_weights"):
        path = getattr(agent, "model_path", None) or spec.split(":", 1)[1]
        return (*load_model(f"vllm:{path}"), False)
    raise TypeError(
        f"agent {spec!r} ({type(agent).__name__}) has no trainable model: it needs a torch "
        "`.model` and `.tokenizer` (HFAgent) or `load_weights` (VLLMAgent)"
    )


def load_model(spec: str) -> tuple[Any, Any]:
    """(model, tokenizer) a learner trains for an agent spec, loaded as that agent loads them:
    ``hf:embedded`` / ``hf:PATH`` like `agents.hf.HFAgent` (so a learner that owns its copy,
    e.g. in a Ray actor, starts from the weights the agent samples with), ``vllm:PATH`` (and
    ``vllm:embedded``) with transformers' ``from_pretrained`` on the engine's model directory."""
    kind, _, path = spec.partition(":")
    if kind not in ("hf", "vllm") or not path:
        raise ValueError(
            f"cannot train agent spec {spec!r}: learners need hf:embedded, hf:PATH or vllm:PATH"
        )
    if kind == "hf" and path == "embedded":
        from agents.embedded import load_embedded

        return load_embedded()
    if path == "embedded":
        from agents.embedded import embedded_model_path

        path = str(embedded_model_path())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if kind == "hf":
        model.eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def learner_args(
    cfg: Mars2TrainConfig, index: int, out: str | os.PathLike, **extra: Any
) -> Any:
    """The TRL `GRPOConfig` of agent ``index``'s learner (``extra``: e.g. ``world_size``,
    ``deepspeed`` for a learner spread over several processes)."""
    from train.learner import make_grpo_config

    return make_grpo_config(
        Path(out) / "learners" / cfg.names[index],
        cfg.buffer_threshold,
        cfg.per_device_train_batch_size,
        optimizer_steps_per_batch=cfg.optimizer_steps_per_batch,
        importance_sampling_level=cfg.importance_sampling_level,
        loss_type=cfg.loss_type,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        beta=cfg.kl_beta,
        use_bias_correction_kl=cfg.kl_bias_correction,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        num_iterations=cfg.num_iterations,
        max_completion_length=cfg.max_new_tokens_of(index),
        # agents report logprobs of the unscaled distribution, so the learner scores at T = 1
        temperature=1.0,
        seed=derive_seed(cfg.seed, "learner", index),
        report_to=list(cfg.report_to),
        bf16=_use_bf16(cfg.bf16),
        **extra,
    )


def build_learner(cfg: Mars2TrainConfig, index: int, model: Any, tokenizer: Any,
                  out: str | os.PathLike, **extra: Any) -> Any:
    """Agent ``index``'s `train.learner.Learner` on ``model`` (``extra``: `learner_args`)."""
    from train.learner import Learner

    return Learner(
        cfg.names[index],
        model,
        tokenizer,
        learner_args(cfg, index, out, **extra),
        cfg.max_steps,
        tis_cap=cfg.tis_cap,
        tis_level=cfg.tis_level,
    )


def agent_state(agent: Any) -> dict[str, Any]:
    if hasattr(agent, "state_dict"):
        return {"state_dict": agent.state_dict()}
    return {"calls": int(getattr(agent, "_calls", 0))}


def load_agent_state(agent: Any, state: dict[str, Any]) -> None:
    if "state_dict" in state:
        agent.load_state_dict(state["state_dict"])
    elif hasattr(agent, "_calls"):
        agent._calls = int(state["calls"])


# ---- the loop ------------------------------------------------------------------------------


class TrainLoop:
    """Runs a training configuration; see the module docstring.

    ``agents`` / ``problems`` / ``executor`` may be passed in (tests, notebooks); by default
    they are built from the config. ``agents`` maps agent name -> agent, in config order.
    ``learners`` (name -> an object with `train.learner.Learner`'s interface, e.g. a learner
    in another process) replaces the learners built here; the agents then get new weights
    through `_sync_weights` (`mars2_ray.train` overrides it and `_generate`).
    """

    def __init__(
        self,
        config: Mars2TrainConfig,
        out_dir: str | os.PathLike,
        agents: dict[str, Any] | None = None,
        problems: Sequence[Any] | None = None,
        executor: Any = None,
        learners: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg = config
        cfg.validate()
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.names = cfg.names
        if problems is None:
            from mars2_env.problems import load_problems

            problems = load_problems(cfg.problems)
        self.problems = list(problems)[: cfg.limit] if cfg.limit else list(problems)
        if not self.problems:
            raise ValueError(f"no problems to train on from {cfg.problems!r} (limit={cfg.limit})")
        if agents is None:
            agents = {
                n: build_agent(s, n, cfg, i)
                for i, (n, s) in enumerate(zip(self.names, cfg.agents, strict=True))
            }
        if list(agents) != self.names:
            raise ValueError(
                f"agents {list(agents)} do not match the configured names {self.names}"
            )
        self.agents = agents
        self.learners: dict[str, Any] = {}
        self._shared: dict[str, bool] = {}
        if learners is not None:
            if list(learners) != self.names:
                raise ValueError(
                    f"learners {list(learners)} do not match the configured names {self.names}"
                )
            self.learners = dict(learners)
            self._shared = {n: False for n in self.names}
        for i, (name, spec) in enumerate(zip(self.names, cfg.agents, strict=True)):
            if learners is not None:
                break
            model, tok, shared = trainable_parts(self.agents[name], spec)
            self.learners[name] = build_learner(cfg, i, model, tok, self.out)
            self._shared[name] = shared
        self._executor = executor
        self._owns_executor = executor is None
        self.round = 0
        self.counters: dict[str, Any] = defaultdict(int)
        self._round_at_ckpt = 0
        self._bar = None
        self._times: dict[str, float] = defaultdict(float)  # this round's time split

    # ---- helpers ---------------------------------------------------------------------
    @property
    def executor(self) -> Any:
        if self._executor is None:
            from mars2_env.execution import Executor
            from mars2_env.problems import TimeLimitPolicy

            limits = TimeLimitPolicy.parse(self.cfg.time_limit_policy).executor_options()
            self._executor = Executor(max_workers=self.cfg.executor_workers, **limits)
        return self._executor

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    @property
    def trees_path(self) -> Path:
        return self.out / "trees.jsonl"

    @property
    def total_updates(self) -> int:
        return sum(lr.updates for lr in self.learners.values())

    @property
    def done(self) -> bool:
        return all(lr.done for lr in self.learners.values())

    def groups(self) -> list[list[str]]:
        """Agent names sharing each search (one search for mars2, one per agent otherwise)."""
        return [list(self.names)] if self.cfg.mode == "mars2" else [[n] for n in self.names]

    def shaping(self) -> tuple[float, float]:
        """(λ, β) of tree-consistent shaping; grpo uses β = 0 (raw rewards, group-normalised)."""
        return self.cfg.shaping_lambda, (0.0 if self.cfg.mode == "grpo" else self.cfg.shaping_beta)

    def round_problems(self, r: int) -> list[Any]:
        """Problems of round ``r``: a pure function of (seed, r), each epoch a fresh permutation."""
        n, k = len(self.problems), self.cfg.max_trees
        out = []
        for idx in range(r * k, (r + 1) * k):
            epoch, pos = divmod(idx, n)
            perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
            out.append(self.problems[int(perm[pos])])
        return out

    def scheduler_factory(self, agents: list[str]):
        from mars2_env.scheduler import ParallelSampling, ThompsonScheduler

        if self.cfg.mode == "grpo":
            return lambda: ParallelSampling(list(agents))
        return lambda: ThompsonScheduler(
            list(agents), prior=self.cfg.prior, refine_scope=self.cfg.refine_scope
        )

    def _log(self, row: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(_finite(row), sort_keys=True, default=_json_default) + "\n")

    # ---- one round -------------------------------------------------------------------
    def run_round(self) -> dict[str, Any]:
        from mars2_env.prompts import TEMPLATE_STYLES
        from mars2_env.vector import BatchedSearch

        cfg, r = self.cfg, self.round
        t0 = time.perf_counter()
        lam, beta = self.shaping()
        problems = self.round_problems(r)
        judge = None if cfg.tests == "all" else "private"
        searches = [
            BatchedSearch(
                problems,
                agents=g,
                budget=cfg.budget,
                scheduler_factory=self.scheduler_factory(g),
                executor=self.executor,
                expansions_per_tree=cfg.expansions_per_tree,
                tests=cfg.tests,
                judge_tests=judge,
                lam=lam,
                beta=beta,
                seed=derive_seed(cfg.seed, "search", r, gi),
                templates=TEMPLATE_STYLES[cfg.prompt_style],
            )
            for gi, g in enumerate(self.groups())
        ]
        stats: dict[str, Any] = defaultdict(float)
        per_agent: dict[str, dict[str, float]] = {n: defaultdict(float) for n in self.names}
        rollouts: dict[tuple, tuple[list[int], int, str | None]] = {}
        self._times = times = defaultdict(float)
        dropped_before = self.counters["stale_dropped"]
        while not all(s.done for s in searches):
            for gi, search in enumerate(searches):
                if search.done:
                    continue
                batch = search.pending()
                g0 = time.perf_counter()
                generated = self._generate(batch)
                times["generation"] += time.perf_counter() - g0
                responses = {}
                for name, items in batch.items():
                    gens = generated[name]
                    version = self.learners[name].updates
                    for it, gen in zip(items, gens, strict=True):
                        ids = tuple(gen.completion_token_ids or ())
                        rollouts[(gi, it.tree_index, name, it.parent_id, ids)] = (
                            list(gen.prompt_token_ids or []),
                            version,
                            gen.finish_reason,
                        )
                        stats["gen_tokens"] += len(ids)
                    responses[name] = gens
                e0 = time.perf_counter()
                finished = search.submit(responses)  # runs the programs, grows the trees
                times["execution"] += time.perf_counter() - e0
                for tree in finished:
                    self._consume_tree(tree, gi, rollouts, stats, per_agent)
                self._update_ready_learners()
        elapsed = time.perf_counter() - t0
        trees = max(stats["trees"], 1)
        row = {
            "event": "round",
            "round": r,
            "mode": cfg.mode,
            "trees": int(stats["trees"]),
            "nodes": int(stats["nodes"]),
            "solved": int(stats["solved"]),
            "pass_rate": stats["solved"] / trees,
            "reward_mean": stats["reward_sum"] / max(stats["nodes"], 1),
            "reward_penalised_mean": stats["penalised_sum"] / max(stats["nodes"], 1),
            "reward_max_mean": stats["reward_max_sum"] / trees,
            "advantage_abs_mean": stats["adv_abs_sum"] / max(stats["samples"], 1),
            "degenerate_trees": int(stats["degenerate"]),
            "untrainable_nodes": int(stats["untrainable"]),
            "samples": int(stats["samples"]),
            "gen_tokens": int(stats["gen_tokens"]),
            "gen_tokens_per_s": stats["gen_tokens"] / max(times["generation"], 1e-9),
            "stale_dropped": int(self.counters["stale_dropped"] - dropped_before),
            "round_time_s": elapsed,
            # where the round's time went (generation, execution, learner updates, weight syncs)
            **{f"time_{k}_s": times[k] for k in ("generation", "execution", "update", "sync")},
            "updates": {n: lr.updates for n, lr in self.learners.items()},
            "buffer": {n: len(lr.buffer) for n, lr in self.learners.items()},
            "agents": {
                n: {
                    "nodes": int(a["nodes"]),
                    "reward_mean": a["reward_sum"] / max(a["nodes"], 1),
                    "solved_nodes": int(a["solved_nodes"]),
                }
                for n, a in per_agent.items()
            },
        }
        for key in ("trees", "nodes", "solved", "degenerate", "samples"):
            self.counters[key] += int(stats[key])
        self._log(row)
        self.round += 1
        return row

    def _consume_tree(self, ft: Any, gi: int, rollouts: dict, stats: dict, per_agent: dict) -> None:
        from mars2_env.rewards import node_records, overlong_penalty, tree_advantages

        cfg = self.cfg
        lam, beta = self.shaping()
        tree = ft.tree
        max_len, buf = cfg.overlong
        nodes = tree.nodes()
        rewards = {}
        for n in nodes:
            length = len(n.token_ids) if n.token_ids is not None else 0
            pen = overlong_penalty(length, max_len, buf) if buf > 0 else 0.0
            rewards[n.id] = float(n.reward) + float(pen)
        adv = tree_advantages(tree, lam=lam, beta=beta, rewards=rewards)
        stats["trees"] += 1
        stats["nodes"] += len(nodes)
        stats["solved"] += int(bool(ft.solved))
        stats["reward_sum"] += sum(n.reward for n in nodes)
        stats["penalised_sum"] += sum(rewards.values())
        stats["reward_max_sum"] += max((n.reward for n in nodes), default=0.0)
        for n in nodes:
            a = per_agent[n.agent]
            a["nodes"] += 1
            a["reward_sum"] += n.reward
            judge = n.private if n.private is not None else n.public
            a["solved_nodes"] += int(bool(judge) and judge.get("verdict") == "passed")
        for n in nodes:  # the policy version (learner updates) that wrote each node
            key = (gi, ft.index, n.agent, n.parent, tuple(n.token_ids or ()))
            if n.agent is not None and key in rollouts:
                n.metadata["policy_version"] = rollouts[key][1]
        tree.metadata.update(
            {
                "round": self.round,
                "mode": cfg.mode,
                "group": gi,
                "degenerate": bool(adv.degenerate),
                "solved": bool(ft.solved),
            }
        )
        with open(self.trees_path, "a") as f:
            f.write(json.dumps(tree.to_dict(), default=_json_default) + "\n")
        if adv.degenerate:
            stats["degenerate"] += 1
            return
        for row in node_records(tree, lam=lam, beta=beta, rewards=rewards):
            node = tree.node(row["node_id"])
            key = (gi, ft.index, node.agent, node.parent, tuple(node.token_ids or ()))
            if node.token_ids is None or key not in rollouts or not rollouts[key][0]:
                stats["untrainable"] += 1  # backend gave no token ids: nothing to train on
                continue
            prompt_ids, version, finish = rollouts[key]
            sample = NodeSample(
                prompt_ids=prompt_ids,
                completion_ids=list(node.token_ids),
                advantage=float(row["advantage"]),
                logprobs=list(node.logprobs) if node.logprobs is not None else None,
                agent=node.agent,
                problem_id=tree.problem_id,
                node_id=node.id,
                reward=rewards[node.id],
                shaped_reward=float(row["shaped_reward"]),
                truncated=finish == "length",
                policy_version=version,
            )
            self.learners[node.agent].buffer.add(sample)
            stats["samples"] += 1
            stats["adv_abs_sum"] += abs(sample.advantage)

    def _generate(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Each agent's responses to its pending expansions (one generate call per agent)."""
        return {
            name: self.agents[name].generate([it.observation for it in items])
            for name, items in batch.items()
        }

    def _sync_weights(self, name: str) -> None:
        """Give agent ``name`` its learner's current weights (nothing to do when they share
        the model object)."""
        if not self._shared[name]:
            self.agents[name].load_weights(self.learners[name].model.state_dict())

    def _update_ready_learners(self) -> None:
        """Every learner whose buffer holds a full batch updates (after dropping samples older
        than ``max_staleness``), then its agent gets the new weights."""
        import torch

        for name, learner in self.learners.items():
            while True:
                dropped = learner.drop_stale(self.cfg.max_staleness)
                self.counters["stale_dropped"] += dropped
                if not learner.ready():
                    break
                u0 = time.perf_counter()
                threads = self._update_threads(learner)
                with torch_threads(threads):
                    logs = learner.update()
                logs["torch_threads"] = threads or torch.get_num_threads()
                s0 = time.perf_counter()
                self._sync_weights(name)
                self._times["update"] += s0 - u0
                self._times["sync"] += time.perf_counter() - s0
                self._log_update(name, logs, len(learner.buffer), dropped)

    def _update_threads(self, learner: Any) -> int | None:
        """Torch threads for a CPU learner's update: ``torch_threads`` if it fixes them, else
        the cores idle right now (`mars2_env.cpu.model_threads`); None for a GPU learner. Set
        around the update and restored after it."""
        if next(learner.model.parameters()).device.type != "cpu":
            return None
        return self.cfg.torch_threads or model_threads()

    def _log_update(self, name: str, logs: dict[str, Any], buffer_left: int, dropped: int) -> None:
        row = {
            "event": "update",
            "agent": name,
            "round": self.round,
            **logs,
            "buffer_left": buffer_left,
            "stale_dropped": dropped,
        }
        self._log(row)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                round=self.round,
                loss=f"{logs.get('loss', float('nan')):.3g}",
                reward=f"{logs.get('reward', float('nan')):.3f}",
            )

    # ---- run management --------------------------------------------------------------
    def loop_state(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "counters": dict(self.counters),
            "updates": {n: lr.updates for n, lr in self.learners.items()},
            "metrics_bytes": self.metrics_path.stat().st_size if self.metrics_path.exists() else 0,
            "trees_bytes": self.trees_path.stat().st_size if self.trees_path.exists() else 0,
            "agents": {n: agent_state(a) for n, a in self.agents.items()},
            "config": self.cfg.to_dict(),
        }

    def checkpoint(self) -> Path:
        path = save_checkpoint(
            self.out / "checkpoints",
            checkpoint_name(self.round),
            self.loop_state(),
            self.learners,
            keep=self.cfg.keep_last,
        )
        self._round_at_ckpt = self.round
        return path

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load the latest (or given) checkpoint; False when there is none (fresh start)."""
        ckpt = Path(path) if path is not None else latest_checkpoint(self.out / "checkpoints")
        if ckpt is None:
            return False
        state = load_checkpoint(ckpt, self.learners)
        self.round = int(state["round"])
        self.counters = defaultdict(int, state["counters"])
        for name, st in state["agents"].items():
            load_agent_state(self.agents[name], st)
        for name in self.learners:
            self._sync_weights(name)
        truncate(self.metrics_path, int(state["metrics_bytes"]))
        truncate(self.trees_path, int(state["trees_bytes"]))
        self._round_at_ckpt = self.round
        return True

    def _save_config(self) -> None:
        """``config.yaml``: what `mars2 train --resume` reads back when given no ``--config``."""
        self.cfg.to_yaml(self.out / "config.yaml")

    def run(self, max_rounds: int | None = None) -> dict[str, Any]:
        """Rounds until every learner did ``max_steps`` updates (or ``max_rounds`` / the argument)."""
        cfg = self.cfg
        self._save_config()  # the effective config (a resume may have changed it)
        limit = cfg.max_rounds
        rounds_here = 0
        progress = None
        if cfg.progress:
            from tqdm.auto import tqdm

            progress = tqdm(
                total=cfg.max_steps * len(self.learners),
                initial=self.total_updates,
                desc=f"mars2 train ({cfg.mode})",
                unit="update",
                dynamic_ncols=True,
            )
        self._bar = progress
        t0 = time.perf_counter()
        out_of_time = False
        try:
            while (
                not self.done
                and (limit is None or self.round < limit)
                and (max_rounds is None or rounds_here < max_rounds)
            ):
                if cfg.max_time_s is not None and time.perf_counter() - t0 >= cfg.max_time_s:
                    out_of_time = True
                    break
                self.run_round()
                rounds_here += 1
                if self.round % cfg.checkpoint_every == 0:
                    self.checkpoint()
            if self.round != self._round_at_ckpt:
                self.checkpoint()  # the state at the stop, so --resume (e.g. with a larger --max-steps) goes on
        finally:
            if progress is not None:
                progress.close()
            self._bar = None
        summary = {
            "rounds": self.round,
            "updates": {n: lr.updates for n, lr in self.learners.items()},
            "done": self.done,
            **{k: int(v) for k, v in self.counters.items()},
            "time_s": time.perf_counter() - t0,
            "out_of_time": out_of_time,
        }
        # a run stopped by its time budget is finished as planned: save its models too
        if (self.done or out_of_time) and cfg.save_final:
            self.save_final()
        (self.out / "train_summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n"
        )
        return summary

    def save_final(self) -> None:
        """Trained models + tokenizers in Hugging Face format: usable as ``hf:OUT/final/<agent>``."""
        for name, learner in self.learners.items():
            d = self.out / "final" / name
            learner.model.save_pretrained(d)
            learner.tokenizer.save_pretrained(d)

    def close(self) -> None:
        for learner in self.learners.values():
            learner.close()
        for agent in self.agents.values():
            close = getattr(agent, "close", None)
            if close is not None:
                close()
        if self._owns_executor and self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> TrainLoop:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _use_bf16(setting: bool | None) -> bool:
    import torch

    if setting is not None:
        return bool(setting)
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _finite(x: Any) -> Any:
    """Replace NaN / inf (not valid JSON) by None, recursively."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


def train(
    config: Mars2TrainConfig, out_dir: str | os.PathLike, resume: bool = False
) -> dict[str, Any]:
    """Build the loop from the config, optionally resume, run to the end, clean up."""
    with TrainLoop(config, out_dir) as loop:
        if resume and not loop.resume():
            raise FileNotFoundError(
                f"--resume: no checkpoint under {Path(out_dir) / 'checkpoints'}"
            )
        return loop.run()
