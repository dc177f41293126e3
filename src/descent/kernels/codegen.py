"""Python source for U and grad U of one particle, generated from a validated expression tree.

The tree (:mod:`descent.landscapes.expr`) is first flattened into a scalar program for a given
dimension d: a sum over an index is unrolled into its terms (a left fold, as the torch evaluator adds
them), a block x_{i+k} becomes the coordinate x_{i+k}, and x^T A x becomes A x and sum_i x_i (A x)_i.
The program is then written as straight-line code, one statement per node:

    forward:   v_k = op(v_children)                         children before parents
    reverse:   a_root = 1;  a_child += a_k * d v_k / d v_child   parents before children
    grad_j U = a(x_j)

An adjoint that is a constant (the root's 1, a constant factor, a sum's +-1) stays a Python number
until it meets a variable, as in :mod:`descent.landscapes.evaluate`. Conventions at non-smooth points
follow :mod:`descent.landscapes.functions`: sqrt'(0) = 0, abs'(0) = 0, max/min send the derivative
to the first argument at a tie. Only whitelisted operations are emitted, constants as ``F(repr(c))``
with ``F`` the kernel's float type (no float64 literal promotes a float32 kernel); nothing of the
user's text reaches the source.

>>> from descent.landscapes.formula import parse_formula
>>> print(value_and_grad_source(parse_formula("x*y").tree, 2).splitlines()[0])
def value_and_grad(x0, x1):
"""

from __future__ import annotations

import math

from descent.landscapes.expr import Binary, Block, Call, Column, Const, Expr, Fold, Power, QuadForm
from descent.landscapes.functions import MAX_INTEGER_POWER, SOFTPLUS_THRESHOLD

Ref = float | int  # a constant (float) or the slot of a node (int)


def literal(value: float) -> str:
    """A number as kernel source: ``F(<repr>)`` (inf and nan through numpy)."""
    value = float(value)
    if math.isnan(value):
        return "F(np.nan)"
    if math.isinf(value):
        return "F(np.inf)" if value > 0 else "F(-np.inf)"
    return f"F({value!r})"


# --- flattening: the tree as scalar operations for one dimension d ----------------------------------
class ScalarProgram:
    """The tree for dimension ``d`` as a list of scalar operations, children first.

    Each op is a tuple: ``("x", j)``, ``("call", name, a)``, ``("bin", op, a, b)``, ``("pow", p, a)``,
    ``("fold", terms, count, mean)`` or ``("quad", rows)``; an operand is a slot (int) or a constant
    (float). ``root`` is the slot (or constant) of U.
    """

    def __init__(self, tree: Expr, dim: int) -> None:
        self.dim = dim
        self.ops: list[tuple] = []
        self._memo: dict[tuple, Ref] = {}
        self._blocky: dict[int, bool] = {}
        self.root = self._flatten(tree, None)

    def _add(self, key: tuple, op: tuple) -> int:
        self.ops.append(op)
        slot = len(self.ops) - 1
        self._memo[key] = slot
        return slot

    def _has_block(self, node: Expr) -> bool:
        known = self._blocky.get(id(node))
        if known is None:
            if isinstance(node, Block):
                known = True
            elif isinstance(node, Fold):
                known = False  # a fold's result is one number, whatever its body
            else:
                known = any(self._has_block(c) for c in node.children())
            self._blocky[id(node)] = known
        return known

    def _flatten(self, node: Expr, i: int | None) -> Ref:
        if isinstance(node, Const):
            return float(node.value)
        at = i if self._has_block(node) else None
        key = (id(node), at)
        if key in self._memo:
            return self._memo[key]
        if isinstance(node, Column):
            return self._coordinate(node.index)
        if isinstance(node, Block):
            if at is None:
                raise ValueError("a block outside a sum")
            return self._coordinate(node.start + at)
        if isinstance(node, Call):
            return self._add(key, ("call", node.name, self._flatten(node.arg, at)))
        if isinstance(node, Binary):
            left, right = self._flatten(node.left, at), self._flatten(node.right, at)
            return self._add(key, ("bin", node.op, left, right))
        if isinstance(node, Power):
            return self._add(key, ("pow", float(node.exponent), self._flatten(node.base, at)))
        if isinstance(node, Fold):
            terms = tuple(self._flatten(node.body, k) for k in range(node.count))
            return self._add(key, ("fold", terms, node.count, bool(node.mean)))
        if isinstance(node, QuadForm):
            rows = tuple(tuple(float(v) for v in row) for row in node.matrix.tolist())
            if len(rows) != self.dim:
                raise ValueError("x^T A x with A of the wrong size")
            for j in range(self.dim):  # the coordinates come first: the reverse sweep adds 2 A x to them
                self._coordinate(j)
            return self._add(key, ("quad", rows))
        raise TypeError(f"not an expression node: {node!r}")

    def _coordinate(self, j: int) -> int:
        if not 0 <= j < self.dim:
            raise ValueError(f"coordinate x{j} outside dimension {self.dim}")
        key = ("x", j)
        if key in self._memo:
            return self._memo[key]  # type: ignore[return-value]
        return self._add(key, ("x", j))


# --- the source ------------------------------------------------------------------------------------
class _Writer:
    """Lines of straight-line code and fresh temporary names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def temp(self, expression: str, prefix: str = "t") -> str:
        name = f"{prefix}{self.count}"
        self.count += 1
        self.lines.append(f"    {name} = {expression}")
        return name


def _ref(r: Ref) -> str:
    return literal(r) if isinstance(r, float) else f"v{r}"


def _integer_power(w: _Writer, a: str, n: int) -> str:
    """a**n by square and multiply, 1/a**|n| for n < 0 (as ``functions.integer_power``)."""
    if n < 0:
        return w.temp(f"F(1.0) / {_integer_power(w, a, -n)}")
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else w.temp(f"{result} * {base}")
        n >>= 1
        if n:
            base = w.temp(f"{base} * {base}")
    assert result is not None
    return result


def _power(w: _Writer, a: str, p: float) -> str:
    """a**p for a constant p (as ``functions.power_forward``)."""
    if p == 2:
        return w.temp(f"{a} * {a}")
    if math.isfinite(p) and p == int(p) and 0 < abs(p) <= MAX_INTEGER_POWER:
        return _integer_power(w, a, int(p))
    if p == 0.5:
        return w.temp(f"math.sqrt({a})")
    if p == -0.5:
        return w.temp(f"F(1.0) / math.sqrt({a})")
    return w.temp(f"math.exp({literal(p)} * math.log({a}))")


def _sigmoid(a: str) -> str:
    return f"F(1.0) / (F(1.0) + math.exp(-{a}))"


def _sinh(a: str) -> str:
    return f"(math.expm1({a}) - math.expm1(-{a})) / F(2.0)"


def _cosh(a: str) -> str:
    return f"(math.exp({a}) + math.exp(-{a})) / F(2.0)"


_T = literal(SOFTPLUS_THRESHOLD)
UNARY_FORWARD = {
    "neg": lambda a: f"-{a}",
    "sin": lambda a: f"math.sin({a})",
    "cos": lambda a: f"math.cos({a})",
    "tan": lambda a: f"math.tan({a})",
    "exp": lambda a: f"math.exp({a})",
    "log": lambda a: f"math.log({a})",
    "sqrt": lambda a: f"math.sqrt({a})",
    "abs": lambda a: f"abs({a})",
    "tanh": lambda a: f"math.tanh({a})",
    "sinh": _sinh,
    "cosh": _cosh,
    "atan": lambda a: f"math.atan({a})",
    "sigmoid": _sigmoid,
    "softplus": lambda a: f"({a} if {a} > {_T} else math.log1p(math.exp({_T} if {a} > {_T} else {a})))",
}

#: f'(u) from the argument ``a`` and the value ``y`` (``neg`` is handled apart)
UNARY_DERIVATIVE = {
    "sin": lambda a, y: f"math.cos({a})",
    "cos": lambda a, y: f"-math.sin({a})",
    "tan": lambda a, y: f"(F(1.0) + {y} * {y})",
    "exp": lambda a, y: y,
    "log": lambda a, y: f"(F(1.0) / {a})",
    "sqrt": lambda a, y: f"(F(0.0) if {y} == F(0.0) else F(0.5) / {y})",
    "abs": lambda a, y: f"(F(1.0) if {a} > F(0.0) else (F(-1.0) if {a} < F(0.0) else {a} * F(0.0)))",
    "tanh": lambda a, y: f"(F(1.0) - {y} * {y})",
    "sinh": lambda a, y: f"({_cosh(a)})",
    "cosh": lambda a, y: f"({_sinh(a)})",
    "atan": lambda a, y: f"(F(1.0) / (F(1.0) + {a} * {a}))",
    "sigmoid": lambda a, y: f"({y} * (F(1.0) - {y}))",
    "softplus": lambda a, y: f"(F(1.0) if {a} > {_T} else {_sigmoid(a)})",
}


def _pow_general(a: Ref, b: str) -> str:
    """a**b for an exponent b that is not constant: exp(b log a) where a > 0, else the power."""
    if isinstance(a, float):
        return f"math.exp({b} * {literal(math.log(a))})" if a > 0 else f"{literal(a)} ** {b}"
    va = _ref(a)
    return f"(math.exp({b} * math.log({va})) if {va} > F(0.0) else {va} ** {b})"


def _forward(w: _Writer, k: int, op: tuple) -> None:
    kind = op[0]
    if kind == "x":
        w.lines.append(f"    v{k} = x{op[1]}")
    elif kind == "call":
        if op[1] not in UNARY_FORWARD:
            raise ValueError(f"unknown function {op[1]!r}")
        w.lines.append(f"    v{k} = {UNARY_FORWARD[op[1]](_ref(op[2]))}")
    elif kind == "bin":
        name, a, b = op[1], _ref(op[2]), _ref(op[3])
        if name in ("+", "-", "*", "/"):
            w.lines.append(f"    v{k} = {a} {name} {b}")
        elif name == "**":
            w.lines.append(f"    v{k} = {_pow_general(op[2], b)}")
        elif name in ("max", "min"):
            cmp = ">=" if name == "max" else "<="
            w.lines.append(f"    v{k} = {a} if ({a} {cmp} {b} or {a} != {a}) else {b}")
        else:
            raise ValueError(f"unknown operator {name!r}")
    elif kind == "pow":
        w.lines.append(f"    v{k} = {_power(w, _ref(op[2]), op[1])}")
    elif kind == "fold":
        terms, count, mean = op[1], op[2], op[3]
        total = _ref(terms[0])
        for term in terms[1:]:
            total = w.temp(f"{total} + {_ref(term)}")
        w.lines.append(f"    v{k} = {total} / {literal(count)}" if mean else f"    v{k} = {total}")
    elif kind == "quad":
        rows = op[1]
        d = len(rows)
        for i in range(d):  # (A x)_i = sum_j x_j A_ji, a left fold over j
            total = f"x0 * {literal(rows[0][i])}"
            for j in range(1, d):
                total = f"({total}) + x{j} * {literal(rows[j][i])}"
            w.lines.append(f"    q{k}_{i} = {total}")
        total = f"x0 * q{k}_0"
        for i in range(1, d):
            total = f"({total}) + x{i} * q{k}_{i}"
        w.lines.append(f"    v{k} = {total}")
    else:
        raise TypeError(f"unknown scalar op {kind!r}")


Adjoint = float | str  # a constant (Python number) or a variable's name


def _times(adj: Adjoint, factor: str) -> str:
    """adj * factor as source."""
    return f"{literal(adj) if isinstance(adj, float) else adj} * {factor}"


def _negate(adj: Adjoint) -> Adjoint:
    return -adj if isinstance(adj, float) else f"(-{adj})"


def _adjoint_terms(w: _Writer, k: int, op: tuple, adj: Adjoint) -> list[tuple[int, Adjoint]]:
    """(child slot, contribution) for node k with adjoint ``adj``; constants get nothing."""
    kind = op[0]
    y = f"v{k}"
    if kind == "call":
        name, a = op[1], op[2]
        if name == "neg":
            return [(a, _negate(adj))]
        return [(a, w.temp(_times(adj, UNARY_DERIVATIVE[name](_ref(a), y)), "a"))]
    if kind == "pow":
        p, a = op[1], op[2]
        rest = _ref(a) if p == 2 else _power(w, _ref(a), p - 1)
        if isinstance(adj, float):
            return [(a, w.temp(f"{rest} * {literal(p * adj)}", "a"))]
        return [(a, w.temp(f"{adj} * ({literal(p)} * {rest})", "a"))]
    if kind == "fold":
        share: Adjoint = adj
        if op[3]:
            share = adj / op[2] if isinstance(adj, float) else w.temp(f"{adj} / {literal(op[2])}", "a")
        return [(t, share) for t in op[1] if not isinstance(t, float)]
    if kind == "bin":
        name, a, b = op[1], op[2], op[3]
        va, vb = _ref(a), _ref(b)
        out: list[tuple[int, Adjoint]] = []
        if name == "+":
            out = [(a, adj), (b, adj)]
        elif name == "-":
            out = [(a, adj), (b, _negate(adj))]
        elif name == "*":  # a constant times a constant adjoint stays a Python number
            out = [(a, _product(w, adj, b)), (b, _product(w, adj, a))]
        elif name == "/":
            if isinstance(a, int):
                constant = isinstance(adj, float) and isinstance(b, float)
                out.append((a, adj / b if constant else w.temp(f"{_src(adj)} / {vb}", "a")))  # type: ignore[operator]
            if isinstance(b, int):
                out.append((b, w.temp(f"{_times(_negate(adj), y)} / {vb}", "a")))
        elif name == "**":
            log_a = (
                literal(math.log(a) if a > 0 else 0.0)
                if isinstance(a, float)
                else f"(math.log({va}) if {va} > F(0.0) else F(0.0))"
            )
            if not isinstance(a, float):
                lowered = _pow_general(a, f"({vb} - F(1.0))")
                out.append((a, w.temp(f"{_times(adj, vb)} * {lowered}", "a")))
            out.append((b, w.temp(f"{_times(adj, y)} * {log_a}", "a")))
        elif name in ("max", "min"):
            cmp = ">=" if name == "max" else "<="
            first = w.temp(f"{va} {cmp} {vb}", "m")
            value = literal(adj) if isinstance(adj, float) else adj
            out = [
                (a, w.temp(f"{value} if {first} else F(0.0)", "a")),
                (b, w.temp(f"F(0.0) if {first} else {value}", "a")),
            ]
        return [(slot, term) for slot, term in out if not isinstance(slot, float)]
    raise TypeError(f"no adjoint rule for {kind!r}")


def value_and_grad_source(tree: Expr, dim: int, name: str = "value_and_grad") -> str:
    """Source of ``def value_and_grad(x0, ..., x{d-1}): return (U, dU/dx0, ..., dU/dx{d-1})``.

    The names it uses: ``math``, ``np`` and ``F`` (the float type), bound by the module around it.
    """
    program = ScalarProgram(tree, dim)
    w = _Writer()
    for k, op in enumerate(program.ops):
        _forward(w, k, op)
    grads: list[Adjoint | None] = [None] * dim
    if isinstance(program.root, float):
        value = literal(program.root)
    else:
        value = f"v{program.root}"
        adjoints: dict[int, Adjoint] = {program.root: 1.0}
        for k in range(len(program.ops) - 1, -1, -1):
            op = program.ops[k]
            adj = adjoints.pop(k, None)
            if adj is None:
                continue
            if op[0] == "x":
                grads[op[1]] = adj
                continue
            if op[0] == "quad":  # d(x^T A x)/dx = 2 A x
                for i in range(dim):
                    factor = literal(2 * adj) if isinstance(adj, float) else f"(F(2.0) * {adj})"
                    term = w.temp(f"q{k}_{i} * {factor}", "a")
                    _accumulate(w, adjoints, program.ops, i, term)
                continue
            for child, term in _adjoint_terms(w, k, op, adj):
                previous = adjoints.get(child)
                if previous is None:
                    adjoints[child] = term
                elif isinstance(previous, float) and isinstance(term, float):
                    adjoints[child] = previous + term
                else:
                    adjoints[child] = w.temp(f"{_src(previous)} + {_src(term)}", "a")
    args = ", ".join(f"x{j}" for j in range(dim))
    outs = [value] + [literal(0.0) if g is None else _src(g) for g in grads]
    body = "\n".join(w.lines) if w.lines else "    pass"
    return f"def {name}({args}):\n{body}\n    return {', '.join(outs)}\n"


def _product(w: _Writer, adj: Adjoint, factor: Ref) -> Adjoint:
    """adj * factor: a Python number when both are constants, else a new variable."""
    if isinstance(adj, float) and isinstance(factor, float):
        return adj * factor
    return w.temp(_times(adj, _ref(factor)), "a")


def _src(adj: Adjoint) -> str:
    return literal(adj) if isinstance(adj, float) else adj


def _accumulate(w: _Writer, adjoints: dict, ops: list, j: int, term: str) -> None:
    """Add ``term`` to the adjoint of the coordinate x_j (a slot, made part of the gradient)."""
    for slot, op in enumerate(ops):
        if op[0] == "x" and op[1] == j:
            previous = adjoints.get(slot)
            adjoints[slot] = term if previous is None else w.temp(f"{_src(previous)} + {term}", "a")
            return
    raise ValueError(f"x{j} is not in the program")
