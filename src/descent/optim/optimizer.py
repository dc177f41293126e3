"""`Optimizer`: an update rule with its hyper-parameters, a schedule and the options any rule takes.

Per step k, with raw gradient g:
    g <- g + grad_noise * z          (z ~ N(0, I): gradient noise of scale sigma, a temperature)
    g <- g * min(1, clip / ||g||)    (per-particle norm clipping; recorded in the spec, never silent)
    g <- g + l2 * w                  (coupled weight decay, torch's ``weight_decay``)
    updates, state = rule.update(g, state, w, hp with lr = lr * schedule(k))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import torch

from descent._errors import check_number, invalid
from descent.optim._base import Hyper, State, UpdateRule
from descent.optim.rules import RULES
from descent.optim.schedules import Constant, Schedule, schedule_from_dict, schedule_to_dict


def get_rule(name: str) -> UpdateRule:
    """The registered update rule called ``name``."""
    if name not in RULES:
        raise invalid("optimizer", name, f"one of {list(RULES)}")
    return RULES[name]


@dataclass(frozen=True, eq=False)
class Optimizer:
    """A rule plus validated hyper-parameters (floats or per-particle tensors) and options.

    >>> opt = Optimizer.build("momentum", lr=0.02, momentum=0.9)
    >>> opt.hp["momentum"]
    0.9
    """

    rule: UpdateRule
    hp: dict[str, Hyper]
    schedule: Schedule = field(default_factory=Constant)
    grad_noise: Hyper = 0.0
    clip_norm: float | None = None
    l2: Hyper = 0.0

    @classmethod
    def build(
        cls,
        name: str,
        *,
        schedule: Schedule | dict | None = None,
        grad_noise: Hyper = 0.0,
        clip_norm: float | None = None,
        l2: Hyper = 0.0,
        **hyper: object,
    ) -> Optimizer:
        """Validate everything here, at construction, so a bad value fails before any step runs."""
        rule = get_rule(name)
        if isinstance(schedule, dict) or schedule is None:
            schedule = schedule_from_dict(schedule)
        from descent.optim._base import HyperParam

        noise = HyperParam("grad_noise", 0.0, 0.0, None).validate(grad_noise, "option")
        decay = HyperParam("l2", 0.0, 0.0, None).validate(l2, "option")
        if clip_norm is not None:
            clip_norm = check_number("option.clip_norm", clip_norm, 0.0, None, low_open=True)
        return cls(rule, rule.resolve(hyper), schedule, noise, clip_norm, decay)

    @property
    def name(self) -> str:
        return self.rule.name

    def lr_at(self, k: int) -> Hyper:
        """The learning rate of step k (0-based): lr * schedule(k)."""
        return self.hp["lr"] * self.schedule(k)

    def hp_at(self, k: int) -> dict[str, Hyper]:
        """The hyper-parameters of step k: ``hp`` with the scheduled learning rate."""
        constant = self._constant_hp
        if constant is not None:
            return constant
        return {**self.hp, "lr": self.lr_at(k)}

    # Made once per optimizer (a step of a small swarm costs a few microseconds: a dict and a tensor
    # product per step add up). The optimizer is frozen, so the cached values never go stale.
    @cached_property
    def _constant_hp(self) -> dict[str, Hyper] | None:
        """``hp_at(k)`` for every k when the schedule is constant; None otherwise."""
        if type(self.schedule) is not Constant:
            return None
        return {**self.hp, "lr": self.lr_at(0)}

    @cached_property
    def _options_on(self) -> tuple[bool, bool]:
        """(gradient noise on, weight decay on)."""
        return _nonzero(self.grad_noise), _nonzero(self.l2)

    def init(self, params: torch.Tensor) -> State:
        return self.rule.init(params)

    def process_gradient(
        self, grads: torch.Tensor, params: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Apply gradient noise, clipping and coupled weight decay, in that order."""
        noise_on, l2_on = self._options_on
        if noise_on:
            noise = torch.randn(grads.shape, generator=generator, dtype=grads.dtype, device=grads.device)
            grads = grads + _column(self.grad_noise, grads) * noise
        if self.clip_norm is not None:
            norm = grads.norm(dim=-1, keepdim=True)
            grads = grads * torch.clamp(self.clip_norm / torch.clamp(norm, min=1e-300), max=1.0)
        if l2_on:
            grads = grads + _column(self.l2, grads) * params
        return grads

    def step(
        self,
        k: int,
        params: torch.Tensor,
        grads: torch.Tensor,
        state: State,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step k (0-based): returns (updates, new state); new params = params + updates."""
        grads = self.process_gradient(grads, params, generator)
        return self.rule.update(grads, state, params, self.hp_at(k), generator)

    def to_dict(self) -> dict:
        """JSON-friendly description (tensors as lists)."""
        return {
            "name": self.rule.name,
            "hyper": {k: _plain(v) for k, v in self.hp.items()},
            "schedule": schedule_to_dict(self.schedule),
            "grad_noise": _plain(self.grad_noise),
            "clip_norm": self.clip_norm,
            "l2": _plain(self.l2),
        }

    @classmethod
    def from_dict(cls, spec: Mapping) -> Optimizer:
        return cls.build(
            spec["name"],
            schedule=spec.get("schedule"),
            grad_noise=spec.get("grad_noise", 0.0),
            clip_norm=spec.get("clip_norm"),
            l2=spec.get("l2", 0.0),
            **spec.get("hyper", {}),
        )


def _nonzero(value: Hyper) -> bool:
    return bool((value != 0).any()) if isinstance(value, torch.Tensor) else value != 0


def _column(value: Hyper, like: torch.Tensor) -> Hyper:
    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype, device=like.device).reshape(-1, 1)
    return value


def _plain(value: Hyper) -> float | list[float]:
    return value.tolist() if isinstance(value, torch.Tensor) else value
