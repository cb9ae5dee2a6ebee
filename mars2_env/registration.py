"""Registers the environments with Gymnasium and PettingZoo (runs on `import mars2_env`).

    import mars2_env, gymnasium, pettingzoo
    env = gymnasium.make("mars2/CodeSearch-v0", problems="builtin:demo", budget=8)
    aec = pettingzoo.make("aec", "mars2/CodeTreeSearch-v0", problems="builtin:demo", budget=8)

Neither registry loads plugins by itself, so `mars2_env` must be imported first (Gymnasium also
accepts ``gymnasium.make("mars2_env:mars2/CodeSearch-v0")``, which imports it). Entry points are
strings, so registering imports no environment code.
"""

from __future__ import annotations

GYM_ID = "mars2/CodeSearch-v0"
AEC_ID = "mars2/CodeTreeSearch-v0"


def register_envs() -> None:
    """Register both ids once (idempotent: a second call changes nothing)."""
    import gymnasium
    import pettingzoo

    if GYM_ID not in gymnasium.registry:
        gymnasium.register(id=GYM_ID, entry_point="mars2_env.gym_env:CodeSearchEnv")
    if AEC_ID not in pettingzoo.aec_registry:
        pettingzoo.register("aec", AEC_ID, entry_point="mars2_env.aec:env")
