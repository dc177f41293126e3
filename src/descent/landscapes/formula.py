"""User formulas as landscapes: a safe parser (an AST whitelist, never ``eval``) into an expression tree.

``parse_formula("(x**2 - 1)**2 + y**2")`` parses the text with :func:`ast.parse` (parsing never runs
code), checks every node against a whitelist and builds an expression tree
(:mod:`descent.landscapes.expr`): one tree gives the value ``U(x: Tensor[N, d]) -> Tensor[N]`` in
plain torch (any dtype and device, differentiable by autograd) and the gradient by reverse mode
(:mod:`descent.landscapes.evaluate`). The built-in landscapes are formulas too.

Sums over the coordinates: ``sum(body for i in range(a, b))`` and ``mean(...)``, where ``d`` is the
dimension and the body uses the coordinates ``x[i]``, ``x[i + k]``, ``x[i - k]`` (k a whole number):

    sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i in range(d - 1))     (Rosenbrock)

A quadratic form ``x @ A @ x`` (x^T A x) is allowed for a symmetric matrix ``A`` given with the
formula (``parse_formula(text, variables, matrices={"A": a})``).

``formula_landscape`` wraps a formula in a :class:`~descent.landscapes.Landscape` and finds its
minima (and saddles) numerically; ``resolve_landscape`` accepts either a registered name or a formula.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from descent._errors import DescentError, check_number, invalid, listed
from descent.landscapes._base import Landscape
from descent.landscapes._registry import LANDSCAPES, get_landscape
from descent.landscapes.evaluate import Program
from descent.landscapes.expr import Block, Builder, Column, Const, Expr, QuadForm, walk
from descent.landscapes.functions import UNARY, binary_forward
from descent.landscapes.search import box_sample, find_critical_points, first_finite

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_EXPONENT = 100.0
MAX_DIM = 10
MAX_TERMS = 100_000  # the longest range() of a sum (one whose body is constant is added up at parse time)


class FormulaError(DescentError):
    """A formula that cannot be parsed or uses something not allowed.

    The message names the problem and its 1-based column in the text as the user wrote it.
    """


def _clip(value: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return binary_forward("min", binary_forward("max", value, low), high)


#: name -> (number of arguments, torch implementation)
FUNCTIONS: dict[str, tuple[int, Callable[..., torch.Tensor]]] = {
    **{name: (1, UNARY[name].forward) for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "abs")},
    **{name: (1, UNARY[name].forward) for name in ("tanh", "sinh", "cosh", "atan")},
    "arctan": (1, UNARY["atan"].forward),
    "sigmoid": (1, UNARY["sigmoid"].forward),
    "softplus": (1, UNARY["softplus"].forward),
    "min": (2, functools.partial(binary_forward, "min")),
    "max": (2, functools.partial(binary_forward, "max")),
    "clip": (3, _clip),
}
_ALIASES = {"arctan": "atan"}

#: named constants
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
DIMENSION = "d"  # the number of coordinates, a constant in every formula
VECTOR = "x"  # the position as a vector: x[i] in a sum, x @ A @ x
REDUCTIONS = ("sum", "mean")
SUM_EXAMPLE = "sum(x[i]**2 for i in range(d))"

_BINARY: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
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

    def snippet(self, node: ast.AST) -> str:
        """The text of ``node`` as the user wrote it (``^`` kept), shortened past 40 characters."""
        start, end = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if start is None or end is None or not 0 <= start < end <= len(self.origin):
            return ast.unparse(node)
        text = self.text[self.origin[start] : self.origin[end - 1] + 1].strip()
        return text if len(text) <= 40 else text[:37] + "..."

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
            # the left operand of a chain ``a + b + c ...`` is at the chain's level: a flat sum of
            # many terms is not nested (the compiler walks such a chain in a loop)
            flat = _is_chain(node) and _is_chain(child) and child is node.left  # type: ignore[attr-defined]
            stack.append((child, depth + 1 if isinstance(child, ast.expr) and not flat else depth))


@dataclass(frozen=True)
class _Index:
    """The sum being compiled: ``for name in range(start, stop)``."""

    name: str
    start: int
    stop: int
    call: str  # "sum" or "mean"


class _Compiler:
    """Checks an AST node by node against the whitelist and builds the expression tree."""

    def __init__(self, source: _Source, variables: tuple[str, ...], matrices: Mapping[str, torch.Tensor]):
        self.source = source
        self.variables = {name: i for i, name in enumerate(variables)}
        self.dim = len(variables)
        self.matrices = matrices
        self.build = Builder()
        self.index: _Index | None = None  # inside sum(... for i in range(...)): that index

    def allowed_names(self) -> str:
        return ", ".join(dict.fromkeys([*self.variables, *CONSTANTS, DIMENSION]))

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
        return self.finite(number, node)

    def finite(self, value: float, node: ast.AST) -> float:
        """``value`` if finite, else the error naming the constant part of the text that gave it."""
        if not math.isfinite(value):
            raise self.fail(
                f"the constant {self.source.snippet(node)!r} is not finite (it evaluates to {value})",
                node,
                "constants must be finite numbers (at most about 1.8e308 in size)",
            )
        return value

    def compile(self, node: ast.AST) -> Expr:
        """The expression tree of ``node`` (constant subtrees folded into one :class:`Const`, which
        must be finite: ``1e999``, ``10**400``, ``0/0`` and ``log(0)`` are refused alike)."""
        result = self._compile(node)
        if isinstance(result, Const):
            self.finite(result.value, node)
        return result

    def _compile(self, node: ast.AST) -> Expr:
        if isinstance(node, ast.Constant):
            return self.build.const(self.number(node))
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Attribute):
            raise self.fail(f"attribute access '.{node.attr}' is not allowed", self.source.after(node.value))
        if isinstance(node, ast.Compare):
            symbol = _OP_SYMBOLS.get(type(node.ops[0]), "comparison")
            raise self.fail(f"comparison '{symbol}' is not allowed", self.source.after(node.left))
        if isinstance(node, ast.BoolOp):
            symbol = _OP_SYMBOLS.get(type(node.op), "boolean operator")
            raise self.fail(f"'{symbol}' is not allowed", self.source.after(node.values[0]))
        if isinstance(node, ast.GeneratorExp):
            raise self.fail(
                "generator expressions are not allowed", node, f"except inside sum(), e.g. {SUM_EXAMPLE}"
            )
        what = _NODE_NAMES.get(type(node), f"the syntax {type(node).__name__} is")
        raise self.fail(f"{what} not allowed", node)

    def name(self, node: ast.Name) -> Expr:
        if not isinstance(node.ctx, ast.Load):
            raise self.fail(f"assignment to {node.id!r} is not allowed", node)
        if self.index is not None and node.id == self.index.name:
            raise self.fail(f"the index {node.id!r} can only be a subscript, as in x[{node.id}]", node)
        if node.id in self.variables:
            if self.index is not None:
                raise self.fail(
                    f"the variable {node.id!r} cannot be used inside {self.index.call}(...)",
                    node,
                    f"use x[{self.index.name}], x[{self.index.name} + k] or x[{self.index.name} - k]",
                )
            return self.build.column(self.variables[node.id])
        if node.id in CONSTANTS:
            return self.build.const(CONSTANTS[node.id])
        if node.id == DIMENSION:
            return self.build.const(self.dim)
        if node.id in FUNCTIONS:
            raise self.fail(f"the function {node.id!r} must be called", node, f"e.g. {node.id}(x)")
        if node.id in REDUCTIONS:
            raise self.fail(f"the function {node.id!r} must be called", node, f"e.g. {SUM_EXAMPLE}")
        if node.id in self.matrices:
            raise self.fail(f"the matrix {node.id!r} can only be used as x @ {node.id} @ x", node)
        raise self.fail(f"unknown variable {node.id!r}", node, f"allowed names: {self.allowed_names()}")

    def binary(self, node: ast.BinOp) -> Expr:
        """``a op b``; a left-nested chain ``t1 + t2 - t3 * t4 ...`` is compiled in a loop, so a long
        flat sum or product is neither "nested" nor deep in Python's stack."""
        if isinstance(node.op, ast.MatMult) and self.matrices:
            return self.quad_form(node)
        if type(node.op) not in _BINARY:
            symbol = _OP_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise self.fail(
                f"operator '{symbol}' is not allowed",
                self.source.after(node.left),
                f"allowed operators: {_ALLOWED_OPERATORS}",
            )
        spine = [node]
        while _is_chain(spine[-1].left):
            spine.append(spine[-1].left)  # type: ignore[arg-type]
        left = self.compile(spine[-1].left)
        for link in reversed(spine):
            left = self.operation(link, left)
            if isinstance(left, Const):
                self.finite(left.value, link)
        return left

    def operation(self, node: ast.BinOp, left: Expr) -> Expr:
        """``left op right`` for ``node`` (an allowed operator), its left operand compiled into ``left``."""
        op = _BINARY[type(node.op)]
        right = self.compile(node.right)
        if op == "**" and isinstance(right, Const) and not isinstance(left, Const):
            # a constant base is folded exactly (10**400 is refused as not finite, 2**200 is fine)
            if abs(right.value) > MAX_EXPONENT:
                raise self.fail(
                    f"exponent {right.value:g} is too large",
                    node.right,
                    f"constant exponents must satisfy |p| <= {MAX_EXPONENT:g}",
                )
        if op == "/" and isinstance(right, Const) and right.value == 0 and not isinstance(left, Const):
            what = (
                "" if isinstance(node.right, ast.Constant) else f" ({self.source.snippet(node.right)!r} is 0)"
            )
            raise self.fail(
                f"division by zero{what}",
                self.source.after(node.left),
                "U would be infinite or undefined wherever it is used",
            )
        return self.build.binary(op, left, right)

    def quad_form(self, node: ast.BinOp) -> Expr:
        """``x @ A @ x``: the quadratic form x^T A x of a given matrix (the only use of ``@``)."""
        inner = node.left
        if not (
            isinstance(inner, ast.BinOp)
            and isinstance(inner.op, ast.MatMult)
            and _is_name(inner.left, VECTOR)
            and isinstance(inner.right, ast.Name)
            and inner.right.id in self.matrices
            and _is_name(node.right, VECTOR)
        ):
            names = " or ".join(f"x @ {m} @ x" for m in self.matrices)
            raise self.fail("operator '@' is not allowed here", self.source.after(node.left), f"only {names}")
        if self.index is not None:
            raise self.fail(f"x @ A @ x cannot be used inside {self.index.call}(...)", node)
        return self.build.quad_form(self.matrices[inner.right.id])

    def unary(self, node: ast.UnaryOp) -> Expr:
        if isinstance(node.op, ast.UAdd):
            return self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            return self.build.call("neg", self.compile(node.operand))
        symbol = _OP_SYMBOLS.get(type(node.op), type(node.op).__name__)
        raise self.fail(
            f"operator '{symbol}' is not allowed", node, f"allowed operators: {_ALLOWED_OPERATORS}"
        )

    def call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, (ast.Attribute, ast.Subscript, ast.Lambda)):
                self.compile(node.func)  # raises with the more precise message
            raise self.fail(
                "only named functions can be called", node, f"allowed functions: {', '.join(FUNCTIONS)}"
            )
        name = node.func.id
        if name in REDUCTIONS:
            return self.reduction(node, name)
        if name not in FUNCTIONS:
            raise self.fail(
                f"unknown function {name!r}",
                node.func,
                f"allowed functions: {', '.join(FUNCTIONS)}; sums: {SUM_EXAMPLE}, mean(...)",
            )
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail("starred arguments are not allowed", arg)
        arity, _ = FUNCTIONS[name]
        if len(node.args) != arity:
            plural = "" if arity == 1 else "s"
            raise self.fail(f"{name}() takes {arity} argument{plural}, got {len(node.args)}", node.func)
        args = [self.compile(arg) for arg in node.args]
        if name in ("min", "max"):
            return self.build.binary(name, args[0], args[1])
        if name == "clip":  # min(max(v, low), high)
            return self.build.binary("min", self.build.binary("max", args[0], args[1]), args[2])
        return self.build.call(_ALIASES.get(name, name), args[0])

    # --- sums over an index -----------------------------------------------------------------------
    def reduction(self, node: ast.Call, name: str) -> Expr:
        """``sum(body for i in range(a, b))`` or ``mean(...)``: the body over the columns i, folded."""
        form = f"{name}() takes one generator, as in {name}(x[i]**2 for i in range(d))"
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.GeneratorExp):
            raise self.fail(form, node.func)
        if self.index is not None:
            raise self.fail(f"sums cannot be nested ({name}() inside {self.index.call}(...))", node.func)
        generator = node.args[0]
        if len(generator.generators) != 1:
            raise self.fail(f"{name}() takes one 'for' clause", generator.generators[1].target)
        clause = generator.generators[0]
        if clause.ifs:
            raise self.fail(f"'if' is not allowed in {name}()", clause.ifs[0])
        if clause.is_async:
            raise self.fail(f"'async for' is not allowed in {name}()", clause.target)
        index = self.index_name(clause.target)
        start, stop = self.index_range(clause.iter)
        count = stop - start
        if count <= 0:
            if name == "mean":
                raise self.fail(f"mean() over an empty range ({start} to {stop})", clause.iter)
            return self.build.const(0.0)
        self.index = _Index(index, start, stop, name)
        try:
            body = self.compile(generator.elt)
        finally:
            self.index = None
        return self.build.fold(body, count, mean=name == "mean")

    def index_name(self, target: ast.AST) -> str:
        if not isinstance(target, ast.Name):
            raise self.fail("the index of a sum must be a plain name, as in 'for i in range(d)'", target)
        taken = {*self.variables, *CONSTANTS, *FUNCTIONS, *REDUCTIONS, *self.matrices, DIMENSION, VECTOR}
        if target.id in taken:
            raise self.fail(f"the index {target.id!r} is already a name in formulas", target, "use i or j")
        return target.id

    def index_range(self, node: ast.AST) -> tuple[int, int]:
        """The bounds of ``range(stop)`` or ``range(start, stop)``: whole numbers, made of d and numbers."""
        if not (
            isinstance(node, ast.Call)
            and _is_name(node.func, "range")
            and not node.keywords
            and 1 <= len(node.args) <= 2
        ):
            raise self.fail("a sum runs over range(stop) or range(start, stop)", node, "e.g. range(d - 1)")
        bounds = []
        for arg in node.args:
            value = self.compile(arg)
            if not (
                isinstance(value, Const) and math.isfinite(value.value) and value.value == int(value.value)
            ):
                raise self.fail("range() bounds must be whole numbers made of d and integers", arg)
            bounds.append(int(value.value))
        start, stop = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        if stop - start > MAX_TERMS:
            raise self.fail(f"range() has {stop - start} terms, at most {MAX_TERMS}", node)
        return start, stop

    def subscript(self, node: ast.Subscript) -> Expr:
        """``x[i + k]`` inside a sum: the columns i + k for every i of its range at once."""
        if self.index is None:
            raise self.fail(
                "subscripts '[...]' are not allowed",
                self.source.after(node.value),
                f"except x[i] inside a sum, e.g. {SUM_EXAMPLE}",
            )
        i = self.index.name
        shape = f"only x[{i}], x[{i} + k] or x[{i} - k] with k a whole number"
        if not _is_name(node.value, VECTOR) or not isinstance(node.ctx, ast.Load):
            raise self.fail(f"subscripts are not allowed here: {shape}", node)
        offset = self.offset(node.slice, i)
        if offset is None:
            raise self.fail(f"this subscript is not allowed: {shape}", node.slice)
        start, stop = self.index.start + offset, self.index.stop + offset
        if start < 0 or stop > self.dim:
            raise self.fail(
                f"x[{ast.unparse(node.slice)}] reaches column {start if start < 0 else stop - 1} "
                f"for {i} in range({self.index.start}, {self.index.stop}); the columns are 0 to "
                f"d - 1 = {self.dim - 1}",
                node,
            )
        return self.build.block(start, stop)

    def offset(self, node: ast.AST, index: str) -> int | None:
        """k for ``i``, ``i + k``, ``k + i`` or ``i - k`` (k a whole-number literal), else None."""
        if _is_name(node, index):
            return 0
        if not isinstance(node, ast.BinOp) or not isinstance(node.op, (ast.Add, ast.Sub)):
            return None
        if _is_name(node.left, index) and _is_whole(node.right):
            return node.right.value if isinstance(node.op, ast.Add) else -node.right.value  # type: ignore[attr-defined]
        if isinstance(node.op, ast.Add) and _is_whole(node.left) and _is_name(node.right, index):
            return node.left.value  # type: ignore[attr-defined]
        return None


#: the operators of a chain compiled in a loop (left-nested, as Python parses ``a + b - c * d``)
_CHAIN = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def _is_chain(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, _CHAIN)


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_whole(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


@dataclass(frozen=True, eq=False)
class Formula:
    """A parsed formula: call it on ``x`` of shape ``[N, len(variables)]`` to get ``U(x)`` of shape ``[N]``.

    ``tree`` is its expression tree; ``value_and_grad(x)`` gives U and grad U by reverse mode,
    ``gradient(x)`` grad U alone. ``used`` holds the variables that occur in the text. Pickles by
    re-parsing its text.
    """

    text: str
    variables: tuple[str, ...]
    used: tuple[str, ...]
    tree: Expr = field(repr=False)
    matrices: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)
    program: Program = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "program", Program(self.tree))

    @property
    def dim(self) -> int:
        return len(self.variables)

    def _check(self, x: object) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise invalid("x", shape, f"a tensor of shape [N, {self.dim}]")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.program.value(x)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U(x) ``[N]``, grad U(x) ``[N, d]``) by reverse-mode accumulation over the tree."""
        self._check(x)
        return self.program.value_and_grad(x)

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """grad U(x) ``[N, d]`` by reverse mode."""
        return self.value_and_grad(x)[1]

    def __reduce__(self):
        return (_reparse, (self.text, self.variables, dict(self.matrices)))


def _reparse(text: str, variables: tuple[str, ...], matrices: dict[str, torch.Tensor]) -> Formula:
    return parse_formula(text, variables, matrices=matrices)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_variables(variables: Sequence[str]) -> tuple[str, ...]:
    names = tuple(variables) if not isinstance(variables, str) else (variables,)
    allowed = "distinct identifiers, not a function or constant name"
    if not names or len(set(names)) != len(names):
        raise invalid("variables", variables, allowed)
    for name in names:
        if (
            not isinstance(name, str)
            or not _IDENTIFIER.match(name)
            or name in (*FUNCTIONS, *CONSTANTS, *REDUCTIONS)
        ):
            raise invalid("variables", variables, allowed)
    return names


def _check_matrices(matrices: Mapping[str, object] | None, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    dim = len(names)
    checked: dict[str, torch.Tensor] = {}
    for name, matrix in (matrices or {}).items():
        taken = (*names, *CONSTANTS, *FUNCTIONS, *REDUCTIONS, DIMENSION, VECTOR)
        if not isinstance(name, str) or not _IDENTIFIER.match(name) or name in taken:
            raise invalid("matrix name", name, "an identifier that is not already a name in the formula")
        allowed = f"a symmetric {dim} x {dim} matrix of finite numbers"
        try:
            a = torch.as_tensor(matrix, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise invalid(f"matrix {name}", matrix, allowed) from None
        if a.shape != (dim, dim) or not bool(torch.isfinite(a).all()) or not torch.equal(a, a.T):
            raise invalid(f"matrix {name}", matrix, allowed)
        checked[name] = a
    return checked


def parse_formula(
    text: str, variables: Sequence[str] = ("x", "y"), matrices: Mapping[str, object] | None = None
) -> Formula:
    """Parse ``text`` into a :class:`Formula` (its expression tree) without ever executing it.

    The text is parsed by :func:`ast.parse` in ``"eval"`` mode and every node is checked against a
    whitelist while the tree is built (no ``eval``/``exec``). Allowed: int/float literals, the
    ``variables`` (column ``i`` of ``x`` is ``variables[i]``), the constants ``pi``, ``e`` and ``d``
    (the number of variables), ``+ - * / **``, unary ``+ -``, calls of the functions in
    :data:`FUNCTIONS` (``min``/``max`` take two arguments, ``clip(v, lo, hi)`` three), sums
    ``sum(... for i in range(a, b))`` and ``mean(...)`` whose body uses ``x[i]``, ``x[i + k]``,
    ``x[i - k]``, and ``x @ A @ x`` for a symmetric matrix in ``matrices``. ``^`` means power: it
    is rewritten to ``**`` before parsing (columns in messages refer to the original text).
    Limits: at most 500 characters, sums of at most 100000 terms, nesting depth 50 (a flat chain
    ``a + b - c * d ...`` counts as one level however long), constant exponents ``|p| <= 100``
    on a non-constant base. Constant parts
    are folded and must be finite (``1e999``, ``10**400``, ``0/0``, ``log(0)`` are refused alike), and
    dividing by a constant zero is refused. Anything else raises :class:`FormulaError` naming the
    problem and its column.

    >>> f = parse_formula("x^2 + 3*sin(y)")
    >>> f(torch.zeros(4, 2)).shape
    torch.Size([4])
    >>> g = parse_formula("sum(x[i]**2 for i in range(d))", ("x1", "x2", "x3"))
    >>> g.value_and_grad(torch.tensor([[1.0, 2.0, 3.0]]))
    (tensor([14.]), tensor([[2., 4., 6.]]))
    """
    names = _check_variables(variables)
    known = _check_matrices(matrices, names)
    source, tree = _prepare(text)
    _check_depth(source, tree)
    root = _Compiler(source, names, known).compile(tree.body)
    columns: set[int] = set()
    for node in walk(root):
        if isinstance(node, Column):
            columns.add(node.index)
        elif isinstance(node, Block):
            columns.update(range(node.start, node.stop))
        elif isinstance(node, QuadForm):
            columns.update(range(len(names)))
    used = tuple(n for i, n in enumerate(names) if i in columns)
    return Formula(text, names, used, root, known)


def coordinates(dim: int) -> tuple[str, ...]:
    """Variable names for ``dim`` coordinates: ``x`` (1-D), ``x, y`` (2-D), else ``x1 ... xd``."""
    return ("x", "y")[:dim] if dim <= 2 else tuple(f"x{i}" for i in range(1, dim + 1))


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


def _check_finite_somewhere(text: str, energy: Formula, box: tuple[tuple[float, float], ...]) -> None:
    """Refuse, before any work, a formula whose U (or gradient) is nowhere finite on the box:
    ``x/0``-like poles everywhere, ``log(-1 - x**2)``, ``sqrt(-1 - y**2)``."""
    points = box_sample(box)
    value_at, both_at = first_finite(energy.value_and_grad, points)
    if both_at is not None:
        return
    where = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in box)
    probe = points[len(points) // 2 : len(points) // 2 + 1]
    u, g = energy.value_and_grad(probe)
    at = ", ".join(f"{c:g}" for c in probe[0].tolist())
    if value_at is None:
        what, example = "U is", f"U({at}) = {float(u[0])}"
    else:
        what, example = (
            "the gradient of U is",
            f"grad U({at}) = ({', '.join(f'{c:g}' for c in g[0].tolist())})",
        )
    raise FormulaError(
        f"invalid landscape formula {_short(text)}: {what} not finite anywhere in the box {where} "
        f"(nan or inf at all {len(points)} points checked, e.g. {example}); write a formula that is "
        "finite somewhere in the box, or give other bounds"
    )


def formula_landscape(
    text: str, bounds: object = None, start: Sequence[float] | None = None, lr: float | None = None
) -> Landscape:
    """A :class:`Landscape` named ``"formula"`` from a formula in ``x, y`` (or ``x1 ... xn``, n <= 10).

    Always at least 2-D (a formula in ``x`` alone ignores ``y``). ``bounds``: one ``(low, high)``
    pair for every axis or one pair per axis (default ``(-3, 3)``). The gradient is the formula's,
    by reverse mode. Critical points come from :func:`find_critical_points`; the default start is
    20% of the way from the low corner (away from the centre, often a symmetric critical point);
    the default lr is ``0.2 / L`` (L: the largest curvature at the minima) clipped to [1e-4, 0.1],
    else 0.01. It pickles as its text, box, start and lr.

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
    _check_finite_somewhere(text, energy, box)
    search = find_critical_points(energy, box)
    if lr is not None:
        default_lr = check_number("lr", lr, 0, low_open=True)
    elif search.curvature is not None and search.curvature > 0:
        default_lr = min(0.1, max(1e-4, 0.2 / search.curvature))
    else:
        default_lr = 0.01
    landscape = Landscape(
        name="formula",
        dim=dim,
        energy=energy,
        bounds=box,
        critical_points=search.points,
        default_start=default_start,
        default_lr=default_lr,
        description=text,
        bounded_below=search.bounded_below,
        formula=text,
    )
    return landscape.with_recipe(formula_landscape, text, box, default_start, default_lr)


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
            raise invalid("formula parameter", unknown[0], f"one of: {listed(_FORMULA_PARAMS)}")
        return formula_landscape(text, **params)  # type: ignore[arg-type]
    except FormulaError as error:
        if not (isinstance(text, str) and _NAME_LIKE.match(text)):
            raise
        close = difflib.get_close_matches(text.strip(), list(LANDSCAPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        detail = str(error).split(": ", 1)[-1]
        raise FormulaError(
            f"invalid landscape={text!r}: expected one of: {listed(sorted(LANDSCAPES))}{hint} or a "
            f"formula in x, y; it is not a valid formula either: {detail}"
        ) from None
