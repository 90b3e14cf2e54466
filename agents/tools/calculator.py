"""A calculator tool that only ever evaluates arithmetic.

The expression is parsed with :mod:`ast` and checked against an allowlist (numbers, ``+ - * /
% **``, parentheses, a few named functions and constants) *before* numexpr sees anything:
numexpr's own string sanitizer has been bypassed before (CVE-2023-39631). What numexpr receives
is re-generated from the checked tree (``ast.unparse``), never the user's text, and every number
is a float, so integer edge cases (modulo by zero, overflow) cannot reach C code.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from typing import Any

import numpy as np

from orchestrator.errors import OrchestratorError

MAX_CHARS = 256
MAX_NODES = 200
MAX_EXPONENT = 1000.0

#: Functions the expression may call (numexpr names), with the aliases models tend to write.
FUNCTIONS: dict[str, int] = {
    "sqrt": 1, "exp": 1, "log": 1, "log10": 1, "log1p": 1, "expm1": 1, "abs": 1,
    "sin": 1, "cos": 1, "tan": 1, "arcsin": 1, "arccos": 1, "arctan": 1, "arctan2": 2,
    "sinh": 1, "cosh": 1, "tanh": 1, "floor": 1, "ceil": 1,
}  # fmt: skip
ALIASES = {"ln": "log", "asin": "arcsin", "acos": "arccos", "atan": "arctan", "atan2": "arctan2"}
CONSTANTS = {"pi": math.pi, "e": math.e}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"}
_UNARY = (ast.UAdd, ast.USub)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CURRENCY = re.compile(r"[$€£¥]")


class CalculatorError(OrchestratorError, ValueError):
    """The input is not an arithmetic expression the calculator accepts.

    ``wordy``: the input looks like words rather than a refused construct, so an LLM may
    translate it into an expression (what ``llm-math`` does).
    """

    def __init__(self, message: str, *, fix: str | None = None, wordy: bool = False) -> None:
        super().__init__(message, fix=fix)
        self.wordy = wordy


def allowed_help() -> str:
    """One sentence naming what the calculator accepts (used in refusals and descriptions)."""
    return "numbers, + - * / % ** ( ), pi, e and functions such as sqrt, log, exp, sin"


def normalise(text: str) -> str:
    """Undo the notations models write for arithmetic: ``^``, ``×``, ``1,299``, ``$``, ``= ?``."""
    expr = text.strip()
    while len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "`'\"":
        expr = expr[1:-1].strip()
    expr = expr.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    expr = _CURRENCY.sub("", expr)
    if not re.search(r"[A-Za-z_]\s*\(", expr):
        expr = _THOUSANDS.sub("", expr)
    left = expr.split("=")[0]
    if expr.count("=") == 1 and left.count("(") == left.count(")"):
        expr = left  # "2*67 = 134": the model wrote its own guess of the result
    return expr.strip()


def check_expression(text: str) -> str:
    """The numexpr expression for ``text``, or :class:`CalculatorError` saying why not.

    The result is ``ast.unparse`` of a tree holding only allowlisted nodes.
    """
    if len(text) > MAX_CHARS:
        raise CalculatorError(
            f"the expression is {len(text)} characters long; the limit is {MAX_CHARS}",
            fix="split the calculation into smaller steps",
        )
    if "__" in text:
        raise CalculatorError(
            "double underscores (dunder names) are not allowed", fix=f"use only {allowed_help()}"
        )
    expr = normalise(text)
    if not expr:
        raise CalculatorError("the expression is empty", fix="pass an expression such as 2*(3+4)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd escapes in refused input are not the user's bug
            tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise CalculatorError(
            f"{expr!r} is not an arithmetic expression ({type(exc).__name__})",
            fix=f"write one expression such as 2*(3+4) using {allowed_help()}",
            wordy=True,
        ) from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(
            f"the expression has more than {MAX_NODES} parts", fix="split it into smaller steps"
        )
    checked = _Checker().visit(tree.body)
    return ast.unparse(checked)


class _Checker:
    """Rebuilds the tree from allowlisted nodes only; anything else is refused by name."""

    def visit(self, node: ast.AST) -> ast.expr:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, ast.Pow):
                _check_exponent(right)
            return ast.BinOp(left=left, op=node.op, right=right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
            return ast.UnaryOp(op=node.op, operand=self.visit(node.operand))
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CalculatorError(f"{_describe(node)} is not allowed", fix=f"use only {allowed_help()}")

    def _constant(self, node: ast.Constant) -> ast.expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculatorError(
                f"the literal {value!r} is not a number", fix=f"use only {allowed_help()}"
            )
        number = float(value) if isinstance(value, float) else _int_to_float(value)
        if not math.isfinite(number):
            raise CalculatorError("a number is out of range", fix="use smaller numbers")
        return ast.Constant(value=number)

    def _name(self, node: ast.Name) -> ast.expr:
        if node.id in CONSTANTS:
            return ast.Constant(value=CONSTANTS[node.id])
        raise CalculatorError(
            f"the name {node.id!r} is not a known constant",
            fix=f"use numbers instead of variables; allowed: {allowed_help()}",
            wordy=True,
        )

    def _call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if not isinstance(func, ast.Name):
            raise CalculatorError(
                f"{_describe(func)} cannot be called", fix=f"call only {_function_names()}"
            )
        name = ALIASES.get(func.id, func.id)
        if name not in FUNCTIONS:
            raise CalculatorError(
                f"the function {func.id!r} is not allowed", fix=f"call only {_function_names()}"
            )
        if node.keywords or len(node.args) != FUNCTIONS[name]:
            raise CalculatorError(
                f"{name}() takes {FUNCTIONS[name]} positional argument(s)",
                fix=f"write e.g. {name}({', '.join(['2'] * FUNCTIONS[name])})",
            )
        args = [self.visit(arg) for arg in node.args]
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])


def callable_names() -> dict[str, int]:
    """Every function name an expression may call (aliases included) -> its argument count.

    The one table the calculator checks calls against; the agent's input grammar is derived
    from it (``agents.grammar.arithmetic_gbnf``).
    """
    return {**FUNCTIONS, **{alias: FUNCTIONS[name] for alias, name in ALIASES.items()}}


def _function_names() -> str:
    return ", ".join(FUNCTIONS)


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_exponent(node: ast.expr) -> None:
    value = _literal_value(node)
    if value is None:
        raise CalculatorError(
            "an exponent must be a plain number", fix="compute the exponent first, then use it"
        )
    if abs(value) > MAX_EXPONENT:
        raise CalculatorError(
            f"the exponent {value:g} is too large (limit {MAX_EXPONENT:g})",
            fix="use a smaller exponent, or logarithms",
        )


def _literal_value(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
        inner = _literal_value(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Mult | ast.Add | ast.Sub):
        left, right = _literal_value(node.left), _literal_value(node.right)
        if left is None or right is None:
            return None
        return _fold(node.op, left, right)
    return None


def _fold(op: ast.operator, left: float, right: float) -> float | None:
    if isinstance(op, ast.Div):
        return left / right if right else None
    if isinstance(op, ast.Mult):
        return left * right
    return left + right if isinstance(op, ast.Add) else left - right


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Attribute: "attribute access",
        ast.Lambda: "a lambda",
        ast.Subscript: "indexing",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment",
    }
    for kind, words in kinds.items():
        if isinstance(node, kind):
            return words
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return f"a {type(node).__name__} expression"


def evaluate(text: str) -> float:
    """The value of an arithmetic expression (raises :class:`CalculatorError`)."""
    import numexpr

    expr = check_expression(text)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            value = numexpr.evaluate(expr, local_dict={}, global_dict={})
    except (ZeroDivisionError, FloatingPointError):
        raise CalculatorError(f"{expr} divides by zero", fix="check the divisor") from None
    except OverflowError:
        raise CalculatorError(
            f"{expr} is too large to compute", fix="use smaller numbers"
        ) from None
    except (KeyError, ValueError, TypeError, SyntaxError, MemoryError) as exc:
        raise CalculatorError(
            f"could not evaluate {expr}: {exc}", fix=f"use only {allowed_help()}"
        ) from None
    result = value.item() if hasattr(value, "item") else value
    if isinstance(result, complex):
        raise CalculatorError(
            f"{expr} has no real result (it is {result:.6g})",
            fix="a negative number has no real fractional power; rewrite the expression",
        )
    return float(result)


def format_number(value: float) -> str:
    """A result the way a person writes it: ``1024`` not ``1024.0``, ``1e+24`` for huge ones."""
    if math.isnan(value):
        return "nan (the result is undefined)"
    if math.isinf(value):
        return "infinity (the result overflowed)" if value > 0 else "-infinity"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def calculate(text: str) -> str:
    """The calculator tool's observation: the result, or a plain refusal. Never raises."""
    try:
        return format_number(evaluate(text))
    except CalculatorError as exc:
        fix = f" ({exc.fix})" if exc.fix else ""
        return f"Calculator error: {exc.message}{fix}"


def is_arithmetic_tree(expr: str) -> bool:
    """Whether ``expr`` parses to allowlisted nodes only (used by tests and audits)."""
    allowed: tuple[type[Any], ...] = (
        ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Call, ast.Name, ast.Load,
        *_BINOPS, *_UNARY,
    )  # fmt: skip
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            return False
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            return False
        if isinstance(node, ast.Constant) and not isinstance(node.value, float):
            return False
    return True
