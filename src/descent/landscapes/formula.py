"""User formulas as landscapes: a safe parser (an AST whitelist, never ``eval``) and numeric critical points.

``parse_formula("(x**2 - 1)**2 + y**2")`` parses the text with :func:`ast.parse` (parsing never runs
code), checks every node against a whitelist and turns the tree into a closure over torch operations:
``energy(x: Tensor[N, d]) -> Tensor[N]``, any dtype and device, differentiable by autograd.
``formula_landscape`` wraps it in a :class:`~descent.landscapes.Landscape` and finds its minima
(and saddles) numerically; ``resolve_landscape`` accepts either a registered name or a formula.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from descent._errors import DescentError, check_number, invalid
from descent.landscapes._base import CriticalPoint, Landscape
from descent.landscapes._registry import LANDSCAPES, get_landscape

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_EXPONENT = 100.0
MAX_DIM = 10

_Fn = Callable[[torch.Tensor], torch.Tensor]


class FormulaError(DescentError):
    """A formula that cannot be parsed or uses something not allowed.

    The message names the problem and its 1-based column in the text as the user wrote it.
    """


def _clip(value: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return torch.minimum(torch.maximum(value, low), high)


#: name -> (number of arguments, torch implementation)
FUNCTIONS: dict[str, tuple[int, Callable[..., torch.Tensor]]] = {
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "tan": (1, torch.tan),
    "exp": (1, torch.exp),
    "log": (1, torch.log),
    "sqrt": (1, torch.sqrt),
    "abs": (1, torch.abs),
    "tanh": (1, torch.tanh),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "atan": (1, torch.atan),
    "arctan": (1, torch.atan),
    "sigmoid": (1, torch.sigmoid),
    "softplus": (1, torch.nn.functional.softplus),
    "min": (2, torch.minimum),
    "max": (2, torch.maximum),
    "clip": (3, _clip),
}

#: named constants
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY: dict[type, tuple[str, Callable]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
}
_OP_SYMBOLS: dict[type, str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
    ast.And: "and",
    ast.Or: "or",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_NODE_NAMES: dict[type, str] = {  # "<what> not allowed"
    ast.Lambda: "lambda is",
    ast.IfExp: "conditional expressions (if/else) are",
    ast.ListComp: "list comprehensions are",
    ast.SetComp: "set comprehensions are",
    ast.DictComp: "dict comprehensions are",
    ast.GeneratorExp: "generator expressions are",
    ast.List: "lists are",
    ast.Tuple: "tuples are",
    ast.Set: "sets are",
    ast.Dict: "dicts are",
    ast.NamedExpr: "assignment expressions (:=) are",
    ast.JoinedStr: "f-strings are",
    ast.FormattedValue: "f-strings are",
    ast.Starred: "starred expressions are",
    ast.Slice: "slices are",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
}
_ALLOWED_OPERATORS = "+ - * / ** (or ^)"


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


@dataclass
class _Source:
    """The text as written, the text given to the parser, and the map between their columns."""

    text: str
    parsed: str
    origin: list[int]  # origin[i]: index in ``text`` of character i of ``parsed``

    def column(self, offset: int | None) -> int:
        """1-based column in the original text of a 0-based offset into ``parsed``."""
        if offset is None or offset < 0 or offset >= len(self.origin):
            return len(self.text) + 1
        return self.origin[offset] + 1

    def error(self, problem: str, offset: int | None, hint: str = "") -> FormulaError:
        column = self.column(offset)
        where = f"at column {column}" + (" (the end of the formula)" if column > len(self.text) else "")
        hint = f"; {hint}" if hint else ""
        return FormulaError(f"invalid landscape formula {_short(self.text)}: {problem} {where}{hint}")

    def after(self, node: ast.AST, skip: str = " )") -> int:
        """Offset of the first character after ``node`` that is not in ``skip`` (an operator's position)."""
        offset = getattr(node, "end_col_offset", None)
        if offset is None:
            return getattr(node, "col_offset", 0)
        while offset < len(self.parsed) and self.parsed[offset] in skip:
            offset += 1
        return offset


def _prepare(text: object) -> tuple[_Source, ast.Expression]:
    """Check length and characters, rewrite ``^`` to ``**`` and parse (parsing executes nothing)."""
    if not isinstance(text, str):
        raise FormulaError(f"invalid landscape formula {text!r}: expected a string")
    if not text.strip():
        raise FormulaError(
            f"invalid landscape formula {text!r}: the formula is empty; expected an "
            "expression in x and y such as 'x**2 + y**2'"
        )
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"invalid landscape formula {_short(text)}: too long ({len(text)} characters, "
            f"at most {MAX_LENGTH}) at column {MAX_LENGTH + 1}"
        )
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char in "\t\n\r\f\v":
            char = " "
        elif not (char.isascii() and char.isprintable()):
            raise FormulaError(
                f"invalid landscape formula {_short(text)}: unexpected character "
                f"{char!r} at column {index + 1}"
            )
        if char == "^":
            chars += ["*", "*"]
            origin += [index, index]
        else:
            chars.append(char)
            origin.append(index)
    parsed = "".join(chars)
    lead = len(parsed) - len(parsed.lstrip(" "))
    body = _Source(text, parsed[lead:], origin[lead:])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(body.parsed, mode="eval")
    except SyntaxError as error:
        message = (error.msg or "invalid syntax").split(" (detected at")[0]
        offset = None if not error.offset or (error.lineno or 1) != 1 else error.offset - 1
        raise body.error(f"syntax error ({message})", offset) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise body.error(f"cannot parse ({error})", None) from None
    return body, tree


def _check_depth(source: _Source, tree: ast.Expression) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise source.error(
                f"the formula is nested too deeply (more than {MAX_DEPTH} levels)",
                getattr(node, "col_offset", None),
            )
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1 if isinstance(child, ast.expr) else depth))


def _materialize(value: float | _Fn) -> _Fn:
    """A closure returning a [N] tensor; constants become ``0 * nothing + c``, still in x's graph."""
    if callable(value):
        return value
    constant = float(value)
    return lambda x: x[:, :0].sum(dim=1) + constant


class _Compiler:
    def __init__(self, source: _Source, variables: tuple[str, ...]) -> None:
        self.source = source
        self.variables = {name: i for i, name in enumerate(variables)}
        self.used: set[str] = set()

    def allowed_names(self) -> str:
        return ", ".join([*self.variables, *CONSTANTS])

    def fail(self, problem: str, node: ast.AST | int | None, hint: str = "") -> FormulaError:
        offset = node if isinstance(node, int) or node is None else getattr(node, "col_offset", None)
        return self.source.error(problem, offset, hint)

    def number(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail(f"{value!r} is not allowed", node, "only numbers, x, y and functions")
        if isinstance(value, (str, bytes)):
            raise self.fail("string literals are not allowed", node)
        if isinstance(value, complex):
            raise self.fail("complex numbers are not allowed", node)
        if not isinstance(value, (int, float)):
            raise self.fail(f"the constant {value!r} is not allowed", node)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail("number too large", node, "numbers must be finite floats")
        return number

    def literal(self, node: ast.AST) -> float | None:
        """The value of a (signed) numeric literal, else None."""
        sign = 1.0
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            sign = -sign if isinstance(node.op, ast.USub) else sign
            node = node.operand
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            return sign * self.number(node)
        return None

    def compile(self, node: ast.AST) -> float | _Fn:
        """A Python float for a constant subtree, else a closure x -> Tensor[N]."""
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise self.fail(f"attribute access '.{node.attr}' is not allowed", self.source.after(node.value))
        if isinstance(node, ast.Subscript):
            raise self.fail("subscripts '[...]' are not allowed", self.source.after(node.value))
        if isinstance(node, ast.Compare):
            symbol = _OP_SYMBOLS.get(type(node.ops[0]), "comparison")
            raise self.fail(f"comparison '{symbol}' is not allowed", self.source.after(node.left))
        if isinstance(node, ast.BoolOp):
            symbol = _OP_SYMBOLS.get(type(node.op), "boolean operator")
            raise self.fail(f"'{symbol}' is not allowed", self.source.after(node.values[0]))
        what = _NODE_NAMES.get(type(node), f"the syntax {type(node).__name__} is")
        raise self.fail(f"{what} not allowed", node)

    def name(self, node: ast.Name) -> float | _Fn:
        if not isinstance(node.ctx, ast.Load):
            raise self.fail(f"assignment to {node.id!r} is not allowed", node)
        if node.id in self.variables:
            self.used.add(node.id)
            column = self.variables[node.id]
            return lambda x: x[:, column]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise self.fail(f"the function {node.id!r} must be called", node, f"e.g. {node.id}(x)")
        raise self.fail(f"unknown variable {node.id!r}", node, f"allowed names: {self.allowed_names()}")

    def binary(self, node: ast.BinOp) -> float | _Fn:
        if type(node.op) not in _BINARY:
            symbol = _OP_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise self.fail(
                f"operator '{symbol}' is not allowed",
                self.source.after(node.left),
                f"allowed operators: {_ALLOWED_OPERATORS}",
            )
        _, op = _BINARY[type(node.op)]
        left = self.compile(node.left)
        if isinstance(node.op, ast.Pow):
            exponent = self.literal(node.right)
            if exponent is not None and abs(exponent) > MAX_EXPONENT:
                raise self.fail(
                    f"exponent {exponent:g} is too large",
                    node.right,
                    f"literal exponents must satisfy |p| <= {MAX_EXPONENT:g}",
                )
        right = self.compile(node.right)
        if not callable(left) and not callable(right):
            left = _materialize(left)
        if not callable(left):
            a = left
            b_fn = right
            return lambda x: op(a, b_fn(x))
        if not callable(right):
            a_fn = left
            b = right
            return lambda x: op(a_fn(x), b)
        a_fn, b_fn = left, right
        return lambda x: op(a_fn(x), b_fn(x))

    def unary(self, node: ast.UnaryOp) -> float | _Fn:
        if isinstance(node.op, ast.UAdd):
            return self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            operand = self.compile(node.operand)
            if not callable(operand):
                return -operand
            fn = operand
            return lambda x: -fn(x)
        symbol = _OP_SYMBOLS.get(type(node.op), type(node.op).__name__)
        raise self.fail(
            f"operator '{symbol}' is not allowed", node, f"allowed operators: {_ALLOWED_OPERATORS}"
        )

    def call(self, node: ast.Call) -> _Fn:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, (ast.Attribute, ast.Subscript, ast.Lambda)):
                self.compile(node.func)  # raises with the more precise message
            raise self.fail(
                "only named functions can be called", node, f"allowed functions: {', '.join(FUNCTIONS)}"
            )
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(
                f"unknown function {name!r}", node.func, f"allowed functions: {', '.join(FUNCTIONS)}"
            )
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail("starred arguments are not allowed", arg)
        arity, fn = FUNCTIONS[name]
        if len(node.args) != arity:
            plural = "" if arity == 1 else "s"
            raise self.fail(f"{name}() takes {arity} argument{plural}, got {len(node.args)}", node.func)
        args = [_materialize(self.compile(arg)) for arg in node.args]
        if arity == 1:
            (g,) = args
            return lambda x: fn(g(x))
        if arity == 2:
            g, h = args
            return lambda x: fn(g(x), h(x))
        return lambda x: fn(*[a(x) for a in args])


@dataclass(frozen=True, eq=False)
class CompiledFormula:
    """A parsed formula: call it on ``x`` of shape ``[N, len(variables)]`` to get ``U(x)`` of shape ``[N]``.

    ``used`` holds the variables that occur in the text. Pickles by re-parsing its text.
    """

    text: str
    variables: tuple[str, ...]
    used: tuple[str, ...]
    _fn: _Fn = field(repr=False)

    @property
    def dim(self) -> int:
        return len(self.variables)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise invalid("x", shape, f"a tensor of shape [N, {self.dim}]")
        return self._fn(x)

    def __reduce__(self):
        return (parse_formula, (self.text, self.variables))


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_variables(variables: Sequence[str]) -> tuple[str, ...]:
    names = tuple(variables) if not isinstance(variables, str) else (variables,)
    allowed = "distinct identifiers, not a function or constant name"
    if not names or len(set(names)) != len(names):
        raise invalid("variables", variables, allowed)
    for name in names:
        if not isinstance(name, str) or not _IDENTIFIER.match(name) or name in FUNCTIONS or name in CONSTANTS:
            raise invalid("variables", variables, allowed)
    return names


def parse_formula(text: str, variables: Sequence[str] = ("x", "y")) -> CompiledFormula:
    """Parse ``text`` into ``energy(x: Tensor[N, d]) -> Tensor[N]`` without ever executing it.

    The text is parsed by :func:`ast.parse` in ``"eval"`` mode and every node is checked against a
    whitelist; the tree is then turned into closures over torch operations (no ``eval``/``exec``).
    Allowed: int/float literals, the ``variables`` (column ``i`` of ``x`` is ``variables[i]``), the
    constants ``pi`` and ``e``, ``+ - * / **``, unary ``+ -`` and calls of the functions in
    :data:`FUNCTIONS` (``min``/``max`` take two arguments, ``clip(v, lo, hi)`` three). ``^`` means
    power: it is rewritten to ``**`` before parsing (columns in messages refer to the original text).
    Limits: at most 500 characters, nesting depth 50, literal exponents ``|p| <= 100``.
    Anything else raises :class:`FormulaError` naming the problem and its column.

    >>> f = parse_formula("x^2 + 3*sin(y)")
    >>> f(torch.zeros(4, 2)).shape
    torch.Size([4])
    """
    names = _check_variables(variables)
    source, tree = _prepare(text)
    _check_depth(source, tree)
    compiler = _Compiler(source, names)
    fn = _materialize(compiler.compile(tree.body))
    used = tuple(n for n in names if n in compiler.used)
    return CompiledFormula(text, names, used, fn)


def _formula_variables(text: str) -> tuple[str, ...]:
    """``("x", "y")``, or ``("x1", ..., "xn")`` when the formula uses indexed names ``x1 ... xn``."""
    source, tree = _prepare(text)
    indexed: dict[int, ast.Name] = {}
    plain = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            match = re.fullmatch(r"x([1-9][0-9]*)", node.id)
            if match:
                indexed.setdefault(int(match.group(1)), node)
            elif node.id in ("x", "y"):
                plain = True
    if not indexed or plain:
        return ("x", "y")
    n = max(indexed)
    if n > MAX_DIM:
        raise source.error(f"too many dimensions (x{n}; at most x{MAX_DIM})", indexed[n].col_offset)
    return tuple(f"x{i}" for i in range(1, max(n, 2) + 1))


# --- critical points -----------------------------------------------------------------------------


def _value_grad_hess(energy: _Fn, x: torch.Tensor, h: torch.Tensor):
    """U [N], grad U [N, d] (autograd) and the Hessian [N, d, d] by central differences of the
    gradient (steps ``h`` per axis), all from one first-order pass over the N (1 + 2d) points.

    Differences rather than double backward: the second backward of sqrt/log/pow makes torch
    import its compiler stack on first use (seconds). Non-finite Hessian entries are clamped.
    """
    n, d = x.shape
    eye = torch.diag(h)
    shifted = torch.cat([x, (x[None] + eye[:, None]).reshape(-1, d), (x[None] - eye[:, None]).reshape(-1, d)])
    with torch.enable_grad():
        xg = shifted.detach().requires_grad_(True)
        value = energy(xg)
        (grad,) = torch.autograd.grad(value.sum(), xg)
    plus = grad[n : n + n * d].reshape(d, n, d)
    minus = grad[n + n * d :].reshape(d, n, d)
    hess = ((plus - minus) / (2 * h[:, None, None])).transpose(0, 1)
    hess = torch.nan_to_num(0.5 * (hess + hess.transpose(1, 2)), nan=0.0, posinf=1e150, neginf=-1e150)
    return value[:n].detach(), grad[:n], hess.clamp(-1e150, 1e150)


def _starts(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    d = low.numel()
    generator = torch.Generator().manual_seed(0)
    if d <= 2:
        k = 12
        centres = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        jitter = 0.2 / k * (torch.rand((k**d, d), generator=generator, dtype=torch.float64) - 0.5)
        grid = torch.cartesian_prod(*[centres] * d).reshape(-1, d) + jitter
    else:
        grid = torch.quasirandom.SobolEngine(d, scramble=True, seed=0).draw(256, dtype=torch.float64)
    return low + (high - low) * grid


def _step(grad: torch.Tensor, hess: torch.Tensor, damping: torch.Tensor, newton: bool) -> torch.Tensor:
    """Levenberg-Marquardt step ``-(H + lambda I)^-1 g`` (shifted to be a descent direction), or a
    Newton step on grad U = 0 with eigenvalues kept away from zero."""
    w, v = torch.linalg.eigh(hess)
    scale = 1e-10 * (1 + w.abs().amax(dim=1, keepdim=True))
    if newton:
        w = torch.where(w >= 0, w.clamp_min(scale), w.clamp_max(-scale))
    else:
        w = w + damping[:, None] + (-w.amin(dim=1, keepdim=True)).clamp_min(0) + scale
    coeff = (v.transpose(1, 2) @ grad[:, :, None]).squeeze(2) / w
    return -(v @ coeff[:, :, None]).squeeze(2)


def _descend(energy: _Fn, starts: torch.Tensor, low, high, h, newton: bool, iters: int):
    """Batched damped Newton from ``starts`` inside the box; iterates only on still-active points.

    ``newton=False``: Levenberg-Marquardt with monotone descent (steps that do not lower U are
    rejected and the damping raised). ``newton=True``: plain Newton on grad U = 0 (any critical point).
    A point stops when converged (tiny gradient, no more movement), stuck (damping huge, or Newton
    no longer moving) or held against the box for three iterations in a row.
    """
    x = starts.clone()
    value, grad, hess = _value_grad_hess(energy, x, h)
    alive = torch.isfinite(value) & torch.isfinite(grad).all(dim=1)
    damping = 1e-3 * (1 + hess.flatten(1).norm(dim=1))
    trust = 0.25 * float((high - low).min())
    gscale = float(grad[alive].norm(dim=1).median()) if alive.any() else 1.0
    gtol = 1e-9 * (1 + gscale)
    active = alive.clone()
    walled = torch.zeros(x.shape[0], dtype=torch.long)
    for _ in range(iters):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa, va, la = x[idx], value[idx], damping[idx]
        step = _step(grad[idx], hess[idx], la, newton)
        length = step.norm(dim=1, keepdim=True)
        step = step * torch.where(length > trust, trust / length, torch.ones_like(length))
        x_new = torch.minimum(torch.maximum(xa + step, low), high)
        v_new, g_new, h_new = _value_grad_hess(energy, x_new, h)
        finite = torch.isfinite(v_new) & torch.isfinite(g_new).all(dim=1)
        accept = finite if newton else finite & (v_new < va)
        x[idx] = torch.where(accept[:, None], x_new, xa)
        value[idx] = torch.where(accept, v_new, va)
        grad[idx] = torch.where(accept[:, None], g_new, grad[idx])
        hess[idx] = torch.where(accept[:, None, None], h_new, hess[idx])
        damping[idx] = torch.where(accept, la / 3, la * 4).clamp(1e-12, 1e20)
        moved = torch.where(accept, (x_new - xa).norm(dim=1), torch.zeros_like(va))
        still = moved <= 1e-12 * trust
        walled[idx] = torch.where(_interior(x[idx], low, high), 0, walled[idx] + 1)
        if newton:
            alive[idx] = alive[idx] & finite
            stop = ~finite | still
        else:
            stop = (still & (grad[idx].norm(dim=1) <= gtol * 1e-3)) | (damping[idx] >= 1e16)
        active[idx] = ~stop & (walled[idx] < 3)
    return x, value, grad, alive, gscale


def _interior(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    margin = 1e-6 * (high - low)
    return ((x > low + margin) & (x < high - margin)).all(dim=1)


def _ring(energy: _Fn, x: torch.Tensor, radius: float) -> torch.Tensor:
    """U on a ring of directions around each point, minus U at the point: [M, K]."""
    d = x.shape[1]
    if d == 2:
        angles = torch.arange(16, dtype=torch.float64) * (2 * math.pi / 16)
        dirs = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    else:
        generator = torch.Generator().manual_seed(1)
        rand = torch.randn((32, d), generator=generator, dtype=torch.float64)
        eye = torch.eye(d, dtype=torch.float64)
        dirs = torch.cat([eye, -eye, rand / rand.norm(dim=1, keepdim=True)])
    around = (x[:, None, :] + radius * dirs[None]).reshape(-1, d)
    with torch.no_grad():
        values = energy(around).reshape(x.shape[0], -1)
        centre = energy(x)
    return values - centre[:, None]


def _cluster(x: torch.Tensor, value: torch.Tensor, radius: float) -> list[int]:
    """Indices of cluster representatives (the lowest point of each group closer than ``radius``)."""
    order = torch.argsort(value)
    close = (torch.cdist(x[order], x[order]) <= radius).tolist()
    chosen: list[int] = []
    for i in range(len(close)):
        if not any(close[i][j] for j in chosen):
            chosen.append(i)
    return order[chosen].tolist()


@dataclass(frozen=True)
class _Search:
    points: tuple[CriticalPoint, ...]
    bounded_below: bool
    curvature: float | None


def find_critical_points(energy: _Fn, bounds: Sequence[tuple[float, float]], max_points: int = 16) -> _Search:
    """Minima (and saddles) of ``energy`` strictly inside ``bounds``, found numerically.

    Damped Newton (Levenberg-Marquardt, monotone descent) from a jittered grid of starts; converged
    interior points where U rises on a small ring around them are minima (``smooth=False`` when the
    gradient does not vanish there: a cusp); smooth ones must also have no negative Hessian
    eigenvalue. Lowest -> ``global_min`` (ties included), the others ``local_min``. A plain Newton
    pass on grad U = 0 then collects saddles (indefinite Hessian). Points on the boundary are not
    minima, nor are points where the slope is still steep (the rim of a pole, 1/x near 0).
    ``bounded_below`` is False when no interior point is even a weak (non-isolated) local minimum.
    """
    low = torch.tensor([b[0] for b in bounds], dtype=torch.float64)
    high = torch.tensor([b[1] for b in bounds], dtype=torch.float64)
    span = float((high - low).min())
    h = 1e-7 * (high - low)
    starts = _starts(low, high)
    with torch.no_grad():
        ok = torch.isfinite(energy(starts))
    starts = starts[ok]
    if starts.shape[0] == 0:
        return _Search((), False, None)

    x, value, grad, alive, gscale = _descend(energy, starts, low, high, h, newton=False, iters=100)
    gtol = 1e-9 * (1 + gscale)
    # a minimum is interior, with a bounded slope (a cusp may have one; a pole's grows without end)
    steep = grad.norm(dim=1) > 1e3 * (1 + gscale)
    keep = alive & _interior(x, low, high) & torch.isfinite(value) & ~steep
    x, value, grad = x[keep], value[keep], grad[keep]
    minima: list[CriticalPoint] = []
    bounded_below = False
    curvature: float | None = None
    if x.shape[0]:
        tol = 1e-12 * (1 + value.abs())
        near = _ring(energy, x, 1e-3 * span)
        far = _ring(energy, x, 1e-2 * span)
        weak = (near >= -tol[:, None]).all(dim=1)
        strict = weak & ((near > tol[:, None]).all(dim=1) | (far > tol[:, None]).all(dim=1))
        bounded_below = bool(weak.any())
        x, value, grad = x[strict], value[strict], grad[strict]
        reps = _cluster(x, value, 2e-3 * span)
        x, value, grad = x[reps], value[reps], grad[reps]
        smooth = grad.norm(dim=1) <= gtol * 1e3
        if x.shape[0]:
            eig = torch.linalg.eigvalsh(torch.nan_to_num(_value_grad_hess(energy, x, h)[2]))
            bad = smooth & (eig[:, 0] < -1e-6 * (1 + eig.abs().amax(dim=1)))
            tops = eig[smooth & ~bad, -1]
            curvature = float(tops.max()) if tops.numel() else None
            x, value, smooth = x[~bad], value[~bad], smooth[~bad]
        if x.shape[0]:
            best = float(value.min())
            tie = 1e-8 * (1 + abs(best))
            found = []
            for i in range(x.shape[0]):
                position = tuple(float(c) for c in x[i])
                is_global = float(value[i]) <= best + tie
                # globals first, ordered by position (deterministic ids for symmetric minima)
                key = (0, 0.0, position) if is_global else (1, float(value[i]), position)
                found.append((key, position, float(value[i]), bool(smooth[i])))
            found.sort(key=lambda item: item[0])
            for rank, (key, position, val, is_smooth) in enumerate(found[:max_points], start=1):
                kind = "global_min" if key[0] == 0 else "local_min"
                minima.append(CriticalPoint(f"min{rank}", kind, position, val, smooth=is_smooth))  # type: ignore[arg-type]

    saddles: list[CriticalPoint] = []
    xs, vs, gs, alive_s, _ = _descend(energy, starts, low, high, h, newton=True, iters=40)
    keep = alive_s & _interior(xs, low, high) & (gs.norm(dim=1) <= gtol * 1e3)
    xs, vs = xs[keep], vs[keep]
    if xs.shape[0]:
        reps = _cluster(xs, vs, 2e-3 * span)
        xs, vs = xs[reps], vs[reps]
        eig = torch.linalg.eigvalsh(torch.nan_to_num(_value_grad_hess(energy, xs, h)[2]))
        eps = 1e-6 * (1 + eig.abs().amax(dim=1))
        indefinite = (eig[:, 0] < -eps) & (eig[:, -1] > eps)
        xs, vs = xs[indefinite], vs[indefinite]
        for rank in range(min(xs.shape[0], max_points)):
            saddles.append(
                CriticalPoint(
                    f"saddle{rank + 1}", "saddle", tuple(float(c) for c in xs[rank]), float(vs[rank])
                )
            )
    return _Search(tuple(minima) + tuple(saddles), bounded_below or bool(minima), curvature)


# --- landscapes ----------------------------------------------------------------------------------


def _check_bounds(bounds: object, dim: int) -> tuple[tuple[float, float], ...]:
    allowed = f"a (low, high) pair or {dim} such pairs with low < high"
    if bounds is None:
        return ((-3.0, 3.0),) * dim
    try:
        items = list(bounds)  # type: ignore[call-overload]
        if len(items) == 2 and not isinstance(items[0], (list, tuple)):
            items = [items] * dim
        pairs = tuple((check_number("bounds", lo), check_number("bounds", hi)) for lo, hi in items)
    except (TypeError, ValueError):
        raise invalid("bounds", bounds, allowed) from None
    if len(pairs) != dim or any(not lo < hi for lo, hi in pairs):
        raise invalid("bounds", bounds, allowed)
    return pairs


def formula_landscape(
    text: str, bounds: object = None, start: Sequence[float] | None = None, lr: float | None = None
) -> Landscape:
    """A :class:`Landscape` named ``"formula"`` from a formula in ``x, y`` (or ``x1 ... xn``, n <= 10).

    Always at least 2-D (a formula in ``x`` alone ignores ``y``). ``bounds``: one ``(low, high)``
    pair for every axis or one pair per axis (default ``(-3, 3)``). The gradient is by autograd.
    Critical points come from :func:`find_critical_points`; the default start is 20% of the way
    from the low corner (away from the centre, often a symmetric critical point); the default lr
    is ``0.2 / L`` (L: the largest curvature at the minima) clipped to [1e-4, 0.1], else 0.01.

    >>> well = formula_landscape("(x**2 - 1)**2 + y**2")
    >>> sorted(p.kind for p in well.minima)
    ['global_min', 'global_min']
    """
    variables = _formula_variables(text)
    energy = parse_formula(text, variables)
    dim = len(variables)
    box = _check_bounds(bounds, dim)
    if start is None:
        default_start = tuple(lo + 0.2 * (hi - lo) for lo, hi in box)
    else:
        try:
            default_start = tuple(check_number("start", c) for c in start)
        except TypeError:
            raise invalid("start", start, f"{dim} coordinates") from None
        if len(default_start) != dim:
            raise invalid("start", start, f"{dim} coordinates")
    search = find_critical_points(energy, box)
    if lr is not None:
        default_lr = check_number("lr", lr, 0, low_open=True)
    elif search.curvature is not None and search.curvature > 0:
        default_lr = min(0.1, max(1e-4, 0.2 / search.curvature))
    else:
        default_lr = 0.01
    return Landscape(
        name="formula",
        dim=dim,
        energy=energy,
        bounds=box,
        critical_points=search.points,
        default_start=default_start,
        default_lr=default_lr,
        description=text,
        grad_fn=None,
        bounded_below=search.bounded_below,
        formula=text,
    )


_NAME_LIKE = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_-]*\s*\Z")
_FORMULA_PARAMS = ("bounds", "start", "lr")


def resolve_landscape(text: str, **params: object) -> Landscape:
    """A registered landscape by name (``get_landscape(text, **params)``), else a formula landscape.

    For formulas the accepted ``params`` are ``bounds``, ``start`` and ``lr``. A name-like text that
    is neither registered nor a valid formula raises :class:`FormulaError` listing the names.

    >>> resolve_landscape("double-well").name, resolve_landscape("x**2 + 3*sin(y)").name
    ('double-well', 'formula')
    """
    if isinstance(text, str) and text.strip() in LANDSCAPES:
        return get_landscape(text.strip(), **params)  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(_FORMULA_PARAMS))
    try:
        if unknown:
            parse_formula(text, _formula_variables(text))  # a bad formula reports first
            raise invalid("formula parameter", unknown[0], f"one of: {', '.join(_FORMULA_PARAMS)}")
        return formula_landscape(text, **params)  # type: ignore[arg-type]
    except FormulaError as error:
        if not (isinstance(text, str) and _NAME_LIKE.match(text)):
            raise
        close = difflib.get_close_matches(text.strip(), list(LANDSCAPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        detail = str(error).split(": ", 1)[-1]
        raise FormulaError(
            f"invalid landscape={text!r}: expected one of {sorted(LANDSCAPES)}{hint} or a "
            f"formula in x, y; it is not a valid formula either: {detail}"
        ) from None
