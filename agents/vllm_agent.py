"""`VLLMAgent`: batched sampling with vLLM's offline engine (`vllm.LLM`), with logprobs and
in-place weight updates for learners.

vLLM is imported lazily and lives in its own venv on CPU machines (``make test-vllm`` /
``scripts/setup_vllm_venv.sh``): it pins older transformers than the main venv. Scripts that
create an engine should sit under ``if __name__ == "__main__":`` (vLLM may spawn processes).

Each prompt gets its own sampling seed, derived from the agent seed, the call counter and the
prompt's index, so outputs repeat across runs and do not depend on how prompts are batched.
Logprobs are vLLM's default ``raw_logprobs``: the *unscaled* model distribution, as learners need.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.base import BaseAgent, Generation, Messages, derive_seed, resolve_seed


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            "VLLMAgent needs vLLM, which is not installed in this environment. On a GPU machine: "
            "pip install 'mars2[vllm]'; on a CPU machine build the separate venv with "
            "`bash scripts/setup_vllm_venv.sh` (make test-vllm) and run from .venv-vllm/bin/python"
        ) from exc
    return vllm


class VLLMAgent(BaseAgent):
    """Sampling agent over a `vllm.LLM` engine.

    ``model`` is a local model directory (or ``"embedded"`` for the cached SmolLM2 copy); pass
    ``llm=`` to reuse an engine you built. ``max_new_tokens`` maps to vLLM's ``max_tokens``.
    Extra keyword arguments go to `vllm.LLM` (``enforce_eager=True`` by default: CUDA-graph
    capture or torch.compile cost minutes up front). With ``in_process=True`` (default) the engine
    runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), which keeps weight syncs cheap.
    """

    _static_attrs = ("_vllm", "llm", "tokenizer")

    def __init__(self, model: str | None = None, name: str | None = None, *, llm: Any = None,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 max_new_tokens: int = 512, seed: int | None = None, in_process: bool = True,
                 **llm_kwargs: Any) -> None:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if llm is None and not model:
            raise ValueError("VLLMAgent needs a model path (or llm=an existing vllm.LLM)")
        if llm is None and in_process:  # must be set before vLLM reads its environment
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = _import_vllm()
        self._vllm = vllm
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = int(top_k)
        self.max_new_tokens = int(max_new_tokens)
        self.seed = resolve_seed(seed)
        self._calls = 0
        path = model
        if model == "embedded":
            from agents.embedded import embedded_model_path

            path = str(embedded_model_path())
        #: resolved model directory (learners load their trainable copy from it)
        self.model_path = path
        if llm is None:
            llm_kwargs.setdefault("enforce_eager", True)
            if not _cuda_available():
                # On the CPU backend gpu_memory_utilization reserves a share of *host* memory
                # and fails on a busy machine; a fixed KV-cache size is predictable.
                llm_kwargs.setdefault("kv_cache_memory_bytes", 1 << 30)
                llm_kwargs.setdefault("dtype", "float32")
            llm = vllm.LLM(model=path, **llm_kwargs)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.name = name or f"vllm:{model or 'llm'}"

    # -- generation ---------------------------------------------------------------------------

    def encode_prompt(self, messages: Messages) -> list[int]:
        """Token ids of the chat-templated prompt (generation prompt appended)."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _sampling_params(self, seed: int):
        greedy = self.temperature == 0
        return self._vllm.SamplingParams(
            n=1, temperature=self.temperature, top_p=1.0 if greedy else self.top_p,
            top_k=-1 if greedy or self.top_k <= 0 else self.top_k,
            max_tokens=self.max_new_tokens, logprobs=0, seed=seed % (2 ** 31))

    def generate_messages(self, batch: Sequence[Messages],
                          seeds: Sequence[int] | None = None) -> list[Generation]:
        prompts = [self.encode_prompt(m) for m in batch]
        return self.generate_ids(prompts, seeds=seeds)

    def generate_ids(self, prompts: list[list[int]],
                     seeds: Sequence[int] | None = None) -> list[Generation]:
        """Sample one completion per tokenised prompt (``seeds``: one per prompt, else the
        agent's own stream)."""
        if not prompts:
            return []
        if seeds is not None:
            params = [self._sampling_params(derive_seed(self.seed, s)) for s in seeds]
        else:
            call = self._calls
            self._calls += 1
            params = [self._sampling_params(derive_seed(self.seed, call, i))
                      for i in range(len(prompts))]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params,
                                    use_tqdm=False)
        gens = []
        for p, out in zip(prompts, outputs, strict=True):
            comp = out.outputs[0]
            ids = list(comp.token_ids)
            logprobs = None
            if comp.logprobs is not None:
                logprobs = [float(step[t].logprob) for t, step in zip(ids, comp.logprobs, strict=True)]
            gens.append(Generation(text=comp.text, prompt_token_ids=list(p),
                                   completion_token_ids=ids, logprobs=logprobs,
                                   finish_reason=comp.finish_reason))
        return gens

    # -- weight sync --------------------------------------------------------------------------

    def load_weights(self, state_dict: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Copy a learner's weights (Hugging Face parameter names) into the engine, in place.

        Uses the worker's ``reload_weights`` RPC (current vLLM: it also re-runs the backend's
        weight post-processing, e.g. the CPU backend's repacked linear layers), falling back to
        the driver model's ``load_weights`` on older vLLM; then drops the prefix cache, whose
        keys/values were computed with the old weights.
        """
        items = state_dict.items() if isinstance(state_dict, Mapping) else state_dict
        weights = [(name, t.detach()) for name, t in items]
        try:
            self.llm.collective_rpc("reload_weights", kwargs={
                "weights_iterator": weights, "is_checkpoint_format": True})
        except (AttributeError, NotImplementedError):
            driver = self.llm.llm_engine.model_executor.driver_worker
            driver.model_runner.model.load_weights(weights)
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            shutdown = getattr(getattr(llm, "llm_engine", None), "shutdown", None)
            if callable(shutdown):
                shutdown()


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
