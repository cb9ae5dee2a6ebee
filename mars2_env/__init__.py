"""MARS² multi-agent tree search environment (numpy + gymnasium + pettingzoo only)."""
__version__ = "0.1.0"

from mars2_env.registration import register_envs as _register_envs  # noqa: E402

_register_envs()
