"""Policies that write programs: model backends (transformers, vLLM, OpenAI-compatible servers)
and scripted agents, all behind the `Agent` protocol and named by command-line specs.

Backends are imported lazily, so ``import agents`` needs neither torch nor vLLM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.base import Agent, BaseAgent, Generation

__all__ = [
    "Agent", "BaseAgent", "Generation", "make_agent", "register_spec", "SPEC_FORMS",
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


def _bad(spec: str, why: str) -> ValueError:
    forms = "\n  ".join(SPEC_FORMS)
    return ValueError(f"bad agent spec {spec!r}: {why}. Valid forms:\n  {forms}")


def make_agent(spec: str, **overrides: Any) -> Agent:
    """Build an agent from a command-line spec; ``overrides`` go to its constructor
    (e.g. ``name=``, ``temperature=``, ``max_new_tokens=``, ``seed=``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(str(spec), "empty")
    spec = spec.strip()
    kind, sep, arg = spec.partition(":")
    if kind == "random":
        seed = overrides.pop("seed", None)
        if arg:
            try:
                seed = int(arg)
            except ValueError:
                raise _bad(spec, f"random takes an integer seed, got {arg!r}") from None
        from agents.scripted import RandomAgent

        overrides.setdefault("name", "random" if not arg else spec)
        return RandomAgent(seed=seed, **overrides)
    if not sep or not arg:
        raise _bad(spec, f"expected KIND:ARGUMENT, got {spec!r}" if kind in (
            "hf", "vllm", "openai", "replay", "simulated") else f"unknown kind {kind!r}")
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
