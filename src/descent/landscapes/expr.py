"""The expression tree of a landscape formula: small immutable nodes, built with constant folding.

A tree describes U(x) for one particle x in R^d; :mod:`descent.landscapes.evaluate` runs it on a batch
``[N, d]``. Leaves are numbers (:class:`Const`), coordinates (:class:`Column`: x_j, a ``[N]`` column)
and, inside a sum over an index i, a coordinate shifted by i (:class:`Block`: x_{i+k} for every i at
once, a ``[N, m]`` slice). Inner nodes are a function of one argument (:class:`Call`), an operator
(:class:`Binary`), a power with a constant exponent (:class:`Power`), a sum or mean over the columns
of a block expression (:class:`Fold`) and the quadratic form x^T A x (:class:`QuadForm`).

Nodes compare by identity; the :class:`Builder` shares equal subtrees (one node for each distinct
subexpression), so a repeated subexpression is computed once, and folds constant subtrees into one
:class:`Const` with the same torch arithmetic that would compute them at run time.

>>> b = Builder()
>>> b.binary("+", b.column(0), b.binary("*", b.const(2.0), b.const(3.0)))
Binary(op='+', left=Column(index=0), right=Const(value=6.0))
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from descent.landscapes.functions import UNARY, binary_forward, power_forward

#: the operators of a :class:`Binary` node (``max`` and ``min``: the functions of two arguments)
BINARY_OPS = ("+", "-", "*", "/", "**", "max", "min")


class Expr:
    """A node of the expression tree (immutable; compared by identity)."""

    def children(self) -> tuple[Expr, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Const(Expr):
    """A number."""

    value: float


@dataclass(frozen=True, eq=False)
class Column(Expr):
    """The coordinate x_j (``index`` = j, from 0): column j of the batch, shape ``[N]``."""

    index: int


@dataclass(frozen=True, eq=False)
class Block(Expr):
    """x_{i+k} for i in range(a, b): columns ``start = a + k`` to ``stop = b + k`` (exclusive), ``[N, m]``."""

    start: int
    stop: int


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """A function of one argument, by name (``neg`` is unary minus); see ``evaluate.FUNCTIONS``."""

    name: str
    arg: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


@dataclass(frozen=True, eq=False)
class Binary(Expr):
    """``left op right`` for op in + - * / ** (a non-constant exponent), or ``max``/``min`` of the two."""

    op: str
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False)
class Power(Expr):
    """``base ** exponent`` with a constant exponent."""

    base: Expr
    exponent: float

    def children(self) -> tuple[Expr, ...]:
        return (self.base,)


@dataclass(frozen=True, eq=False)
class Fold(Expr):
    """sum_i body_i over the ``count`` columns of ``body`` (a ``[N, count]`` expression of blocks),
    added left to right; divided by ``count`` when ``mean``."""

    body: Expr
    count: int
    mean: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.body,)


@dataclass(frozen=True, eq=False)
class QuadForm(Expr):
    """x^T A x for a constant symmetric matrix A (``[d, d]`` float64); its gradient is 2 A x."""

    matrix: torch.Tensor


def walk(root: Expr) -> Iterator[Expr]:
    """Every distinct node under ``root`` once, children before their parents."""
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            yield node
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children()))


class Builder:
    """Makes nodes: folds operations on constants, and returns the existing node for an equal one."""

    def __init__(self) -> None:
        self._nodes: dict[tuple, Expr] = {}

    def _share(self, node: Expr, *key: object) -> Expr:
        full = (type(node), *(id(k) if isinstance(k, (Expr, torch.Tensor)) else k for k in key))
        return self._nodes.setdefault(full, node)

    def const(self, value: float) -> Expr:
        value = float(value)
        # -0.0 == 0.0 as a dict key: keep the sign apart so folding never flips it
        return self._share(Const(value), value, str(value))

    def column(self, index: int) -> Expr:
        return self._share(Column(index), index)

    def block(self, start: int, stop: int) -> Expr:
        return self._share(Block(start, stop), start, stop)

    def call(self, name: str, arg: Expr) -> Expr:
        if isinstance(arg, Const):
            return self.const(_fold(UNARY[name].forward, arg.value))
        return self._share(Call(name, arg), name, arg)

    def binary(self, op: str, left: Expr, right: Expr) -> Expr:
        if op not in BINARY_OPS:
            raise ValueError(f"unknown operator {op!r}")
        if op == "**" and isinstance(right, Const):
            return self.power(left, right.value)
        if isinstance(left, Const) and isinstance(right, Const):
            return self.const(_fold(functools.partial(binary_forward, op), left.value, right.value))
        return self._share(Binary(op, left, right), op, left, right)

    def power(self, base: Expr, exponent: float) -> Expr:
        exponent = float(exponent)
        if isinstance(base, Const):
            return self.const(float(power_forward(_scalar(base.value), exponent)))
        if exponent == 0:
            return self.const(1.0)  # as torch: x**0 = 1 everywhere
        if exponent == 1:
            return base
        return self._share(Power(base, exponent), base, exponent)

    def fold(self, body: Expr, count: int, mean: bool = False) -> Expr:
        if count < 1:
            raise ValueError("a fold needs at least one term")
        if isinstance(body, Const):
            total = body.value
            for _ in range(count - 1):
                total += body.value
            return self.const(total / count if mean else total)
        return self._share(Fold(body, count, mean), body, count, mean)

    def quad_form(self, matrix: torch.Tensor) -> Expr:
        return self._share(QuadForm(matrix), matrix)


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def _fold(fn, *values: float) -> float:
    """``fn`` applied to float64 scalar tensors: the number run-time torch arithmetic would give."""
    return float(fn(*(_scalar(v) for v in values)))
