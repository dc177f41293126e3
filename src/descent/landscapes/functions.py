"""The elementwise math of the formula language: each function's value and derivative, in torch.

Every value here is computed the same way for a particle whatever the batch around it (a row's
result never depends on how many rows the tensor has). torch's own ``sigmoid``, ``sinh``, ``cosh``,
``softplus`` and ``pow`` (beyond the exponents 2, 3, +-0.5, -1, -2) take a vectorised path for
most of a tensor and a scalar one for its tail, which differ in the last bits; so here

- sigmoid(u) = 1 / (1 + exp(-u)); softplus(u) = log(1 + exp(u)) (u itself for u > 20, as torch);
- sinh(u) = (expm1(u) - expm1(-u)) / 2; cosh(u) = (exp(u) + exp(-u)) / 2;
- u**n for an integer n by repeated multiplication (square and multiply), 1/u**n for n < 0;
  u**p otherwise as exp(p log u) (sqrt and rsqrt for p = +-0.5); a**b with b not constant as
  exp(b log a) where a > 0 (torch.pow elsewhere).

Derivatives at non-smooth points: sqrt'(0) = 0 (a cusp's subgradient, never inf or NaN: also what
autograd gives, through a guarded square root), abs'(0) = 0, and max/min (so clip) send the whole
derivative to the argument they picked, the first one at a tie (``max(a, b)`` is ``a`` when a >= b;
torch's autograd of ``maximum`` splits a tie evenly instead). ``u**p`` with a constant p has no
guard: (u**0.5)' at 0 is inf, as torch's.

>>> u = torch.tensor([0.0, 4.0], dtype=torch.float64)
>>> UNARY["sqrt"].derivative(u, UNARY["sqrt"].forward(u)).tolist()
[0.0, 0.25]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Number = torch.Tensor | float
SOFTPLUS_THRESHOLD = 20.0  # torch's default: softplus(u) = u beyond it
MAX_INTEGER_POWER = 1024  # larger integer exponents go through exp(p log u)


@dataclass(frozen=True)
class Function:
    """A function of one argument: ``forward(u) -> y`` and ``derivative(u, y) -> f'(u)``."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sqrt(u: torch.Tensor) -> torch.Tensor:
    """sqrt(u); when autograd records, guarded so that its derivative at u = 0 is 0, not inf."""
    if not u.requires_grad:
        return torch.sqrt(u)
    zero = u == 0
    return torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, u)))


def sigmoid(u: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-u))."""
    return torch.reciprocal(1 + torch.exp(-u))


def softplus(u: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(u)), and u itself for u > 20 (the branch not taken stays finite, as its gradient)."""
    return torch.where(u > SOFTPLUS_THRESHOLD, u, torch.log1p(torch.exp(u.clamp_max(SOFTPLUS_THRESHOLD))))


def sinh(u: torch.Tensor) -> torch.Tensor:
    """(e^u - e^-u) / 2 through expm1, accurate near 0."""
    return (torch.expm1(u) - torch.expm1(-u)) / 2


def cosh(u: torch.Tensor) -> torch.Tensor:
    """(e^u + e^-u) / 2."""
    return (torch.exp(u) + torch.exp(-u)) / 2


def _sqrt_derivative(u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.where(y == 0, 0.0, 0.5 / y)


def _softplus_derivative(u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.where(u > SOFTPLUS_THRESHOLD, 1.0, sigmoid(u))


#: name -> the function and its derivative (``neg`` is unary minus)
UNARY: dict[str, Function] = {
    "neg": Function(torch.neg, lambda u, y: torch.full_like(u, -1.0)),
    "sin": Function(torch.sin, lambda u, y: torch.cos(u)),
    "cos": Function(torch.cos, lambda u, y: -torch.sin(u)),
    "tan": Function(torch.tan, lambda u, y: 1 + y * y),
    "exp": Function(torch.exp, lambda u, y: y),
    "log": Function(torch.log, lambda u, y: torch.reciprocal(u)),
    "sqrt": Function(sqrt, _sqrt_derivative),
    "abs": Function(torch.abs, lambda u, y: torch.sign(u)),
    "tanh": Function(torch.tanh, lambda u, y: 1 - y * y),
    "sinh": Function(sinh, lambda u, y: cosh(u)),
    "cosh": Function(cosh, lambda u, y: sinh(u)),
    "atan": Function(torch.atan, lambda u, y: torch.reciprocal(1 + u * u)),
    "sigmoid": Function(sigmoid, lambda u, y: y * (1 - y)),
    "softplus": Function(softplus, _softplus_derivative),
}


# --- powers ------------------------------------------------------------------------------------
def integer_power(u: torch.Tensor, n: int) -> torch.Tensor:
    """u**n for an integer n != 0 by square and multiply (u*u for 2, u*u*u for 3), 1/u**|n| for n < 0."""
    if n < 0:
        return torch.reciprocal(integer_power(u, -n))
    result: torch.Tensor | None = None
    base = u
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    assert result is not None
    return result


def power_forward(u: torch.Tensor, p: float) -> torch.Tensor:
    """u**p for a constant p (integers by multiplication, +-0.5 by sqrt/rsqrt, else exp(p log u))."""
    if p == 2:  # the common case, first
        return u * u
    if math.isfinite(p) and p == int(p) and 0 < abs(p) <= MAX_INTEGER_POWER:
        return integer_power(u, int(p))
    if p == 0.5:
        return torch.sqrt(u)
    if p == -0.5:
        return torch.rsqrt(u)
    return torch.exp(p * torch.log(u))


def power_derivative(u: torch.Tensor, p: float) -> torch.Tensor:
    """d/du u**p = p u**(p - 1) (p = 0 is folded away before)."""
    if p == 1:
        return torch.ones_like(u)
    return p * power_forward(u, p - 1)


def pow_forward(a: Number, b: torch.Tensor) -> torch.Tensor:
    """a**b for an exponent that is not constant: exp(b log a) where a > 0, torch.pow elsewhere."""
    if not isinstance(a, torch.Tensor):
        return torch.exp(b * math.log(a)) if a > 0 else torch.pow(a, b)
    positive = a > 0
    safe = torch.where(positive, a, 1.0)  # the branch not taken stays finite (and so do its gradients)
    return torch.where(positive, torch.exp(b * torch.log(safe)), torch.pow(a, b))


def log_base(a: Number) -> Number:
    """log a where a > 0, else 0: the factor of d(a**b)/db = a**b log a (0 where it is not real)."""
    if not isinstance(a, torch.Tensor):
        return math.log(a) if a > 0 else 0.0
    positive = a > 0
    return torch.where(positive, torch.log(torch.where(positive, a, 1.0)), 0.0)


# --- operators -------------------------------------------------------------------------------------
def binary_forward(op: str, a: Number, b: Number) -> torch.Tensor:
    """``a op b`` for an operator of :data:`descent.landscapes.expr.BINARY_OPS` (a or b may be a float)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "**":
        return pow_forward(a, b)  # type: ignore[arg-type]
    if op == "max":
        if not isinstance(a, torch.Tensor):
            return b.clamp_min(a)  # type: ignore[union-attr]
        return a.clamp_min(b) if not isinstance(b, torch.Tensor) else torch.maximum(a, b)
    if op == "min":
        if not isinstance(a, torch.Tensor):
            return b.clamp_max(a)  # type: ignore[union-attr]
        return a.clamp_max(b) if not isinstance(b, torch.Tensor) else torch.minimum(a, b)
    raise ValueError(f"unknown operator {op!r}")
