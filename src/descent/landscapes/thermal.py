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

import math

import torch

from descent._errors import invalid
from descent.landscapes._base import CriticalPoint, Landscape
from descent.landscapes._registry import register
from descent.landscapes.formula import coordinates, parse_formula

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

    formula = f"(x**2 - 1)**2 - {tilt}*x" + (" + y**2" if dim == 2 else "")
    energy = parse_formula(formula, coordinates(dim))

    pad = (0.0,) if dim == 2 else ()
    left_kind = "local_min" if tilt > 0 else "global_min"
    points = (
        _point(energy, "left", left_kind, (left, *pad)),
        _point(energy, "right", "global_min", (right, *pad)),
        _point(energy, "barrier", "saddle" if dim == 2 else "max", (top, *pad)),
    )
    bounds = ((-2.0, 2.0), (-1.5, 1.5))[:dim]
    return Landscape(
        name="quartic-well",
        dim=dim,
        energy=energy,
        bounds=bounds,
        critical_points=points,
        default_start=(-1.7, *pad),
        default_lr=0.01,
        capture_radius=0.25,
        params={"tilt": tilt, "dim": dim},
        description="quartic double well: with temperature the ball hops the barrier at the Kramers rate",
    )


# --- sharp and flat minima of equal depth -------------------------------------------------------
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

    formula = (
        f"{height}*(((exp({skew}*x) - 1)/{skew})**2 - 1)**2" if skew else f"{height}*(x**2 - 1)**2"
    ) + (" + y**2" if dim == 2 else "")
    energy = parse_formula(formula, coordinates(dim))

    pad = (0.0,) if dim == 2 else ()
    points = (
        _point(energy, "flat", "global_min", (geo["flat"], *pad)),
        _point(energy, "sharp", "global_min", (geo["sharp"], *pad)),
        _point(energy, "barrier", "saddle" if dim == 2 else "max", (0.0, *pad)),
    )
    low = geo["flat"] - 2.5
    high = geo["sharp"] + 1.0
    return Landscape(
        name="sharp-flat",
        dim=dim,
        energy=energy,
        bounds=((low, high), (-1.5, 1.5))[:dim],
        critical_points=points,
        default_start=(0.3, *pad),
        default_lr=0.01,
        capture_radius=0.2,
        params={"height": height, "skew": skew, "dim": dim},
        description="a sharp and a flat minimum of equal depth: where does noisy descent end up?",
    )


# --- a real empirical risk with two weights: `descent.objectives.risk` (registered there) ----------------
def breast_cancer_features() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's breast-cancer data (569 tumours): standardised 'mean radius' and 'mean texture'
    ``[569, 2]`` and labels ``+-1`` ``[569]`` (float64 copies), the data of ``logistic-risk``."""
    from descent.objectives.risk import breast_cancer

    features, labels = breast_cancer()
    return features.clone(), labels.clone()


def logistic_per_example_gradients(
    w: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, l2: float = 0.0
) -> torch.Tensor:
    """Per-example gradients of ``log(1 + exp(-y w.x)) + l2 |w|^2 / 2``: ``[..., n, 2]`` for weights
    ``w [..., 2]`` and examples ``features [..., n, 2]``, ``labels [..., n]`` (closed form:
    ``-y x sigmoid(-y w.x) + l2 w``)."""
    margin = labels * (features * w.unsqueeze(-2)).sum(-1)
    return -(labels * torch.sigmoid(-margin)).unsqueeze(-1) * features + l2 * w.unsqueeze(-2)
