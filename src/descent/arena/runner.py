"""Runs a state through the engine (`descent.spec.run_spec`, nothing else simulates) with small caches.

Landscapes (formulas cost a critical-point search) and trajectories are kept in LRU caches keyed by
their JSON spec, so replaying, sharing a link or moving a slider back is instant.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from descent.arena.state import is_swarm, state_specs
from descent.dynamics import Trajectory
from descent.landscapes import Landscape
from descent.spec import RunSpec, resolve_landscape, run_spec

T = TypeVar("T")


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, make: Callable[[], T]) -> T:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


LANDSCAPE_CACHE = _LRU(32)
RUN_CACHE = _LRU(24)


def landscape_key(text: str, params: dict[str, float]) -> str:
    return json.dumps([text, params], sort_keys=True)


def get_landscape(text: str, params: dict[str, float] | None = None) -> Landscape:
    """The landscape called (or written as) ``text`` with ``params``, cached; raises DescentError."""
    params = dict(params or {})
    return LANDSCAPE_CACHE.get(landscape_key(text, params), lambda: resolve_landscape(text, **params))


def run_cached(spec: RunSpec, landscape: Landscape | None = None) -> Trajectory:
    """``run_spec(spec)``, cached by the spec's canonical JSON; ``landscape``: the spec's, from
    `get_landscape`."""
    return RUN_CACHE.get(spec.to_json(), lambda: run_spec(spec, landscape=landscape))


@dataclass
class ArenaRun:
    """A state's landscape, its specs and one trajectory per racer (one swarm trajectory in swarm mode)."""

    state: dict[str, Any]
    landscape: Landscape
    specs: list[RunSpec]
    trajectories: list[Trajectory]

    @property
    def swarm(self) -> bool:
        return is_swarm(self.state)


def run_state(state: dict[str, Any]) -> ArenaRun:
    """Build the landscape and run every racer of a normalised ``state``; raises DescentError."""
    landscape = get_landscape(state["landscape"], state["params"])
    if landscape.dim != 2:
        from descent._errors import invalid

        raise invalid("landscape dimension", landscape.dim, "2 (the Arena draws maps of x and y)")
    specs = state_specs(state, [float(v) for v in landscape.start().squeeze(0).tolist()])
    trajectories = [run_cached(spec, landscape) for spec in specs]
    return ArenaRun(state, landscape, specs, trajectories)
