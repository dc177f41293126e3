"""Gradient measurements on networks at given points (the training lab's instruments, not dynamics):
each example's gradient, the full gradient, per-layer gradient norms, the exact Hessian. The
experiments read these; they never take a gradient themselves (tests/test_boundaries.py).

>>> import torch
>>> from descent.objectives.network import digits_mlp
>>> net = digits_mlp(width=4, depth=1, examples=200)
>>> w = net.start()[0]
>>> per_example_gradients(net, w).shape == (net.data_size, w.numel())
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def per_example_gradients(net, w: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The gradient of every training example's loss at ``w`` ``[P]``: ``[n, P]`` (the objective's own
    evaluation, one example per particle)."""
    n = net.data_size
    rows = []
    for first in range(0, n, chunk):
        index = torch.arange(first, min(first + chunk, n)).unsqueeze(1)  # [m, 1]
        rows.append(net.value_and_grad(w.expand(len(index), -1), index)[1])
    return torch.cat(rows)


def full_gradients(net, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The full-data loss ``[N]`` and its gradient ``[N, P]`` of each network (row) of ``w``."""
    return net.value_and_grad(w, None)


def layer_gradients(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """For the summed cross-entropy over the examples: per hidden layer l, the mean over examples of
    ``|dL/dh^l|^2`` (each example's own gradient: the examples do not interact) and ``|dL/dW^l|^2``."""
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    hidden: list[torch.Tensor] = []
    h = x
    with torch.enable_grad():
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.Linear) and len(hidden) < len(linears) - 1:
                h.retain_grad()
                hidden.append(h)
        loss = nn.functional.cross_entropy(h, y, reduction="sum")
        model.zero_grad(set_to_none=True)
        loss.backward()
    pre = np.array([float((t.grad**2).sum(dim=1).mean()) for t in hidden])  # type: ignore[operator]
    weights = np.array([float((layer.weight.grad**2).sum()) for layer in linears[:-1]])  # type: ignore[operator]
    return pre, weights


def exact_hessian(
    loss_fn: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, chunk: int = 64
) -> torch.Tensor:
    """The exact Hessian ``[P, P]`` of ``loss_fn`` at ``theta``: the Jacobian of its gradient
    (``torch.func``), ``chunk`` columns at a time (all at once would hold P copies of the activations)."""
    return torch.func.jacrev(torch.func.grad(loss_fn), chunk_size=chunk)(theta)
