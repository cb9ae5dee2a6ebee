"""`mars2 train --ray`: the training loop of `train.loop.TrainLoop` with its heavy parts in Ray
actors.

The driver keeps what the single-process loop keeps — rounds, trees, shaping, advantages, the
per-agent sample streams and the decisions of when to drop stale samples and when to update —
and moves the rest into actors placed by the plan (`mars2_ray.placement`):

* generation: one pool of engines per agent (`GenerationPool`: transformers on CPU, vLLM on
  GPU), all agents' batches in flight at once;
* execution: executor actors (`RayExecutor`);
* learning: one learner per agent (`RemoteLearner`: TRL's trainer in one process, or several
  under accelerate / DeepSpeed), every learner with a full batch updating at the same time;
* weight sync: after its learner's update, an agent's engines — and only that agent's — load
  the new weights from the object store (`RemoteLearner.publish_weights` ->
  `GenerationPool.load_weights`; vLLM's own weight-update call on GPU), before the next
  generation batch.

Each sample records the policy version (its learner's update count) that wrote it; with
``max_staleness`` a learner drops samples more versions behind than that before an update, and
the drops are counted (``stale_dropped``). Checkpoints are the single-process loop's, with each
learner writing its own shard; ``resume`` restores the learners, the engines' sampling states
and their weights.

With one engine per agent a run gives the single-process loop's trees and losses (up to the
order of float sums): every engine answers the same calls in the same order with the same
weights, and the executor actors give the same verdicts.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from train.config import Mars2TrainConfig
from train.loop import TrainLoop, agent_kwargs

__all__ = ["RayTrainLoop", "train_on_ray", "check_train_options"]


def check_train_options(options: Any, config: Mars2TrainConfig) -> Any:
    """The Ray options of a training run, checked against its config: every agent generates in
    actors, one search driver; the config's ``executor_workers`` sizes the executor actors
    unless ``--executor-cpus`` does."""
    n = len(config.agents)
    for i in range(n):
        if options.per_agent("generation_actors", i, n) < 1:
            raise ValueError("mars2 train --ray needs --generation-actors >= 1 for every agent: "
                             "the engines run in actors and get each update's weights there")
        options.learner_shape(i, n)
    if options.rollout_workers != 1:
        raise ValueError("mars2 train --ray runs one search driver: --rollout-workers must be 1")
    if options.executor_cpus is None and config.executor_workers:
        options = dataclasses.replace(options, executor_cpus=config.executor_workers)
    if options.deepspeed is not None:
        options = dataclasses.replace(options, deepspeed=_deepspeed_file(options.deepspeed))
    return options


def _deepspeed_file(path: str) -> str:
    """The DeepSpeed config as an absolute path (the learner processes may start in another
    directory), checked to be a JSON object with a ZeRO stage."""
    import json

    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(f"--deepspeed: no such file {path} (see examples/deepspeed/)")
    try:
        data = json.loads(file.read_text())
    except ValueError as exc:
        raise ValueError(f"--deepspeed: {path} is not JSON: {exc}") from None
    stage = data.get("zero_optimization", {}).get("stage") if isinstance(data, dict) else None
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"--deepspeed: {path} sets no zero_optimization.stage (0-3)")
    return str(file)


class RayTrainLoop(TrainLoop):
    """`TrainLoop` whose agents, learners and executor are Ray actors of `session` (a
    `mars2_ray.session.RaySession` planned with learners)."""

    def __init__(self, config: Mars2TrainConfig, out_dir: str | os.PathLike, session: Any,
                 problems: Any = None) -> None:
        from mars2_env.problems import TimeLimitPolicy

        config.validate()
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        self.session = session
        names = config.names
        # start every learner first (each loads its model), then the engines, then wait
        learners = {name: session.learner(config, i, out_dir) for i, name in enumerate(names)}
        agents = {name: session.agent(spec, **agent_kwargs(spec, name, config, i))
                  for i, (name, spec) in enumerate(zip(names, config.agents, strict=True))}
        for learner in learners.values():
            learner.wait_ready()
        limits = TimeLimitPolicy.parse(config.time_limit_policy).executor_options()
        executor = session.executor(**limits)
        super().__init__(config, out_dir, agents=agents, problems=problems, executor=executor,
                         learners=learners)

    # ---- the hooks of TrainLoop -------------------------------------------------------------
    def _save_config(self) -> None:
        """The run's config and its Ray options, so ``--resume`` alone runs on Ray again."""
        text = self.cfg.to_yaml() + yaml.safe_dump(self.session.options.yaml_keys(),
                                                   sort_keys=False)
        (self.out / "config.yaml").write_text(text)

    def _generate(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Every agent's batch is sent to its engines at once, then collected."""
        pending = {name: self.agents[name].generate_async([it.observation for it in items])
                   for name, items in batch.items()}
        return {name: call.result() for name, call in pending.items()}

    def _sync_weights(self, name: str) -> None:
        self._sync_many([name])

    def _sync_many(self, names: list[str]) -> None:
        """Each named agent's engines load its learner's current weights (all at once)."""
        refs = {n: self.learners[n].publish_weights() for n in names}
        loads = [self.agents[n].load_weights_async(refs[n], version=self.learners[n].updates)
                 for n in names]
        for load in loads:
            load.result()

    def _update_ready_learners(self) -> None:
        """The single-process loop's decisions (drop stale samples, update while a batch is
        full), taken on the driver's mirror of each buffer; the updates of all learners run
        at the same time, then the updated agents' engines get the new weights."""
        started = []
        for name, learner in self.learners.items():
            while True:
                dropped = learner.drop_stale(self.cfg.max_staleness)
                self.counters["stale_dropped"] += dropped
                if not learner.ready():
                    break
                started.append((name, learner.start_update(), len(learner.buffer), dropped))
        if not started:
            return
        u0 = time.perf_counter()
        done = [(name, call.result(), left, dropped) for name, call, left, dropped in started]
        s0 = time.perf_counter()
        self._sync_many(list(dict.fromkeys(name for name, *_ in started)))
        self._times["update"] += s0 - u0
        self._times["sync"] += time.perf_counter() - s0
        for name, logs, left, dropped in done:
            self._log_update(name, logs, left, dropped)

    def save_final(self) -> None:
        for name, learner in self.learners.items():
            learner.save_final(self.out / "final" / name)

    # ---- checks -------------------------------------------------------------------------------
    def weights_hashes(self) -> dict[str, dict[str, Any]]:
        """Per agent: its learner's weight hash and each of its engines' (tests, diagnostics)."""
        return {name: {"learner": self.learners[name].weights_hash(),
                       "engines": self.agents[name].weights_hash()}
                for name in self.names}


def train_on_ray(config: Mars2TrainConfig, out_dir: str | os.PathLike, options: Any,
                 resume: bool = False, problems: Any = None) -> dict[str, Any]:
    """`train.loop.train` on Ray: connect (or start a local Ray), plan and print the placement,
    start the actors, optionally resume, run to the end, tear everything down."""
    from mars2_ray.session import RaySession

    options = check_train_options(options, config)
    with RaySession(options, list(zip(config.names, config.agents, strict=True)),
                    learners=True) as session:
        print(session.plan.format(), file=sys.stderr, flush=True)
        with RayTrainLoop(config, out_dir, session, problems=problems) as loop:
            if resume and not loop.resume():
                raise FileNotFoundError(
                    f"--resume: no checkpoint under {Path(out_dir) / 'checkpoints'}")
            return loop.run()
