"""Measurements on the held batch ``(x, y)`` at the model's current parameters, none of which touch
the model, its gradients or the global random state:

The inputs ``x`` are a tensor, a tuple of tensors (the forward pass's arguments, or its one argument
if its signature takes one) or a dict of tensors (its keyword arguments, or its one argument), every
tensor with the examples along dimension 0 (`Inputs`).

- each example's gradient ``g_i`` (``torch.func.vmap`` over ``grad``; a loop over the examples when
  torch.func cannot handle the model), their mean ``g`` and the noise trace in the metric ``P``,
  ``tr(P^-1 Sigma) = 1/(n-1) sum_i q_i`` with ``q_i = (g_i - g)^T P^-1 (g_i - g)``, and its standard
  error ``sd(q)/sqrt(n)``;
- the held loss as a function of the flat parameter vector, for Hessian-vector products
  (`descent.train.hessian`) through ``torch.func.functional_call``. Batch norm trains on batch
  statistics: the curvature batch runs the batch-norm layers that train that way in training mode
  (``train_norms``), on copies of their running statistics, so its Hessian is that of the loss the
  optimizer descends (in evaluation mode a bias before a batch norm has a curvature that training,
  where the batch mean removes it, never meets: Adam, whose scale for it stays at eps, read it as
  a sharpness a million times its edge).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: a model's inputs: one tensor, a tuple of positional tensors or a dict of keyword tensors
Inputs = torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]


def leaves(x: Inputs) -> list[torch.Tensor]:
    """The tensors of ``x``, in order."""
    if isinstance(x, torch.Tensor):
        return [x]
    return list(x.values()) if isinstance(x, dict) else list(x)


def map_inputs(f: Callable[[torch.Tensor], torch.Tensor], x: Inputs) -> Inputs:
    """``x`` with ``f`` applied to each tensor (the same structure)."""
    if isinstance(x, torch.Tensor):
        return f(x)
    if isinstance(x, dict):
        return {key: f(value) for key, value in x.items()}
    return tuple(f(value) for value in x)


def take(x: Inputs, index: int | slice | torch.Tensor) -> Inputs:
    """The examples ``index`` of ``x`` (each tensor indexed along dimension 0)."""
    return map_inputs(lambda value: value[index], x)


def spreads(model: nn.Module, x: Inputs) -> bool:
    """Whether ``model`` takes a tuple's tensors as its arguments (``model(*x)``) or a dict's as its
    keyword arguments (``model(**x)``), as its forward's signature binds them; else ``x`` is its one
    argument (``model(x)``, a tensor always)."""
    if isinstance(x, torch.Tensor):
        return False
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # no signature to read: the spread form
        return True
    try:
        signature.bind(**x) if isinstance(x, dict) else signature.bind(*x)
    except TypeError:
        return False
    return True


def call(model: nn.Module, params: dict[str, torch.Tensor], x: Inputs, spread: bool) -> torch.Tensor:
    """``model(*x)`` or ``model(**x)`` if ``spread``, else ``model(x)``, at the parameters ``params`` (the
    others as they are)."""
    if not spread:
        return torch.func.functional_call(model, params, (x,))
    if isinstance(x, dict):
        return torch.func.functional_call(model, params, (), x)
    return torch.func.functional_call(model, params, tuple(x))


@dataclass(frozen=True)
class Noise:
    """The held batch's loss, mean gradient ``[d]`` and per-example noise trace (with its error)."""

    loss: float
    gradient: torch.Tensor
    trace: float
    trace_se: float
    examples: int


class HeldBatch:
    """The model's loss on ``(x, y)`` as functions of the trained parameters ``names`` (``x``: `Inputs`)."""

    def __init__(self, model: nn.Module, names: list[str], loss_fn: Loss, x: Inputs, y: torch.Tensor):
        self.model, self.names, self.loss_fn, self.x, self.y = model, names, loss_fn, x, y
        self.size, self.spread = len(y), spreads(model, x)
        self.shapes = [p.shape for name, p in model.named_parameters() if name in set(names)]
        self.dtype = next(p for name, p in model.named_parameters() if name in set(names)).dtype
        self.vmap_failed: str | None = None
        #: the batch-norm layers that train on batch statistics, run so in `loss` (set per check)
        self.train_norms: list[nn.Module] = []

    def _params(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        params, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            params[name] = theta[start : start + size].view(shape)
            start += size
        return params

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """The held loss at the flat parameters ``theta`` (differentiable in theta); the layers of
        ``train_norms`` in training mode, updating copies of their running statistics."""
        params = self._params(theta)
        if not self.train_norms or self.size < 2:
            return self.loss_fn(call(self.model, params, self.x, self.spread), self.y)
        norms = {id(m) for m in self.train_norms}
        for prefix, module in self.model.named_modules():
            if id(module) in norms:
                for name, buffer in module.named_buffers(recurse=False):
                    params[f"{prefix}.{name}" if prefix else name] = buffer.clone()
        try:
            for module in self.train_norms:
                module.training = True
            return self.loss_fn(call(self.model, params, self.x, self.spread), self.y)
        finally:
            for module in self.train_norms:
                module.training = False

    def loss64(self, theta: torch.Tensor) -> torch.Tensor:
        """The held loss of a float64 ``theta`` (cast to the model's dtype; Lanczos works in float64)."""
        return self.loss(theta.to(self.dtype)).to(torch.float64)

    def _one(self, params: dict[str, torch.Tensor], x: Inputs, y: torch.Tensor) -> torch.Tensor:
        outputs = call(self.model, params, map_inputs(lambda v: v.unsqueeze(0), x), self.spread)
        return self.loss_fn(outputs, y.unsqueeze(0))

    def per_example(
        self, theta: torch.Tensor, index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each example's loss ``[m]`` and gradient ``[m, d]`` at ``theta`` (the examples ``index``, all
        if None)."""
        losses, parts = self.per_example_parts(theta, index)
        return losses, torch.cat(parts, dim=1)

    def per_example_parts(
        self, theta: torch.Tensor, index: torch.Tensor | None = None, chunk: int = 256
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`per_example` with the gradient cut by parameter tensor, ``[m, numel]`` each, in order."""
        x, y = (self.x, self.y) if index is None else (take(self.x, index), self.y[index])
        params = self._params(theta.detach())  # by name: a gradient per tensor (the flat vector's
        if self.vmap_failed is None:  # slices would each scatter into a full-size zero vector)
            try:
                batched = torch.func.vmap(torch.func.grad_and_value(self._one), in_dims=(None, 0, 0))
                chunks = [
                    batched(params, take(x, slice(i, i + chunk)), y[i : i + chunk])
                    for i in range(0, len(y), chunk)
                ]
                parts = [
                    chunks[0][0][name].flatten(1)
                    if len(chunks) == 1
                    else torch.cat([g[name].flatten(1) for g, _ in chunks])
                    for name in self.names
                ]
                return torch.cat([v for _, v in chunks]), parts
            except Exception as error:  # torch.func cannot trace every model
                first = str(error).split(". ")[0].splitlines()[0] if str(error) else ""
                self.vmap_failed = f"{type(error).__name__}: {first[:120]}"
                warnings.warn(
                    f"descent.monitor: torch.func.vmap cannot handle this model ({self.vmap_failed}); "
                    "per-example gradients fall back to a loop over the held examples (slower)",
                    stacklevel=4,
                )
        losses, rows = [], []
        trainable = {name: p.clone().requires_grad_(True) for name, p in params.items()}
        for i in range(len(y)):
            with torch.enable_grad():
                value = self._one(trainable, take(x, i), y[i])
                rows.append(torch.autograd.grad(value, [trainable[name] for name in self.names]))
            losses.append(value.detach())
        parts = [torch.stack([row[k] for row in rows]).flatten(1) for k in range(len(self.names))]
        return torch.stack(losses).reshape(-1), parts

    def noise(self, theta: torch.Tensor, scale: torch.Tensor | None, examples: int, first: int = 0) -> Noise:
        """The held loss and mean gradient, and ``tr(P^-1 Sigma)`` (``P = diag(scale)``, 1 if None) from
        the per-example gradients of ``examples`` held examples from ``first`` on (cyclically; all of
        them if ``examples >= n``): the loss and gradient are then one batched pass over them all.
        The per-example gradients are held at most ``PER_EXAMPLE_BYTES`` at a time: past that (a large
        network), in chunks, twice (their mean first, then each one's distance to it)."""
        theta = theta.detach()
        n = self.size
        every = torch.arange(n if examples >= n else examples, device=self.y.device)
        index = every if examples >= n else (first + every) % n
        m = len(index)
        numel = sum(math.prod(shape) for shape in self.shapes)
        rows = max(2, PER_EXAMPLE_BYTES // max(1, numel * theta.element_size()))
        pieces = [index[i : i + rows] for i in range(0, m, rows)]
        if len(pieces) == 1:
            losses, parts = self.per_example_parts(theta, None if examples >= n else index)
            means = [part.mean(dim=0) for part in parts]
            q = _distances(parts, means, scale)
        else:  # the mean first, then the distances: never more than one chunk's gradients at a time
            sums: list[torch.Tensor] = []
            chunk_losses = []
            for piece in pieces:
                piece_losses, parts = self.per_example_parts(theta, piece)
                chunk_losses.append(piece_losses)
                sums = (
                    [part.sum(dim=0) for part in parts]
                    if not sums
                    else [total + part.sum(dim=0) for total, part in zip(sums, parts)]
                )
            losses, means = torch.cat(chunk_losses), [total / m for total in sums]
            q = torch.cat(
                [_distances(self.per_example_parts(theta, piece)[1], means, scale) for piece in pieces]
            )
        mean = torch.cat(means)
        trace = float(q.sum()) / (m - 1)
        trace_se = float(q.std() / math.sqrt(m)) * m / (m - 1)
        loss = float(losses.mean())
        if examples < n:
            w = theta.clone().requires_grad_(True)
            with torch.enable_grad():
                value = self.loss(w)
                (mean,) = torch.autograd.grad(value, w)
            loss = float(value.detach())
        return Noise(loss, mean, trace, trace_se, m)


#: the most memory per-example gradients take at once (`HeldBatch.noise` goes by chunks past it)
PER_EXAMPLE_BYTES = 512 * 2**20


def _distances(
    parts: list[torch.Tensor], means: list[torch.Tensor], scale: torch.Tensor | None
) -> torch.Tensor:
    """``q_i = (g_i - g)^T P^-1 (g_i - g)`` summed over the parameter tensors (``parts[k]``: ``[m,
    numel_k]``, centred in place: the per-example gradients are the caller's own), float64 ``[m]``."""
    q = torch.zeros(parts[0].shape[0], dtype=torch.float64, device=parts[0].device)
    start = 0
    for part, mean in zip(parts, means):
        squared = part.sub_(mean).square_()
        if scale is not None:
            squared.div_(scale[start : start + part.shape[1]])
        q += squared.sum(dim=1).to(torch.float64)
        start += part.shape[1]
    return q
