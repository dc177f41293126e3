"""The monitor's arguments, checked before any work: one-line errors naming the parameter."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from descent._errors import invalid
from descent.monitor.physics import check_optimizer


def check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(name, value, f"an integer >= {low}")
    return value


def check_inputs(model: object, optimizer: object, loss_fn: object, held: object) -> list[tuple[str, Any]]:
    """The trained parameters ``[(name, tensor)]``: the model's parameters that require a gradient and
    that the optimizer steps, in the model's order."""
    if not isinstance(model, nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module with parameters")
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise invalid("model", type(model).__name__, "a torch.nn.Module with parameters that require grad")
    check_optimizer(optimizer)
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}  # type: ignore[attr-defined]
    trained = [(name, p) for name, p in named if id(p) in stepped]
    if not trained:
        raise invalid("optimizer", type(optimizer).__name__, "an optimizer over the model's parameters")
    if sum(p.numel() for _, p in trained) < 2:
        raise invalid("model", type(model).__name__, "at least 2 trained parameters (a Hessian to probe)")
    if not callable(loss_fn):
        raise invalid("loss_fn", loss_fn, "a callable loss_fn(outputs, targets) -> scalar")
    pair = "a pair (x, y) of tensors with matching first dimensions and at least 2 examples"
    if not isinstance(held, (tuple, list)) or len(held) != 2:
        raise invalid("held", type(held).__name__, pair)
    x, y = held
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise invalid("held", f"({type(x).__name__}, {type(y).__name__})", pair)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise invalid("held", f"tensors shaped {tuple(x.shape)} and {tuple(y.shape)}", pair)
    return trained
