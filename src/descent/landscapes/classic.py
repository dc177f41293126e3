"""Classic optimisation test functions (Surjanovic & Bingham's virtual library, Wikipedia's
"Test functions for optimization"), each with its recommended domain and published minima.

Each is a formula (:func:`~descent.landscapes.formula.parse_formula`): the text is its source, its
value (float32 or float64, any device) and its gradient (reverse mode over the formula, tested
equal to autograd). The n-dimensional ones sum over the coordinates, e.g. Rastrigin is
``10*d + sum(x[i]**2 - 10*cos(2*pi*x[i]) for i in range(d))``. Two minima are special and marked so:

- Ackley's minimum at the origin is a cusp (``smooth=False``): r = sqrt(mean x^2), and the
  formulas take sqrt'(0) = 0, so the gradient there is the subgradient 0, never NaN.
- Eggholder's minimum lies on the edge x = 512 of its domain (``on_boundary=True``): there
  dU/dy = 0 but dU/dx < 0, so the force points out of the box.

>>> import torch
>>> from descent.landscapes import get_landscape
>>> camel = get_landscape("six-hump-camel")
>>> round(float(camel.value(torch.tensor([camel.global_minima[0].position]))[0]), 6)
-1.031628
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch

from descent._errors import invalid
from descent.landscapes._base import CriticalPoint, Energy, Landscape, PointKind, refine_critical_point
from descent.landscapes._registry import register
from descent.landscapes.formula import coordinates, parse_formula

TWO_PI = 2 * math.pi


# --- helpers ---------------------------------------------------------------------------------
def _value(energy: Energy, position: Sequence[float]) -> float:
    return float(energy(torch.tensor([list(position)], dtype=torch.float64))[0])


def _refined(energy: Energy, point_id: str, kind: PointKind, guess: Sequence[float]) -> CriticalPoint:
    """A critical point refined by Newton from published (rounded) coordinates, with its energy."""
    position = refine_critical_point(energy, guess)
    return CriticalPoint(point_id, kind, position, _value(energy, position))


def _exact(energy: Energy, point_id: str, kind: PointKind, position: Sequence[float]) -> CriticalPoint:
    """A critical point whose coordinates are known exactly, with its energy."""
    position = tuple(float(v) for v in position)
    return CriticalPoint(point_id, kind, position, _value(energy, position))


def _check_dim(name: str, dim: int, low: int = 1) -> int:
    if dim != int(dim) or dim < low:
        raise invalid(f"{name}.dim", dim, f"an integer >= {low}")
    return int(dim)


def _cube(low: float, high: float, dim: int) -> tuple[tuple[float, float], ...]:
    return tuple((low, high) for _ in range(dim))


# --- n-dimensional functions ------------------------------------------------------------------
@register("sphere", "classic", "the sphere sum x_i^2: one round bowl, minimum 0 at the origin", dim=2)
def sphere(dim: int = 2) -> Landscape:
    """U(x) = sum_i x_i^2 on [-5.12, 5.12]^d; global minimum 0 at the origin.

    Hessian 2I: GD is stable for lr < 1 and converges in one step at lr = 1/2.
    """
    dim = _check_dim("sphere", dim)

    energy = parse_formula("sum(x[i]**2 for i in range(d))", coordinates(dim))
    start = (3.0, -4.0) if dim == 2 else tuple(3.0 if i % 2 == 0 else -4.0 for i in range(dim))
    return Landscape(
        name="sphere",
        dim=dim,
        energy=energy,
        bounds=_cube(-5.12, 5.12, dim),
        critical_points=(CriticalPoint("global", "global_min", (0.0,) * dim, 0.0),),
        default_start=start,
        default_lr=0.1,
        description="the sphere: a perfectly round bowl, the easiest case for every optimizer",
        params={"dim": dim},
    )


@register(
    "rosenbrock",
    "classic",
    "Rosenbrock's banana valley: easy to find, slow to follow, min at (1,...,1)",
    dim=2,
)
def rosenbrock(dim: int = 2) -> Landscape:
    """U(x) = sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 on [-2.048, 2.048]^d.

    Global minimum 0 at (1, ..., 1). The curved valley's walls have curvature ~1000 while the floor
    is almost flat, so GD (stable only for lr < ~2e-3) crawls along it. Start (-1.2, 1, ...).
    """
    dim = _check_dim("rosenbrock", dim, low=2)

    energy = parse_formula(
        "sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i in range(d - 1))", coordinates(dim)
    )
    start = tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(dim))
    return Landscape(
        name="rosenbrock",
        dim=dim,
        energy=energy,
        bounds=_cube(-2.048, 2.048, dim),
        critical_points=(CriticalPoint("global", "global_min", (1.0,) * dim, 0.0),),
        default_start=start,
        default_lr=1e-3,
        description="Rosenbrock's banana: a steep-walled curved valley; GD zig-zags, momentum follows it",
        params={"dim": dim},
    )


@register(
    "rastrigin", "classic", "Rastrigin: a bowl covered in a lattice of local minima, global 0 at 0", dim=2
)
def rastrigin(dim: int = 2) -> Landscape:
    """U(x) = 10 d + sum_i (x_i^2 - 10 cos(2 pi x_i)) on [-5.12, 5.12]^d.

    Global minimum 0 at the origin; a local minimum near every integer lattice point. Curvature up
    to 2 + 40 pi^2 ~ 397, so GD needs lr < ~5e-3; from the default start it stops in a local minimum.
    """
    dim = _check_dim("rastrigin", dim)

    energy = parse_formula("10*d + sum(x[i]**2 - 10*cos(2*pi*x[i]) for i in range(d))", coordinates(dim))
    start = (2.7, -1.6) if dim == 2 else tuple(2.7 if i % 2 == 0 else -1.6 for i in range(dim))
    return Landscape(
        name="rastrigin",
        dim=dim,
        energy=energy,
        bounds=_cube(-5.12, 5.12, dim),
        critical_points=(CriticalPoint("global", "global_min", (0.0,) * dim, 0.0),),
        default_start=start,
        default_lr=2e-3,
        description="Rastrigin: an egg-crate of local minima on a bowl; GD is trapped, noise can escape",
        params={"dim": dim},
    )


@register("ackley", "classic", "Ackley: a flat, bumpy plain around a deep funnel with a cusp at 0", dim=2)
def ackley(dim: int = 2) -> Landscape:
    """U(x) = -20 exp(-0.2 r) - exp(mean_i cos(2 pi x_i)) + 20 + e, r = sqrt(mean_i x_i^2), on [-5, 5]^d.

    Global minimum 0 at the origin, a cusp (U ~ 4 r): its gradient is undefined there, marked
    ``smooth=False``; with sqrt'(0) = 0 the reverse-mode and autograd gradients both return the
    subgradient 0 at r = 0.
    """
    dim = _check_dim("ackley", dim)
    energy = parse_formula(
        "-20*exp(-0.2*sqrt(mean(x[i]**2 for i in range(d)))) - exp(mean(cos(2*pi*x[i]) for i in range(d)))"
        " + 20 + e",
        coordinates(dim),
    )
    start = (3.2, -2.4) if dim == 2 else tuple(3.2 if i % 2 == 0 else -2.4 for i in range(dim))
    return Landscape(
        name="ackley",
        dim=dim,
        energy=energy,
        bounds=_cube(-5.0, 5.0, dim),
        critical_points=(CriticalPoint("global", "global_min", (0.0,) * dim, 0.0, smooth=False),),
        default_start=start,
        default_lr=0.01,
        description="Ackley: many shallow local minima on a plateau, one deep cusp-shaped funnel at 0",
        params={"dim": dim},
    )


def _styblinski_tang_roots() -> tuple[float, float]:
    """The two minimisers of the 1-D term (x^4 - 16 x^2 + 5 x)/2: roots of 2x^3 - 16x + 2.5."""
    roots = []
    for guess in (-2.9, 2.75):
        x = guess
        for _ in range(50):
            x -= (2 * x**3 - 16 * x + 2.5) / (6 * x**2 - 16)
        roots.append(x)
    return roots[0], roots[1]


@register("styblinski-tang", "classic", "Styblinski-Tang: 2^d minima, global at x_i = -2.9035", dim=2)
def styblinski_tang(dim: int = 2) -> Landscape:
    """U(x) = sum_i (x_i^4 - 16 x_i^2 + 5 x_i) / 2 on [-5, 5]^d.

    Separable: each coordinate has a minimum at -2.903534 (deeper) and at 2.746803, so there are
    2^d minima; global -39.16616570377142 d at x_i = -2.903534027771178. Local minima are listed
    for d <= 4 (ids ``local(+,-)`` give each coordinate's side).
    """
    dim = _check_dim("styblinski-tang", dim)
    low, high = _styblinski_tang_roots()

    energy = parse_formula("sum(x[i]**4 - 16*x[i]**2 + 5*x[i] for i in range(d))/2", coordinates(dim))

    points = [_exact(energy, "global", "global_min", (low,) * dim)]
    if dim <= 4:
        for signs in itertools.product("-+", repeat=dim):
            if "+" in signs:
                position = tuple(high if s == "+" else low for s in signs)
                points.append(_exact(energy, f"local({','.join(signs)})", "local_min", position))
    start = (0.3, 4.0) if dim == 2 else tuple(0.3 if i % 2 == 0 else 4.0 for i in range(dim))
    return Landscape(
        name="styblinski-tang",
        dim=dim,
        energy=energy,
        bounds=_cube(-5.0, 5.0, dim),
        critical_points=tuple(points),
        default_start=start,
        default_lr=0.01,
        description="Styblinski-Tang: separable double wells, one deeper side per coordinate",
        params={"dim": dim},
    )


# --- two-dimensional functions ----------------------------------------------------------------
HIMMELBLAU = "(x**2 + y - 11)**2 + (x + y**2 - 7)**2"
SIX_HUMP_CAMEL = "(4 - 2.1*x**2 + x**4/3)*x**2 + x*y + (-4 + 4*y**2)*y**2"
GOLDSTEIN_PRICE = (
    "(1 + (x + y + 1)**2*(19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2))"
    "*(30 + (2*x - 3*y)**2*(18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))"
)
EGGHOLDER = "-(y + 47)*sin(sqrt(abs(x/2 + y + 47))) - x*sin(sqrt(abs(x - (y + 47))))"


@functools.cache
def _himmelblau_points() -> tuple[CriticalPoint, ...]:
    e = parse_formula(HIMMELBLAU)
    return (
        _exact(e, "ne", "global_min", (3.0, 2.0)),
        _refined(e, "nw", "global_min", (-2.805118, 3.131312)),
        _refined(e, "sw", "global_min", (-3.779310, -3.283186)),
        _refined(e, "se", "global_min", (3.584428, -1.848126)),
        _refined(e, "max", "max", (-0.270845, -0.923039)),
        _refined(e, "saddle-n", "saddle", (0.086678, 2.884255)),
        _refined(e, "saddle-e", "saddle", (3.385154, 0.073853)),
        _refined(e, "saddle-s", "saddle", (-0.127961, -1.953715)),
        _refined(e, "saddle-w", "saddle", (-3.073026, -0.081353)),
    )


@register("himmelblau", "classic", "Himmelblau: four equal global minima (value 0) around a central hill")
def himmelblau() -> Landscape:
    """U(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2 on [-5, 5]^2.

    Four global minima of value 0: (3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186),
    (3.584428, -1.848126); a local maximum 181.617 at (-0.270845, -0.923039) and four saddles.
    Which minimum GD reaches depends on the start: the basins meet at the saddles.
    """
    return Landscape(
        name="himmelblau",
        dim=2,
        energy=parse_formula(HIMMELBLAU),
        bounds=((-5.0, 5.0), (-5.0, 5.0)),
        critical_points=_himmelblau_points(),
        default_start=(-0.5, 0.5),
        default_lr=0.01,
        description="Himmelblau: four equally deep minima; the start decides which one GD finds",
    )


@register("beale", "classic", "Beale: flat valleys and steep corners, minimum 0 at (3, 0.5)")
def beale() -> Landscape:
    """U(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2 on [-4.5, 4.5]^2.

    Global minimum 0 at (3, 0.5), at the end of a long flat valley; values reach ~1.8e5 in the
    corners, so GD needs a small step.
    """
    energy = parse_formula("(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2")
    return Landscape(
        name="beale",
        dim=2,
        energy=energy,
        bounds=((-4.5, 4.5), (-4.5, 4.5)),
        critical_points=(_exact(energy, "global", "global_min", (3.0, 0.5)),),
        default_start=(1.0, 1.4),
        default_lr=1e-3,
        description="Beale: a narrow, flat-bottomed valley leading to (3, 0.5), steep walls elsewhere",
    )


@register("booth", "classic", "Booth: a tilted quadratic bowl (condition number 9), minimum 0 at (1, 3)")
def booth() -> Landscape:
    """U(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2 on [-10, 10]^2.

    A quadratic with Hessian [[10, 8], [8, 10]] (eigenvalues 18 and 2): GD is stable for lr < 1/9.
    Global minimum 0 at (1, 3).
    """
    return Landscape(
        name="booth",
        dim=2,
        energy=parse_formula("(x + 2*y - 7)**2 + (2*x + y - 5)**2"),
        bounds=((-10.0, 10.0), (-10.0, 10.0)),
        critical_points=(CriticalPoint("global", "global_min", (1.0, 3.0), 0.0),),
        default_start=(-6.0, -4.0),
        default_lr=0.05,
        description="Booth: an elongated, rotated quadratic bowl",
    )


@register("matyas", "classic", "Matyas: a very flat, rotated quadratic (condition number 25), min 0 at 0")
def matyas() -> Landscape:
    """U(x, y) = 0.26 (x^2 + y^2) - 0.48 x y on [-10, 10]^2.

    Hessian eigenvalues 1 (across the diagonal) and 0.04 (along it): GD is stable for lr < 2 and
    slow along the diagonal. Global minimum 0 at the origin.
    """
    return Landscape(
        name="matyas",
        dim=2,
        energy=parse_formula("0.26*(x**2 + y**2) - 0.48*x*y"),
        bounds=((-10.0, 10.0), (-10.0, 10.0)),
        critical_points=(CriticalPoint("global", "global_min", (0.0, 0.0), 0.0),),
        default_start=(-7.0, 9.0),
        default_lr=0.5,
        description="Matyas: a shallow, ill-conditioned plate; progress along the diagonal is slow",
    )


@functools.cache
def _six_hump_points() -> tuple[CriticalPoint, ...]:
    e = parse_formula(SIX_HUMP_CAMEL)
    return (
        _refined(e, "centre-e", "global_min", (0.08984201368301331, -0.7126564032704135)),
        _refined(e, "centre-w", "global_min", (-0.08984201368301331, 0.7126564032704135)),
        _refined(e, "w-up", "local_min", (-1.7036, 0.7961)),
        _refined(e, "e-down", "local_min", (1.7036, -0.7961)),
        _refined(e, "w-down", "local_min", (-1.6071, -0.5687)),
        _refined(e, "e-up", "local_min", (1.6071, 0.5687)),
    )


@register("six-hump-camel", "classic", "six-hump camel: six minima, two global (-1.0316) near the centre")
def six_hump_camel() -> Landscape:
    """U(x, y) = (4 - 2.1 x^2 + x^4/3) x^2 + x y + (-4 + 4 y^2) y^2 on [-3, 3] x [-2, 2].

    Global minima -1.031628453489877 at +-(0.08984201368301331, -0.7126564032704135); four local
    minima, -0.2155 at +-(-1.7036, 0.7961) and 2.1043 at +-(1.6071, 0.5687).
    """
    return Landscape(
        name="six-hump-camel",
        dim=2,
        energy=parse_formula(SIX_HUMP_CAMEL),
        bounds=((-3.0, 3.0), (-2.0, 2.0)),
        critical_points=_six_hump_points(),
        default_start=(-1.2, 1.2),
        default_lr=0.01,
        description="six-hump camel: two symmetric global minima in the middle, four local ones outside",
    )


@register("three-hump-camel", "classic", "three-hump camel: global 0 at 0 between two local minima")
def three_hump_camel() -> Landscape:
    """U(x, y) = 2 x^2 - 1.05 x^4 + x^6/6 + x y + y^2 on [-5, 5]^2.

    Global minimum 0 at the origin; local minima 0.2986 at +-(1.7476, -0.8738), where
    x^2 = (4.2 + sqrt(3.64))/2 and y = -x/2 (closed form).
    """
    energy = parse_formula("2*x**2 - 1.05*x**4 + x**6/6 + x*y + y**2")
    side = math.sqrt((4.2 + math.sqrt(4.2**2 - 14)) / 2)
    points = (
        CriticalPoint("global", "global_min", (0.0, 0.0), 0.0),
        _exact(energy, "east", "local_min", (side, -side / 2)),
        _exact(energy, "west", "local_min", (-side, side / 2)),
    )
    return Landscape(
        name="three-hump-camel",
        dim=2,
        energy=energy,
        bounds=((-5.0, 5.0), (-5.0, 5.0)),
        critical_points=points,
        default_start=(-2.2, 2.0),
        default_lr=0.01,
        description="three-hump camel: a global minimum at the centre flanked by two shallow local ones",
    )


@functools.cache
def _goldstein_price_points() -> tuple[CriticalPoint, ...]:
    # All four are exact: at each, x + y + 1 = 0 or 2x - 3y = 0 or both quadratic factors' gradients cancel.
    e = parse_formula(GOLDSTEIN_PRICE)
    return (
        _exact(e, "global", "global_min", (0.0, -1.0)),
        _exact(e, "sw", "local_min", (-0.6, -0.4)),
        _exact(e, "east", "local_min", (1.8, 0.2)),
        _exact(e, "ne", "local_min", (1.2, 0.8)),
    )


@register("goldstein-price", "classic", "Goldstein-Price: values from 3 to 1e6, global 3 at (0, -1)")
def goldstein_price() -> Landscape:
    """U(x, y) = [1 + (x+y+1)^2 (19 - 14x + 3x^2 - 14y + 6xy + 3y^2)]
    * [30 + (2x-3y)^2 (18 - 32x + 12x^2 + 48y - 36xy + 27y^2)] on [-2, 2]^2.

    Global minimum 3 at (0, -1); local minima 30 at (-0.6, -0.4), 84 at (1.8, 0.2), 840 at (1.2, 0.8).
    Its scale spans six orders of magnitude, so a fixed GD step is either tiny or unstable.
    """
    return Landscape(
        name="goldstein-price",
        dim=2,
        energy=parse_formula(GOLDSTEIN_PRICE),
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        critical_points=_goldstein_price_points(),
        default_start=(-0.4, -0.9),
        default_lr=1e-4,
        description="Goldstein-Price: a badly scaled polynomial with one global and three local minima",
    )


@register("levi-13", "classic", "Levi N.13: sinusoidal ripples on a valley, minimum 0 at (1, 1)")
def levi_13() -> Landscape:
    """U(x, y) = sin^2(3 pi x) + (x-1)^2 (1 + sin^2(3 pi y)) + (y-1)^2 (1 + sin^2(2 pi y)) on [-10, 10]^2.

    Global minimum 0 at (1, 1) among many local minima. The ripples' curvature grows like
    18 pi^2 (x - 1)^2 away from it, so GD's stable step shrinks with distance (lr 1e-3 near the start).
    """
    return Landscape(
        name="levi-13",
        dim=2,
        energy=parse_formula(
            "sin(3*pi*x)**2 + (x - 1)**2*(1 + sin(3*pi*y)**2) + (y - 1)**2*(1 + sin(2*pi*y)**2)"
        ),
        bounds=((-10.0, 10.0), (-10.0, 10.0)),
        critical_points=(CriticalPoint("global", "global_min", (1.0, 1.0), 0.0),),
        default_start=(-1.5, 2.5),
        default_lr=1e-3,
        description="Levi N.13: a valley with sinusoidal ripples; GD stops in the nearest ripple",
    )


@register(
    "mccormick",
    "classic",
    "McCormick: a sine-bent valley; global -1.9133 at (-0.547, -1.547), one local minimum",
)
def mccormick() -> Landscape:
    """U(x, y) = sin(x + y) + (x - y)^2 - 1.5 x + 2.5 y + 1 on [-1.5, 4] x [-3, 4].

    Stationary points have x - y = 1 and cos(x + y) = -1/2. Global minimum at x + y = -2 pi/3,
    (-0.5471975512, -1.5471975512), value -sqrt(3)/2 - 2 pi/3 + 1/2 = -1.9132229550 (published:
    -1.9133 at (-0.54719, -1.54719)); a saddle at x + y = 2 pi/3 and a local minimum 1.2284 at
    x + y = 4 pi/3, (2.5943951, 1.5943951), also inside the domain.
    """
    energy = parse_formula("sin(x + y) + (x - y)**2 - 1.5*x + 2.5*y + 1")

    def at(total: float) -> tuple[float, float]:  # the point with x + y = total, x - y = 1
        return (total / 2 + 0.5, total / 2 - 0.5)

    points = (
        _exact(energy, "global", "global_min", at(-TWO_PI / 3)),
        _exact(energy, "ne", "local_min", at(2 * TWO_PI / 3)),
        _exact(energy, "saddle", "saddle", at(TWO_PI / 3)),
    )
    return Landscape(
        name="mccormick",
        dim=2,
        energy=energy,
        bounds=((-1.5, 4.0), (-3.0, 4.0)),
        critical_points=points,
        default_start=(3.0, 3.0),
        default_lr=0.1,
        description="McCormick: a tilted valley bent by a sine into a global and a local minimum",
    )


@functools.cache
def _eggholder_points() -> tuple[CriticalPoint, ...]:
    # The minimum sits on the edge x = 512: refine y alone (dU/dy = 0 there, dU/dx < 0).
    energy = parse_formula(EGGHOLDER)

    def along_edge(y: torch.Tensor) -> torch.Tensor:
        return energy(torch.cat([torch.full_like(y, 512.0), y], dim=1))

    (y,) = refine_critical_point(along_edge, (404.2319,))
    position = (512.0, y)
    return (CriticalPoint("global", "global_min", position, _value(energy, position), on_boundary=True),)


@register("eggholder", "classic", "Eggholder: a rugged egg crate; global -959.64 on the edge x = 512")
def eggholder() -> Landscape:
    """U(x, y) = -(y + 47) sin(sqrt|x/2 + y + 47|) - x sin(sqrt|x - (y + 47)|) on [-512, 512]^2.

    Global minimum -959.6407 at (512, 404.2319), on the boundary of the domain (``on_boundary``):
    the gradient there is not zero but points out of the box. The sqrt|.| creases are cusps; with
    sqrt'(0) = 0 and abs'(0) = 0 the gradient there is a zero subgradient instead of NaN.
    """
    return Landscape(
        name="eggholder",
        dim=2,
        energy=parse_formula(EGGHOLDER),
        bounds=((-512.0, 512.0), (-512.0, 512.0)),
        critical_points=_eggholder_points(),
        default_start=(400.0, 300.0),
        default_lr=0.5,
        capture_radius=5.0,
        description="Eggholder: deep, irregular wells everywhere; the best one lies on the domain's edge",
    )
