"""`HFAgent`: batched sampling with a transformers causal LM (CPU or GPU), with logprobs.

Prompts are rendered with the tokenizer's chat template and left-padded into batches. Every row
of a batch samples from its own `torch.Generator`, seeded from the agent seed and the request's
seed (per-request ``seeds``, what `BatchedSearch` hands out) or a call counter and the row's
position (no seeds): `_SeededRows` applies transformers' own temperature / top-k / top-p warpers
and draws each row's token with ``torch.multinomial(probs, 1, generator=row's)`` - the very
draw ``generate(do_sample=True)`` makes after ``torch.manual_seed(seed)`` for a batch of one -
under greedy decoding, so a response depends on its own seed and prompt alone, whatever else is
in the batch, and the caller's RNG state is never touched. A seeded agent repeats its outputs
run after run, and batching (of requests, and of agents sharing a model: `generate_together`)
costs nothing in reproducibility.

One caveat: a left-padded batched forward pass can differ from a lone one in the last float
bits, which could flip a sampled token only when the row's uniform draw falls within ~1e-7 of a
boundary between two tokens' cumulative probabilities. `benchmarks/generation.py
--check-invariance N` counts how many of N seeded responses of the embedded model differ
between batch 8 and one at a time.

Torch threads follow the phase: unless ``num_threads`` is given, each generation runs with the
cores nothing else runs on at that moment, other processes and this process's busy sandbox
workers (`mars2_env.cpu.model_threads`), at least one; the previous thread count is restored
afterwards.

Returned logprobs are those of the *unscaled* model distribution (log-softmax of the raw
logits at temperature 1, before top-p/top-k), i.e. what a learner's forward pass recomputes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.base import BaseAgent, Generation, Messages, derive_seed, resolve_seed
from mars2_env.cpu import model_threads, torch_threads


class HFAgent(BaseAgent):
    """Sampling agent over a transformers ``(model, tokenizer)`` pair.

    The model object is used as is (no copy), so a learner that updates it in place changes
    what this agent samples next. ``top_k=0`` (the default) disables top-k filtering, unlike
    transformers' own default of 50. ``temperature=0`` means greedy decoding.
    ``num_threads`` fixes torch's CPU thread count for generation when the model is on the CPU
    (default: follow the phase, module docstring). ``stop_at_code_block=True`` ends a response as soon as it holds a
    complete ```python block (`prompts.has_closed_code_block`): the environment uses the last
    python block, and a small model's text after its first block is mostly chatter, so on a CPU
    this saves most of the generation time; leave it off for models that draft and revise.
    """

    _static_attrs = ("model", "tokenizer")

    def __init__(self, model: Any, tokenizer: Any, name: str | None = None, *,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 max_new_tokens: int = 512, seed: int | None = None, batch_size: int = 8,
                 num_threads: int | None = None, device: str | None = None,
                 stop_at_code_block: bool = False) -> None:
        import torch

        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or f"hf:{getattr(model.config, '_name_or_path', '') or 'model'}"
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = int(top_k)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.stop_at_code_block = bool(stop_at_code_block)
        self.seed = resolve_seed(seed)
        self._calls = 0
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.follow_executor = self.device.type == "cpu" and not num_threads
        if self.device.type == "cpu":
            self.num_threads = int(num_threads) if num_threads else model_threads()
            torch.set_num_threads(self.num_threads)
        else:
            self.num_threads = num_threads
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, (list, tuple)) else [eos])

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_name: str, *, dtype: Any = None, device: str | None = None,
                        **kwargs: Any) -> HFAgent:
        """Load a local directory (or a hub name already in the local cache)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        extra = {"dtype": dtype} if dtype is not None else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_name)
            model = AutoModelForCausalLM.from_pretrained(path_or_name, **extra)
        except OSError as exc:
            raise OSError(f"cannot load a transformers model from {path_or_name!r}: give a local "
                          f"model directory (or a hub name present in the local cache): {exc}"
                          ) from exc
        model.to(device).eval()
        kwargs.setdefault("name", f"hf:{path_or_name}")
        return cls(model, tokenizer, **kwargs)

    @classmethod
    def embedded(cls, *, device: str | None = None, **kwargs: Any) -> HFAgent:
        """The embedded SmolLM2-135M-Instruct (see `agents.embedded`), float32 on the CPU."""
        from agents.embedded import load_embedded

        model, tokenizer = load_embedded(device=device)
        kwargs.setdefault("name", "hf:embedded")
        return cls(model, tokenizer, **kwargs)

    def load_weights(self, state_dict: Any) -> None:
        """Copy a learner's weights (a state dict with this model's parameter names) into the
        model in place, as `agents.vllm_agent.VLLMAgent.load_weights` does into its engine."""
        self.model.load_state_dict(dict(state_dict))

    # -- generation ---------------------------------------------------------------------------

    def encode_prompt(self, messages: Messages) -> list[int]:
        """Token ids of the chat-templated prompt (generation prompt appended)."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def sampling_key(self) -> tuple:
        """Agents with equal keys sample from the same model object with the same settings,
        so one batch can serve them all (`generate_together`)."""
        return (id(self.model), id(self.tokenizer), self.temperature, self.top_p, self.top_k,
                self.max_new_tokens, self.stop_at_code_block, self.batch_size)

    @staticmethod
    def generate_group(agents: Sequence[HFAgent], observation_lists: Sequence[list[dict]],
                       seeds: Sequence[Sequence[int]] | None = None) -> list[list[Generation]]:
        """`generate_together` (what `mars2_env.vector.respond` calls for agents of one key)."""
        return generate_together(agents, observation_lists, seeds=seeds)

    def row_seeds(self, n: int, seeds: Sequence[int] | None = None) -> list[int]:
        """The sampling seed of each of `n` rows: from each request's seed, else from this
        call's number and the row's position (the call counter advances)."""
        if seeds is not None:
            return [derive_seed(self.seed, s) for s in seeds]
        call = self._calls
        self._calls += 1
        return [derive_seed(self.seed, call, i) for i in range(n)]

    def generate_messages(self, batch: Sequence[Messages],
                          seeds: Sequence[int] | None = None) -> list[Generation]:
        prompts = [self.encode_prompt(m) for m in batch]
        return self.generate_rows(prompts, self.row_seeds(len(prompts), seeds))

    def generate_rows(self, prompts: list[list[int]], row_seeds: list[int]) -> list[Generation]:
        """Sample tokenised prompts, each from its own seed, in batches of `batch_size`."""
        out: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            out.extend(self.generate_ids(prompts[start:end], row_seeds[start:end]))
        return out

    def threads_now(self) -> int | None:
        """Torch threads for the next generation (None: not a CPU model): the fixed
        ``num_threads``, or the cores idle right now (`mars2_env.cpu.model_threads`)."""
        if self.device.type != "cpu":
            return None
        return model_threads() if self.follow_executor else self.num_threads

    def generate_ids(self, prompts: list[list[int]], seeds: int | Sequence[int]) -> list[Generation]:
        """Sample one completion per tokenised prompt (one padded batch), row i from its own
        generator seeded with ``seeds[i]`` (an int: one seed for a single prompt)."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        if not prompts:
            return []
        seeds = [int(seeds)] * len(prompts) if isinstance(seeds, int) else [int(s) for s in seeds]
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: completions start at the same column
            input_ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            attention[i, width - len(p):] = 1
        # greedy decoding; with a temperature, _SeededRows has already drawn each row's token
        config = GenerationConfig(
            do_sample=False, temperature=None, top_p=None, top_k=None,
            max_new_tokens=self.max_new_tokens, pad_token_id=pad,
            eos_token_id=sorted(self.eos_token_ids), return_dict_in_generate=True)
        extra: dict[str, Any] = {}
        if self.temperature > 0:
            extra["logits_processor"] = LogitsProcessorList([_SeededRows(
                seeds, self.temperature, self.top_p, self.top_k, self.device)])
        was_training = self.model.training
        self.model.eval()
        recorder = _RawLogprobRecorder(self.model)
        stopper = _StopAtCodeBlock(self.tokenizer, width) if self.stop_at_code_block else None
        if stopper is not None:
            from transformers import StoppingCriteriaList

            extra["stopping_criteria"] = StoppingCriteriaList([stopper])
        try:
            with torch_threads(self.threads_now()), torch.inference_mode():
                res = self.model.generate(input_ids=input_ids.to(self.device),
                                          attention_mask=attention.to(self.device),
                                          generation_config=config, **extra)
                new_tokens = res.sequences[:, width:]
                logps = recorder.finish(new_tokens)
        finally:
            recorder.remove()
            self.model.train(was_training)
        new_tokens = new_tokens.cpu()
        gens = []
        for i, p in enumerate(prompts):
            ids = new_tokens[i].tolist()
            finish = "length"
            for j, t in enumerate(ids):
                if t in self.eos_token_ids:
                    ids, finish = ids[:j + 1], "stop"
                    break
            if stopper is not None and i in stopper.stopped_at:
                ids, finish = ids[:stopper.stopped_at[i]], "stop"
            gens.append(Generation(
                text=self.tokenizer.decode(ids, skip_special_tokens=True),
                prompt_token_ids=list(p), completion_token_ids=ids,
                logprobs=logps[i][:len(ids)] if logps is not None else
                self.sequence_logprobs(p, ids), finish_reason=finish))
        return gens

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """Teacher-forced per-token logprobs of ``completion_ids`` after ``prompt_ids``."""
        import torch

        ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
        lp = torch.log_softmax(logits, dim=-1)
        target = torch.tensor(completion_ids, device=lp.device)
        return lp.gather(-1, target.unsqueeze(-1)).squeeze(-1).tolist()


def generate_together(agents: Sequence[HFAgent], observation_lists: Sequence[list[dict]],
                      seeds: Sequence[Sequence[int]] | None = None) -> list[list[Generation]]:
    """One batch for several agents that share a model and sampling settings (equal
    `sampling_key`), split back per agent. On a CPU a decode step costs about the same for 8
    rows as for 4, so two agents of the same model sampled together take about half the time
    of two calls. With ``seeds`` (a list per agent) each row is what its agent would sample
    for that request alone; without, rows are seeded by the first agent's call counter."""
    from agents.base import check_seeds
    from mars2_env.prompts import messages_from_observation

    if not agents or len({a.sampling_key() for a in agents}) != 1:
        raise ValueError("generate_together needs agents sharing one model and the same "
                         "sampling settings (equal sampling_key())")
    if len(agents) != len(observation_lists):
        raise ValueError(f"{len(agents)} agents but {len(observation_lists)} observation lists")
    if seeds is not None and len(seeds) != len(agents):
        raise ValueError(f"{len(agents)} agents but {len(seeds)} seed lists")
    flat = [obs for group in observation_lists for obs in group]
    prompts = [agents[0].encode_prompt(messages_from_observation(o)) for o in flat]
    if seeds is None:
        row_seeds = agents[0].row_seeds(len(flat))
    else:
        row_seeds = [s for agent, group, given in zip(agents, observation_lists, seeds, strict=True)
                     for s in agent.row_seeds(len(group), check_seeds(given, len(group)))]
    gens = agents[0].generate_rows(prompts, row_seeds)
    out, start = [], 0
    for group in observation_lists:
        out.append(gens[start:start + len(group)])
        start += len(group)
    return out


class _SeededRows:
    """Logits processor that samples each row from its own generator (see the module docstring):
    transformers' temperature, top-k and top-p warpers (applied as `generate(do_sample=True)`
    applies them), a softmax, ``torch.multinomial(probs[row], 1, generator)``; the scores it
    returns let only the drawn token through, so greedy decoding emits it."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, top_k: int,
                 device: Any) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        gen_device = device if device.type == "cuda" else "cpu"
        self.generators = [torch.Generator(device=gen_device).manual_seed(int(s)) for s in seeds]
        self.warpers: list[Any] = []
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.nn.functional.softmax(scores, dim=-1)
        tokens = torch.cat([torch.multinomial(probs[i:i + 1], 1, generator=g)[0]
                            for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(scores.shape[0], device=scores.device), tokens] = 0.0
        return out


class _StopAtCodeBlock:
    """Stopping criterion: a row is done once its completion holds a closed ```python block.

    Rows are checked only when the newest token has a fence character, so the cost is a decode
    of those few rows. `stopped_at[row]` is the completion length at the stop (later tokens are
    padding and are cut off by the caller).
    """

    def __init__(self, tokenizer: Any, prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.start = prompt_width
        self.stopped_at: dict[int, int] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        from mars2_env.prompts import has_closed_code_block

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        length = input_ids.shape[1] - self.start
        for row in range(input_ids.shape[0]):
            if row in self.stopped_at:
                done[row] = True
                continue
            last = self.tokenizer.decode(input_ids[row, -1:])
            if "`" not in last and "~" not in last:
                continue
            text = self.tokenizer.decode(input_ids[row, self.start:], skip_special_tokens=True)
            if has_closed_code_block(text):
                self.stopped_at[row] = length
                done[row] = True
        return done


class _RawLogprobRecorder:
    """Records log-softmax(raw logits)[sampled token] at each generation step, in O(batch x vocab)
    memory (``output_logits`` would keep every step's full logits).

    A hook on the output embeddings keeps the last step's log-softmax; the model's next forward
    call receives the token sampled from it as ``input_ids[:, -1]`` and resolves it; the final
    step is resolved from the returned sequences. Independent of logits processors/warpers.
    """

    def __init__(self, model: Any) -> None:
        self.pending = None
        self.steps: list[Any] = []
        self.ok = True
        head = model.get_output_embeddings()
        self._hooks = [model.register_forward_pre_hook(self._before, with_kwargs=True)]
        if head is None:
            self.ok = False
        else:
            self._hooks.append(head.register_forward_hook(self._after))

    def _before(self, module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is None and args:
            ids = args[0]
        if self.pending is not None:
            if ids is None:
                self.ok = False
            else:
                self._resolve(ids[:, -1])

    def _after(self, module, args, output):
        import torch

        self.pending = torch.log_softmax(output[:, -1, :].float(), dim=-1)

    def _resolve(self, tokens) -> None:
        pending, self.pending = self.pending, None
        self.steps.append(pending.gather(-1, tokens.to(pending.device)[:, None])[:, 0].cpu())

    def finish(self, new_tokens) -> list[list[float]] | None:
        """Per-row logprobs of ``new_tokens``, or None if the hooks did not see every step."""
        import torch

        if self.pending is not None and new_tokens.shape[1] > 0:
            self._resolve(new_tokens[:, -1])
        if not self.ok or len(self.steps) != new_tokens.shape[1] or not self.steps:
            return None
        return torch.stack(self.steps, dim=1).tolist()

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
