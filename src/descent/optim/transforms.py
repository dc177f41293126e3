"""Gradient transforms, composed before the rule as in optax's ``chain``: each maps the gradient
``g [N, d]`` of a step to a new one, in the order listed.

- ``GradNoise(sigma)``:  g <- g + sigma * z,  z ~ N(0, I) from the counter-based stream ("grad_noise")
  (Gaussian gradient noise: a temperature lr sigma^2 / 2 for GD, REFERENCE.md)
- ``ClipNorm(max_norm)``: g <- g * min(1, max_norm / |g|), per particle (recorded, never silent)
- ``WeightDecay(l2)``:    g <- g + l2 * w (coupled decay, torch's ``weight_decay``; a quadratic barrier
  l2 |w|^2 / 2 added to the energy)

``sigma`` and ``l2`` may be per-particle tensors ``[N]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from descent._errors import check_number, invalid, listed
from descent.optim._base import Hyper, HyperParam

if TYPE_CHECKING:
    from descent.random import Draw


def _column(value: Hyper, like: torch.Tensor) -> Hyper:
    if isinstance(value, torch.Tensor):
        value = value.to(dtype=like.dtype, device=like.device)
        return value.reshape(-1, 1) if value.ndim == 1 else value
    return value


@dataclass(frozen=True, eq=False)
class GradNoise:
    """g <- g + sigma z."""

    sigma: Hyper
    kind = "grad_noise"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "sigma", HyperParam("sigma", 0.0, 0.0, None).validate(self.sigma, "grad_noise")
        )

    def __call__(self, grads: torch.Tensor, params: torch.Tensor, draw: Draw | None) -> torch.Tensor:
        if draw is None:
            raise invalid(
                "draw", None, "a descent.random.Draw: gradient noise needs the step's random numbers"
            )
        noise = draw.normal("grad_noise", grads.shape[-1]).to(grads.device)
        return grads + _column(self.sigma, grads) * noise

    def to_dict(self) -> dict:
        return {"kind": self.kind, "sigma": _plain(self.sigma)}


@dataclass(frozen=True, eq=False)
class ClipNorm:
    """g <- g min(1, max_norm / |g|)."""

    max_norm: float
    kind = "clip_norm"

    def __post_init__(self) -> None:
        value = check_number("clip_norm.max_norm", self.max_norm, 0.0, None, low_open=True)
        object.__setattr__(self, "max_norm", value)

    def __call__(self, grads: torch.Tensor, params: torch.Tensor, draw: Draw | None) -> torch.Tensor:
        norm = grads.norm(dim=-1, keepdim=True)
        return grads * torch.clamp(self.max_norm / torch.clamp(norm, min=1e-300), max=1.0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "max_norm": self.max_norm}


@dataclass(frozen=True, eq=False)
class WeightDecay:
    """g <- g + l2 w."""

    l2: Hyper
    kind = "l2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2", HyperParam("l2", 0.0, 0.0, None).validate(self.l2, "l2"))

    def __call__(self, grads: torch.Tensor, params: torch.Tensor, draw: Draw | None) -> torch.Tensor:
        return grads + _column(self.l2, grads) * params

    def to_dict(self) -> dict:
        return {"kind": self.kind, "l2": _plain(self.l2)}


Transform = GradNoise | ClipNorm | WeightDecay
TRANSFORMS: dict[str, type] = {"grad_noise": GradNoise, "clip_norm": ClipNorm, "l2": WeightDecay}


def transform_from_dict(spec: dict) -> Transform:
    """Inverse of ``transform.to_dict()``: ``{"kind": "clip_norm", "max_norm": 1.0}``."""
    if not isinstance(spec, dict) or spec.get("kind") not in TRANSFORMS:
        raise invalid("transform", spec, f"a dict with 'kind' one of: {listed(sorted(TRANSFORMS))}")
    fields = {k: v for k, v in spec.items() if k != "kind"}
    cls = TRANSFORMS[spec["kind"]]
    try:
        return cls(**{k: _tensor(v) for k, v in fields.items()})
    except TypeError:
        raise invalid(f"transform {spec['kind']}", sorted(fields), f"the fields of {cls.__name__}") from None


def _plain(value: Hyper) -> float | list[float]:
    return value.tolist() if isinstance(value, torch.Tensor) else value


def _tensor(value: object) -> object:
    return torch.tensor(value, dtype=torch.float64) if isinstance(value, list) else value
