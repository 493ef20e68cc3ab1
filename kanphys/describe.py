"""Readable text for user functions: the source of a lambda, or a function's name."""

from __future__ import annotations

import ast
import functools
import inspect
import linecache

__all__ = ["describe_callable"]


def describe_callable(function) -> str:
    """``'-lap(s.u) - source(s.x)'`` for ``lambda s: -lap(s.u) - source(s.x)``; else its name."""
    name = getattr(function, "__name__", type(function).__name__)
    if name != "<lambda>":
        return f"{name}(...)"
    try:
        return _lambda_body(function) or "<lambda>"
    except (OSError, TypeError, SyntaxError):
        return "<lambda>"


def _lambda_body(function) -> str | None:
    code = function.__code__
    filename = inspect.getsourcefile(function)
    if filename is None:
        return None
    source = "".join(linecache.getlines(filename))
    bodies = [
        ast.get_source_segment(source, node.body)
        for node in _lambdas(source)
        if node.lineno == code.co_firstlineno
        and [a.arg for a in node.args.args] == list(code.co_varnames[: code.co_argcount])
    ]
    return bodies[0] if len(bodies) == 1 else None


@functools.lru_cache(maxsize=32)
def _lambdas(source: str) -> tuple[ast.Lambda, ...]:
    return tuple(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Lambda))
