"""The `Landscape`: an energy U(x) over a batch of positions, its force -grad U, and its known points."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import torch

from descent._errors import invalid, listed

PointKind = Literal["global_min", "local_min", "saddle", "max"]
POINT_KINDS: tuple[str, ...] = ("global_min", "local_min", "saddle", "max")

Energy = Callable[[torch.Tensor], torch.Tensor]
L = TypeVar("L", bound="Landscape")


@dataclass(frozen=True)
class CriticalPoint:
    """A known stationary point: an id used in outcomes (``minimum:right``), its kind and position.

    ``smooth=False`` marks a point where the gradient is undefined (a cusp, e.g. Ackley's minimum),
    ``on_boundary=True`` one that is a minimum only on the domain (the gradient need not vanish).
    """

    id: str
    kind: PointKind
    position: tuple[float, ...]
    value: float | None = None
    smooth: bool = True
    on_boundary: bool = False

    def __post_init__(self) -> None:
        if self.kind not in POINT_KINDS:
            raise invalid("kind", self.kind, f"one of: {listed(POINT_KINDS)}")

    @property
    def is_minimum(self) -> bool:
        return self.kind in ("global_min", "local_min")


@dataclass(frozen=True, eq=False)
class Landscape:
    """An energy landscape U: R^d -> R evaluated on a batch of particles ``x`` of shape ``[N, d]``.

    ``energy`` is U. For every built-in landscape and every user formula it is a parsed formula
    (:class:`~descent.landscapes.formula.Formula`, an expression tree): ``value(x) -> [N]`` is U in
    plain torch, and ``value_and_grad(x) -> ([N], [N, d])``, the simulation loop's call, gives U and
    grad U by reverse mode over the tree. A data-based landscape may instead give ``energy`` and
    ``grad_fn`` as functions (without ``grad_fn`` the gradient is by autograd). ``grad_fn`` defaults
    to the formula's gradient; another one given in its place (a noisy gradient, say) is used as
    given. ``hessian(x) -> [N, d, d]`` is by autograd. The force on a particle is ``-gradient(x)``.

    A landscape made by :func:`~descent.landscapes.get_landscape` or
    :func:`~descent.landscapes.formula_landscape` keeps its ``recipe`` ``(function, args)`` (the
    name and parameters, or the formula with its box, start and lr) and pickles as that recipe,
    never as functions.

    >>> from descent.landscapes import get_landscape
    >>> import torch
    >>> well = get_landscape("double-well")
    >>> well.value(torch.tensor([[1.0, 0.0]], dtype=torch.float64)).shape
    torch.Size([1])
    """

    name: str
    dim: int
    energy: Energy
    bounds: tuple[tuple[float, float], ...]
    critical_points: tuple[CriticalPoint, ...] = ()
    default_start: tuple[float, ...] | None = None
    default_lr: float = 0.01
    description: str = ""
    grad_fn: Energy | None = None
    bounded_below: bool = True
    capture_radius: float | None = None
    params: dict[str, float] = field(default_factory=dict)
    formula: str = ""
    recipe: tuple = field(default=(), init=False, repr=False)
    _fused: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise invalid("dim", self.dim, "an integer >= 1")
        if len(self.bounds) != self.dim:
            raise invalid("bounds", self.bounds, f"{self.dim} (low, high) pairs, one per dimension")
        for low, high in self.bounds:
            if not low < high:
                raise invalid("bounds", self.bounds, "pairs with low < high")
        if self.default_start is not None and len(self.default_start) != self.dim:
            raise invalid("default_start", self.default_start, f"{self.dim} coordinates")
        for point in self.critical_points:
            if len(point.position) != self.dim:
                raise invalid(f"critical point {point.id!r}", point.position, f"{self.dim} coordinates")
        fused = getattr(self.energy, "value_and_grad", None)  # a formula: value and gradient in one pass
        if fused is not None:
            if self.grad_fn is None:
                object.__setattr__(self, "grad_fn", self.energy.gradient)  # type: ignore[attr-defined]
            if not self.formula:
                object.__setattr__(self, "formula", self.energy.text)  # type: ignore[attr-defined]
            if self.grad_fn == self.energy.gradient:  # type: ignore[attr-defined]
                object.__setattr__(self, "_fused", fused)

    def with_recipe(self: L, function: Callable[..., Landscape], *args: object) -> L:
        """This landscape, remembering ``function(*args)`` as the way to rebuild it (what it pickles
        as). A copy made by ``dataclasses.replace`` has no recipe: it is another landscape."""
        object.__setattr__(self, "recipe", (function, args))
        return self

    def __reduce__(self):
        if self.recipe:
            function, args = self.recipe
            return function, args
        return super().__reduce__()  # field by field (a formula pickles as its text)

    def __copy__(self) -> Landscape:
        return self  # immutable

    def __deepcopy__(self, memo: dict) -> Landscape:
        return self

    # --- evaluation -------------------------------------------------------------------------
    def _check_batch(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise invalid("x", tuple(x.shape), f"a tensor of shape [N, {self.dim}]")
        return x

    @property
    def data_size(self) -> int | None:
        """The number of examples behind the objective: None for a landscape (no data)."""
        return None

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) for each row of ``x`` ([N, d] -> [N]), differentiable by autograd."""
        return self.energy(self._check_batch(x))

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """grad U(x) for each row ([N, d] -> [N, d]): ``grad_fn`` (a formula: reverse mode), else autograd."""
        x = self._check_batch(x)
        if self.grad_fn is not None:
            return self.grad_fn(x)
        return self.autograd_gradient(x)

    def autograd_gradient(self, x: torch.Tensor) -> torch.Tensor:
        """grad U by torch's autograd of ``value`` (the reference for the other gradients)."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(xg).sum(), xg)
        return grad.detach()

    def value_and_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(U(x) [N], grad U(x) [N, d]) in one call: the simulation loop's call.

        A formula gives both from one forward and one backward sweep of its tree; otherwise
        ``energy`` and ``grad_fn``, or one autograd pass. ``batch`` (which examples an objective
        with data should use) is ignored: a landscape has no data.
        """
        x = self._check_batch(x)
        if self._fused is not None:
            return self._fused(x)
        if self.grad_fn is not None:
            return self.energy(x), self.grad_fn(x)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            value = self.energy(xg)
            (grad,) = torch.autograd.grad(value.sum(), xg)
        return value.detach(), grad.detach()

    def value_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same as :meth:`value_and_grad` (its earlier name)."""
        return self.value_and_grad(x)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The Hessian of U at each row ([N, d] -> [N, d, d]): d double-backward passes, batched over N."""
        return batched_hessian(self.energy, self._check_batch(x))

    # --- geometry ---------------------------------------------------------------------------
    @property
    def minima(self) -> tuple[CriticalPoint, ...]:
        return tuple(p for p in self.critical_points if p.is_minimum)

    @property
    def global_minima(self) -> tuple[CriticalPoint, ...]:
        return tuple(p for p in self.critical_points if p.kind == "global_min")

    @property
    def saddles(self) -> tuple[CriticalPoint, ...]:
        return tuple(p for p in self.critical_points if p.kind == "saddle")

    def point(self, point_id: str) -> CriticalPoint:
        for p in self.critical_points:
            if p.id == point_id:
                return p
        raise invalid("point", point_id, f"one of: {listed([p.id for p in self.critical_points])}")

    @property
    def span(self) -> float:
        """The largest side of the bounding box."""
        return max(high - low for low, high in self.bounds)

    def radius(self) -> float:
        """Capture radius around known points: given, else a fraction of the closest pair's distance."""
        if self.capture_radius is not None:
            return self.capture_radius
        points = [torch.tensor(p.position, dtype=torch.float64) for p in self.critical_points]
        gaps = [float((a - b).norm()) for i, a in enumerate(points) for b in points[i + 1 :]]
        return min([0.05 * self.span, *(0.25 * g for g in gaps if g > 0)])

    def start(self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> torch.Tensor:
        """The default start as a ``[1, d]`` tensor (the centre of the bounds when none is set)."""
        if self.default_start is not None:
            coords = self.default_start
        else:
            coords = tuple((low + high) / 2 for low, high in self.bounds)
        return torch.tensor([coords], dtype=dtype, device=device)

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean [N]: is each particle within the bounds."""
        low = torch.tensor([b[0] for b in self.bounds], dtype=x.dtype, device=x.device)
        high = torch.tensor([b[1] for b in self.bounds], dtype=x.dtype, device=x.device)
        return ((x >= low) & (x <= high)).all(dim=1)

    def random_starts(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """``n`` starts drawn uniformly in the bounds."""
        low = torch.tensor([b[0] for b in self.bounds], dtype=dtype)
        high = torch.tensor([b[1] for b in self.bounds], dtype=dtype)
        u = torch.rand((n, self.dim), generator=generator, dtype=dtype)
        return (low + (high - low) * u).to(device)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary (used by `descent list landscapes` and the Arena)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "description": self.description,
            "formula": self.formula,
            "bounds": [list(b) for b in self.bounds],
            "default_start": list(self.start().squeeze(0).tolist()),
            "default_lr": self.default_lr,
            "params": dict(self.params),
            "critical_points": [
                {"id": p.id, "kind": p.kind, "position": list(p.position), "value": p.value}
                for p in self.critical_points
            ],
        }


def batched_hessian(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    """Hessians ``[N, d, d]`` of ``energy`` at the rows of ``x``, row i of each from d/dx of dU/dx_i."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(xg).sum(), xg, create_graph=True)
        rows = []
        for i in range(x.shape[1]):
            if grad.requires_grad:
                (row,) = torch.autograd.grad(grad[:, i].sum(), xg, retain_graph=True, allow_unused=True)
            else:
                row = None
            rows.append(torch.zeros_like(x) if row is None else row)
    return torch.stack(rows, dim=1).detach()


def refine_critical_point(energy: Energy, position: Sequence[float], steps: int = 50) -> tuple[float, ...]:
    """Newton's method on grad U = 0 from ``position`` (float64); returns the refined coordinates."""
    x = torch.tensor([position], dtype=torch.float64)
    for _ in range(steps):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(xg).sum(), xg)
        if float(grad.norm()) < 1e-14:
            break
        x = x - torch.linalg.solve(batched_hessian(energy, x)[0], grad[0]).unsqueeze(0)
    return tuple(float(v) for v in x[0])
