"""`Mars2TrainConfig`: every option of a training run, TRL-style (a dataclass with help text).

Loadable from YAML (keys = field names, dashes or underscores) and overridable by the
``mars2 train`` flags, which are generated from the fields (``max_steps`` -> ``--max-steps``).
The three modes share every field, so GRPO, RS² and MARS² runs compare on the same data,
budgets and optimiser settings.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MODES = ("grpo", "rs2", "mars2")
#: Old option names still read (with a warning): one name per option across `mars2` commands.
DEPRECATED_NAMES = {"trees_per_round": "max_trees", "workers": "executor_workers"}

#: options that were renamed or removed, and what to write instead (said when one is used)
RENAMED_OPTIONS = {
    "keep_checkpoints": "keep_checkpoints was renamed keep_last (the N newest checkpoints are kept)",
    "shaping_alpha": (
        "shaping_alpha was replaced by shaping_lambda, the paper's λ (Eq. 3), which weights the "
        "siblings instead of the parent: b = (1 - λ) * r_parent + λ * mean(r_siblings). "
        "shaping_alpha weighted the parent, so the same baseline is shaping_lambda = "
        "1 - shaping_alpha"
    ),
}


def renamed_option_error(name: str, source: str = "config") -> str | None:
    """The message for a renamed option (``name`` with dashes or underscores), else None."""
    msg = RENAMED_OPTIONS.get(str(name).replace("-", "_").lstrip("_"))
    return None if msg is None else f"{source}: {msg}"


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class Mars2TrainConfig:
    """Options of `mars2 train` (GRPO / RS² / MARS² training of agents with GSPO)."""

    # --- what to train on ------------------------------------------------------------------
    mode: str = _f(
        "mars2",
        "grpo: G independent samples per problem, group-normalised advantages; "
        "rs2: one agent's tree search, tree advantages; mars2: all agents share each tree",
        choices=MODES,
    )
    problems: str = _f(
        "builtin:demo", "problem source for mars2_env.problems.load_problems (name or JSONL)"
    )
    limit: int | None = _f(None, "use only the first N problems")
    agents: list[str] = _f(
        ["hf:embedded", "hf:embedded"],
        "agent specs (hf:embedded, hf:PATH, vllm:PATH); "
        "each gets its own learner. grpo/rs2 train each agent on its own trees",
    )
    agent_names: list[str] | None = _f(None, "names of the agents (default coder_0, coder_1, ...)")
    budget: int = _f(8, "nodes per tree (= G, the group size, in grpo mode)")
    max_trees: int = _f(4, "trees in flight at once = problems searched per rollout round "
                           "(was trees_per_round)")
    expansions_per_tree: int = _f(1, "expansions one tree may have in flight per generation batch")
    tests: str = _f("all", "tests that reward a node during training: public, private or all")
    prior: str = _f("beta", "Thompson-sampling prior of the tree scheduler (rs2/mars2)")
    refine_scope: str = _f(
        "own",
        "which nodes an agent may refine (rs2/mars2): own = only nodes it wrote itself (the "
        "paper, §2.1), any = any node of the shared tree",
        choices=("own", "any"),
    )
    shaping_lambda: float = _f(
        0.5,
        "λ of tree-consistent shaping (Eq. 3): baseline b = (1 - λ) * r_parent + "
        "λ * mean(r_siblings); λ weights the siblings (mars2_env.rewards)",
    )
    shaping_beta: float = _f(
        0.5, "shaping strength: shaped = r + beta * (r - b); grpo mode uses 0 (raw rewards)"
    )
    # --- generation ------------------------------------------------------------------------
    max_new_tokens: int = _f(512, "tokens an agent may write per node")
    agent_max_new_tokens: list[int] | None = _f(
        None, "per-agent max_new_tokens, in agent order (default: max_new_tokens for every agent)"
    )
    temperature: float = _f(1.0, "sampling temperature of the agents")
    top_p: float = _f(1.0, "nucleus sampling of the agents")
    generation_batch_size: int = _f(8, "prompts per generate call (HF agents)")
    prompt_style: str = _f(
        "default",
        "prompt templates (mars2_env.prompts.TEMPLATE_STYLES): default, or compact for very "
        "small models",
        choices=("default", "compact"),
    )
    stop_at_code_block: bool = _f(
        False,
        "HF agents end a response at its first complete ```python block (small models mostly "
        "chatter after it; saves most generation time on a CPU)",
    )
    overlong_max_length: int | None = _f(
        None, "DAPO overlong penalty: maximum length (default max_new_tokens)"
    )
    overlong_buffer_length: int | None = _f(
        None,
        "DAPO overlong penalty: soft buffer before the maximum "
        "(default max_new_tokens // 4; 0 disables)",
    )
    # --- learner (GSPO through TRL) ---------------------------------------------------------
    max_steps: int = _f(100, "updates per learner; the run ends when every learner has done them")
    buffer_threshold: int = _f(
        16, "samples a learner's buffer must hold before it updates (one batch)"
    )
    per_device_train_batch_size: int = _f(
        4, "micro-batch size; buffer_threshold must be a multiple of it"
    )
    optimizer_steps_per_batch: int = _f(
        1,
        "optimizer steps per buffer batch: the batch is split into this many train batches, each "
        "one optimizer step, so every step after the first is off-policy and GSPO's clip can "
        "engage (the paper: rollout batch 512, train batch 256 -> 2). TRL's "
        "steps_per_generation / gradient_accumulation_steps",
    )
    num_iterations: int = _f(
        1, "passes over each buffer batch (mu in GRPO); each pass takes optimizer_steps_per_batch steps"
    )
    learning_rate: float = _f(1e-6, "AdamW learning rate")
    lr_scheduler_type: str = _f(
        "constant", "transformers LR schedule (constant, linear, cosine, ...)"
    )
    warmup_steps: int = _f(0, "LR warm-up optimizer steps")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping (0 disables)")
    importance_sampling_level: str = _f(
        "sequence", "sequence = GSPO, token = GRPO", choices=("sequence", "token")
    )
    loss_type: str = _f("grpo", "TRL loss aggregation (grpo = per-sequence mean, as in GSPO)")
    epsilon: float = _f(3e-4, "lower clipping range of the importance ratio")
    epsilon_high: float = _f(4e-4, "upper clipping range of the importance ratio")
    kl_beta: float = _f(
        1e-3, "KL coefficient to the frozen initial model (k3 estimator); 0 drops the reference"
    )
    kl_bias_correction: bool = _f(
        False,
        "TRL's use_bias_correction_kl: multiply the k3 KL by the importance ratio. The paper uses "
        "plain k3 (false); TRL's own default is true",
    )
    tis_cap: float | None = _f(
        2.0, "truncated importance sampling cap C in min(pi_train/pi_rollout, C); none disables"
    )
    tis_level: str = _f(
        "token", "TIS weight per token or per sequence", choices=("token", "sequence")
    )
    max_staleness: int | None = _f(
        None,
        "staleness bound: before an update, drop buffered samples written by a policy more than "
        "this many learner updates behind (0: only samples of the current weights; none: keep "
        "all); dropped samples are counted (stale_dropped in metrics.jsonl)",
    )
    bf16: bool | None = _f(
        None,
        "bf16 autocast in the learner (default: on with a bf16 GPU, off on CPU, "
        "where it is ~10x slower)",
    )
    # --- run management -------------------------------------------------------------------
    seed: int = _f(0, "seed of problem order, schedulers, agents and learners")
    max_rounds: int | None = _f(None, "stop after this many rollout rounds even if updates remain")
    max_time_s: float | None = _f(
        None,
        "wall-clock budget in seconds: no new rollout round starts after it (the round in "
        "flight finishes), so a run does as many updates as fit",
    )
    checkpoint_every: int = _f(
        10,
        "rollout rounds between checkpoints (a checkpoint is taken at a round boundary, and always "
        "one when the run stops). With the embedded model one is ~1.6 GB per agent: weights plus "
        "AdamW's two moments in fp32, all needed for an exact resume",
    )
    keep_last: int = _f(
        2,
        "checkpoints kept on disk: the N newest; older ones are deleted only after a newer one "
        "is complete, so the one a run resumed from survives until then",
    )
    report_to: list[str] = _f(
        [], "TRL/transformers loggers besides metrics.jsonl: tensorboard, wandb, ..."
    )
    executor_workers: int | None = _f(None, "sandbox workers (default: one per core)")
    time_limit_policy: str = _f(
        "dataset",
        "per-test time limit: dataset (each problem's own), SECONDS for every test, or xFACTOR "
        "times the dataset's (mars2_env.problems.TimeLimitPolicy)",
    )
    torch_threads: int | None = _f(
        None, "torch CPU threads for generation and updates (default: each takes the cores idle "
        "at its start, mars2_env.cpu.model_threads; fix it for a run that repeats bit for bit, "
        "since the thread count changes float rounding)"
    )
    save_final: bool = _f(
        True, "save every trained model + tokenizer under OUT/final/<agent> at the end"
    )
    progress: bool = _f(True, "show a progress bar")
    out: str | None = _f(None, "output directory (default runs/<time>)", cli=False)
    resume: bool = _f(False, "continue the run in --out from its latest checkpoint", cli=False)

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived values ------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return (
            list(self.agent_names)
            if self.agent_names
            else [f"coder_{i}" for i in range(len(self.agents))]
        )

    def max_new_tokens_of(self, index: int) -> int:
        """Generation length of the agent at ``index``."""
        if self.agent_max_new_tokens is not None:
            return int(self.agent_max_new_tokens[index])
        return int(self.max_new_tokens)

    @property
    def overlong(self) -> tuple[int, int]:
        """(max_length, buffer_length) of the DAPO overlong penalty."""
        max_len = (
            self.overlong_max_length
            if self.overlong_max_length is not None
            else self.max_new_tokens
        )
        buf = (
            self.overlong_buffer_length
            if self.overlong_buffer_length is not None
            else self.max_new_tokens // 4
        )
        return int(max_len), int(buf)

    def validate(self) -> None:
        """Raise ValueError naming the option when a value is out of range."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"Mars2TrainConfig: {msg}")

        need(self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}")
        try:
            from mars2_env.problems import TimeLimitPolicy

            TimeLimitPolicy.parse(self.time_limit_policy)
        except ValueError as e:
            need(False, f"time_limit_policy: {e}")
        need(
            isinstance(self.agents, list) and len(self.agents) >= 1,
            "agents must list at least one agent spec",
        )
        if self.agent_names is not None:
            need(
                len(self.agent_names) == len(self.agents),
                f"agent_names has {len(self.agent_names)} names for {len(self.agents)} agents",
            )
        need(
            len(set(self.names)) == len(self.names), f"agent names must be unique, got {self.names}"
        )
        need(self.budget >= 2, f"budget must be >= 2 nodes per tree (a group), got {self.budget}")
        need(self.max_trees >= 1, f"max_trees must be >= 1, got {self.max_trees}")
        need(
            self.expansions_per_tree >= 1,
            f"expansions_per_tree must be >= 1, got {self.expansions_per_tree}",
        )
        need(
            self.prior in ("beta", "gaussian"),
            f"prior must be beta or gaussian, got {self.prior!r}",
        )
        need(
            self.tests in ("public", "private", "all"),
            f"tests must be public, private or all, got {self.tests!r}",
        )
        need(
            self.refine_scope in ("own", "any"),
            f"refine_scope must be own or any, got {self.refine_scope!r}",
        )
        for name in ("shaping_lambda", "shaping_beta"):
            v = getattr(self, name)
            need(0 <= v <= 1, f"{name} must be in [0, 1], got {v}")
        need(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.agent_max_new_tokens is not None:
            need(
                len(self.agent_max_new_tokens) == len(self.agents)
                and min(self.agent_max_new_tokens) >= 1,
                f"agent_max_new_tokens needs one value >= 1 per agent ({len(self.agents)}), "
                f"got {self.agent_max_new_tokens}",
            )
        need(self.temperature > 0, f"temperature must be > 0 for sampling, got {self.temperature}")
        need(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        max_len, buf = self.overlong
        need(
            0 <= buf < max_len,
            f"overlong buffer ({buf}) must be >= 0 and below the max length ({max_len})",
        )
        need(self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}")
        need(
            self.buffer_threshold >= 2,
            f"buffer_threshold must be >= 2, got {self.buffer_threshold}",
        )
        need(
            self.per_device_train_batch_size >= 1
            and self.buffer_threshold % self.per_device_train_batch_size == 0,
            f"buffer_threshold ({self.buffer_threshold}) must be a multiple of per_device_train_batch_size "
            f"({self.per_device_train_batch_size})",
        )
        need(
            self.optimizer_steps_per_batch >= 1,
            f"optimizer_steps_per_batch must be >= 1, got {self.optimizer_steps_per_batch}",
        )
        need(
            self.buffer_threshold
            % (self.per_device_train_batch_size * self.optimizer_steps_per_batch) == 0,
            f"buffer_threshold ({self.buffer_threshold}) must be a multiple of "
            f"per_device_train_batch_size ({self.per_device_train_batch_size}) x "
            f"optimizer_steps_per_batch ({self.optimizer_steps_per_batch}): each optimizer step "
            "takes a whole number of micro-batches",
        )
        need(self.num_iterations >= 1, f"num_iterations must be >= 1, got {self.num_iterations}")
        need(self.learning_rate >= 0, f"learning_rate must be >= 0, got {self.learning_rate}")
        need(self.epsilon >= 0 and self.epsilon_high >= 0, "epsilon and epsilon_high must be >= 0")
        need(self.kl_beta >= 0, f"kl_beta must be >= 0, got {self.kl_beta}")
        need(
            self.tis_cap is None or self.tis_cap > 0,
            f"tis_cap must be > 0 or none, got {self.tis_cap}",
        )
        need(
            self.tis_level in ("token", "sequence"),
            f"tis_level must be token or sequence, got {self.tis_level!r}",
        )
        need(
            self.max_staleness is None or self.max_staleness >= 0,
            f"max_staleness must be >= 0 or none, got {self.max_staleness}",
        )
        need(
            self.importance_sampling_level in ("sequence", "token"),
            f"importance_sampling_level must be sequence or token, got {self.importance_sampling_level!r}",
        )
        need(
            self.checkpoint_every >= 1,
            f"checkpoint_every must be >= 1, got {self.checkpoint_every}",
        )
        need(self.keep_last >= 1, f"keep_last must be >= 1, got {self.keep_last}")
        need(
            self.max_rounds is None or self.max_rounds >= 1,
            f"max_rounds must be >= 1, got {self.max_rounds}",
        )
        need(
            self.max_time_s is None or self.max_time_s > 0,
            f"max_time_s must be > 0 or none, got {self.max_time_s}",
        )
        from mars2_env.prompts import TEMPLATE_STYLES

        need(
            self.prompt_style in TEMPLATE_STYLES,
            f"prompt_style must be one of {sorted(TEMPLATE_STYLES)}, got {self.prompt_style!r}",
        )

    # ---- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        d = {k: v for k, v in self.to_dict().items() if k not in ("out", "resume")}
        text = yaml.safe_dump(d, sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Mars2TrainConfig:
        """Build from a mapping; an unknown key is an error that names it and lists the valid ones."""
        if not isinstance(data, dict):
            raise ValueError(
                f"{source} must be a mapping of option names to values, got {type(data).__name__}"
            )
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in data.items():
            k = str(key).replace("-", "_")
            renamed = renamed_option_error(k, source)
            if renamed:
                raise ValueError(renamed)
            if k in DEPRECATED_NAMES:
                new = DEPRECATED_NAMES[k]
                print(f"mars2: option {key!r} in {source} is deprecated and will be removed; use "
                      f"{new!r}", file=sys.stderr)
                k = new
            if k not in names:
                raise ValueError(
                    f"unknown option {key!r} in {source}; valid options: {', '.join(sorted(names))}"
                )
            kwargs[k] = coerce(names[k], value, source)
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> Mars2TrainConfig:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{p} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p} must hold a mapping of option names to values")
        data.update(overrides)
        return cls.from_dict(data, source=str(p))

    def replace(self, **changes: Any) -> Mars2TrainConfig:
        return dataclasses.replace(self, **changes)


def field_type(f: dataclasses.Field) -> tuple[type, bool, bool]:
    """(scalar type, is_list, is_optional) of a config field."""
    hints = typing.get_type_hints(Mars2TrainConfig)
    tp = hints[f.name]
    optional = False
    args = typing.get_args(tp)
    if type(None) in args:
        optional = True
        tp = next(a for a in args if a is not type(None))
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0], True, optional
    return tp, False, optional


def _scalar(tp: type, value: Any, optional: bool, name: str, source: str) -> Any:
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if not optional:
            raise ValueError(f"{name} in {source} cannot be null")
        return None
    try:
        if tp is bool:
            if isinstance(value, str):
                low = value.lower()
                if low in ("true", "yes", "1", "on"):
                    return True
                if low in ("false", "no", "0", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return tp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} in {source} must be {tp.__name__}, got {value!r}") from None


def coerce(f: dataclasses.Field, value: Any, source: str = "config") -> Any:
    """Convert a YAML / command-line value to the field's type (clear error otherwise)."""
    tp, is_list, optional = field_type(f)
    if is_list:
        if value is None and optional:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{f.name} in {source} must be a list, got {value!r}")
        return [_scalar(tp, v, False, f.name, source) for v in value]
    return _scalar(tp, value, optional, f.name, source)
