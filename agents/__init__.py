"""Policies that write programs: model backends (transformers, vLLM, OpenAI-compatible servers)
and scripted agents, all behind the `Agent` protocol and named by command-line specs.

Backends are imported lazily, so ``import agents`` needs neither torch nor vLLM.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.base import Agent, BaseAgent, Generation

__all__ = [
    "Agent", "BaseAgent", "Generation", "make_agent", "check_spec", "register_spec", "SPEC_FORMS",
    "HFAgent", "VLLMAgent", "OpenAIAgent", "ReplayAgent", "RandomAgent",
]

SPEC_FORMS = (
    "hf:embedded                  the bundled SmolLM2-135M-Instruct (transformers)",
    "hf:PATH_OR_NAME              a transformers model directory (or locally cached hub name)",
    "vllm:PATH                    vLLM offline engine on a model directory (vllm:embedded too)",
    "openai:BASE_URL#MODEL        an OpenAI-compatible server, e.g. "
    "openai:http://127.0.0.1:8000/v1#Qwen/Qwen3-8B",
    "replay:FILE                  programs from a JSONL ({problem_id, response}) or .py file",
    "random[:SEED]                seeded random short programs (mostly wrong)",
    "simulated:skill=P,refine=Q[,seed=S]  simulated agent drawing from each problem's reference / wrong programs",
)

_LAZY = {
    "HFAgent": "agents.hf", "VLLMAgent": "agents.vllm_agent", "OpenAIAgent": "agents.openai_agent",
    "ReplayAgent": "agents.scripted", "RandomAgent": "agents.scripted",
}

_EXTRA: dict[str, Callable[..., Agent]] = {}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def register_spec(prefix: str, factory: Callable[..., Agent]) -> None:
    """Add a spec form ``PREFIX:ARG``; ``factory(arg, **overrides)`` builds the agent."""
    if not prefix.isidentifier():
        raise ValueError(f"spec prefix must be an identifier, got {prefix!r}")
    _EXTRA[prefix] = factory


_SHORT_FORMS = ("hf:embedded, hf:PATH, vllm:PATH, openai:URL#MODEL, replay:FILE, random[:SEED], "
                "simulated:skill=P,refine=Q")


def _bad(spec: str, why: str) -> ValueError:
    """A one-line error naming the spec, what is wrong and the valid forms."""
    return ValueError(f"bad agent spec {spec!r}: {why}; valid forms: {_SHORT_FORMS}")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, located the way huggingface_hub does (without importing it,
    which alone takes about a second)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _in_hub_cache(name: str) -> bool:
    """True when ``name`` (``org/model``) has a snapshot with a config in the local hub cache."""
    if name.count("/") != 1 or name.startswith(("/", ".", "~")):
        return False
    repo = hub_cache_dir() / ("models--" + name.replace("/", "--"))
    return any((repo / "snapshots").glob("*/config.json"))


def _check_model(spec: str, kind: str, arg: str) -> None:
    if arg == "embedded":
        return
    path = Path(arg).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise _bad(spec, f"{arg!r} is a file; {kind}: takes a model directory")
    if _in_hub_cache(arg):
        return
    hint = difflib.get_close_matches(arg, ["embedded"], n=1, cutoff=0.6)
    suggestion = f" (did you mean {kind}:embedded?)" if hint else ""
    raise _bad(spec, f"{arg!r} is not 'embedded', a local model directory or a model in the "
                     f"local Hugging Face cache (nothing is downloaded){suggestion}")


def check_spec(spec: str) -> None:
    """Check a spec without loading anything (fast: no torch, no network); raise a one-line
    `ValueError` naming what is wrong. `make_agent` calls it first."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(str(spec), "empty")
    spec = spec.strip()
    kind, sep, arg = spec.partition(":")
    if kind == "random":
        if arg:
            try:
                int(arg)
            except ValueError:
                raise _bad(spec, f"random takes an integer seed, got {arg!r}") from None
        return
    if kind in _EXTRA:
        if not arg:
            raise _bad(spec, f"expected {kind}:ARGUMENT")
        return
    if kind not in ("hf", "vllm", "openai", "replay", "simulated"):
        raise _bad(spec, f"unknown kind {kind!r}")
    if not sep or not arg:
        raise _bad(spec, f"expected {kind}:ARGUMENT")
    if kind in ("hf", "vllm"):
        _check_model(spec, kind, arg)
    elif kind == "openai":
        url, hash_, model = arg.rpartition("#")
        if not hash_ or not url or not model:
            raise _bad(spec, "openai needs BASE_URL#MODEL (the model name after '#')")
        if not url.startswith(("http://", "https://")):
            raise _bad(spec, f"BASE_URL must start with http:// or https://, got {url!r}")
    elif kind == "replay":
        if not Path(arg).expanduser().is_file():
            raise FileNotFoundError(f"bad agent spec {spec!r}: replay file not found: {arg}")


def make_agent(spec: str, **overrides: Any) -> Agent:
    """Build an agent from a command-line spec; ``overrides`` go to its constructor
    (e.g. ``name=``, ``temperature=``, ``max_new_tokens=``, ``seed=``)."""
    check_spec(spec)
    spec = spec.strip()
    kind, sep, arg = spec.partition(":")
    if kind == "random":
        seed = overrides.pop("seed", None)
        if arg:
            seed = int(arg)
        from agents.scripted import RandomAgent

        overrides.setdefault("name", "random" if not arg else spec)
        return RandomAgent(seed=seed, **overrides)
    if kind == "hf":
        from agents.hf import HFAgent

        return HFAgent.embedded(**overrides) if arg == "embedded" else HFAgent.from_pretrained(
            arg, **overrides)
    if kind == "vllm":
        from agents.vllm_agent import VLLMAgent

        return VLLMAgent(arg, **overrides)
    if kind == "openai":
        url, hash_, model = arg.rpartition("#")
        if not hash_ or not url or not model:
            raise _bad(spec, "openai needs BASE_URL#MODEL (the model name after '#')")
        if not url.startswith(("http://", "https://")):
            raise _bad(spec, f"BASE_URL must start with http:// or https://, got {url!r}")
        from agents.openai_agent import OpenAIAgent

        return OpenAIAgent(url, model, **overrides)
    if kind == "replay":
        from agents.scripted import ReplayAgent

        return ReplayAgent(arg, **overrides)
    if kind == "simulated" and kind not in _EXTRA:
        try:
            from agents import simulated
        except ImportError as exc:
            raise _bad(spec, f"simulated agents are not available ({exc})") from exc
        return simulated.from_spec(arg, **overrides)
    if kind in _EXTRA:
        return _EXTRA[kind](arg, **overrides)
    raise _bad(spec, f"unknown kind {kind!r}")
