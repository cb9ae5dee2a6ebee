"""`HFAgent`: batched sampling with a transformers causal LM (CPU or GPU), with logprobs.

Prompts are rendered with the tokenizer's chat template and left-padded into batches. Each call
seeds torch's RNG from the agent seed and a call counter inside `torch.random.fork_rng`, so a
seeded agent repeats its outputs run after run without touching the caller's RNG state. With
per-request ``seeds`` (what `BatchedSearch` hands out) each prompt is sampled alone from its own
seed, so its response is the same whatever else is asked with it (exact resumes), at the cost
of batching.
Returned logprobs are those of the *unscaled* model distribution (log-softmax of the raw
logits at temperature 1, before top-p/top-k), i.e. what a learner's forward pass recomputes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from agents.base import BaseAgent, Generation, Messages, derive_seed, resolve_seed


def default_num_threads() -> int:
    """Cores left free by the executor's one worker: ``max(1, cpu_count - 1)``."""
    return max(1, (os.cpu_count() or 1) - 1)


class HFAgent(BaseAgent):
    """Sampling agent over a transformers ``(model, tokenizer)`` pair.

    The model object is used as is (no copy), so a learner that updates it in place changes
    what this agent samples next. ``top_k=0`` (the default) disables top-k filtering, unlike
    transformers' own default of 50. ``temperature=0`` means greedy decoding.
    ``num_threads`` sets torch's CPU thread count (process-wide) when the model is on the CPU.
    """

    _static_attrs = ("model", "tokenizer")

    def __init__(self, model: Any, tokenizer: Any, name: str | None = None, *,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 max_new_tokens: int = 512, seed: int | None = None, batch_size: int = 8,
                 num_threads: int | None = None, device: str | None = None) -> None:
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
        self.seed = resolve_seed(seed)
        self._calls = 0
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        if self.device.type == "cpu":
            self.num_threads = int(num_threads) if num_threads else default_num_threads()
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

    def generate_messages(self, batch: Sequence[Messages],
                          seeds: Sequence[int] | None = None) -> list[Generation]:
        prompts = [self.encode_prompt(m) for m in batch]
        if seeds is not None:
            # one prompt at a time: a batched sample (and a padded forward pass) depends on the
            # other rows, a lone one only on its own seed, so the response is batch-invariant
            return [g for p, s in zip(prompts, seeds, strict=True)
                    for g in self.generate_ids([p], seed=derive_seed(self.seed, s))]
        call = self._calls
        self._calls += 1
        out: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start:start + self.batch_size]
            out.extend(self.generate_ids(chunk, seed=derive_seed(self.seed, call, start)))
        return out

    def generate_ids(self, prompts: list[list[int]], seed: int) -> list[Generation]:
        """Sample one completion per tokenised prompt (one padded batch)."""
        import torch
        from transformers import GenerationConfig

        if not prompts:
            return []
        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: completions start at the same column
            input_ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            attention[i, width - len(p):] = 1
        greedy = self.temperature == 0
        config = GenerationConfig(
            do_sample=not greedy, temperature=None if greedy else self.temperature,
            top_p=None if greedy else self.top_p, top_k=None if greedy else self.top_k,
            max_new_tokens=self.max_new_tokens, pad_token_id=pad,
            eos_token_id=sorted(self.eos_token_ids), return_dict_in_generate=True)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        was_training = self.model.training
        self.model.eval()
        recorder = _RawLogprobRecorder(self.model)
        try:
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(seed)
                res = self.model.generate(input_ids=input_ids.to(self.device),
                                          attention_mask=attention.to(self.device),
                                          generation_config=config)
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
