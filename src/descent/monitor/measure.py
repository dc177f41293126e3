"""Measurements on the held batch ``(x, y)`` at the model's current parameters, none of which touch
the model, its gradients or the global random state:

- each example's gradient ``g_i`` (``torch.func.vmap`` over ``grad``; a loop over the examples when
  torch.func cannot handle the model), their mean ``g`` and the noise trace in the metric ``P``,
  ``tr(P^-1 Sigma) = 1/(n-1) sum_i q_i`` with ``q_i = (g_i - g)^T P^-1 (g_i - g)``, and its standard
  error ``sd(q)/sqrt(n)``;
- the held loss as a function of the flat parameter vector, for Hessian-vector products
  (`descent.train.hessian`) through ``torch.func.functional_call``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Noise:
    """The held batch's loss, mean gradient ``[d]`` and per-example noise trace (with its error)."""

    loss: float
    gradient: torch.Tensor
    trace: float
    trace_se: float
    examples: int


class HeldBatch:
    """The model's loss on ``(x, y)`` as functions of the trained parameters ``names``."""

    def __init__(self, model: nn.Module, names: list[str], loss_fn: Loss, x: torch.Tensor, y: torch.Tensor):
        self.model, self.names, self.loss_fn, self.x, self.y = model, names, loss_fn, x, y
        self.shapes = [p.shape for name, p in model.named_parameters() if name in set(names)]
        self.dtype = next(p for name, p in model.named_parameters() if name in set(names)).dtype
        self.vmap_failed: str | None = None

    def _params(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        params, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            params[name] = theta[start : start + size].view(shape)
            start += size
        return params

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """The held loss at the flat parameters ``theta`` (differentiable in theta)."""
        outputs = torch.func.functional_call(self.model, self._params(theta), (self.x,))
        return self.loss_fn(outputs, self.y)

    def loss64(self, theta: torch.Tensor) -> torch.Tensor:
        """The held loss of a float64 ``theta`` (cast to the model's dtype; Lanczos works in float64)."""
        return self.loss(theta.to(self.dtype)).to(torch.float64)

    def _one(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        outputs = torch.func.functional_call(self.model, self._params(theta), (x.unsqueeze(0),))
        return self.loss_fn(outputs, y.unsqueeze(0))

    def per_example(self, theta: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Each example's loss ``[n]`` and gradient ``[n, d]`` at ``theta``."""
        if self.vmap_failed is None:
            try:
                batched = torch.func.vmap(torch.func.grad_and_value(self._one), in_dims=(None, 0, 0))
                parts = [
                    batched(theta, self.x[i : i + chunk], self.y[i : i + chunk])
                    for i in range(0, len(self.x), chunk)
                ]
                return torch.cat([v for _, v in parts]), torch.cat([g for g, _ in parts])
            except Exception as error:  # torch.func cannot trace every model
                first = str(error).split(". ")[0].splitlines()[0] if str(error) else ""
                self.vmap_failed = f"{type(error).__name__}: {first[:120]}"
                warnings.warn(
                    f"descent.monitor: torch.func.vmap cannot handle this model ({self.vmap_failed}); "
                    "per-example gradients fall back to a loop over the held examples (slower)",
                    stacklevel=4,
                )
        losses, grads = [], []
        for i in range(len(self.x)):
            w = theta.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                value = self._one(w, self.x[i], self.y[i])
                (g,) = torch.autograd.grad(value, w)
            losses.append(value.detach())
            grads.append(g)
        return torch.stack(losses).reshape(-1), torch.stack(grads)

    def noise(self, theta: torch.Tensor, scale: torch.Tensor | None) -> Noise:
        """The held loss, mean gradient and ``tr(P^-1 Sigma)`` (``P = diag(scale)``, 1 if None)."""
        losses, grads = self.per_example(theta.detach())
        n = grads.shape[0]
        mean = grads.mean(dim=0)
        deviations = grads - mean
        squared = deviations**2 if scale is None else deviations**2 / scale
        q = squared.sum(dim=1).to(torch.float64)
        trace = float(q.sum()) / (n - 1)
        trace_se = float(q.std() / math.sqrt(n)) * n / (n - 1)
        return Noise(float(losses.mean()), mean, trace, trace_se, n)
