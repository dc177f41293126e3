"""`PerturbedLandscape`: an objective with data whose per-example loss is a landscape plus a
data-weighted term,

    l_i(x) = U(x) + xi_i V(x),      i = 1, ..., n,      mean_i xi_i = 0,

so the full-data risk (1/n) sum_i l_i(x) is U(x) exactly, and a mini-batch b of B examples has the loss
U(x) + xi_b V(x) and the gradient grad U(x) + xi_b grad V(x), with xi_b the batch's mean weight. Its
gradient noise xi_b grad V(x) has variance Var(xi_b) |grad V(x)|^2 (Var(xi_b) = s^2 / B with
replacement, s^2 the weights' variance): mini-batch noise whose size follows the shape of V, as real
mini-batch noise follows the curvature. The engine draws each particle's batch and passes its example
indices ``[N, B]``; ``batch=None`` is the full data, U itself.

:func:`sharp_flat_risk`: the ``sharp-flat`` landscape (1-D, U = H (s(x)^2 - 1)^2) with the term
V = s(x) = (exp(c x) - 1)/c, so the noise variance is proportional to s'(x)^2 = exp(2 c x): equal to its
value at the barrier top x = 0 times (1 -+ c)^2 at the minima, in the ratio of their curvatures
(U'' = 8 H (1 -+ c)^2), as SGD's noise covariance follows the Hessian.

>>> import torch
>>> risk = sharp_flat_risk(size=64)
>>> x = torch.tensor([[0.3], [0.3]], dtype=torch.float64)
>>> value, _ = risk.value_and_grad(x, torch.arange(64).expand(2, -1))  # the whole data set as a batch
>>> bool(torch.allclose(value, risk.value(x), atol=1e-12)), risk.data_size
(True, 64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch

from descent._errors import invalid
from descent.landscapes import Landscape, get_landscape, parse_formula
from descent.landscapes._registry import rebuild_landscape, register


@dataclass(frozen=True, eq=False)
class PerturbedLandscape(Landscape):
    """The landscape U (its energy, box and known points) with per-example losses U + xi_i V.

    ``term`` is V (a landscape of the same dimension), ``weights`` the centred xi ``[n]``.
    ``value(x)`` and ``hessian(x)`` are those of the full-data risk U; ``value_and_grad(x, batch)`` is
    the loss and gradient of each particle's mini-batch (module docstring).
    """

    term: Landscape | None = None
    weights: torch.Tensor = field(default_factory=lambda: torch.zeros(1))

    @property
    def data_size(self) -> int:
        return int(self.weights.shape[0])

    def value_and_grad(self, x: torch.Tensor, batch: torch.Tensor | None = None):
        """(U + xi_b V, grad U + xi_b grad V) per particle, xi_b the mean weight of its batch's
        examples ``batch [N, B]``; U and grad U when ``batch`` is None (the full data)."""
        value, grad = self.value(x), self.gradient(x)
        if batch is None:
            return value, grad
        xi = self.weights.to(dtype=x.dtype, device=x.device)[batch].mean(dim=-1)  # [N]
        term = self._term()
        return value + xi * term.value(x), grad + xi.unsqueeze(1) * term.gradient(x)

    def example_losses(self, x: torch.Tensor) -> torch.Tensor:
        """Every example's loss l_i(x) = U(x) + xi_i V(x), ``[N, n]`` (differentiable by autograd)."""
        weights = self.weights.to(dtype=x.dtype, device=x.device)
        return self.value(x).unsqueeze(1) + weights.unsqueeze(0) * self._term().value(x).unsqueeze(1)

    def _term(self) -> Landscape:
        """V: None only as the dataclass's default (a field after the base's defaulted ones needs one);
        ``perturbed_landscape`` always gives one."""
        assert self.term is not None
        return self.term


def perturbed_landscape(
    base: Landscape, term: Landscape, weights: torch.Tensor, *, name: str, params: dict | None = None
) -> PerturbedLandscape:
    """U = ``base`` with per-example losses U + xi_i V, V = ``term``; the weights are centred (their
    mean subtracted), so the full-data risk is U exactly."""
    weights = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
    if weights.numel() < 1 or not bool(torch.isfinite(weights).all()):
        raise invalid("weights", tuple(weights.shape), "one finite weight per example, at least one")
    if term.dim != base.dim:
        raise invalid("term.dim", term.dim, f"{base.dim}, the dimension of {base.name}")
    geometry = {f.name: getattr(base, f.name) for f in fields(Landscape) if f.init}
    geometry.update(
        name=name,
        params=dict(params or {}),
        formula=f"{base.formula} + xi_i*({term.formula})",
        description=f"{base.name} with per-example losses U + xi_i V, n = {weights.numel()}",
    )
    return PerturbedLandscape(**geometry, term=term, weights=weights - weights.mean())


def warp(skew: float, bounds: tuple[tuple[float, float], ...]) -> Landscape:
    """V(x) = s(x) = (exp(c x) - 1)/c (s = x when c = 0), the sharp-flat landscape's warped coordinate,
    as a 1-D landscape (a formula) over ``bounds``: s'(x) = exp(c x)."""
    formula = f"(exp({skew}*x) - 1)/{skew}" if skew else "x"
    return Landscape(name="warp", dim=1, energy=parse_formula(formula, ("x",)), bounds=tuple(bounds))


@register(
    "sharp-flat-risk",
    "theory",
    "sharp-flat (1-D) with per-example losses U + xi_i s(x): mini-batch noise shaped like the curvature",
    height=0.25,
    skew=0.5,
    sigma=2.5,
    size=512,
    seed=0,
)
def sharp_flat_risk(
    height: float = 0.25, skew: float = 0.5, sigma: float = 2.5, size: int = 512, seed: int = 0
) -> PerturbedLandscape:
    """``sharp-flat`` (1-D, ``height``, ``skew``) with per-example losses U(x) + xi_i s(x) over ``size``
    examples: xi standard normal draws (a torch generator seeded with ``seed``) standardised to mean 0
    and variance ``sigma^2`` exactly. A batch of B examples drawn with replacement gives gradient noise
    of variance sigma^2 exp(2 skew x) / B: sigma^2 / B at the barrier top.
    """
    if isinstance(size, bool) or int(size) != size or size < 2:
        raise invalid("sharp-flat-risk.size", size, "an integer >= 2")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise invalid("sharp-flat-risk.sigma", sigma, "a number >= 0")
    base = get_landscape("sharp-flat", height=height, skew=skew, dim=1)
    draws = torch.randn(int(size), generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    weights = (draws - draws.mean()) / draws.std(unbiased=False) * sigma
    params = {"height": height, "skew": skew, "sigma": sigma, "size": int(size), "seed": int(seed)}
    risk = perturbed_landscape(base, warp(skew, base.bounds), weights, name="sharp-flat-risk", params=params)
    return risk.with_recipe(rebuild_landscape, "sharp-flat-risk", params)


__all__ = ["PerturbedLandscape", "perturbed_landscape", "sharp_flat_risk", "warp"]
