"""Landscapes for the thermal experiments (temperature, SGD noise): a quartic double well that also
comes in one dimension (escape-time theory is one-dimensional), a sharp and a flat minimum of equal
depth, and a real empirical risk with two weights (logistic regression on scikit-learn's bundled
breast-cancer data), whose per-example gradients give SGD's noise.

Each takes ``dim`` where a second, independent coordinate makes sense: ``dim=2`` (the default, what
the Arena draws) adds ``y^2``; ``dim=1`` is the bare x part.

>>> import torch
>>> from descent.landscapes import get_landscape
>>> well = get_landscape("quartic-well", dim=1)
>>> float(well.value(torch.tensor([[1.0]], dtype=torch.float64))[0])
0.0
"""

from __future__ import annotations

import functools
import math

import torch

from descent._errors import invalid
from descent.landscapes._base import CriticalPoint, Landscape, refine_critical_point
from descent.landscapes._registry import register

TILT_MAX = 8 / (3 * math.sqrt(3))

__all__ = ["breast_cancer_features", "logistic_per_example_gradients", "quartic_roots", "sharp_flat_points"]


def _with_y(dim: int, name: str) -> int:
    if dim not in (1, 2):
        raise invalid(f"{name}.dim", dim, "1 (x only) or 2 (x plus an independent y^2)")
    return dim


def _point(energy, point_id: str, kind: str, position: tuple[float, ...]) -> CriticalPoint:
    value = float(energy(torch.tensor([position], dtype=torch.float64))[0])
    return CriticalPoint(point_id, kind, tuple(float(v) for v in position), value)  # type: ignore[arg-type]


# --- quartic double well ------------------------------------------------------------------------
def quartic_roots(tilt: float) -> tuple[float, float, float]:
    """The stationary points of ``(x^2 - 1)^2 - tilt*x``, left minimum, barrier top, right minimum
    (the real roots of ``4x^3 - 4x - tilt``, by the trigonometric formula)."""
    if not 0 <= tilt < TILT_MAX:
        raise invalid("quartic-well.tilt", tilt, f"a number in [0, {TILT_MAX:.4f}) so both minima exist")
    # 4x^3 - 4x - t = 0  ->  x = (2/sqrt 3) cos(phi/3 - 2 pi k/3), cos(phi) = t * 3 sqrt 3 / 8
    phi = math.acos(tilt * 3 * math.sqrt(3) / 8)
    roots = sorted(2 / math.sqrt(3) * math.cos(phi / 3 - 2 * math.pi * k / 3) for k in range(3))
    return roots[0], roots[1], roots[2]


@register(
    "quartic-well",
    "theory",
    "double well (x^2-1)^2 - tilt*x (+ y^2), also 1-D, for escape theory",
    tilt=0.0,
    dim=2,
)
def quartic_well(tilt: float = 0.0, dim: int = 2) -> Landscape:
    """U(x) = (x^2 - 1)^2 - tilt*x, plus y^2 when ``dim = 2`` (then it is the seeds' double well).

    Minima near x = -1 and x = +1, barrier top near 0; U'' = 12x^2 - 4 (8 at the symmetric minima,
    -4 at the symmetric barrier). With tilt = 0 this is the well on which Kramers' formula
    underestimates the mean escape time by ~19 % at barrier/T = 3 (REFERENCE.md).
    """
    dim = _with_y(dim, "quartic-well")
    left, top, right = quartic_roots(tilt)

    def energy(x: torch.Tensor) -> torch.Tensor:
        u = (x[:, 0] ** 2 - 1) ** 2 - tilt * x[:, 0]
        return u + x[:, 1] ** 2 if dim == 2 else u

    def grad(x: torch.Tensor) -> torch.Tensor:
        gx = 4 * x[:, 0] * (x[:, 0] ** 2 - 1) - tilt
        return torch.stack([gx, 2 * x[:, 1]], dim=1) if dim == 2 else gx.unsqueeze(1)

    pad = (0.0,) if dim == 2 else ()
    left_kind = "local_min" if tilt > 0 else "global_min"
    points = (
        _point(energy, "left", left_kind, (left, *pad)),
        _point(energy, "right", "global_min", (right, *pad)),
        _point(energy, "barrier", "saddle" if dim == 2 else "max", (top, *pad)),
    )
    bounds = ((-2.0, 2.0), (-1.5, 1.5))[:dim]
    formula = f"(x**2 - 1)**2 - {tilt}*x" + (" + y**2" if dim == 2 else "")
    return Landscape(
        name="quartic-well",
        dim=dim,
        energy=energy,
        grad_fn=grad,
        bounds=bounds,
        critical_points=points,
        default_start=(-1.7, *pad),
        default_lr=0.01,
        capture_radius=0.25,
        params={"tilt": tilt, "dim": dim},
        description="quartic double well: with temperature the ball hops the barrier at the Kramers rate",
        formula=formula,
    )


# --- sharp and flat minima of equal depth -------------------------------------------------------
def _sharp_flat_s(x: torch.Tensor, skew: float) -> tuple[torch.Tensor, torch.Tensor]:
    """s(x) = (exp(skew x) - 1)/skew and s'(x) = exp(skew x) (s = x when skew = 0)."""
    if skew == 0:
        return x, torch.ones_like(x)
    return torch.expm1(skew * x) / skew, torch.exp(skew * x)


def sharp_flat_points(height: float, skew: float) -> dict[str, float]:
    """Positions and curvatures of the sharp-flat landscape: the flat minimum at ``log(1 - c)/c``
    (U'' = 8H(1 - c)^2), the sharp one at ``log(1 + c)/c`` (U'' = 8H(1 + c)^2), the barrier at 0
    (U'' = -4H); both minima have U = 0, the barrier U = H."""
    c = skew
    flat = -1.0 if c == 0 else math.log(1 - c) / c
    sharp = 1.0 if c == 0 else math.log1p(c) / c
    return {
        "flat": flat,
        "sharp": sharp,
        "barrier": 0.0,
        "curv_flat": 8 * height * (1 - c) ** 2,
        "curv_sharp": 8 * height * (1 + c) ** 2,
        "curv_barrier": -4 * height,
    }


@register(
    "sharp-flat",
    "theory",
    "a sharp and a flat minimum of equal depth (0) either side of a barrier",
    height=1.0,
    skew=0.5,
    dim=2,
)
def sharp_flat(height: float = 1.0, skew: float = 0.5, dim: int = 2) -> Landscape:
    """U(x) = H (s(x)^2 - 1)^2 with s(x) = (exp(c x) - 1)/c, plus y^2 when ``dim = 2``.

    s is monotone, so U is a double well in the warped coordinate s: both minima (s = -1, +1) have
    U = 0 and the barrier (x = 0) U = H, but their widths differ: the curvature is
    8H(1 -+ c)^2, a ratio ((1 + c)/(1 - c))^2 (9 for c = 0.5). The flat well on the left opens onto a
    plateau at U = H (1/c^2 - 1)^2 (9H for c = 0.5); the sharp one on the right rises exponentially.
    """
    dim = _with_y(dim, "sharp-flat")
    if not height > 0:
        raise invalid("sharp-flat.height", height, "a number > 0")
    if not 0 <= skew < 1:
        raise invalid("sharp-flat.skew", skew, "a number in [0, 1): 0 gives two equal wells")
    geo = sharp_flat_points(height, skew)

    def energy(x: torch.Tensor) -> torch.Tensor:
        s, _ = _sharp_flat_s(x[:, 0], skew)
        u = height * (s**2 - 1) ** 2
        return u + x[:, 1] ** 2 if dim == 2 else u

    def grad(x: torch.Tensor) -> torch.Tensor:
        s, ds = _sharp_flat_s(x[:, 0], skew)
        gx = 4 * height * s * (s**2 - 1) * ds
        return torch.stack([gx, 2 * x[:, 1]], dim=1) if dim == 2 else gx.unsqueeze(1)

    pad = (0.0,) if dim == 2 else ()
    points = (
        _point(energy, "flat", "global_min", (geo["flat"], *pad)),
        _point(energy, "sharp", "global_min", (geo["sharp"], *pad)),
        _point(energy, "barrier", "saddle" if dim == 2 else "max", (0.0, *pad)),
    )
    low = geo["flat"] - 2.5
    high = geo["sharp"] + 1.0
    formula = (
        f"{height}*(((exp({skew}*x) - 1)/{skew})**2 - 1)**2" if skew else f"{height}*(x**2 - 1)**2"
    ) + (" + y**2" if dim == 2 else "")
    return Landscape(
        name="sharp-flat",
        dim=dim,
        energy=energy,
        grad_fn=grad,
        bounds=((low, high), (-1.5, 1.5))[:dim],
        critical_points=points,
        default_start=(0.3, *pad),
        default_lr=0.01,
        capture_radius=0.2,
        params={"height": height, "skew": skew, "dim": dim},
        formula=formula,
        description="a sharp and a flat minimum of equal depth: where does noisy descent end up?",
    )


# --- a real empirical risk with two weights -------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _breast_cancer() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = torch.tensor(data.data[:, [0, 1]], dtype=torch.float64)  # mean radius, mean texture
    features = (features - features.mean(0)) / features.std(0, unbiased=False)
    labels = torch.tensor(2 * data.target - 1, dtype=torch.float64)  # benign +1, malignant -1
    return features, labels


def breast_cancer_features() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's breast-cancer data (569 tumours): standardised 'mean radius' and 'mean texture'
    ``[569, 2]`` and labels ``+-1`` ``[569]`` (float64 copies)."""
    features, labels = _breast_cancer()
    return features.clone(), labels.clone()


def logistic_per_example_gradients(
    w: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, l2: float = 0.0
) -> torch.Tensor:
    """Per-example gradients of ``log(1 + exp(-y w.x)) + l2 |w|^2 / 2``: ``[..., n, 2]`` for weights
    ``w [..., 2]`` and examples ``features [..., n, 2]``, ``labels [..., n]`` (closed form:
    ``-y x sigmoid(-y w.x) + l2 w``)."""
    margin = labels * (features * w.unsqueeze(-2)).sum(-1)
    return -(labels * torch.sigmoid(-margin)).unsqueeze(-1) * features + l2 * w.unsqueeze(-2)


@register(
    "logistic-risk",
    "theory",
    "logistic regression, 2 weights, on the breast-cancer data: a real loss",
    l2=0.0,
)
def logistic_risk(l2: float = 0.0) -> Landscape:
    """U(w) = (1/N) sum_i log(1 + exp(-y_i w.x_i)) + l2 |w|^2/2 over scikit-learn's breast-cancer
    tumours (N = 569; x = standardised mean radius and mean texture, no intercept; y = +-1).

    The full-batch empirical risk of a two-weight model, so the loss surface can be drawn; a mini-batch
    of B examples gives its gradient plus noise of covariance ~ C/B (C: per-example covariance).
    """
    if not l2 >= 0:
        raise invalid("logistic-risk.l2", l2, "a number >= 0")
    features, labels = _breast_cancer()

    def energy(w: torch.Tensor) -> torch.Tensor:
        x, y = features.to(w.dtype), labels.to(w.dtype)
        margin = y * (w @ x.T)
        return torch.nn.functional.softplus(-margin).mean(1) + 0.5 * l2 * (w**2).sum(1)

    def grad(w: torch.Tensor) -> torch.Tensor:
        x, y = features.to(w.dtype), labels.to(w.dtype)
        weight = -y * torch.sigmoid(-y * (w @ x.T))  # [N_particles, N_data]
        return weight @ x / x.shape[0] + l2 * w

    minimum = refine_critical_point(energy, (-4.0, -0.9))
    return Landscape(
        name="logistic-risk",
        dim=2,
        energy=energy,
        grad_fn=grad,
        bounds=((minimum[0] - 4.0, minimum[0] + 4.0), (minimum[1] - 3.0, minimum[1] + 3.0)),
        critical_points=(_point(energy, "fit", "global_min", minimum),),
        default_start=(minimum[0] + 3.0, minimum[1] + 2.0),
        default_lr=2.0,
        capture_radius=0.3,
        params={"l2": l2},
        formula="mean(log(1 + exp(-y*(x1*w1 + x2*w2))))",
        description="a real empirical risk: logistic regression with two weights on 569 tumours",
    )
