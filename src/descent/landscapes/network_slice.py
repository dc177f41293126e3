"""``digits-slice``: a real network's loss as a 2-D landscape, for the Arena and ``descent run``.

At first use a small MLP (64-16-10, tanh) is trained on scikit-learn's digits with a fixed seed
(``descent.train``'s loop: momentum, 40 epochs of mini-batches of 64), two filter-normalised random
directions ``d1, d2`` are drawn around its weights ``w*`` (:mod:`descent.train.slices`), and the
training cross-entropy ``L(w* + x d1 + y d2)`` is tabulated once on a ``resolution x resolution`` grid
over ``[-1, 1]^2`` (float32 evaluation). The table is cached outside the working tree, in
``$DESCENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/descent``, else ``~/.cache/descent``, as
``network-slice-<key>.npz``; ``key`` hashes everything that defines the table (the recipe below, the
file format, the torch version), so a changed recipe builds a new file and an unchanged one is read
back (milliseconds) instead of trained again.

Between the nodes U is the Catmull-Rom bicubic interpolant of the table: on each cell the bicubic
Hermite patch whose values, first derivatives and cross derivative at the four corners are the table's
values and its central differences (one-sided at the edges). It is exact at the nodes and C1 (value
and gradient continuous across cells); value, gradient and the cross derivative come from one
evaluation of the patch polynomial ``p(u, v) = [1 u u^2 u^3] A [1 v v^2 v^3]^T``, so the gradient is the
exact derivative of the value (torch's autograd of ``value`` agrees). Outside the box U continues
from the nearest box point ``c`` as ``U(c) + sum_k [x_k outside] (g_k(c) (x_k - c_k) + kappa (x_k -
c_k)^2 / 2)`` (g = grad U): a C1 continuation across the box's sides that rises as a quadratic wall
of stiffness ``kappa`` (the table's largest curvature, 1 / the default learning rate).

Known points: the table's interior local minima (at most 8), refined by Newton's method on the
interpolant; the one nearest the origin (the trained weights) is ``trained``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from descent._errors import invalid
from descent.landscapes._base import CriticalPoint, Landscape, refine_critical_point
from descent.landscapes._registry import register, slow_at_first_use

CACHE_ENV = "DESCENT_CACHE_DIR"
FORMAT = 1
EXTENT = 1.0
MAX_MINIMA = 8
MIN_RESOLUTION, MAX_RESOLUTION = 5, 801


@dataclass(frozen=True)
class SliceRecipe:
    """Everything that defines a tabulated slice (hashed into its cache file's name)."""

    dataset: str = "digits"
    model: str = "mlp:16"
    activation: str = "tanh"
    optimizer: str = "momentum"
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 40
    seed: int = 0
    direction_seeds: tuple[int, int] = (1, 2)
    extent: float = EXTENT
    resolution: int = 201
    evaluation_dtype: str = "float32"

    def key(self) -> str:
        """SHA-256 (first 16 hex digits) of the recipe, the file format and the torch version."""
        text = json.dumps([asdict(self), FORMAT, torch.__version__.split("+")[0]], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where tabulated slices live (module docstring): never inside the working tree."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "descent"


def cache_path(recipe: SliceRecipe) -> Path:
    return cache_dir() / f"network-slice-{recipe.key()}.npz"


def train_network(recipe: SliceRecipe):
    """The trained network and its data: ``descent.train``'s loop run as the recipe says (no files)."""
    from descent.train.loop import TrainConfig, train

    config = TrainConfig(
        dataset=recipe.dataset,
        model=recipe.model,
        activation=recipe.activation,
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        momentum=recipe.momentum,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        seed=recipe.seed,
    )
    result = train(config, out=None, plot=False)
    return result.model, result.data


def tabulate(recipe: SliceRecipe) -> tuple[np.ndarray, dict]:
    """Train the network and evaluate its loss on the recipe's grid: ``(table [R, R], info)``, with
    ``table[i, j]`` at ``(x_i, y_j)``."""
    from descent.train.slices import cross_entropy, filter_normalized_direction, slice_2d

    started = time.perf_counter()
    model, data = train_network(recipe)
    trained = time.perf_counter()
    loss = cross_entropy  # torch's cross-entropy, faster under vmap (tested equal)
    d1, d2 = (filter_normalized_direction(model, seed) for seed in recipe.direction_seeds)
    axis = torch.linspace(-recipe.extent, recipe.extent, recipe.resolution, dtype=torch.float64)
    dtype = torch.float32 if recipe.evaluation_dtype == "float32" else torch.float64
    surface = slice_2d(
        model, loss, (data.x_train, data.y_train), d1, d2, axis, axis, dtype=dtype, chunk=64, accuracy=False
    )
    with torch.no_grad():
        outputs = model(data.x_test)
    info = {
        "train_loss": float(loss(model(data.x_train), data.y_train).detach()),
        "test_accuracy": float((outputs.argmax(dim=1) == data.y_test).double().mean()),
        "examples": int(data.x_train.shape[0]),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "train_seconds": trained - started,
        "slice_seconds": time.perf_counter() - trained,
    }
    return surface.loss.to(torch.float64).numpy(), info


def load_table(recipe: SliceRecipe) -> tuple[np.ndarray, dict]:
    """The recipe's table from the cache, or built and written there (atomically) when missing or
    unreadable. ``info["built"]`` says which; ``info["path"]`` is None when the cache could not be
    written (the table is then used without being kept)."""
    path = cache_path(recipe)
    try:
        with np.load(path) as stored:
            table, info = stored["table"], json.loads(str(stored["info"]))
        if table.shape == (recipe.resolution, recipe.resolution) and np.isfinite(table).all():
            return table, {**info, "built": False, "path": str(path)}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # missing or damaged: build it again
    table, info = tabulate(recipe)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(partial, table=table, info=json.dumps(info))
        os.replace(partial, path)
    except OSError:
        return table, {**info, "built": True, "path": None}
    return table, {**info, "built": True, "path": str(path)}


# --- the interpolant --------------------------------------------------------------------------------
HERMITE = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0], [-3, 3, -2, -1], [2, -2, 1, 1]], dtype=torch.float64)
# [1, u, u^2, u^3] @ BASIS = [1, u, u^2, u^3, 0, 1, 2u, 3u^2]: the powers and their derivatives
BASIS = torch.tensor(
    [
        [1.0, 0, 0, 0, 0, 1, 0, 0],
        [0, 1, 0, 0, 0, 0, 2, 0],
        [0, 0, 1, 0, 0, 0, 0, 3],
        [0, 0, 0, 1, 0, 0, 0, 0],
    ],
    dtype=torch.float64,
)


def catmull_rom(table: torch.Tensor) -> torch.Tensor:
    """The bicubic patches ``A [(R-1)(S-1), 4, 4]`` of ``table [R, S]`` (module docstring): per cell
    ``A = H F H^T``, F holding the corners' values, index-unit derivatives and cross derivatives."""
    f = table.to(torch.float64)
    (fx,) = torch.gradient(f, dim=0)
    (fy,) = torch.gradient(f, dim=1)
    (fxy,) = torch.gradient(fx, dim=1)

    def corners(g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]  # (0,0), (0,1), (1,0), (1,1)

    f00, f01, f10, f11 = corners(f)
    x00, x01, x10, x11 = corners(fx)
    y00, y01, y10, y11 = corners(fy)
    c00, c01, c10, c11 = corners(fxy)
    rows = [
        torch.stack([f00, f01, y00, y01], -1),
        torch.stack([f10, f11, y10, y11], -1),
        torch.stack([x00, x01, c00, c01], -1),
        torch.stack([x10, x11, c10, c11], -1),
    ]
    values = torch.stack(rows, -2)  # [R-1, S-1, 4, 4]
    return (HERMITE @ values @ HERMITE.T).reshape(-1, 4, 4)


class Bicubic:
    """The C1 interpolant of a table over a box, with its exact gradient (module docstring)."""

    def __init__(self, table: torch.Tensor, bounds: tuple[tuple[float, float], ...], kappa: float) -> None:
        self.table = table.to(torch.float64)
        self.bounds = bounds
        self.kappa = float(kappa)
        self.patches = catmull_rom(self.table)
        self._constants: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, ...]] = {}

    def constants(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = (dtype, device)
        if key not in self._constants:
            (x0, x1), (y0, y1) = self.bounds
            cells = torch.tensor(self.table.shape, dtype=torch.float64) - 1
            low = torch.tensor([x0, y0], dtype=torch.float64)
            step = torch.tensor([x1 - x0, y1 - y0], dtype=torch.float64) / cells
            stride = torch.tensor([cells[1], 1.0], dtype=torch.float64)
            zero = torch.zeros(2, dtype=torch.float64)
            values = (-low / step, 1 / step, step, zero, cells, cells - 1, stride, BASIS, self.patches)
            moved = tuple(v.to(dtype=dtype, device=device) for v in values)
            indices = tuple(torch.tensor(i, device=device) for i in ((1, 0), (0, 1)))
            self._constants[key] = moved + indices
        return self._constants[key]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U [N], grad U [N, 2]) at ``x [N, 2]``: differentiable by autograd in ``x``."""
        shift, inv_step, step, zero, top, last, stride, basis, patches, rows, cols = self.constants(
            x.dtype, x.device
        )
        t = torch.addcmul(shift, x, inv_step)  # (x - low) / step: the position in cells
        inside = t.clamp(min=zero, max=top)  # NaN stays NaN
        safe = torch.nan_to_num(inside)
        cell = safe.floor().clamp(max=last)
        uv = safe - cell  # in [0, 1]
        patch = patches[(cell @ stride).long()]  # [N, 4, 4]
        powers = torch.linalg.vander(uv, N=4)  # [N, coord, 4]: 1, u, u^2, u^3 (autograd finite at u = 0)
        both = (powers @ basis).view(-1, 2, 2, 4)  # [N, coord, (p, p'), 4]
        m = both[:, 0] @ patch @ both[:, 1].mT  # [[p, p_v], [p_u, p_uv]]
        value = m[:, 0, 0]
        grad = m[:, rows, cols] * inv_step  # (p_u, p_v) per unit of x and y
        if not torch.equal(t, inside):  # some position outside the box (or NaN)
            out = (t - inside) * step
            cross = m[:, 1, 1] * inv_step[0] * inv_step[1]
            value = value + (out * (grad + 0.5 * self.kappa * out)).sum(dim=1)
            grad = grad + self.kappa * out + (cross.unsqueeze(1) * out.flip(1)) * (out == 0)
        return value, grad


@dataclass(frozen=True, eq=False)
class NetworkSlice(Landscape):
    """A tabulated slice of a network's loss (module docstring); ``info``: how it was made."""

    interpolant: Bicubic | None = None
    info: dict = field(default_factory=dict)

    def value_and_grad(self, x: torch.Tensor, batch: torch.Tensor | None = None):
        """(U, grad U) from one evaluation of the interpolant (``batch`` is ignored: no data)."""
        return self.interpolant(self._check_batch(x))  # type: ignore[misc]


def _local_minima(table: np.ndarray) -> list[tuple[int, int]]:
    """Interior nodes no higher than their 8 neighbours, lowest first (at most ``MAX_MINIMA``)."""
    core = table[1:-1, 1:-1]
    lowest = np.ones_like(core, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                lowest &= core <= table[1 + di : table.shape[0] - 1 + di, 1 + dj : table.shape[1] - 1 + dj]
    nodes = [(int(i) + 1, int(j) + 1) for i, j in zip(*np.nonzero(lowest), strict=True)]
    return sorted(nodes, key=lambda n: table[n])[: MAX_MINIMA * 4]


def _minima(energy, interpolant: Bicubic, axis: np.ndarray, table: np.ndarray) -> list[tuple[float, float]]:
    """The table's local minima refined on the interpolant: from each node, L-BFGS-B within two cells
    of it, then Newton's method; kept when stationary (|grad U| < 1e-9), strictly inside that
    neighbourhood and the box, and with a positive-definite Hessian."""
    from scipy.optimize import minimize

    def value_and_grad(p: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = interpolant(torch.tensor(p, dtype=torch.float64).unsqueeze(0))
        return float(value[0]), grad[0].numpy()

    found: list[tuple[float, float]] = []
    spacing = float(axis[1] - axis[0])
    for i, j in _local_minima(table):
        node = np.array([axis[i], axis[j]])
        box = [(c - 2 * spacing, c + 2 * spacing) for c in node]
        fit = minimize(value_and_grad, node, jac=True, method="L-BFGS-B", bounds=box, options={"gtol": 1e-12})
        try:
            point = refine_critical_point(energy, tuple(float(c) for c in fit.x))
        except RuntimeError:  # a singular Hessian
            continue
        x = torch.tensor([point], dtype=torch.float64)
        near = all(abs(p - c) < 2 * spacing for p, c in zip(point, node, strict=True))
        if not near or max(abs(c) for c in point) >= axis[-1] or float(interpolant(x)[1].norm()) > 1e-9:
            continue
        hessian = torch.autograd.functional.hessian(lambda p: energy(p.unsqueeze(0))[0], x[0])
        if float(torch.linalg.eigvalsh(hessian).min()) <= 0:
            continue
        if all(np.hypot(point[0] - p[0], point[1] - p[1]) > spacing for p in found):
            found.append(point)
        if len(found) == MAX_MINIMA:
            break
    return found


def _largest_curvature(table: np.ndarray, spacing: float) -> float:
    """The largest |eigenvalue| of the table's finite-difference Hessian over its nodes."""
    fx, fy = np.gradient(table, spacing)
    fxx, fxy = np.gradient(fx, spacing)
    _, fyy = np.gradient(fy, spacing)
    mean, radius = (fxx + fyy) / 2, np.hypot((fxx - fyy) / 2, fxy)
    return float(np.max(np.abs(mean) + radius))


def network_slice(recipe: SliceRecipe, name: str) -> NetworkSlice:
    """The landscape of ``recipe``'s tabulated slice (read from the cache, or built at first use)."""
    table, info = load_table(recipe)
    axis = np.linspace(-recipe.extent, recipe.extent, recipe.resolution)
    bounds = ((-recipe.extent, recipe.extent),) * 2
    plain = Bicubic(torch.from_numpy(table), bounds, kappa=0.0)

    def energy(x: torch.Tensor) -> torch.Tensor:
        return plain(x)[0]

    minima = _minima(energy, plain, axis, table)
    if not minima:  # never on a trained network; a table without an interior minimum still works
        i, j = np.unravel_index(int(np.argmin(table)), table.shape)
        minima = [(float(axis[i]), float(axis[j]))]
    minima.sort(key=lambda p: np.hypot(*p))
    curvature = max(_largest_curvature(table, float(axis[1] - axis[0])), 1e-6)
    interpolant = Bicubic(torch.from_numpy(table), bounds, kappa=curvature)
    values = [float(energy(torch.tensor([p], dtype=torch.float64))[0]) for p in minima]
    lowest = int(np.argmin(values))
    points = tuple(
        CriticalPoint(
            "trained" if k == 0 else f"min-{k}",
            "global_min" if k == lowest else "local_min",
            (float(p[0]), float(p[1])),
            values[k],
        )
        for k, p in enumerate(minima)
    )
    lr = float(f"{1.0 / curvature:.2g}")
    return NetworkSlice(
        name=name,
        dim=2,
        energy=lambda x: interpolant(x)[0],
        grad_fn=lambda x: interpolant(x)[1],
        bounds=bounds,
        critical_points=points,
        default_start=(0.6 * recipe.extent, 0.5 * recipe.extent),
        default_lr=lr,
        description=(
            f"a real network's loss: a {recipe.model.removeprefix('mlp:')}-unit {recipe.activation} MLP "
            f"trained on {recipe.dataset}, on a filter-normalised 2-D slice around its weights "
            f"({recipe.resolution} x {recipe.resolution} table, bicubic)"
        ),
        formula=f"L(w* + x d1 + y d2): {recipe.dataset} MLP cross-entropy (tabulated, bicubic)",
        params={"resolution": float(recipe.resolution)},
        interpolant=interpolant,
        info=info,
    )


@functools.lru_cache(maxsize=4)
def _cached(recipe: SliceRecipe, directory: str) -> NetworkSlice:
    return network_slice(recipe, "digits-slice")


def default_table_cached() -> bool:
    """Is the default digits-slice's table in the cache (so building it takes no training)?"""
    return cache_path(SliceRecipe()).exists()


@register(
    "digits-slice",
    "theory",
    "a real network's loss: a digits MLP on a filter-normalised 2-D slice (trained at first use)",
    resolution=201.0,
)
def digits_slice(resolution: float = 201.0) -> NetworkSlice:
    """The loss of a 64-16-10 tanh MLP trained on digits on a filter-normalised 2-D slice around its
    weights: a real network's loss surface, tabulated on ``resolution x resolution`` nodes over
    ``[-1, 1]^2`` and interpolated (module docstring). Built at first use (seconds), then read from
    the cache.
    """
    if resolution != int(resolution) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise invalid(
            "digits-slice.resolution", resolution, f"an integer in [{MIN_RESOLUTION}, {MAX_RESOLUTION}]"
        )
    recipe = SliceRecipe(resolution=int(resolution))
    return _cached(recipe, str(cache_dir()))


slow_at_first_use("digits-slice", default_table_cached)
