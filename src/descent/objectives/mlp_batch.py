"""N plain MLPs evaluated and differentiated at once with batched matrix products: the fast path of
`NetworkObjective` for the lab's own models (``descent.train.build_model``'s ``mlp``, ``linear`` and
``logistic``). Its reference is the general path (``functional_call`` + ``grad`` + ``vmap``), and the
two agree to rounding (tests/objectives/test_mlp_batch.py).

An MLP here is ``Linear, act, Linear, act, ..., Linear`` (every Linear with a bias; act one of ReLU,
tanh, sigmoid) or one Linear. With ``h_0 = x`` (``[N, B, d_0]``: each network's own batch, or ``[B,
d_0]`` shared by all), layer l computes

    z_l = h_{l-1} W_l^T + b_l,      h_l = act(z_l)      (no act after the last layer),

and the loss is the mean over the batch of cross-entropy ``logsumexp(z_L) - z_L[y]`` or of the squared
error ``|z_L - y|^2 / 2`` (one-hot ``y`` for classes). Backpropagation, with ``dz_L = dloss/dz_L``
(``(softmax(z_L) - onehot(y)) / B`` or ``(z_L - y) / B``):

    dW_l = dz_l^T h_{l-1},   db_l = sum_b dz_l,   dz_{l-1} = (dz_l W_l) * act'(z_{l-1}),

with ``act'`` = ``[z > 0]`` (ReLU), ``1 - h^2`` (tanh), ``h (1 - h)`` (sigmoid). The gradient is laid out
as ``model.named_parameters()`` (weight then bias, layer by layer), as the flat parameter vector.

Why: a vmapped ``grad`` of ``functional_call`` spends as much time again as the products themselves on
a swarm of 100 digits MLPs (9.1 ms a step against 7.0 ms here, float64, one thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


@dataclass(frozen=True)
class MLPLayout:
    """The shapes ``(out, in)`` of the Linear layers, in order, their shared activation, and the loss."""

    shapes: tuple[tuple[int, int], ...]
    activation: str
    loss: str  # "cross-entropy" or "mse"
    classes: bool  # targets are class indices (one-hot for mse)

    @property
    def size(self) -> int:
        return sum(o * i + o for o, i in self.shapes)


def mlp_layout(model: nn.Module, loss: str, task: str) -> MLPLayout | None:
    """The layout of ``model`` when it is a plain MLP this module evaluates, else None (the general
    path serves it)."""
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    linears = [m for m in layers[0::2] if type(m) is nn.Linear and m.bias is not None]
    names = {_ACTIVATIONS.get(type(a), "") for a in layers[1::2]}
    if len(linears) != (len(layers) + 1) // 2 or len(layers) % 2 == 0 or "" in names or len(names) > 1:
        return None
    shapes = tuple((int(m.out_features), int(m.in_features)) for m in linears)
    return MLPLayout(shapes, names.pop() if names else "relu", loss, task == "classification")


def _act(name: str, z: torch.Tensor) -> torch.Tensor:
    return torch.relu(z) if name == "relu" else torch.tanh(z) if name == "tanh" else torch.sigmoid(z)


def _act_slope(name: str, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """act'(z), from z or from h = act(z)."""
    if name == "relu":
        return (z > 0).to(z.dtype)
    if name == "tanh":
        return 1 - h * h
    return h * (1 - h)


def value_and_grad(
    layout: MLPLayout, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each network's mean loss ``[N]`` and its gradient ``[N, P]`` at the flat parameters ``w [N, P]``
    on ``x`` (``[N, B, d_0]`` or shared ``[B, d_0]``) and ``y`` (``[N, B]`` / ``[B]``; real targets may
    carry a last axis of outputs)."""
    n = w.shape[0]
    weights, biases, start = [], [], 0
    for out, inp in layout.shapes:
        weights.append(w[:, start : start + out * inp].view(n, out, inp))
        biases.append(w[:, start + out * inp : start + out * inp + out])
        start += out * inp + out
    zs, hs = [], [x]
    h = x
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        z = torch.matmul(h, weight.transpose(1, 2)).add_(bias.unsqueeze(1))
        zs.append(z)
        if i < len(weights) - 1:
            h = _act(layout.activation, z)
            hs.append(h)
    z = zs[-1]
    batch = z.shape[1]
    if layout.loss == "cross-entropy":
        log_p = torch.log_softmax(z, dim=-1)
        index = y.expand(n, batch).unsqueeze(2)
        value = -log_p.gather(2, index).squeeze(2).mean(dim=1)
        dz = log_p.exp_()
        dz.scatter_add_(2, index, torch.full_like(dz[..., :1], -1.0))
    else:
        if layout.classes:
            target = nn.functional.one_hot(y, z.shape[-1]).to(z.dtype)
        else:  # [N, B] or [B] targets, with or without an axis of outputs
            target = y.to(z.dtype).reshape(*((n,) if x.ndim == 3 else ()), batch, -1)
        dz = z - target
        value = 0.5 * dz.square().sum(dim=(1, 2)) / batch
    dz = dz.div_(batch)
    parts: list[torch.Tensor] = []
    for i in range(len(weights) - 1, -1, -1):
        parts += [dz.sum(dim=1), torch.matmul(dz.transpose(1, 2), hs[i]).reshape(n, -1)]
        if i > 0:
            dz = torch.matmul(dz, weights[i]).mul_(_act_slope(layout.activation, zs[i - 1], hs[i]))
    return value, torch.cat(parts[::-1], dim=1)
