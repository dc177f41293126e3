"""`Optimizer`: an update rule with its hyper-parameters, a schedule and a chain of gradient transforms.

Per step k, with raw gradient g:
    g <- t_m(...t_1(g))                     (transforms in order: noise, clipping, weight decay, ...)
    updates, state = rule.update(g, state, w, hp with lr = lr * schedule(k), draw)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import torch

from descent._errors import invalid
from descent.optim._base import Hyper, State, UpdateRule
from descent.optim.rules import RULES
from descent.optim.schedules import Constant, Schedule, schedule_from_dict, schedule_to_dict
from descent.optim.transforms import ClipNorm, GradNoise, Transform, WeightDecay, transform_from_dict

if TYPE_CHECKING:
    from descent.random import Draw


def get_rule(name: str) -> UpdateRule:
    """The registered update rule called ``name``."""
    if name not in RULES:
        raise invalid("optimizer", name, f"one of {list(RULES)}")
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

    # --- the transforms' settings, for faces that show them --------------------------------------
    def _setting(self, kind: str, attribute: str, default: object) -> object:
        for t in self.transforms:
            if t.kind == kind:
                return getattr(t, attribute)
        return default

    @property
    def grad_noise(self) -> Hyper:
        return self._setting("grad_noise", "sigma", 0.0)  # type: ignore[return-value]

    @property
    def clip_norm(self) -> float | None:
        return self._setting("clip_norm", "max_norm", None)  # type: ignore[return-value]

    @property
    def l2(self) -> Hyper:
        return self._setting("l2", "l2", 0.0)  # type: ignore[return-value]

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

        def moved(value: object, column: bool) -> object:
            if not isinstance(value, torch.Tensor):
                return value
            value = value.to(device=like.device)
            return value.reshape(-1, 1) if column and value.ndim == 1 else value

        hp = {k: moved(v, True) for k, v in self.hp.items()}
        chain = []
        for t in self.transforms:
            name = {"grad_noise": "sigma", "l2": "l2"}.get(t.kind)
            chain.append(
                t if name is None else dataclasses.replace(t, **{name: moved(getattr(t, name), False)})
            )
        return dataclasses.replace(self, hp=hp, transforms=tuple(chain))

    def select(self, index: int) -> Optimizer:
        """The optimizer of particle ``index`` alone: every per-particle tensor cut to its one entry
        (kept a tensor, so the arithmetic is the same as in the batch)."""

        def one(value: object) -> object:
            if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] > 1:
                return value[index : index + 1]
            return value

        chain = []
        for t in self.transforms:
            name = {"grad_noise": "sigma", "l2": "l2"}.get(t.kind)
            chain.append(t if name is None else dataclasses.replace(t, **{name: one(getattr(t, name))}))
        return dataclasses.replace(self, hp={k: one(v) for k, v in self.hp.items()}, transforms=tuple(chain))

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


def _nonzero(value: Hyper) -> bool:
    return bool((value != 0).any()) if isinstance(value, torch.Tensor) else value != 0


def _plain(value: Hyper) -> float | list[float]:
    return value.tolist() if isinstance(value, torch.Tensor) else value


def _tensor(value: object) -> object:
    return torch.tensor(value, dtype=torch.float64) if isinstance(value, list) else value
