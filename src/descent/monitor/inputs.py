"""The monitor's arguments, checked before any work: one-line errors naming the parameter."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from descent._errors import DescentError, invalid
from descent.monitor.measure import HeldBatch, Inputs, call, leaves
from descent.monitor.physics import check_optimizer

#: the most Lanczos products a check may take: a warm-started tracker needs 3 to 6 (``full``), a cold
#: Lanczos run to 1e-10 some 20 to 60 on these spectra; 200 is past any use, each a Hessian-vector
#: product (two passes over the curvature examples), and the Krylov basis is 200 vectors of d numbers
MAX_PRODUCTS = 200
#: the most Hutchinson probes a check may take: the trace's standard error falls as 1/sqrt(probes)
#: (Rademacher probes: sd(v^T H v) <= sqrt(2) ||H||_F), so 1000 probes give it to about 3 % of
#: ||H||_F/tr H at 1000 Hessian-vector products a check; a finer trace is a separate experiment
MAX_PROBES = 1000
#: the largest seed (a torch.Generator's seed is a 64-bit integer; the monitor adds the step to it)
MAX_SEED = 2**63 - 1

HELD = (
    "a pair (x, y): x a tensor, a tuple of tensors (the forward pass's arguments) or a dict of tensors "
    "(its keyword arguments, or its one argument), y a tensor, all with the same first dimension "
    "(the examples, at least 2)"
)


def check_int(name: str, value: object, low: int, high: int | None = None, allowed: str = "") -> int:
    """``value`` if it is an integer in ``[low, high]`` (no bound above if None), else one line."""
    allowed = allowed or (f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]")
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= (value if high is None else high)
    ):
        raise invalid(name, value, allowed)
    return value


def check_inputs(model: object, optimizer: object, loss_fn: object) -> list[tuple[str, Any]]:
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
    return trained


def describe(value: object) -> str:
    """A batch as a message shows it: ``(Tensor[64, 10] float32, Tensor[64] int64)``."""
    if isinstance(value, torch.Tensor):
        return f"Tensor{list(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {describe(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(describe(item) for item in value) + ")"
    return type(value).__name__


def check_held(held: object) -> tuple[Inputs, torch.Tensor]:
    """``(x, y)`` with ``x`` a tensor, a tuple of tensors or a dict of tensors (a list: a tuple), every
    tensor with the same first dimension ``n >= 2`` and no NaN or infinity, else one line naming held."""
    if not isinstance(held, (tuple, list)) or len(held) != 2:
        raise invalid("held", describe(held), HELD)
    x, y = held
    if isinstance(x, list):
        x = tuple(x)
    shaped = isinstance(x, torch.Tensor) or (
        isinstance(x, (tuple, dict))
        and len(x) > 0
        and all(isinstance(v, torch.Tensor) for v in leaves(x))
        and (not isinstance(x, dict) or all(isinstance(key, str) for key in x))
    )
    if not shaped or not isinstance(y, torch.Tensor):
        raise invalid("held", describe((x, y)), HELD)
    tensors = [*leaves(x), y]
    if any(v.ndim == 0 for v in tensors) or len({v.shape[0] for v in tensors}) > 1 or len(y) < 2:
        raise invalid("held", describe((x, y)), HELD)
    if any((v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all()) for v in tensors):
        raise invalid("held", describe((x, y)), "tensors without NaN or infinity (the held batch is data)")
    return x, y


def check_held_loss(batch: HeldBatch, theta: torch.Tensor, held: object) -> float:
    """The held loss at the flat parameters ``theta``, run once through the model and ``loss_fn`` with a
    gradient path: an error of either, or a loss that is not a differentiable scalar tensor, is one line
    naming held or loss_fn."""
    w = theta.clone().requires_grad_(True)
    with torch.enable_grad():
        try:
            outputs = call(batch.model, batch._params(w), batch.x, batch.spread)
        except Exception as error:
            raise refused("held", describe(held), "the model cannot run on it", error) from None
        try:
            value = batch.loss_fn(outputs, batch.y)
        except Exception as error:
            raise refused("held", describe(held), "loss_fn(model(x), y) cannot run on it", error) from None
    scalar = "a loss_fn(outputs, y) that returns a scalar (0-dim) floating-point tensor"
    name = getattr(batch.loss_fn, "__name__", None) or repr(batch.loss_fn)
    if not isinstance(value, torch.Tensor):
        raise invalid("loss_fn", name, f"{scalar} (it returned a {type(value).__name__})")
    if value.ndim != 0 or not value.is_floating_point():
        returned = f"{str(value.dtype).removeprefix('torch.')} tensor shaped {list(value.shape)}"
        raise invalid("loss_fn", name, f"{scalar} (it returned a {returned})")
    if not value.requires_grad:
        raise invalid("loss_fn", name, f"{scalar} that depends on the outputs (it has no gradient path)")
    return float(value.detach())


def refused(name: str, value: str, reason: str, error: Exception) -> DescentError:
    """One line: ``invalid held='...': the model cannot run on it (RuntimeError: <its first line>)``."""
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    message = f"invalid {name}={value!r}: {reason} ({type(error).__name__}: {first})"
    return DescentError(message, parameter=name, value=value, allowed=reason)


def check_bool(name: str, value: object, meaning: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, value, f"True or False ({meaning})")
    return value


def check_folder(name: str, value: object, meaning: str) -> Path:
    """A non-empty str or path-like ``value`` as a Path, else one line."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise invalid(name, value, f"a non-empty str or path ({meaning})")
    return Path(value)


def check_step_loss(loss: object) -> float:
    """A loss given to ``step`` that is not a tensor (the fast path): a real number as a float."""
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise invalid("step(loss)", loss, STEP_LOSS)
    return float(loss)


STEP_LOSS = "None, a real number or a one-element tensor (the step's batch loss; NaN and inf are data)"


def check_step_tensors(tensors: list[torch.Tensor]) -> None:
    """Each loss tensor given to ``step`` has one element (checked when a check reads them)."""
    for value in tensors:
        if value.numel() != 1 or value.is_complex():
            raise invalid("step(loss)", f"a tensor shaped {list(value.shape)}", STEP_LOSS)
