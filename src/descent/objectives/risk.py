"""`EmpiricalRisk`: an objective with data. U(w) = (1/B) sum_{i in batch} loss(w . x_i, y_i) + l2 |w|^2 / 2.

The engine draws each particle's mini-batch (``descent.dynamics.batches``) and passes its example
indices ``[N, B]``; ``batch=None`` is the full data set (batch gradient descent). Per-example
gradients are in closed form for a linear model: d loss / d w = loss'(z) x with z = w . x.

Losses (z: the margin w . x):

- ``logistic`` (labels y = +-1): loss = log(1 + exp(-y z)),  loss' = -y / (1 + exp(y z))
- ``squared``  (real targets):   loss = (z - y)^2 / 2,       loss' = z - y

Everything is elementwise or a reduction along the last axis, so a particle's value and gradient
are bitwise the same whichever other particles share the call (the engine's parity test needs it).

>>> import torch
>>> risk = logistic_risk()
>>> risk.data_size, risk.dim
(569, 2)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from descent._errors import invalid, listed
from descent.landscapes._base import CriticalPoint, Energy, Landscape, refine_critical_point
from descent.landscapes._registry import rebuild_landscape, register

LOSSES = ("logistic", "squared")


def _loss_and_slope(kind: str, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example loss and its derivative in the margin z."""
    if kind == "logistic":
        m = -y * z  # loss = softplus(m), written with exp and log1p only
        loss = torch.clamp(m, min=0) + torch.log1p(torch.exp(-torch.abs(m)))
        return loss, -y / (1 + torch.exp(-m))
    residual = z - y
    return 0.5 * residual * residual, residual


@dataclass(frozen=True, eq=False)
class EmpiricalRisk(Landscape):
    """A linear model's empirical risk over ``features [n, p]`` and ``targets [n]`` (w has p entries).

    ``value_and_grad(w [N, p], batch)``: ``batch`` is None (all n examples) or example indices
    ``[N, B]``, one row per particle. ``data_size`` is n. The full-batch risk is its energy, so every
    landscape tool (Hessian, critical points, the Arena's map) works on it.
    """

    features: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 1))
    targets: torch.Tensor = field(default_factory=lambda: torch.zeros(1))
    loss: str = "logistic"
    l2: float = 0.0

    @property
    def data_size(self) -> int:
        return int(self.targets.shape[0])

    def value_and_grad(self, x: torch.Tensor, batch: torch.Tensor | None = None):
        """(U, grad U) on the examples of ``batch`` (``[N, B]`` indices) or on all of them."""
        features = self.features.to(dtype=x.dtype, device=x.device)
        targets = self.targets.to(dtype=x.dtype, device=x.device)
        if batch is None:
            xb = features.unsqueeze(0)  # [1, n, p]
            yb = targets.unsqueeze(0)
        else:
            xb, yb = features[batch], targets[batch]  # [N, B, p], [N, B]
        z = (x.unsqueeze(1) * xb).sum(dim=-1)  # [N, B]
        loss, slope = _loss_and_slope(self.loss, z, yb)
        count = z.shape[1]
        value = loss.sum(dim=-1) / count
        grad = (slope.unsqueeze(-1) * xb).transpose(1, 2).sum(dim=-1) / count  # [N, p]
        if self.l2:
            value = value + 0.5 * self.l2 * (x * x).sum(dim=-1)
            grad = grad + self.l2 * x
        return value, grad

    def value(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """U on the full data (or ``batch``), from the same closed form as :meth:`value_and_grad`."""
        return self.value_and_grad(self._check_batch(x), batch)[0]

    def gradient(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """grad U in closed form (the energy's autograd gradient agrees to rounding; tested)."""
        return self.value_and_grad(self._check_batch(x), batch)[1]


def _full_energy(risk_args: tuple) -> Energy:
    features, targets, loss, l2 = risk_args

    def energy(w: torch.Tensor) -> torch.Tensor:
        """The full-batch risk in a form torch's autograd differentiates twice (Hessians, Newton)."""
        z = (w.unsqueeze(1) * features.to(w.dtype).unsqueeze(0)).sum(dim=-1)
        y = targets.to(w.dtype).unsqueeze(0)
        per_example = torch.nn.functional.softplus(-y * z) if loss == "logistic" else 0.5 * (z - y) ** 2
        return per_example.mean(dim=-1) + 0.5 * l2 * (w * w).sum(dim=-1)

    return energy


def empirical_risk(
    features: torch.Tensor,
    targets: torch.Tensor,
    loss: str = "logistic",
    l2: float = 0.0,
    *,
    name: str = "empirical-risk",
    bounds: Sequence[tuple[float, float]] | None = None,
    start: Sequence[float] | None = None,
    lr: float = 0.1,
    description: str = "",
) -> EmpiricalRisk:
    """The empirical risk of a linear model on a data set, its minimum found by Newton's method."""
    if loss not in LOSSES:
        raise invalid("loss", loss, f"one of: {listed(LOSSES)}")
    features = torch.as_tensor(features, dtype=torch.float64)
    targets = torch.as_tensor(targets, dtype=torch.float64)
    if features.ndim != 2 or targets.shape != features.shape[:1]:
        raise invalid("features", tuple(features.shape), "[n, p] features with n targets")
    if not l2 >= 0:
        raise invalid("l2", l2, "a number >= 0")
    energy = _full_energy((features, targets, loss, l2))
    dim = features.shape[1]
    fit = refine_critical_point(energy, (0.0,) * dim)
    if bounds is None:
        bounds = tuple((c - 4.0, c + 4.0) for c in fit)
    value = float(energy(torch.tensor([fit], dtype=torch.float64))[0])
    return EmpiricalRisk(
        name=name,
        dim=dim,
        energy=energy,
        bounds=tuple(bounds),
        critical_points=(CriticalPoint("fit", "global_min", fit, value),),
        default_start=tuple(start) if start is not None else tuple(c + 2.0 for c in fit),
        default_lr=lr,
        capture_radius=0.3,
        params={"l2": l2},
        description=description or f"{loss} risk of a linear model on {features.shape[0]} examples",
        formula=f"mean({loss}(w . x_i, y_i))" + (f" + {l2}*|w|^2/2" if l2 else ""),
        features=features,
        targets=targets,
        loss=loss,
        l2=float(l2),
    )


@functools.lru_cache(maxsize=1)
def breast_cancer() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's breast-cancer tumours: standardised mean radius and mean texture ``[569, 2]``,
    labels +1 (benign) / -1 (malignant) ``[569]`` (cached: do not modify)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = torch.tensor(data.data[:, [0, 1]], dtype=torch.float64)  # mean radius, mean texture
    features = (features - features.mean(0)) / features.std(0, unbiased=False)
    labels = torch.tensor(2 * data.target - 1, dtype=torch.float64)  # benign +1, malignant -1
    return features, labels


@register(
    "logistic-risk",
    "theory",
    "logistic regression, 2 weights, on the breast-cancer data: a real loss with data",
    l2=0.0,
)
def logistic_risk(l2: float = 0.0) -> EmpiricalRisk:
    """U(w) = (1/N) sum_i log(1 + exp(-y_i w.x_i)) + l2 |w|^2/2 over scikit-learn's breast-cancer
    tumours (N = 569; x = standardised mean radius and mean texture, no intercept; y = +-1): the
    full-batch risk of a two-weight model, so its loss surface can be drawn; a mini-batch of B
    examples gives its gradient plus noise of covariance ~ C/B (C: the per-example covariance)."""
    if not l2 >= 0:
        raise invalid("logistic-risk.l2", l2, "a number >= 0")
    features, labels = breast_cancer()
    risk = empirical_risk(
        features,
        labels,
        "logistic",
        l2,
        name="logistic-risk",
        lr=2.0,
        description="a real empirical risk: logistic regression with two weights on 569 tumours",
    )
    fit = risk.critical_points[0].position
    from dataclasses import replace

    risk = replace(
        risk,
        bounds=((fit[0] - 4.0, fit[0] + 4.0), (fit[1] - 3.0, fit[1] + 3.0)),
        default_start=(fit[0] + 3.0, fit[1] + 2.0),
        formula="mean(log(1 + exp(-y*(x1*w1 + x2*w2))))",
    )
    return risk.with_recipe(rebuild_landscape, "logistic-risk", {"l2": float(l2)})
