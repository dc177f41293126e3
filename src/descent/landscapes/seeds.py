"""The seeds' landscapes (double well, plateau, saddle) and the quadratic bowl used for theory.

Each is a formula (:func:`~descent.landscapes.formula.parse_formula`) with its parameters written in:
the text is the landscape's source, its value and its gradient.
"""

from __future__ import annotations

import math

import torch

from descent._errors import invalid
from descent.landscapes._base import CriticalPoint, Landscape, refine_critical_point
from descent.landscapes._registry import register
from descent.landscapes.formula import coordinates, parse_formula


def _points(energy, guesses: list[tuple[str, str, tuple[float, ...]]]) -> tuple[CriticalPoint, ...]:
    """Critical points refined by Newton from rough guesses, with their energies."""
    points = []
    for point_id, kind, guess in guesses:
        position = refine_critical_point(energy, guess)
        value = float(energy(torch.tensor([position], dtype=torch.float64))[0])
        points.append(CriticalPoint(point_id, kind, position, value))  # type: ignore[arg-type]
    return tuple(points)


@register("double-well", "seed", "asymmetric double well: shallow local minimum left, global right", tilt=0.3)
def double_well(tilt: float = 0.3) -> Landscape:
    """U(x, y) = (x^2 - 1)^2 - tilt*x + y^2.

    For 0 < tilt < 8/(3*sqrt 3) the left minimum (x ~ -1) is local and the right one (x ~ +1)
    global; the barrier top is the saddle near x = 0. Default start (-1.7, 0), lr 0.02.
    """
    if not 0 < tilt < 8 / (3 * math.sqrt(3)):
        raise invalid("double-well.tilt", tilt, "a number in (0, 1.5396) so both minima exist")

    energy = parse_formula(f"(x**2 - 1)**2 - {tilt}*x + y**2")
    points = _points(
        energy,
        [
            ("left", "local_min", (-1.0, 0.0)),
            ("right", "global_min", (1.0, 0.0)),
            ("barrier", "saddle", (0.0, 0.0)),
        ],
    )
    return Landscape(
        name="double-well",
        dim=2,
        energy=energy,
        bounds=((-2.0, 2.0), (-1.5, 1.5)),
        critical_points=points,
        default_start=(-1.7, 0.0),
        default_lr=0.02,
        description="asymmetric double well: plain GD stays in the left (local) minimum, momentum 0.9 "
        "carries the ball to the right (global) one",
        params={"tilt": tilt},
        capture_radius=0.25,
    )


@register(
    "plateau",
    "seed",
    "long gentle constant slope, then a drop into a well",
    slope=0.05,
    length=8.0,
    depth=1.0,
    width=0.5,
)
def plateau(slope: float = 0.05, length: float = 8.0, depth: float = 1.0, width: float = 0.5) -> Landscape:
    """U(x, y) = -slope*x - depth*exp(-(x - c)^2 / (2 width^2)) + max(x - c - width, 0)^3 + y^2.

    c = length + 6*width. For 0 <= x <= length the force is the constant ``slope`` (to 1e-6): GD
    crawls at speed lr*slope per step, heavy ball reaches the terminal speed lr*slope/(1 - beta).
    Beyond, the ball drops into a Gaussian well at x ~ c, held by a cubic wall. Start (0, 0).
    """
    for key, val in (("slope", slope), ("length", length), ("depth", depth), ("width", width)):
        if val <= 0:
            raise invalid(f"plateau.{key}", val, "a number > 0")
    c = length + 6 * width

    energy = parse_formula(
        f"-{slope}*x - {depth}*exp(-(x - {c})**2/(2*{width}**2)) + max(x - {c} - {width}, 0)**3 + y**2"
    )
    points = _points(energy, [("well", "global_min", (c + 0.05 * width, 0.0))])
    return Landscape(
        name="plateau",
        dim=2,
        energy=energy,
        bounds=((-1.0, c + 4 * width), (-1.5, 1.5)),
        critical_points=points,
        default_start=(0.0, 0.0),
        default_lr=0.1,
        description="a long gentle slope (constant force) before a well: GD crawls, momentum speeds "
        "the crossing by about 1/(1 - beta)",
        params={"slope": slope, "length": length, "depth": depth, "width": width},
        capture_radius=0.25 * width,
    )


@register("saddle", "seed", "the Pringle x^2 - y^2 (unbounded below along y)", curvature=1.0)
def saddle(curvature: float = 1.0) -> Landscape:
    """U(x, y) = x^2 - curvature*y^2: Hessian diag(2, -2*curvature), a saddle at the origin.

    Unbounded below: a ball that leaves the domain along y is ``escaped``. From y = 0 exactly
    GD never leaves the stable axis.
    """
    if curvature <= 0:
        raise invalid("saddle.curvature", curvature, "a number > 0")

    energy = parse_formula(f"x**2 - {curvature}*y**2")
    return Landscape(
        name="saddle",
        dim=2,
        energy=energy,
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        critical_points=(CriticalPoint("origin", "saddle", (0.0, 0.0), 0.0),),
        default_start=(1.5, 1e-3),
        default_lr=0.05,
        bounded_below=False,
        capture_radius=0.05,
        description="saddle x^2 - y^2: GD slows near the origin and leaves along y unless y = 0",
        params={"curvature": curvature},
    )


@register(
    "saddle-bounded", "seed", "saddle x^2 - y^2 + y^4/4 with two global minima at y = +-sqrt 2", curvature=1.0
)
def saddle_bounded(curvature: float = 1.0) -> Landscape:
    """U(x, y) = x^2 - curvature*y^2 + y^4/4: a saddle at 0, global minima at (0, +-sqrt(2*curvature))."""
    if curvature <= 0:
        raise invalid("saddle-bounded.curvature", curvature, "a number > 0")
    y_min = math.sqrt(2 * curvature)

    energy = parse_formula(f"x**2 - {curvature}*y**2 + y**4/4")
    value = -(curvature**2)
    return Landscape(
        name="saddle-bounded",
        dim=2,
        energy=energy,
        bounds=((-2.0, 2.0), (-2.5, 2.5)),
        critical_points=(
            CriticalPoint("origin", "saddle", (0.0, 0.0), 0.0),
            CriticalPoint("up", "global_min", (0.0, y_min), value),
            CriticalPoint("down", "global_min", (0.0, -y_min), value),
        ),
        default_start=(1.5, 1e-3),
        default_lr=0.05,
        description="bounded saddle: the ball stalls near the origin, then falls to y = +-sqrt 2",
        params={"curvature": curvature},
    )


@register(
    "quadratic",
    "theory",
    "quadratic bowl x^T A x / 2 with condition number kappa, rotated",
    kappa=10.0,
    mu=1.0,
    angle=0.0,
    dim=2,
)
def quadratic(kappa: float = 10.0, mu: float = 1.0, angle: float = 0.0, dim: int = 2) -> Landscape:
    """U(x) = x^T A x / 2 (the formula ``x @ A @ x / 2``), A = R diag(lambda) R^T, eigenvalues
    geometric from mu to L = kappa*mu; the gradient is A x.

    In 2-D, R rotates by ``angle`` (radians). Minimum 0 at the origin. GD is stable for
    lr < 2/L; its optimal rate (kappa - 1)/(kappa + 1) is reached at lr = 2/(L + mu).
    """
    if kappa < 1:
        raise invalid("quadratic.kappa", kappa, "a number >= 1")
    if mu <= 0:
        raise invalid("quadratic.mu", mu, "a number > 0")
    dim = int(dim)
    if dim == 1:
        eigenvalues = torch.tensor([mu], dtype=torch.float64)
    else:
        eigenvalues = mu * kappa ** torch.linspace(1.0, 0.0, dim, dtype=torch.float64)
    rotation = torch.eye(dim, dtype=torch.float64)
    if dim >= 2:
        c, s = math.cos(angle), math.sin(angle)
        rotation[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    matrix = rotation @ torch.diag(eigenvalues) @ rotation.T
    matrix = (matrix + matrix.T) / 2  # symmetric to the last bit
    energy = parse_formula("x @ A @ x / 2", coordinates(dim), matrices={"A": matrix})

    start = tuple([1.0] * dim) if dim != 2 else (1.5, 1.0)
    return Landscape(
        name="quadratic",
        dim=dim,
        energy=energy,
        bounds=tuple([(-2.0, 2.0)] * dim),
        critical_points=(CriticalPoint("origin", "global_min", tuple([0.0] * dim), 0.0),),
        default_start=start,
        default_lr=1.0 / float(eigenvalues.max()),
        description=f"quadratic bowl, eigenvalues {mu:g}..{kappa * mu:g} (kappa {kappa:g})",
        params={"kappa": kappa, "mu": mu, "angle": angle, "dim": dim},
        capture_radius=0.05,
    )


def quadratic_matrix(landscape: Landscape) -> torch.Tensor:
    """The matrix A of a quadratic landscape (its exact Hessian, by autograd)."""
    return landscape.hessian(torch.zeros(1, landscape.dim, dtype=torch.float64))[0]
