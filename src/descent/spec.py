"""`RunSpec`: the JSON-serialisable description of a run that every face builds, and `run_spec`,
the one call that turns it into a `Trajectory`. The Arena puts it in its URL; a sweep stores it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

import torch

from descent._errors import check_number, invalid
from descent.dynamics import Trajectory, simulate
from descent.landscapes import LANDSCAPES, Landscape, get_landscape
from descent.optim import Optimizer

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; the same spec gives the same trajectory.

    ``starts``: ``"default"`` (the landscape's), ``"random:N"`` (uniform in the bounds, seeded),
    ``"grid:K"`` (K x K grid over the box, 2-D) or an explicit list of points. ``hyper`` values may be
    lists, one per particle. The learning rate defaults to the landscape's ``default_lr``.
    """

    landscape: str = "double-well"
    landscape_params: dict = field(default_factory=dict)
    optimizer: str = "momentum"
    hyper: dict = field(default_factory=dict)
    schedule: dict | None = None
    grad_noise: float | list = 0.0
    clip_norm: float | None = None
    l2: float | list = 0.0
    starts: str | list = "default"
    steps: int = 2000
    record_every: int = 1
    seed: int = 0
    grad_tol: float | None = None
    target_loss: float | None = None
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 0:
            raise invalid("steps", self.steps, "an integer >= 0")
        if self.dtype not in DTYPES:
            raise invalid("dtype", self.dtype, f"one of {sorted(DTYPES)}")
        if int(self.seed) != self.seed:
            raise invalid("seed", self.seed, "an integer")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid("spec field", unknown[0], f"one of {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        return cls.from_dict(json.loads(text))

    def with_(self, **changes: object) -> RunSpec:
        return replace(self, **changes)

    # --- building ---------------------------------------------------------------------------
    def build_landscape(self) -> Landscape:
        return resolve_landscape(self.landscape, **self.landscape_params)

    def build_optimizer(self, landscape: Landscape) -> Optimizer:
        hyper = {"lr": landscape.default_lr, **self.hyper}
        return Optimizer.build(
            self.optimizer,
            schedule=self.schedule,
            grad_noise=_tensor(self.grad_noise),
            clip_norm=self.clip_norm,
            l2=_tensor(self.l2),
            **{k: _tensor(v) for k, v in hyper.items()},
        )

    def build_starts(self, landscape: Landscape) -> torch.Tensor:
        dtype, device = DTYPES[self.dtype], self.device
        starts = self.starts
        if isinstance(starts, str):
            kind, _, count = starts.partition(":")
            if kind == "default" and not count:
                points = landscape.start(dtype, device)
            elif kind in ("random", "grid") and count.isdigit() and int(count) >= 1:
                generator = torch.Generator().manual_seed(int(self.seed))
                if kind == "random":
                    points = landscape.random_starts(int(count), generator, dtype, device)
                else:
                    points = grid_starts(landscape, int(count), dtype, device)
            else:
                raise invalid("starts", starts, "'default', 'random:N', 'grid:K' or a list of points")
        else:
            try:
                points = torch.tensor(starts, dtype=dtype, device=device).reshape(-1, landscape.dim)
            except (TypeError, ValueError, RuntimeError):
                raise invalid("starts", starts, f"points of {landscape.dim} numbers") from None
            if not bool(torch.isfinite(points).all()):
                raise invalid("starts", starts, "finite coordinates")
        n = self.particle_count()
        if n and points.shape[0] == 1:
            points = points.expand(n, -1).clone()
        elif n and points.shape[0] != n:
            raise invalid("starts", f"{points.shape[0]} points", f"1 or {n} (one per hyper-parameter value)")
        return points

    def particle_count(self) -> int:
        """N implied by per-particle hyper-parameter lists (0 when all are scalars)."""
        lengths = {len(v) for v in [*self.hyper.values(), self.grad_noise, self.l2] if isinstance(v, list)}
        if len(lengths) > 1:
            raise invalid("hyper", self.hyper, "per-particle lists of one common length")
        return lengths.pop() if lengths else 0


def resolve_landscape(text: str, **params: float) -> Landscape:
    """A registered landscape by name, or else a user formula parsed safely."""
    if text in LANDSCAPES:
        return get_landscape(text, **params)
    from descent.landscapes.formula import resolve_landscape as resolve_formula

    return resolve_formula(text, **params)


def grid_starts(
    landscape: Landscape, k: int, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """K x K starts over the box of a 2-D landscape (cell centres), row-major in y then x."""
    if landscape.dim != 2:
        raise invalid("starts", f"grid:{k}", "a grid only on 2-D landscapes")
    (x0, x1), (y0, y1) = landscape.bounds
    xs = x0 + (torch.arange(k, dtype=dtype) + 0.5) * (x1 - x0) / k
    ys = y0 + (torch.arange(k, dtype=dtype) + 0.5) * (y1 - y0) / k
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(device)


def run_spec(
    spec: RunSpec,
    progress: Callable[[int, int], None] | None = None,
    *,
    landscape: Landscape | None = None,
) -> Trajectory:
    """Build the landscape, optimizer and starts of ``spec`` and simulate it.

    ``landscape``: the spec's landscape when the caller has it built already (a cache's; building
    one refines its critical points, milliseconds per call); it must be what
    ``spec.build_landscape()`` builds.

    >>> run_spec(RunSpec(hyper={"momentum": 0.0})).outcomes
    ['minimum:left']
    """
    if spec.grad_tol is not None:
        check_number("grad_tol", spec.grad_tol, 0.0, None, low_open=True)
    if landscape is None:
        landscape = spec.build_landscape()
    optimizer = spec.build_optimizer(landscape)
    starts = spec.build_starts(landscape)
    return simulate(
        landscape,
        optimizer,
        starts,
        spec.steps,
        record_every=spec.record_every,
        grad_tol=spec.grad_tol,
        target_loss=spec.target_loss,
        seed=spec.seed,
        progress=progress,
        spec=asdict(spec),
    )


def _tensor(value: object) -> object:
    return torch.tensor(value, dtype=torch.float64) if isinstance(value, list) else value
