"""The function library: the closed forms an edge can be matched to, c * f(a * x + b) + d.

Each :class:`Primitive` carries its torch function (for fitting and evaluation), its sympy
function (for the formula), a complexity (for choosing the simplest good fit), which of ``a``
and ``b`` the fit may move, and the interval of arguments it is safe on. A singular function is
only accepted for an edge when the whole argument interval ``[a*lo+b, a*hi+b]`` keeps a margin
from its singularities, so a fitted formula never divides by zero inside the sampled range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DEFAULT_LIBRARY", "Primitive", "make_library"]

SCALES = ("free", "sign", "one")


def _any(lo: Tensor, hi: Tensor) -> Tensor:
    return torch.ones_like(lo, dtype=torch.bool)


def _positive(lo: Tensor, hi: Tensor) -> Tensor:
    return lo > 1e-2 * (hi - lo)


def _not_zero(lo: Tensor, hi: Tensor) -> Tensor:
    margin = 1e-2 * (hi - lo)
    return (lo > margin) | (hi < -margin)


def _unit(lo: Tensor, hi: Tensor) -> Tensor:
    return (lo >= -1) & (hi <= 1)


def _between_poles(lo: Tensor, hi: Tensor) -> Tensor:
    """No pi/2 + k*pi (a pole of tan) in [lo, hi], with a margin."""
    margin = 5e-2
    first = torch.floor((lo - margin - math.pi / 2) / math.pi)
    last = torch.floor((hi + margin - math.pi / 2) / math.pi)
    return first == last


@dataclass(frozen=True)
class Primitive:
    """One library function f for edge fits ``c * f(a * x + b) + d``.

    Attributes:
        name: short name (``"sin"``, ``"x^2"``).
        torch_function: elementwise torch function.
        sympy_function: the same function of a sympy expression.
        complexity: cost in the choice between fits (a simpler fit wins unless a more complex
            one is clearly more accurate).
        scale: what ``a`` may be: ``"free"``, ``"sign"`` (+1 or -1: a scale is absorbed by
            ``c`` or ``d``) or ``"one"``.
        shift: whether ``b`` is fitted (False: ``b = 0``, e.g. for exp, where a shift is a
            factor absorbed by ``c``).
        valid: ``valid(lo, hi)`` says for argument intervals ``[lo, hi]`` (tensors) whether f is
            safe on the whole interval.
        parity: 1 for an even function, -1 for an odd one, 0 otherwise (fits are then written
            with ``a > 0``).
        period: the period of a periodic function (fits then have ``|b| <= period / 2``).
    """

    name: str
    torch_function: Callable[[Tensor], Tensor]
    sympy_function: Callable
    complexity: float
    scale: str = "free"
    shift: bool = True
    valid: Callable[[Tensor, Tensor], Tensor] = _any
    parity: int = 0
    period: float | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(
                f"primitive {self.name!r}: scale must be one of {SCALES}, got {self.scale!r}"
            )
        if self.complexity < 0:
            raise ValueError(f"primitive {self.name!r}: complexity must be >= 0")


def _primitives() -> tuple[Primitive, ...]:
    import sympy

    return (
        Primitive("0", torch.zeros_like, lambda x: sympy.Integer(0), 0, "one", False),
        Primitive("x", lambda x: x, lambda x: x, 1, "one", False),
        Primitive("x^2", torch.square, lambda x: x**2, 2, "one"),
        Primitive("x^3", lambda x: x**3, lambda x: x**3, 3, "one"),
        Primitive("x^4", lambda x: x**4, lambda x: x**4, 4, "one"),
        Primitive("1/x", torch.reciprocal, lambda x: 1 / x, 2, "one", True, _not_zero),
        Primitive("1/x^2", lambda x: x**-2, lambda x: x**-2, 3, "one", True, _not_zero),
        Primitive("sqrt", torch.sqrt, sympy.sqrt, 2, "sign", True, _positive),
        Primitive("exp", torch.exp, sympy.exp, 2, "free", False),
        Primitive("log", torch.log, sympy.log, 2, "sign", True, _positive),
        Primitive("sin", torch.sin, sympy.sin, 2, parity=-1, period=2 * math.pi),
        Primitive("cos", torch.cos, sympy.cos, 2, parity=1, period=2 * math.pi),
        Primitive("tan", torch.tan, sympy.tan, 3, valid=_between_poles, parity=-1, period=math.pi),
        Primitive("tanh", torch.tanh, sympy.tanh, 3, parity=-1),
        Primitive("abs", torch.abs, sympy.Abs, 3, "one"),
        Primitive("arctan", torch.arctan, sympy.atan, 3, parity=-1),
        Primitive("arcsin", torch.arcsin, sympy.asin, 3, valid=_unit, parity=-1),
        Primitive(
            "gaussian", lambda x: torch.exp(-(x**2)), lambda x: sympy.exp(-(x**2)), 3, parity=1
        ),
    )


DEFAULT_LIBRARY = (
    "0",
    "x",
    "x^2",
    "x^3",
    "x^4",
    "1/x",
    "1/x^2",
    "sqrt",
    "exp",
    "log",
    "sin",
    "cos",
    "tan",
    "tanh",
    "abs",
    "arctan",
    "arcsin",
    "gaussian",
)


def make_library(
    names: Iterable[str] | None = None, extra: Iterable[Primitive] = ()
) -> Mapping[str, Primitive]:
    """The primitives by name: the default library (or the ``names`` chosen from it) plus ``extra``.

    Raises:
        ValueError: naming an unknown primitive.
    """
    known = {p.name: p for p in _primitives()}
    chosen = list(DEFAULT_LIBRARY if names is None else names)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(f"unknown library function(s) {unknown}; known: {list(known)}")
    library = {name: known[name] for name in chosen}
    for primitive in extra:
        library[primitive.name] = primitive
    return library
