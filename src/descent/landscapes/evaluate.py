"""Running an expression tree on a batch of particles: its value, and its gradient by reverse mode.

``value(tree, x)`` computes U for each row of ``x [N, d]`` with plain torch operations, so torch's
autograd can differentiate it (Hessians by double backward). ``value_and_grad(tree, x)`` computes
U and grad U without autograd: a forward sweep keeps every node's value, then a backward sweep
carries each node's adjoint dU/d(node) from the root to the leaves (reverse-mode accumulation):

    adj(root) = 1;   adj(child) += adj(node) * d node / d child;   grad_j U = adj(x_j).

An adjoint stays a Python number while it is one (the root's 1, a constant factor, a sum's +-1),
so constant factors cost nothing, and each distinct subexpression is computed once.

Only elementwise operations are used, and a sum over an index adds its columns one after another
(a left fold), so a particle's value and gradient are bit-for-bit the same whatever the batch
around it. Conventions at non-smooth points: see :mod:`descent.landscapes.functions`.

>>> from descent.landscapes.formula import parse_formula
>>> tree = parse_formula("x**2 + 3*y").tree
>>> value, grad = value_and_grad(tree, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
>>> value.tolist(), grad.tolist()
([7.0], [[2.0, 3.0]])
"""

from __future__ import annotations

import functools

import torch

from descent.landscapes.expr import Binary, Block, Call, Column, Const, Expr, Fold, Power, QuadForm, walk
from descent.landscapes.functions import (
    UNARY,
    binary_forward,
    log_base,
    pow_forward,
    power_forward,
)

Adjoint = torch.Tensor | float


class Program:
    """A tree laid out for the two sweeps: its distinct nodes, children before parents.

    To keep memory low on large batches, a value is dropped once nothing needs it any more: after
    its last use in the forward sweep, or, when the backward sweep reads it, once its node is done.
    """

    def __init__(self, root: Expr) -> None:
        self.root = root
        self.nodes: list[Expr] = list(walk(root))
        slot = {id(node): k for k, node in enumerate(self.nodes)}
        #: (slot, node, its children's slots), children first
        self.steps = [
            (k, node, tuple(slot[id(c)] for c in node.children())) for k, node in enumerate(self.nodes)
        ]
        self.uses_columns = any(isinstance(node, Column) for node in self.nodes)
        self.by_columns = not any(isinstance(node, (Block, QuadForm)) for node in self.nodes)
        last_use: dict[int, int] = {}
        read_back: set[int] = set()
        for k, node, kids in self.steps:
            last_use.update((j, k) for j in kids)
            read_back.update(_read_by_backward(node, k, kids))
        droppable = [j for j, node in enumerate(self.nodes) if not isinstance(node, Const)]
        self.drop_after = [
            tuple(j for j in droppable if last_use.get(j) == k) for k in range(len(self.nodes))
        ]
        self.drop_after_keep_back = [tuple(j for j in drop if j not in read_back) for drop in self.drop_after]

    # --- forward sweep -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, backward: bool = False) -> tuple[list, dict[int, torch.Tensor]]:
        """Every node's value (a float for a constant, ``[N]``, or ``[N, m]`` in a sum's body; None
        once no longer needed), and what a node keeps for the backward sweep (A x for x^T A x)."""
        columns = x.unbind(1) if self.uses_columns else ()
        values: list = []
        saved: dict[int, torch.Tensor] = {}
        drop_after = self.drop_after_keep_back if backward else self.drop_after
        for k, node, kids in self.steps:
            kind = type(node)
            if kind is Binary:
                value = binary_forward(node.op, values[kids[0]], values[kids[1]])
            elif kind is Power:
                value = power_forward(values[kids[0]], node.exponent)
            elif kind is Column:
                value = columns[node.index]
            elif kind is Const:
                value = node.value
            elif kind is Call:
                value = UNARY[node.name].forward(values[kids[0]])
            elif kind is Block:
                value = x[:, node.start : node.stop]
            elif kind is Fold:
                value = _fold_columns(values[kids[0]], node.count, node.mean)
            elif kind is QuadForm:
                value, saved[k] = _quad_form(node.matrix, x)
            else:
                raise TypeError(f"not an expression node: {node!r}")
            values.append(value)
            for j in drop_after[k]:
                values[j] = None
        return values, saved

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) ``[N]`` for ``x [N, d]``, differentiable by autograd."""
        values, _ = self.forward(x)
        return _as_batch(values[-1], x)

    # --- backward sweep ----------------------------------------------------------------------------
    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U(x) ``[N]``, grad U(x) ``[N, d]``) by one forward and one backward sweep.

        Nodes are visited parents first; a constant (a Python float) receives no adjoint.
        """
        values, saved = self.forward(x, backward=True)
        value = _as_batch(values[-1], x)
        adjoints: list[Adjoint | None] = [None] * len(values)
        adjoints[-1] = 1.0
        leaves: list[tuple[Expr, Adjoint]] = []
        for k, node, kids in reversed(self.steps):
            adj = adjoints[k]
            kind = type(node)
            if adj is None or kind is Const:
                continue
            if kind is Binary:
                terms = _binary_adjoints(node.op, adj, values[kids[0]], values[kids[1]], values[k])
            elif kind is Power:
                terms = (_power_adjoint(adj, values[kids[0]], node.exponent),)
            elif kind is Call:
                terms = (_call_adjoint(node.name, adj, values[kids[0]], values[k]),)
            elif kind is Fold:
                terms = (_per_row(adj / node.count if node.mean else adj),)
            else:  # Column, Block, QuadForm: the leaves, where x enters
                if kind is QuadForm:  # d(x^T A x)/dx = 2 A x
                    adj = saved[k] * _per_row(2 * adj)
                leaves.append((node, adj))
                continue
            values[k] = adjoints[k] = None  # its parents are done: nothing reads them again
            for kid, term in zip(kids, terms):
                if term is not None:
                    previous = adjoints[kid]
                    adjoints[kid] = term if previous is None else previous + term
        return value, _gradient(leaves, x, self.by_columns)


def _read_by_backward(node: Expr, k: int, kids: tuple[int, ...]) -> tuple[int, ...]:
    """The slots whose values the backward rule of node ``k`` reads."""
    if isinstance(node, Power):  # its base
        return kids
    if isinstance(node, Call):  # its argument and its value
        return (*kids, k)
    if isinstance(node, Binary) and node.op != "+" and node.op != "-":
        return kids if node.op == "*" else (*kids, k)  # the operands (and the value of / ** max min)
    return ()


def _gradient(leaves: list[tuple[Expr, Adjoint]], x: torch.Tensor, by_columns: bool) -> torch.Tensor:
    """grad U ``[N, d]`` from the leaves' adjoints: columns stacked (``by_columns``: all leaves are
    columns), or each added into its slice."""
    n, d = x.shape
    if by_columns:
        columns: list[Adjoint | None] = [None] * d
        for node, adj in leaves:
            columns[node.index] = adj  # type: ignore[attr-defined]
        return torch.stack([_as_column(c, x) for c in columns], dim=1)
    if len(leaves) == 1 and not isinstance(leaves[0][0], Column):  # one block (or x^T A x) over all of x
        node, adj = leaves[0]
        whole = isinstance(node, QuadForm) or (node.start, node.stop) == (0, d)  # type: ignore[attr-defined]
        if whole and isinstance(adj, torch.Tensor) and adj.shape == (n, d):
            return adj
    grad = x.new_zeros((n, d))
    for node, adj in leaves:
        if isinstance(node, Column):
            grad[:, node.index] += adj
        elif isinstance(node, Block):
            grad[:, node.start : node.stop] += adj
        else:
            grad += adj
    return grad


def _power_adjoint(adj: Adjoint, u: torch.Tensor, p: float) -> torch.Tensor:
    """adj * d(u**p)/du = adj p u**(p - 1)."""
    rest = u if p == 2 else power_forward(u, p - 1)
    if isinstance(adj, float):
        return rest * (p * adj)
    return adj * (p * rest)


def _call_adjoint(name: str, adj: Adjoint, u: torch.Tensor, y: torch.Tensor) -> Adjoint:
    """adj * f'(u) for y = f(u)."""
    if name == "neg":
        return -adj
    return adj * UNARY[name].derivative(u, y)


def _binary_adjoints(op: str, adj: Adjoint, a, b, out) -> tuple:
    """Adjoint contributions of ``out = a op b`` to a and b (None for a constant, a float)."""
    left_const, right_const = isinstance(a, float), isinstance(b, float)
    if op == "+":
        return (None if left_const else adj), (None if right_const else adj)
    if op == "-":
        return (None if left_const else adj), (None if right_const else -adj)
    if op == "*":
        return (None if left_const else adj * b), (None if right_const else adj * a)
    if op == "/":
        return (None if left_const else adj / b), (None if right_const else (-adj) * out / b)
    if op == "**":  # a**b, b not constant
        to_a = None if left_const else adj * b * pow_forward(a, b - 1)
        return to_a, adj * out * log_base(a)
    if op in ("max", "min"):
        first = (a >= b) if op == "max" else (a <= b)  # the first argument wins a tie
        like = out
        return (
            None if left_const else _select(first, adj, like),
            None if right_const else _select(~first, adj, like),
        )
    raise ValueError(f"unknown operator {op!r}")


def _select(mask: torch.Tensor, adj: Adjoint, like: torch.Tensor) -> torch.Tensor:
    """``adj`` where ``mask``, else 0, in the dtype of ``like``."""
    if isinstance(adj, float):
        return mask.to(like.dtype) * adj
    return torch.where(mask, adj, 0.0)


def _fold_columns(body: torch.Tensor, count: int, mean: bool) -> torch.Tensor:
    """sum (or mean) over the columns of ``body [N, count]``, added left to right."""
    columns = body.unbind(1)
    total = columns[0]
    for column in columns[1:]:
        total = total + column
    return total / count if mean else total


def _quad_form(matrix: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x^T A x ``[N]``, A x ``[N, d]``) by elementwise products, each sum a left fold."""
    a = matrix.to(dtype=x.dtype, device=x.device)
    ax = x[:, 0:1] * a[0]  # A symmetric: (A x)_i = sum_j x_j A_ji, row j of A times x_j
    for j in range(1, x.shape[1]):
        ax = ax + x[:, j : j + 1] * a[j]
    return _fold_columns(x * ax, x.shape[1], False), ax


def _per_row(adj: Adjoint) -> Adjoint:
    """A per-particle adjoint ``[N]`` as ``[N, 1]``, to scale the columns of a row (a float as is)."""
    return adj if isinstance(adj, float) else adj.unsqueeze(1)


def _as_batch(value, x: torch.Tensor) -> torch.Tensor:
    """A constant formula's value as an ``[N]`` tensor, still attached to x's autograd graph."""
    if isinstance(value, torch.Tensor):
        return value
    return x[:, :0].sum(dim=1) + value


def _as_column(adj: Adjoint | None, x: torch.Tensor) -> torch.Tensor:
    if adj is None:
        return x.new_zeros(x.shape[0])
    if isinstance(adj, float):
        return x.new_full((x.shape[0],), adj)
    return adj


@functools.lru_cache(maxsize=256)
def compile_tree(tree: Expr) -> Program:
    """The :class:`Program` of ``tree`` (cached by the tree's identity)."""
    return Program(tree)


def value(tree: Expr, x: torch.Tensor) -> torch.Tensor:
    """U(x) ``[N]`` for ``x [N, d]`` with plain torch operations (differentiable by autograd)."""
    return compile_tree(tree).value(x)


def value_and_grad(tree: Expr, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U(x) ``[N]``, grad U(x) ``[N, d]``) by reverse-mode accumulation over the tree (no autograd)."""
    return compile_tree(tree).value_and_grad(x)
