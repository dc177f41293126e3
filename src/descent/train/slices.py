"""A real network's loss surface: filter-normalised slices and the PCA plane of a training trajectory.

A slice evaluates the loss L(w) = (1/n) sum_i loss(f_w(x_i), y_i) on an affine set of weights around a
point ``w0`` (Li et al., "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018):

- 1-D: ``L(w0 + alpha d)`` for each ``alpha``;
- 2-D: ``L(w0 + alpha d1 + beta d2)`` on the grid ``alphas x betas``.

Filter normalisation (:func:`filter_normalized_direction`), the rule of the loss-landscape code
(``net_plotter.normalize_directions_for_weights`` with ``norm='filter'``, ``ignore='biasbn'``): draw
``d ~ N(0, I)`` shaped like the weights; for every parameter tensor with two or more dimensions, each
filter ``j`` (a row of a linear layer's weight, an output channel of a convolution: index ``j`` of the
first dimension) is rescaled to the norm of the same filter of the weights,
``d_j <- d_j * |w_j| / (|d_j| + 1e-10)``; every parameter with at most one dimension (biases, norm
layers' scales and shifts) gets direction 0 (``ignore_biases=True``) or a copy of its weights
(``ignore_biases=False``, the code's other option). Then ``alpha = 1`` moves each filter by its own
size, whatever the layer's scale.

The PCA plane of a trajectory ``w_0, ..., w_T`` (:func:`pca_plane`, as in the loss-landscape code,
which runs scikit-learn's PCA on ``w_t - w_T``): the two leading right singular vectors ``e1, e2`` of the
centred matrix of ``w_t - w_T``, their explained-variance ratios ``s_k^2 / sum s^2``, and the path's
coordinates ``(a_t, b_t) = ((w_t - w_T).e1, (w_t - w_T).e2)`` in the plane through the final point.
:func:`path_on_plane` reports, along the path, the true loss ``L(w_t)``, the plane's loss at the
projected point ``L(w_T + a_t e1 + b_t e2)`` (evaluated exactly, and also interpolated from a computed
2-D slice when one is given), their gap and the distance of ``w_t`` from the plane.

Evaluation is batched: the grid's points are stacked in chunks and the model is called once per chunk
with ``torch.func.functional_call`` under ``torch.func.vmap`` (:func:`evaluate`); the readable reference
(:func:`evaluate_reference`) loads one point at a time into ``functional_call``; they are tested equal.
For an MLP (a ``Sequential`` starting with ``Linear``) the first layer's output is affine in the
coefficients and is computed once per direction. Weights, directions and data are cast to ``dtype``
(float64 by default; float32 is about twice as fast). On a CPU, chunks of 16 points were fastest
for the digits MLP (64-64), 1.2x the one-point loop in float64 and 1.4x in float32 (CPU time): the
batch shares the calls, not the arithmetic.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
>>> x, y = torch.randn(20, 3, dtype=torch.float64), torch.arange(20) % 2
>>> d = filter_normalized_direction(model, seed=0)
>>> rows = d["0.weight"].norm(dim=1)
>>> float(d["0.bias"].abs().sum()), bool(torch.allclose(rows, model[0].weight.norm(dim=1)))
(0.0, True)
>>> line = slice_1d(model, torch.nn.functional.cross_entropy, (x, y), d, torch.linspace(-1, 1, 5))
>>> line.loss.shape, bool(torch.isclose(line.loss[2], torch.nn.functional.cross_entropy(model(x), y)))
(torch.Size([5]), True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap

from descent._errors import invalid

Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Data = tuple[torch.Tensor, torch.Tensor]
DTYPES = (torch.float64, torch.float32)
EPS = 1e-10  # the loss-landscape code's guard in |w_j| / (|d_j| + eps)


# --- parameters as named tensors and flat vectors ----------------------------------------------------
def parameters_of(model: torch.nn.Module | Mapping[str, torch.Tensor]) -> Params:
    """The model's parameters by name (``named_parameters`` order), detached; a mapping is copied."""
    if isinstance(model, torch.nn.Module):
        return {name: p.detach() for name, p in model.named_parameters()}
    return {name: torch.as_tensor(p).detach() for name, p in model.items()}


def flatten(params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One vector ``[P]`` of the tensors in order (``torch.nn.utils.parameters_to_vector``)."""
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflatten(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> Params:
    """The inverse of :func:`flatten`: ``vector [..., P]`` as tensors shaped like ``like`` (leading
    dimensions kept)."""
    lead = vector.shape[:-1]
    sizes = [p.numel() for p in like.values()]
    if vector.shape[-1] != sum(sizes):
        raise invalid("vector", tuple(vector.shape), f"a last dimension of {sum(sizes)} (the parameters)")
    parts = vector.split(sizes, dim=-1)
    return {name: part.reshape(*lead, *p.shape) for (name, p), part in zip(like.items(), parts, strict=True)}


# --- directions -----------------------------------------------------------------------------------
def filter_normalized_direction(
    model: torch.nn.Module | Mapping[str, torch.Tensor], seed: int, *, ignore_biases: bool = True
) -> Params:
    """A random direction, filter-normalised to the weights (module docstring): per filter j of every
    tensor with >= 2 dimensions ``d_j = z_j |w_j| / (|z_j| + 1e-10)``, z standard normal (drawn in
    float64 from ``seed``, then cast to the weights' dtype); tensors with <= 1 dimension: 0, or the
    weights themselves when ``ignore_biases`` is False."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise invalid("seed", seed, "an integer")
    weights = parameters_of(model)
    generator = torch.Generator().manual_seed(seed)
    direction = {}
    for name, w in weights.items():
        z = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(dtype=w.dtype, device=w.device)
        if w.ndim <= 1:
            direction[name] = torch.zeros_like(w) if ignore_biases else w.clone()
            continue
        rows, w_rows = z.reshape(z.shape[0], -1), w.reshape(w.shape[0], -1)
        scale = w_rows.norm(dim=1) / (rows.norm(dim=1) + EPS)
        direction[name] = (rows * scale.unsqueeze(1)).reshape(w.shape)
    return direction


# --- evaluation -----------------------------------------------------------------------------------
def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in DTYPES:
        raise invalid("dtype", dtype, "torch.float64 or torch.float32")
    return dtype


def cross_entropy(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``mean_i(logsumexp(output_i) - output_i[y_i])``: ``torch.nn.functional.cross_entropy`` for class
    indices, written with ``logsumexp`` (several times faster on few classes under ``vmap``).

    >>> out, y = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]), torch.tensor([0, 2])
    >>> bool(torch.isclose(cross_entropy(out, y), torch.nn.functional.cross_entropy(out, y)))
    True
    """
    picked = output.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (output.logsumexp(dim=-1) - picked).mean()


def _accuracy(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (output.argmax(dim=-1) == targets).to(output.dtype).mean()


def _points(origin: Params, directions: Sequence[Params], coefficients: torch.Tensor) -> Params:
    """The weights ``origin + sum_k c[g, k] directions[k]`` for each row g of ``coefficients`` ``[G, k]``."""
    points = {}
    for name, w in origin.items():
        shape = (coefficients.shape[0],) + (1,) * w.ndim
        value = w.unsqueeze(0).expand(coefficients.shape[0], *w.shape)
        for k, direction in enumerate(directions):
            value = value + coefficients[:, k].reshape(shape) * direction[name]
        points[name] = value
    return points


def _prepare(model, data, origin, directions, coefficients, dtype, accuracy=True):
    dtype = _check_dtype(dtype)
    x, y = data
    origin = {name: p.to(dtype) for name, p in parameters_of(origin if origin is not None else model).items()}
    directions = [{name: d[name].to(dtype) for name in origin} for d in directions]
    coefficients = torch.as_tensor(coefficients, dtype=dtype)
    if coefficients.ndim != 2 or coefficients.shape[1] != len(directions):
        raise invalid("coefficients", tuple(coefficients.shape), f"a [G, {len(directions)}] tensor")
    x = x.to(dtype)
    classify = accuracy and not torch.is_floating_point(y)
    buffers = {name: b.to(dtype) if torch.is_floating_point(b) else b for name, b in model.named_buffers()}
    return x, y, origin, directions, coefficients, classify, buffers


def _batched(model, loss_fn, y, classify, buffers, inputs_batched: bool = False):
    """``(params [G, ...], inputs) -> (loss [G], accuracy [G])``: the model under ``vmap`` of
    ``functional_call``; the inputs are shared by every point, or ``[G, ...]`` (``inputs_batched``)."""

    def one(params: Params, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = functional_call(model, (params, buffers), (inputs,))
        accuracy = _accuracy(output, y) if classify else torch.zeros((), dtype=output.dtype)
        return loss_fn(output, y), accuracy

    return vmap(one, in_dims=(0, 0 if inputs_batched else None))


def _check_chunk(chunk: int) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise invalid("chunk", chunk, "an integer >= 1")
    return chunk


def _run(batched, blocks, classify: bool, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    losses, accuracies = [], []
    with torch.no_grad():
        for params, inputs in blocks:
            loss, accuracy = batched(params, inputs)
            losses.append(loss)
            accuracies.append(accuracy)
    loss = torch.cat(losses) if losses else torch.zeros(0, dtype=dtype)
    return loss, (torch.cat(accuracies) if classify and accuracies else None)


def evaluate(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    directions: Sequence[Params],
    coefficients: torch.Tensor,
    *,
    origin: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
    accuracy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss ``[G]`` (and accuracy ``[G]`` when the targets are class indices and ``accuracy`` is set,
    else None) at the weights
    ``origin + sum_k coefficients[g, k] directions[k]``: ``chunk`` points per call of the model, batched
    by ``vmap`` over ``functional_call``. ``origin`` defaults to the model's weights;
    ``loss_fn(output, targets)`` is a mean over the examples (``torch.nn.functional.cross_entropy``)."""
    chunk = _check_chunk(chunk)
    x, y, origin, directions, coefficients, classify, buffers = _prepare(
        model, data, origin, directions, coefficients, dtype, accuracy
    )
    if _linear_first(model):
        return _evaluate_linear_first(
            model, loss_fn, x, y, origin, directions, coefficients, classify, buffers, chunk
        )
    blocks = ((_points(origin, directions, block), x) for block in coefficients.split(chunk))
    return _run(_batched(model, loss_fn, y, classify, buffers), blocks, classify, dtype)


def _linear_first(model: torch.nn.Module) -> bool:
    """A ``Sequential`` that starts with a ``Linear`` layer (an MLP): :func:`evaluate`'s fast path."""
    return isinstance(model, torch.nn.Sequential) and len(model) > 1 and isinstance(model[0], torch.nn.Linear)


def _evaluate_linear_first(model, loss_fn, x, y, origin, directions, coefficients, classify, buffers, chunk):
    """:func:`evaluate` for a ``Sequential`` whose first layer is ``Linear``: that layer's output is
    affine in the coefficients, ``x (W + sum_k c_k D_k)^T + b + sum_k c_k e_k = Z_0 + sum_k c_k Z_k``, so
    its ``k + 1`` products with the data are computed once and each point adds them up; the rest of
    the network runs under ``vmap`` (:func:`_batched`)."""
    first = [name for name in origin if name.startswith("0.")]
    rest = model[1:]  # a Sequential slice keeps its layers' names ("2.weight"), so origin's keys fit

    def layer(params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.linear(x, params["0.weight"], params.get("0.bias"))

    base = layer(origin)
    stacked = torch.stack([base] + [layer(d) for d in directions]).reshape(len(directions) + 1, -1)
    origin = {name: w for name, w in origin.items() if name not in first}
    directions = [{name: d[name] for name in origin} for d in directions]
    buffers = {name: b for name, b in buffers.items() if not name.startswith("0.")}

    def hidden(block: torch.Tensor) -> torch.Tensor:  # [1, c_1, ..., c_k] @ [Z_0; ...; Z_k], one pass
        weights = torch.cat([torch.ones_like(block[:, :1]), block], dim=1)
        return (weights @ stacked).reshape(block.shape[0], *base.shape)

    blocks = coefficients.split(chunk)
    calls = ((_points(origin, directions, block), hidden(block)) for block in blocks)
    return _run(
        _batched(rest, loss_fn, y, classify, buffers, inputs_batched=True), calls, classify, base.dtype
    )


def evaluate_points(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    points: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss ``[G]`` (and accuracy) at flat parameter vectors ``points [G, P]`` (:func:`flatten`'s order),
    batched as in :func:`evaluate`."""
    chunk = _check_chunk(chunk)
    points = torch.as_tensor(points).to(_check_dtype(dtype))
    x, y, origin, _, _, classify, buffers = _prepare(model, data, None, [], torch.zeros(0, 0), dtype)
    if points.ndim != 2:
        raise invalid("points", tuple(points.shape), "a [G, P] tensor of flat parameter vectors")
    blocks = ((unflatten(block, origin), x) for block in points.split(chunk))
    return _run(_batched(model, loss_fn, y, classify, buffers), blocks, classify, dtype)


def evaluate_reference(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    directions: Sequence[Params],
    coefficients: torch.Tensor,
    *,
    origin: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The readable reference of :func:`evaluate`: one point at a time, weights written out in full."""
    x, y, origin, directions, coefficients, classify, buffers = _prepare(
        model, data, origin, directions, coefficients, dtype
    )
    losses, accuracies = [], []
    with torch.no_grad():
        for c in coefficients:
            params = {
                name: w + sum(c[k] * d[name] for k, d in enumerate(directions)) for name, w in origin.items()
            }
            output = functional_call(model, (params, buffers), (x,))
            losses.append(loss_fn(output, y))
            accuracies.append(_accuracy(output, y) if classify else None)
    loss = torch.stack(losses) if losses else torch.zeros(0, dtype=dtype)
    return loss, (torch.stack(accuracies) if classify and accuracies else None)


def _axis(name: str, values) -> torch.Tensor:
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if values.numel() < 1 or not bool(torch.isfinite(values).all()):
        raise invalid(name, values.tolist()[:5], "one or more finite numbers")
    return values


@dataclass(frozen=True)
class Slice1D:
    """``loss[i] = L(w0 + alphas[i] d)``; ``accuracy`` likewise (None for real-valued targets)."""

    alphas: torch.Tensor
    loss: torch.Tensor
    accuracy: torch.Tensor | None


@dataclass(frozen=True)
class Slice2D:
    """``loss[i, j] = L(w0 + alphas[i] d1 + betas[j] d2)`` (first index: alpha, the x axis)."""

    alphas: torch.Tensor
    betas: torch.Tensor
    loss: torch.Tensor
    accuracy: torch.Tensor | None

    def interpolate(self, points: torch.Tensor) -> torch.Tensor:
        """The slice's loss at ``points [T, 2]`` (alpha, beta) by scipy's cubic ``RegularGridInterpolator``
        (outside the grid: the nearest edge's extrapolation)."""
        from scipy.interpolate import RegularGridInterpolator

        method = "cubic" if min(len(self.alphas), len(self.betas)) >= 4 else "linear"
        table = self.loss.to(torch.float64).numpy()
        grid = RegularGridInterpolator(
            (self.alphas.numpy(), self.betas.numpy()),
            table,
            method=method,
            bounds_error=False,
            fill_value=None,
        )
        return torch.as_tensor(grid(points.to(torch.float64).numpy()), dtype=torch.float64)


def slice_1d(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    direction: Params,
    alphas,
    *,
    origin: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
    accuracy: bool = True,
) -> Slice1D:
    """``L(w0 + alpha d)`` for each alpha (``w0``: ``origin``, default the model's weights)."""
    alphas = _axis("alphas", alphas)
    loss, accuracy = evaluate(
        model,
        loss_fn,
        data,
        [direction],
        alphas.unsqueeze(1),
        origin=origin,
        dtype=dtype,
        chunk=chunk,
        accuracy=accuracy,
    )
    return Slice1D(alphas, loss, accuracy)


def slice_2d(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    d1: Params,
    d2: Params,
    alphas,
    betas,
    *,
    origin: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
    accuracy: bool = True,
) -> Slice2D:
    """``L(w0 + alpha d1 + beta d2)`` on the grid ``alphas x betas`` (``loss[i, j]``: alphas[i], betas[j])."""
    alphas, betas = _axis("alphas", alphas), _axis("betas", betas)
    ga, gb = torch.meshgrid(alphas, betas, indexing="ij")
    coefficients = torch.stack([ga.reshape(-1), gb.reshape(-1)], dim=1)
    loss, accuracy = evaluate(
        model,
        loss_fn,
        data,
        [d1, d2],
        coefficients,
        origin=origin,
        dtype=dtype,
        chunk=chunk,
        accuracy=accuracy,
    )
    shape = (len(alphas), len(betas))
    return Slice2D(alphas, betas, loss.reshape(shape), None if accuracy is None else accuracy.reshape(shape))


# --- the PCA plane of a trajectory ----------------------------------------------------------------
@dataclass(frozen=True)
class PCAPlane:
    """The plane through ``origin`` (the final iterate, ``[P]``) spanned by the unit ``directions [2, P]``
    (the top principal directions of ``w_t - w_T``); ``explained`` ``[2]``: their explained-variance
    ratios; ``coordinates [T, 2]``: the path's projection, ``(w_t - w_T) . e_k``. Each direction's sign
    puts the first iterate at coordinates >= 0."""

    origin: torch.Tensor
    directions: torch.Tensor
    explained: torch.Tensor
    coordinates: torch.Tensor

    def directions_like(self, like: Mapping[str, torch.Tensor]) -> tuple[Params, Params]:
        """The two directions as named tensors shaped like ``like`` (a model's parameters)."""
        return unflatten(self.directions[0], like), unflatten(self.directions[1], like)


def pca_plane(trajectory: torch.Tensor) -> PCAPlane:
    """The PCA plane of the iterates ``trajectory [T, P]`` (flat parameter vectors, in step order; the
    last is the final point): the SVD of the centred ``w_t - w_T`` (module docstring).

    >>> path = torch.tensor([[4.0, 2.0, 0.0], [2.0, 1.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> plane = pca_plane(path)
    >>> plane.coordinates.shape, bool(plane.explained.sum() <= 1 + 1e-12)
    (torch.Size([4, 2]), True)
    """
    trajectory = torch.as_tensor(trajectory)
    if trajectory.ndim != 2 or trajectory.shape[0] < 3 or trajectory.shape[1] < 2:
        raise invalid("trajectory", tuple(trajectory.shape), "[T, P] iterates with T >= 3 and P >= 2")
    if not torch.is_floating_point(trajectory) or not bool(torch.isfinite(trajectory).all()):
        raise invalid("trajectory", "non-finite or integer values", "finite floating-point iterates")
    origin = trajectory[-1]
    diffs = trajectory - origin
    centred = diffs - diffs.mean(dim=0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    directions = vh[:2].clone()
    coordinates = diffs @ directions.T
    signs = torch.where(coordinates[0] < 0, -1.0, 1.0).to(trajectory.dtype)
    directions, coordinates = directions * signs.unsqueeze(1), coordinates * signs
    total = (singular**2).sum()
    explained = singular[:2] ** 2 / total if total > 0 else torch.zeros(2, dtype=trajectory.dtype)
    return PCAPlane(origin, directions, explained, coordinates)


@dataclass(frozen=True)
class PlanePath:
    """Along the path: ``coordinates [T, 2]`` in the plane, ``true_loss`` L(w_t), ``plane_loss`` L at the
    projected point, ``gap = true_loss - plane_loss``, ``off_plane`` = |w_t - its projection|, and
    ``grid_loss`` (the plane's value interpolated from a computed 2-D slice; None without one)."""

    coordinates: torch.Tensor
    true_loss: torch.Tensor
    plane_loss: torch.Tensor
    gap: torch.Tensor
    off_plane: torch.Tensor
    grid_loss: torch.Tensor | None = None


def path_on_plane(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    trajectory: torch.Tensor,
    plane: PCAPlane,
    *,
    surface: Slice2D | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
) -> PlanePath:
    """The true loss along ``trajectory [T, P]`` against the plane's value at each projected point."""
    trajectory = torch.as_tensor(trajectory).to(torch.float64)
    origin, directions = plane.origin.to(torch.float64), plane.directions.to(torch.float64)
    diffs = trajectory - origin
    coordinates = diffs @ directions.T
    off_plane = (diffs - coordinates @ directions).norm(dim=1)
    true_loss, _ = evaluate_points(model, loss_fn, data, trajectory, dtype=dtype, chunk=chunk)
    plane_loss, _ = evaluate_points(
        model, loss_fn, data, origin + coordinates @ directions, dtype=dtype, chunk=chunk
    )
    grid_loss = surface.interpolate(coordinates) if surface is not None else None
    return PlanePath(coordinates, true_loss, plane_loss, true_loss - plane_loss, off_plane, grid_loss)


def plane_slice(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    plane: PCAPlane,
    alphas,
    betas,
    *,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
) -> Slice2D:
    """The 2-D slice of the loss on the PCA plane (around its origin, the final iterate)."""
    like = parameters_of(model)
    d1, d2 = plane.directions_like(like)
    origin = unflatten(plane.origin, like)
    return slice_2d(model, loss_fn, data, d1, d2, alphas, betas, origin=origin, dtype=dtype, chunk=chunk)


# --- figures ------------------------------------------------------------------------------------------
def slice_figure(surface: Slice2D, path: PlanePath | None = None, *, title: str = "loss slice"):
    """Filled contours of a 2-D slice (quantile-spaced levels, as ``descent.plots``), the centre marked,
    and a path drawn on the same contour; with a path, a second panel: true loss and the plane's loss
    along it. At most 12 in wide, text >= 9 pt."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = 2 if path is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.6 * panels, 4.8), squeeze=False)
    ax = axes[0, 0]
    values = surface.loss.to(torch.float64).numpy().T  # rows: beta (y), columns: alpha (x)
    finite = values[np.isfinite(values)]
    levels = np.unique(np.quantile(finite, np.linspace(0, 1, 30))) if finite.size else np.zeros(0)
    xs, ys = surface.alphas.numpy(), surface.betas.numpy()
    if levels.size >= 2:
        filled = ax.contourf(xs, ys, values, levels=levels, cmap="viridis")
        ax.contour(xs, ys, values, levels=levels, colors="k", linewidths=0.3, alpha=0.4)
        fig.colorbar(filled, ax=ax, label="loss")
    ax.plot(0.0, 0.0, "*", color="gold", markeredgecolor="k", markersize=12, label="centre")
    if path is not None:
        a, b = path.coordinates[:, 0].numpy(), path.coordinates[:, 1].numpy()
        ax.plot(a, b, "-", color="w", lw=1.4)
        ax.plot(a[0], b[0], "o", color="w", markeredgecolor="k", ms=6, label="start")
        ax.plot(a[-1], b[-1], "x", color="r", ms=8, label="end")
        ax.legend(loc="best", fontsize=9, framealpha=0.7)
    ax.set_xlim(float(xs[0]), float(xs[-1]))
    ax.set_ylim(float(ys[0]), float(ys[-1]))
    ax.set_xlabel("alpha (direction 1)", fontsize=10)
    ax.set_ylabel("beta (direction 2)", fontsize=10)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=9)
    if path is not None:
        ax_loss = axes[0, 1]
        steps = np.arange(len(path.true_loss))
        ax_loss.plot(steps, path.true_loss.numpy(), lw=1.4, label="true loss L(w_t)")
        ax_loss.plot(steps, path.plane_loss.numpy(), "--", lw=1.4, label="plane's loss at the projection")
        ax_loss.set_yscale("log" if float(path.true_loss.min()) > 0 else "linear")
        ax_loss.set_xlabel("iterate", fontsize=10)
        ax_loss.set_ylabel("loss", fontsize=10)
        gap = float(path.gap.abs().max())
        ax_loss.set_title(f"true loss and the plane's (max |gap| {gap:.3g})", fontsize=10)
        ax_loss.legend(fontsize=9)
        ax_loss.grid(alpha=0.3)
        ax_loss.tick_params(labelsize=9)
    fig.tight_layout()
    return fig


def slice_1d_figure(line: Slice1D, *, title: str = "loss along a direction"):
    """The loss (and accuracy, on a second axis, when known) against alpha. 6.4 in wide, text >= 9 pt."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(line.alphas.numpy(), line.loss.to(torch.float64).numpy(), color="C0", lw=1.6, label="loss")
    ax.set_xlabel("alpha", fontsize=10)
    ax.set_ylabel("loss", fontsize=10, color="C0")
    ax.tick_params(labelsize=9)
    if line.accuracy is not None:
        twin = ax.twinx()
        twin.plot(line.alphas.numpy(), line.accuracy.to(torch.float64).numpy(), color="C1", lw=1.2, ls="--")
        twin.set_ylabel("accuracy", fontsize=10, color="C1")
        twin.tick_params(labelsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = [
    "PCAPlane",
    "PlanePath",
    "Slice1D",
    "Slice2D",
    "cross_entropy",
    "evaluate",
    "evaluate_points",
    "evaluate_reference",
    "filter_normalized_direction",
    "flatten",
    "parameters_of",
    "path_on_plane",
    "pca_plane",
    "plane_slice",
    "slice_1d",
    "slice_1d_figure",
    "slice_2d",
    "slice_figure",
    "unflatten",
]
