"""Regularisation as a potential: an L2 term added to any landscape or objective,

    U_lambda(w) = U(w) + (lambda / 2) |w - c|^2,        grad U_lambda = grad U + lambda (w - c),

a bowl centred on ``c`` (0 by default) whose curvature ``lambda`` is added to every eigenvalue of the
Hessian. Its stationary points solve ``grad U(w) = -lambda (w - c)``: each minimum of U moves toward c as
lambda grows, a shallow one may merge with a saddle and vanish, and for lambda above the most negative
curvature of U anywhere the landscape is convex with one minimum, which tends to c. On the quadratic
``U = (w - w0)^T A (w - w0) / 2`` the minimum is ``(A + lambda I)^-1 (A w0 + lambda c)``: with c = 0 the
ridge estimate ``(A + lambda I)^-1 A w0``.

When U is a formula the regularised landscape is a formula too (the text ``U + lambda/2*((x - c1)**2
+ ...)``, the matrices of U kept), so the compiled kernels, the Arena's map and every other tool take it
as they take U. An objective with data (``data_size`` not None) keeps its batches: each mini-batch's loss
gets the same term. Its known points are U's, each moved by Newton's method on grad U_lambda = 0 and
classified again by the signs of its Hessian's eigenvalues (duplicates merged, the lowest minimum
global), plus the minimum reached from c.

>>> import torch
>>> from descent.landscapes import get_landscape
>>> well = regularized(get_landscape("double-well"), 0.5)
>>> well.formula
'(x**2 - 1)**2 - 0.3*x + y**2 + 0.5/2*((x - 0.0)**2 + (y - 0.0)**2)'
>>> [(p.id, round(p.position[0], 6)) for p in well.minima]
[('left', -0.889187), ('right', 0.97564)]
>>> path = regularization_path(get_landscape("double-well"), [0.0, 1.0, 4.0])
>>> path.positions["left"][:, 0].round(4).tolist(), path.positions["right"][:, 0].round(4).tolist()
([-0.9601, -0.8109, nan], [1.0356, 0.9123, 0.4217])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from descent._errors import check_number, invalid
from descent.landscapes import CriticalPoint, Landscape, get_landscape, parse_formula
from descent.landscapes._base import batched_hessian, refine_critical_point
from descent.landscapes._registry import LANDSCAPES, register
from descent.landscapes.formula import MAX_LENGTH, FormulaError

STATIONARY = 1e-9  # |grad U_lambda| at a refined point, relative to 1 + |grad U| there
SAME_POINT = 1e-6  # two refined points closer than this are one
CENTER_ID = "center"
NEWTON_STEPS = 20  # from a nearby point Newton converges in a few; more only wastes time on a lost point


@dataclass(frozen=True, eq=False)
class RegularizedLandscape(Landscape):
    """``base`` plus ``strength/2 |w - center|^2`` (the module docstring). ``value``, ``gradient``,
    ``hessian`` and ``value_and_grad`` are those of U_lambda; with data, ``value_and_grad(x, batch)`` is
    the batch's loss of ``base`` plus the term."""

    base: Landscape | None = None
    strength: float = 0.0
    center: tuple[float, ...] = ()

    @property
    def data_size(self) -> int | None:
        return self._base().data_size

    def value_and_grad(self, x: torch.Tensor, batch: torch.Tensor | None = None):
        base = self._base()
        if base.data_size is None:
            return super().value_and_grad(x)
        x = self._check_batch(x)
        value, grad = base.value_and_grad(x, batch)
        term, term_grad = l2_term(x, self.strength, self.center)
        return value + term, grad + term_grad

    def _base(self) -> Landscape:
        assert self.base is not None  # None only as the dataclass's default; regularized() gives one
        return self.base


def l2_term(x: torch.Tensor, strength: float, center: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lambda/2 |x - c|^2 [N], lambda (x - c) [N, d])`` for particles ``x [N, d]``."""
    shift = x - torch.tensor(center, dtype=x.dtype, device=x.device)
    return 0.5 * strength * (shift * shift).sum(dim=1), strength * shift


def regularized(
    landscape: Landscape, strength: float, center: Sequence[float] | None = None, *, name: str | None = None
) -> RegularizedLandscape:
    """``landscape`` plus ``strength/2 |w - center|^2`` as a :class:`RegularizedLandscape` (a formula when
    ``landscape`` is one and the text fits the formula language's 500 characters), its known points
    recomputed (module docstring). ``name`` defaults to ``"<name>+l2"``."""
    if not isinstance(landscape, Landscape):
        raise invalid("landscape", type(landscape).__name__, "a Landscape (or another objective)")
    strength = check_number("l2", strength, 0.0)
    c = _check_center(center, landscape.dim)
    text = _formula_text(landscape, strength, c)
    energy, grad_fn = _energy(landscape, strength, c, text)
    geometry = {f.name: getattr(landscape, f.name) for f in fields(Landscape) if f.init}
    start_lr = landscape.default_lr
    geometry.update(
        name=name or f"{landscape.name}+l2",
        energy=energy,
        grad_fn=grad_fn,
        formula=text,
        params={**landscape.params, "l2": strength, **{f"c{i + 1}": v for i, v in enumerate(c) if v}},
        description=f"{landscape.description or landscape.name}, plus L2 {strength:g}/2 |w - c|^2, "
        f"c = ({', '.join(f'{v:g}' for v in c)})",
        # lr0 = a/L on U becomes a/(L + lambda a/lr0 ...): 1/(1/lr0 + lambda) keeps lr (L + lambda) below
        # lr0 L + lr0 lambda, i.e. as stable as lr0 was on U
        default_lr=start_lr / (1.0 + strength * start_lr),
        critical_points=(),
    )
    out = RegularizedLandscape(**geometry, base=landscape, strength=strength, center=c)
    object.__setattr__(out, "critical_points", _points(out, landscape, c))
    return out.with_recipe(_rebuild, landscape, strength, c, name)  # pickles as this call


def _rebuild(landscape: Landscape, strength: float, center: tuple[float, ...], name: str | None):
    """How a regularised landscape unpickles: ``regularized`` called again (the base by its recipe)."""
    return regularized(landscape, strength, center, name=name)


def _check_center(center: Sequence[float] | None, dim: int) -> tuple[float, ...]:
    if center is None:
        return (0.0,) * dim
    try:
        values = tuple(check_number("center", v) for v in center)
    except TypeError:
        raise invalid("center", center, f"{dim} finite coordinates") from None
    if len(values) != dim:
        raise invalid("center", center, f"{dim} finite coordinates")
    return values


def _formula_text(landscape: Landscape, strength: float, c: tuple[float, ...]) -> str:
    """The regularised formula's text, or "" when U is not a formula or the text would be too long."""
    variables = getattr(landscape.energy, "variables", None)
    if variables is None or getattr(landscape.energy, "tree", None) is None:
        return ""
    squares = " + ".join(
        f"({v} - {cv!r})**2" if cv >= 0 else f"({v} + {-cv!r})**2" for v, cv in zip(variables, c)
    )
    text = f"{landscape.formula} + {strength!r}/2*({squares})"
    return text if len(text) <= MAX_LENGTH else ""


def _energy(landscape: Landscape, strength: float, c: tuple[float, ...], text: str):
    """(energy, grad_fn): the parsed formula (its own gradient), else U_lambda and its gradient."""
    if text:
        try:
            formula = parse_formula(text, landscape.energy.variables, matrices=landscape.energy.matrices)  # type: ignore[attr-defined]
            return formula, None
        except FormulaError:
            pass

    def energy(x: torch.Tensor) -> torch.Tensor:
        return landscape.value(x) + l2_term(x, strength, c)[0]

    def gradient(x: torch.Tensor) -> torch.Tensor:
        return landscape.gradient(x) + l2_term(x, strength, c)[1]

    return energy, gradient


def _classify(energy, position: tuple[float, ...]) -> str | None:
    """The kind of the stationary point at ``position`` by its Hessian's eigenvalues (None: degenerate)."""
    x = torch.tensor([position], dtype=torch.float64)
    eigenvalues = torch.linalg.eigvalsh(batched_hessian(energy, x)[0])
    scale = 1e-9 * max(1.0, float(eigenvalues.abs().max()))
    if bool((eigenvalues > scale).all()):
        return "min"
    if bool((eigenvalues < -scale).all()):
        return "max"
    if bool((eigenvalues > scale).any() and (eigenvalues < -scale).any()):
        return "saddle"
    return None


def _stationary(landscape: Landscape, energy, guess: Sequence[float]) -> tuple[float, ...] | None:
    """Newton from ``guess`` on grad U_lambda = 0; None when it does not land on a stationary point."""
    try:
        position = refine_critical_point(energy, guess, steps=NEWTON_STEPS)
    except (RuntimeError, torch.linalg.LinAlgError):
        return None
    x = torch.tensor([position], dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        return None
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(xg).sum(), xg)
    return position if float(grad.norm()) <= STATIONARY * (1.0 + float(x.norm())) else None


def _points(out: Landscape, base: Landscape, c: tuple[float, ...]) -> tuple[CriticalPoint, ...]:
    """U's known smooth interior points followed from lambda = 0 to the landscape's lambda (each keeps
    its kind or is gone, as in :func:`regularization_path`), and the point Newton reaches from c; a cusp
    (``smooth=False``) is kept only where it sits at c (both terms are least there)."""
    strength = out.strength  # type: ignore[attr-defined]
    energy = _energy_at(base, strength, c)
    found: list[tuple[str, str, tuple[float, ...]]] = []
    for point in base.critical_points:
        if not point.smooth or point.on_boundary:
            continue
        kind: str = "min" if point.is_minimum else point.kind
        position = _follow(base, c, point.position, 0.0, strength, kind)
        if position is not None and not any(_close(position, other) for _, _, other in found):
            found.append((point.id, kind, position))
    position = _stationary(base, energy, c)
    center_kind = None if position is None else _classify(energy, position)
    if position is not None and center_kind is not None and not any(_close(position, o) for _, _, o in found):
        found.append((CENTER_ID, center_kind, position))
    kept = [(p.id, "min", p.position) for p in base.critical_points if not p.smooth and _close(p.position, c)]
    found = [f for f in found if not any(_close(f[2], k[2]) for k in kept)] + kept
    values = [float(energy(torch.tensor([pos], dtype=torch.float64))[0]) for _, _, pos in found]
    lowest = min((v for (_, kind, _), v in zip(found, values) if kind == "min"), default=math.inf)
    points = []
    for (point_id, kind, position), value in zip(found, values):
        if kind == "min":
            label = "global_min" if value <= lowest + 1e-12 * (1.0 + abs(lowest)) else "local_min"
        else:
            label = kind
        smooth = not any(point_id == k[0] for k in kept)
        points.append(CriticalPoint(point_id, label, position, value, smooth=smooth))  # type: ignore[arg-type]
    return tuple(points)


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return math.dist(a, b) < SAME_POINT * (1.0 + math.hypot(*a))


# --- how the minima move ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegularizationPath:
    """How each minimum of U moves as lambda grows: ``positions[id]`` ``[len(lambdas), d]`` and
    ``values[id]`` (U_lambda there) per minimum of U, NaN from the lambda at which it stops being a
    minimum (it merged with a saddle); ``global_id[k]`` the id of the lowest minimum at ``lambdas[k]``."""

    lambdas: np.ndarray
    center: tuple[float, ...]
    positions: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    global_id: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly (NaN as None), for the Arena."""

        def clean(a: np.ndarray) -> list:
            return (
                [None if isinstance(v, float) and math.isnan(v) else v for v in a.tolist()]
                if a.ndim == 1
                else [clean(row) for row in a]
            )

        return {
            "lambdas": self.lambdas.tolist(),
            "center": list(self.center),
            "positions": {k: clean(v) for k, v in self.positions.items()},
            "values": {k: clean(v) for k, v in self.values.items()},
            "global_id": list(self.global_id),
        }


def regularization_path(
    landscape: Landscape, lambdas: Sequence[float], center: Sequence[float] | None = None
) -> RegularizationPath:
    """Each minimum of ``landscape`` followed through U_lambda for the given lambdas (>= 0), with
    ``center`` c (default 0), by continuation: from lambda = 0 upward, Newton's method from the previous
    position, the lambda step halved while a step moves the point by more than ``JUMP`` of the box's
    span; a minimum whose Hessian stops being positive definite, or that still jumps at a step of
    ``MIN_STEP`` (it merged with a saddle and Newton fell into another basin), is gone from there on."""
    grid = np.asarray([check_number("lambdas", v, 0.0) for v in lambdas], dtype=float)
    if grid.size < 1:
        raise invalid("lambdas", list(lambdas), "at least one number >= 0")
    c = _check_center(center, landscape.dim)
    minima = [p for p in landscape.minima if p.smooth and not p.on_boundary]
    positions = {p.id: np.full((grid.size, landscape.dim), np.nan) for p in minima}
    values = {p.id: np.full(grid.size, np.nan) for p in minima}
    for point in minima:
        position: tuple[float, ...] | None = point.position
        done = 0.0
        for k in np.argsort(grid, kind="stable"):
            if position is None:
                break
            position = _follow(landscape, c, position, done, float(grid[k]))
            done = float(grid[k])
            if position is not None:
                positions[point.id][k] = position
                values[point.id][k] = float(_energy_at(landscape, done, c)(torch.tensor([position]))[0])
    global_id = []
    for k in range(grid.size):
        alive = {pid: v[k] for pid, v in values.items() if not math.isnan(v[k])}
        global_id.append(min(alive, key=alive.__getitem__) if alive else "")
    return RegularizationPath(grid, c, positions, values, tuple(global_id))


JUMP = 0.02  # the most a tracked minimum may move in one continuation step, as a share of the span
MIN_STEP = 1e-4  # the smallest lambda step, relative to 1 + lambda, before a minimum is declared gone


def _energy_at(landscape: Landscape, strength: float, c: tuple[float, ...]):
    def energy(x: torch.Tensor) -> torch.Tensor:
        return landscape.value(x.to(torch.float64)) + l2_term(x.to(torch.float64), strength, c)[0]

    return energy


def _follow(
    landscape: Landscape,
    c: tuple[float, ...],
    position: tuple[float, ...],
    start: float,
    stop: float,
    kind: str = "min",
) -> tuple[float, ...] | None:
    """The stationary point of U_lambda of ``kind`` ("min", "saddle", "max") at ``position`` for
    lambda = ``start``, followed to lambda = ``stop``; None when it is gone before."""
    strength, step = start, stop - start
    while True:
        target = min(stop, strength + step)
        energy = _energy_at(landscape, target, c)
        moved = _stationary(landscape, energy, position)
        ok = moved is not None and math.dist(moved, position) <= JUMP * landscape.span
        if ok and _classify(energy, moved) == kind:  # type: ignore[arg-type]
            position, strength = moved, target  # type: ignore[assignment]
            if strength >= stop:
                return position
            step *= 2.0
        elif step > MIN_STEP * (1.0 + target):
            step /= 2.0
        else:
            return None


# --- registered: the seeds' and theory landscapes with an L2 term ------------------------------------------
REGULARIZED_BASES = ("double-well", "plateau", "saddle", "quadratic", "quartic-well", "sharp-flat")
DEFAULT_L2 = 0.5


def _register(base_name: str) -> None:
    entry = LANDSCAPES[base_name]

    def build(l2: float = DEFAULT_L2, center: float = 0.0, **params: float) -> RegularizedLandscape:
        base = get_landscape(base_name, **params)
        return regularized(base, l2, [center] * base.dim, name=f"{base_name}-l2")

    register(
        f"{base_name}-l2",
        entry.category,
        f"{base_name} plus an L2 potential l2/2 |w - center|^2 (center on every axis)",
        **entry.defaults,
        l2=DEFAULT_L2,
        center=0.0,
    )(build)


for _name in REGULARIZED_BASES:
    _register(_name)


__all__ = [
    "RegularizationPath",
    "RegularizedLandscape",
    "l2_term",
    "regularization_path",
    "regularized",
]
