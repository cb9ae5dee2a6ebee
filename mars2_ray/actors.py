"""One supervised actor: how to start it (class, arguments, planned placement) and how to replace
it when it dies, so callers can re-send the work it had not finished."""

from __future__ import annotations

import uuid
from typing import Any

from mars2_ray.placement import ActorRequest, Placement
from mars2_ray.runtime import actor_options, require_ray

__all__ = ["ActorSlot", "close_slots", "unplaced"]


def unplaced(role: str, name: str, cpus: float = 1.0, gpus: float = 0.0, **extra: Any) -> Placement:
    """A placement with resources but no planned node (Ray picks one)."""
    return Placement(ActorRequest(role, name, float(cpus), float(gpus), **extra), None)


class ActorSlot:
    """A Ray actor of class `cls` built with `args`, restartable in place.

    `replace()` kills what is left of the current actor and starts a new one with the same
    arguments and placement (the same bundle of its placement group `group`, if it has one); `restarts` counts replacements. Callers hold on to the work they
    sent, so nothing the dead actor had not answered is lost. Actors are named
    ``mars2/<planned name>/<run token>.<restarts>`` (`ray.get_actor`, ``ray list actors``).
    """

    def __init__(self, cls: type, args: tuple, placement: Placement, group: Any = None) -> None:
        ray = require_ray()
        self._remote = ray.remote(cls)
        self.args = args
        self.placement = placement
        self.group = group          # the Ray placement group of placement.group, if any
        self.restarts = 0
        self.token = uuid.uuid4().hex[:8]
        self.handle = self._start()

    @property
    def name(self) -> str:
        return self.placement.name

    @property
    def actor_name(self) -> str:
        return f"mars2/{self.placement.name}/{self.token}.{self.restarts}"

    def _start(self) -> Any:
        return self._remote.options(name=self.actor_name,
                                    **actor_options(self.placement, self.group)
                                    ).remote(*self.args)

    def replace(self) -> None:
        """Start a fresh actor in place of this one (the old one is killed if still there)."""
        self.kill()
        self.restarts += 1
        self.handle = self._start()

    def kill(self) -> None:
        ray = require_ray()
        try:
            ray.kill(self.handle, no_restart=True)
        except Exception:  # already gone
            pass


def close_slots(slots: list[ActorSlot], timeout: float = 30.0) -> None:
    """Ask each actor to close (it stops its own children: sandbox servers, engines, ranks),
    wait up to `timeout` seconds for all, then kill them. Actors already gone are skipped."""
    ray = require_ray()
    refs = []
    for slot in slots:
        try:
            refs.append(slot.handle.close.remote())
        except Exception:
            pass
    try:
        ray.wait(refs, num_returns=len(refs), timeout=timeout)
    except Exception:
        pass
    for slot in slots:
        slot.kill()
