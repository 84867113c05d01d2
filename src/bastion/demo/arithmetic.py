"""The hardened calculator: arithmetic on numbers via `ast`, nothing else (no names, calls or strings)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any, cast

MAX_FORMULA_LENGTH = 200

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def evaluate_arithmetic(expr: str) -> float | int:
    """Evaluate + - * / // % ** on int/float literals; anything else raises ValueError."""
    if len(expr) > MAX_FORMULA_LENGTH:
        raise ValueError("formula too long")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise ValueError("not a formula") from None
    return _eval_node(tree.body)


def _eval_node(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return cast("float | int", node.value)  # the exact-type test above excludes bool, str, bytes...
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval_node(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 10**6):
            raise ValueError("exponent too large")  # 9**9**9 would hang the worker
        return _OPS[type(node.op)](left, right)  # type: ignore[no-any-return]
    raise ValueError("unsupported expression")
