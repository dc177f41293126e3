"""`Optimizer`: an update rule with its hyper-parameters, a schedule and a chain of gradient transforms.

Per step k, with raw gradient g:
    g <- t_m(...t_1(g))                     (transforms in order: noise, clipping, weight decay, ...)
    updates, state = rule.update(g, state, w, hp with lr = lr * schedule(k), draw)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

import torch

from descent._errors import invalid, listed
from descent.optim._base import Hyper, State, UpdateRule
from descent.optim.rules import RULES
from descent.optim.schedules import Constant, Schedule, schedule_from_dict, schedule_to_dict
from descent.optim.transforms import ClipNorm, GradNoise, Transform, WeightDecay, transform_from_dict

if TYPE_CHECKING:
    from descent.random import Draw

V = TypeVar("V")


def get_rule(name: str) -> UpdateRule:
    """The registered update rule called ``name``."""
    if name not in RULES:
        raise invalid("optimizer", name, f"one of: {listed(list(RULES))}")
    return RULES[name]


@dataclass(frozen=True, eq=False)
class Optimizer:
    """A rule plus validated hyper-parameters (floats or per-particle tensors), a schedule and transforms.

    >>> opt = Optimizer.build("momentum", lr=0.02, momentum=0.9, clip_norm=1.0)
    >>> opt.hp["momentum"], [t.kind for t in opt.transforms]
    (0.9, ['clip_norm'])
    """

    rule: UpdateRule
    hp: dict[str, Hyper]
    schedule: Schedule = field(default_factory=Constant)
    transforms: tuple[Transform, ...] = ()

    @classmethod
    def build(
        cls,
        name: str,
        *,
        schedule: Schedule | dict | None = None,
        transforms: list | tuple = (),
        grad_noise: Hyper = 0.0,
        clip_norm: float | None = None,
        l2: Hyper = 0.0,
        **hyper: object,
    ) -> Optimizer:
        """Validate everything here, at construction, so a bad value fails before any step runs.

        ``grad_noise``, ``clip_norm`` and ``l2`` are shorthands appending those transforms (in that
        order, when non-zero) after the explicit ``transforms``.
        """
        rule = get_rule(name)
        if isinstance(schedule, dict) or schedule is None:
            schedule = schedule_from_dict(schedule)
        chain = [t if not isinstance(t, dict) else transform_from_dict(t) for t in transforms]
        noise, decay = GradNoise(grad_noise), WeightDecay(l2)
        if _nonzero(noise.sigma):
            chain.append(noise)
        if clip_norm is not None:
            chain.append(ClipNorm(clip_norm))
        if _nonzero(decay.l2):
            chain.append(decay)
        return cls(rule, rule.resolve(hyper), schedule, tuple(chain))

    @property
    def name(self) -> str:
        return self.rule.name

    # --- the transforms' settings, for faces that show them (the first transform of each kind) --------
    @property
    def grad_noise(self) -> Hyper:
        return next((t.sigma for t in self.transforms if isinstance(t, GradNoise)), 0.0)

    @property
    def clip_norm(self) -> float | None:
        return next((t.max_norm for t in self.transforms if isinstance(t, ClipNorm)), None)

    @property
    def l2(self) -> Hyper:
        return next((t.l2 for t in self.transforms if isinstance(t, WeightDecay)), 0.0)

    @property
    def needs_draw(self) -> bool:
        """Does a step use random numbers (Langevin noise, gradient noise)?"""
        return self.rule.name == "langevin" or any(t.kind == "grad_noise" for t in self.transforms)

    # --- stepping ------------------------------------------------------------------------------------
    def lr_at(self, k: int) -> Hyper:
        """The learning rate of step k (0-based): lr * schedule(k)."""
        return self.hp["lr"] * self.schedule(k)

    def hp_at(self, k: int) -> dict[str, Hyper]:
        """The hyper-parameters of step k: ``hp`` with the scheduled learning rate."""
        constant = self._constant_hp
        if constant is not None:
            return constant
        return {**self.hp, "lr": self.lr_at(k)}

    @cached_property
    def _constant_hp(self) -> dict[str, Hyper] | None:
        """``hp_at(k)`` for every k when the schedule is constant; None otherwise (made once: the
        optimizer is frozen, so it never goes stale)."""
        if type(self.schedule) is not Constant:
            return None
        return {**self.hp, "lr": self.lr_at(0)}

    def init(self, params: torch.Tensor) -> State:
        return self.rule.init(params)

    def process_gradient(self, grads: torch.Tensor, params: torch.Tensor, draw: Draw | None) -> torch.Tensor:
        """The transforms, in order."""
        for transform in self.transforms:
            grads = transform(grads, params, draw)
        return grads

    def step(
        self, k: int, params: torch.Tensor, grads: torch.Tensor, state: State, draw: Draw | None = None
    ) -> tuple[torch.Tensor, State]:
        """One step k (0-based): returns (updates, new state); new params = params + updates."""
        grads = self.process_gradient(grads, params, draw)
        return self.rule.update(grads, state, params, self.hp_at(k), draw)

    def on(self, like: torch.Tensor) -> Optimizer:
        """This optimizer with its per-particle tensors on ``like``'s device and the hyper-parameters
        shaped ``[N, 1]``, once (not at every step: on CUDA each host copy is a sync)."""

        def moved(value: Hyper, column: bool) -> Hyper:
            if not isinstance(value, torch.Tensor):
                return value
            value = value.to(device=like.device)
            return value.reshape(-1, 1) if column and value.ndim == 1 else value

        hp = {k: moved(v, True) for k, v in self.hp.items()}
        chain = tuple(_with_setting(t, lambda value: moved(value, False)) for t in self.transforms)
        return dataclasses.replace(self, hp=hp, transforms=chain)

    def select(self, index: int) -> Optimizer:
        """The optimizer of particle ``index`` alone: every per-particle tensor cut to its one entry
        (kept a tensor, so the arithmetic is the same as in the batch)."""

        def one(value: Hyper) -> Hyper:
            if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] > 1:
                return value[index : index + 1]
            return value

        chain = tuple(_with_setting(t, one) for t in self.transforms)
        return dataclasses.replace(self, hp={k: one(v) for k, v in self.hp.items()}, transforms=chain)

    # --- serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-friendly description (tensors as lists)."""
        return {
            "name": self.rule.name,
            "hyper": {k: _plain(v) for k, v in self.hp.items()},
            "schedule": schedule_to_dict(self.schedule),
            "transforms": [t.to_dict() for t in self.transforms],
        }

    @classmethod
    def from_dict(cls, spec: Mapping) -> Optimizer:
        return cls.build(
            spec["name"],
            schedule=spec.get("schedule"),
            transforms=spec.get("transforms", ()),
            grad_noise=_tensor(spec.get("grad_noise", 0.0)),
            clip_norm=spec.get("clip_norm"),
            l2=_tensor(spec.get("l2", 0.0)),
            **{k: _tensor(v) for k, v in spec.get("hyper", {}).items()},
        )


def _with_setting(transform: Transform, change: Callable[[Hyper], Hyper]) -> Transform:
    """``transform`` with its per-particle setting (``GradNoise.sigma``, ``WeightDecay.l2``) changed;
    ``ClipNorm``'s ``max_norm`` is one number, kept."""
    if isinstance(transform, GradNoise):
        return dataclasses.replace(transform, sigma=change(transform.sigma))
    if isinstance(transform, WeightDecay):
        return dataclasses.replace(transform, l2=change(transform.l2))
    return transform


def _nonzero(value: Hyper) -> bool:
    return bool((value != 0).any()) if isinstance(value, torch.Tensor) else value != 0


def _plain(value: Hyper) -> float | list[float]:
    return value.tolist() if isinstance(value, torch.Tensor) else value


def _tensor(value: V) -> V | torch.Tensor:
    """A JSON list as a float64 tensor (per-particle values); anything else as it is."""
    return torch.tensor(value, dtype=torch.float64) if isinstance(value, list) else value
