"""Formulas: composing fitted edges, evaluating sympy expressions in torch, snapping, tuning.

A :class:`FormulaModel` is a torch module that evaluates one sympy expression per output at
points ``(N, d)``; its floating-point constants are trainable parameters, so the formula can be
fine-tuned against the loss the network was trained on, and it plugs into everything that
evaluates a model (residuals, :func:`kanphys.evaluate.evaluate_fields`, VTK export).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import torch
from torch import Tensor, nn

__all__ = [
    "FormulaModel",
    "affine_inputs",
    "compose",
    "drop_terms",
    "fine_tune",
    "monic",
    "snap",
    "snap_candidates",
    "tidy",
    "to_torch",
]

CONSTANT_PREFIX = "_c"


def _sympy():
    try:
        import sympy
    except ImportError as error:  # pragma: no cover - sympy is a dependency
        raise ImportError("symbolic formulas need sympy: pip install sympy") from error
    return sympy


@functools.cache
def _torch_functions() -> dict:
    sympy = _sympy()
    return {
        sympy.sin: torch.sin,
        sympy.cos: torch.cos,
        sympy.tan: torch.tan,
        sympy.exp: torch.exp,
        sympy.log: torch.log,
        sympy.tanh: torch.tanh,
        sympy.sinh: torch.sinh,
        sympy.cosh: torch.cosh,
        sympy.atan: torch.arctan,
        sympy.asin: torch.arcsin,
        sympy.acos: torch.arccos,
        sympy.Abs: torch.abs,
        sympy.sign: torch.sign,
    }


def to_torch(expr, env: Mapping, numeric: Mapping[str, Callable] | None = None):
    """Evaluate a sympy expression with torch: symbols are looked up in ``env`` (tensors).

    Args:
        expr: a sympy expression.
        env: values of its free symbols (tensors of one shape, or 0-d tensors).
        numeric: torch callables for undefined functions (edges left numeric), by name.

    Raises:
        ValueError: naming a symbol or function it cannot evaluate.
    """
    sympy = _sympy()
    if expr.is_Symbol:
        if expr not in env:
            raise ValueError(f"formula symbol {expr} has no value; known: {sorted(map(str, env))}")
        return env[expr]
    if expr.is_number:
        return float(expr)
    args = [to_torch(a, env, numeric) for a in expr.args]
    if expr.is_Add:
        return _fold(args, lambda p, q: p + q)
    if expr.is_Mul:
        return _fold(args, lambda p, q: p * q)
    if expr.is_Pow:
        base, exponent = args
        if expr.exp == sympy.Rational(1, 2):
            return torch.sqrt(base)
        return base**exponent
    functions = _torch_functions()
    if expr.func in functions:
        return functions[expr.func](*args)
    name = str(expr.func)
    if numeric and name in numeric:
        return numeric[name](*args)
    raise ValueError(f"formula function {name!r} has no torch counterpart")


def _fold(values: list, combine: Callable):
    out = values[0]
    for value in values[1:]:
        out = combine(out, value)
    return out


class FormulaModel(nn.Module):
    """Maps points ``(N, d)`` to ``(N, m)`` by closed-form expressions in the inputs.

    Args:
        expressions: one sympy expression per output, in the symbols ``inputs`` and the
            constant symbols ``_c0, _c1, ...``.
        inputs: names of the ``d`` input columns, in order.
        constants: values of the constant symbols (trainable parameters).
        outputs: names of the ``m`` outputs.
        parameters: fixed unknown parameters of an inverse problem (from the surrogate), by
            name, so residuals see ``s.k`` as they did in training.
        numeric: torch callables of edges left numeric (undefined functions), by name.
        dtype: parameter dtype.
        device: parameter device.
    """

    def __init__(
        self,
        expressions: Sequence,
        inputs: Sequence[str],
        constants: Mapping[str, float] | None = None,
        *,
        outputs: Sequence[str] | None = None,
        parameters: Mapping[str, float] | None = None,
        numeric: Mapping[str, Callable] | None = None,
        dtype: torch.dtype = torch.float64,
        device=None,
    ) -> None:
        super().__init__()
        sympy = _sympy()
        self.expressions = [sympy.sympify(e) for e in expressions]
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs or [f"f{i}" for i in range(len(self.expressions))])
        self.symbols = [sympy.Symbol(name, real=True) for name in self.inputs]
        self.expressions = [self._real(e) for e in self.expressions]
        options = {"dtype": dtype, "device": device}
        self.register_buffer("anchor", torch.zeros((), **options))
        self.constants = nn.ParameterDict(
            {
                k: nn.Parameter(torch.tensor(float(v), **options))
                for k, v in (constants or {}).items()
            }
        )
        self.params = nn.ParameterDict(
            {
                k: nn.Parameter(torch.tensor(float(v), **options), requires_grad=False)
                for k, v in (parameters or {}).items()
            }
        )
        self.numeric = dict(numeric or {})
        known = {*self.inputs, *self.constants}
        for expr in self.expressions:
            unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in known)
            if unknown:
                raise ValueError(f"formula uses unknown symbols {unknown}; inputs are {inputs}")

    @classmethod
    def from_expressions(cls, expressions: Sequence, inputs: Sequence[str], **options):
        """A model whose floating-point numbers become trainable constants."""
        parametrized, constants = parametrize(expressions)
        return cls(parametrized, inputs, constants, **options)

    def _real(self, expr):
        """Input symbols as real symbols (whatever assumptions the given ones had)."""
        by_name = dict(zip(self.inputs, self.symbols, strict=True))
        return expr.xreplace({s: by_name[s.name] for s in expr.free_symbols if s.name in by_name})

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, d)`` to ``(N, m)``."""
        if x.ndim != 2 or x.shape[1] != len(self.inputs):
            raise ValueError(
                f"points must have shape (N, {len(self.inputs)}) for inputs {self.inputs}, "
                f"got {tuple(x.shape)}"
            )
        sympy = _sympy()
        env = {s: x[:, i : i + 1] for i, s in enumerate(self.symbols)}
        env.update({sympy.Symbol(k): v for k, v in self.constants.items()})
        columns = []
        for expr in self.expressions:
            value = to_torch(expr, env, self.numeric)
            columns.append(torch.as_tensor(value, dtype=x.dtype, device=x.device) + 0 * x[:, :1])
        return torch.cat(columns, dim=1)

    def sympy(self) -> list:
        """The expressions with the current constant values substituted."""
        sympy = _sympy()
        values = {
            sympy.Symbol(k): sympy.Float(float(v.detach()), 17) for k, v in self.constants.items()
        }
        return [expr.xreplace(values) for expr in self.expressions]


def parametrize(expressions: Sequence) -> tuple[list, dict[str, float]]:
    """Replace every floating-point number by a constant symbol ``_c<k>``; returns the new
    expressions and the constants' values. Exact numbers (integers, rationals, pi) stay."""
    sympy = _sympy()
    floats = []
    for expr in expressions:
        for atom in sorted(sympy.sympify(expr).atoms(sympy.Float), key=str):
            if atom not in floats:
                floats.append(atom)
    symbols = {f: sympy.Symbol(f"{CONSTANT_PREFIX}{k}") for k, f in enumerate(floats)}
    replaced = [sympy.sympify(e).xreplace(symbols) for e in expressions]
    return replaced, {str(s): float(f) for f, s in symbols.items()}


def exact_number(value: float, tolerance: float = 1e-12):
    """``value`` as a sympy Rational when it is one with a small denominator, else a Float."""
    sympy = _sympy()
    fraction = Fraction(value).limit_denominator(64)
    if abs(float(fraction) - value) <= tolerance * max(1.0, abs(value)):
        return sympy.Rational(fraction.numerator, fraction.denominator)
    return sympy.Float(value, 17)


def affine_inputs(names: Sequence[str], center: Sequence[float], scale: Sequence[float]) -> list:
    """The normalised inputs ``(x_i - center_i) * scale_i`` as sympy expressions."""
    sympy = _sympy()
    return [
        (sympy.Symbol(n, real=True) - exact_number(c)) * exact_number(s)
        for n, c, s in zip(names, center, scale, strict=True)
    ]


def compose(layers: Sequence[Mapping[tuple[int, int], Callable]], inputs: Sequence) -> list:
    """Compose edge expressions into one expression per output.

    Args:
        layers: per layer, ``{(i, j): edge}`` with ``edge(z)`` the sympy expression of the edge
            from node ``i`` applied to ``z``; edges absent from a layer are zero.
        inputs: the expressions of the first layer's input nodes.
    """
    sympy = _sympy()
    nodes = list(inputs)
    for edges in layers:
        width = 1 + max(j for _, j in edges) if edges else 0
        out = [sympy.Integer(0)] * width
        for (i, j), edge in sorted(edges.items()):
            out[j] = out[j] + edge(nodes[i])
        nodes = out
    return nodes


def tidy(expr, max_ops: int = 400):
    """Expand products and sums in exponents (``exp(a + b) -> exp(a) exp(b)``) so constants
    stand alone and can be snapped; skipped for expressions larger than ``max_ops``."""
    sympy = _sympy()
    if sympy.count_ops(expr) > max_ops:
        return expr
    return sympy.expand(expr, deep=True, power_exp=True, log=False, trig=False)


def monic(expr):
    """Powers and logarithms of sums with their leading floating-point factor pulled out:
    ``(a x + b)**p -> a**p (x + b/a)**p`` and ``log(a x + b) -> log(a) + log(x + b/a)`` for
    ``a > 0`` (any ``a`` for whole ``p``), so one constant in front carries the scale. A
    composed formula is otherwise redundant (``c / (a s + b)`` has one constant too many),
    which makes tuning ill-conditioned and snapping fail. An identity where it applies."""
    sympy = _sympy()

    def leading(base):
        """The float factor of the first term of a sum that depends on the inputs."""
        if not base.is_Add:
            return None
        terms = sorted((t for t in base.args if t.free_symbols), key=str)
        if not terms or any(_constant_symbols(t) for t in terms):
            return None
        first = terms[0].as_coeff_Mul()[0]
        return first if first.is_Float and float(first) not in (0.0, 1.0) else None

    def divided(base, factor):
        """``base / factor`` with the leading term's factor exactly 1 (not the float 1.0)."""
        first = sorted((t for t in base.args if t.free_symbols), key=str)[0]
        rest = [t for t in base.args if t is not first]
        return first.as_coeff_Mul()[1] + sympy.Add(*(sympy.expand(t / factor) for t in rest))

    def pull(node):
        if node.is_Pow:
            base, exponent = node.args
            factor = leading(base)
            if factor is not None and (factor > 0 or exponent.is_integer):
                return factor**exponent * divided(base, factor) ** exponent
        if isinstance(node, sympy.log):
            factor = leading(node.args[0])
            if factor is not None and factor > 0:
                return sympy.log(factor) + sympy.log(divided(node.args[0], factor))
        return node

    return _bottom_up(sympy.sympify(expr), pull)


def _constant_symbols(expr) -> set:
    return {s for s in expr.free_symbols if s.name.startswith(CONSTANT_PREFIX)}


def _bottom_up(expr, change: Callable):
    if expr.args:
        expr = expr.func(*(_bottom_up(a, change) for a in expr.args))
    return change(expr)


def simplest(expr, max_ops: int = 20):
    """The shortest of a few cheap rewrites of ``expr`` (powers combined, trigonometric
    functions of sums expanded, common factors pulled out), and of ``sympy.simplify`` for
    expressions of at most ``max_ops`` operations (it can take minutes on larger ones).
    All are identities, so the formula's values do not change."""
    sympy = _sympy()
    combined = sympy.powsimp(expr)
    candidates = [
        expr,
        combined,
        sympy.factor_terms(combined),
        sympy.powsimp(sympy.expand(sympy.expand_trig(expr))),
    ]
    if sympy.count_ops(expr) <= max_ops:
        candidates.append(sympy.simplify(expr))
    return min(candidates, key=sympy.count_ops)


def _irrational_factors() -> list:
    """Factors beyond 1 and pi that physics formulas carry: 1/pi and square roots of 2, pi
    and 2 pi (``1/sqrt(2 pi)`` of a Gaussian)."""
    sympy = _sympy()
    two, pi = sympy.Integer(2), sympy.pi
    roots = [sympy.sqrt(two), sympy.sqrt(pi), sympy.sqrt(2 * pi)]
    return [1 / pi, *roots, *(1 / root for root in roots[1:])]


def snap_candidates(
    value: float, max_denominator: int = 12, rtol: float = 1e-2, irrational_rtol: float = 1e-5
) -> list:
    """Simple numbers near ``value``, simplest first: 0, then rationals ``p/q`` and multiples
    ``p/q * pi`` by increasing ``q`` (so pi comes before 22/7), each within ``rtol``
    (relative) of ``value``; then ``p/q`` times ``1/pi``, ``sqrt(2)``, ``sqrt(pi)``,
    ``sqrt(2 pi)`` or the inverse of one of the last two, only within the tighter
    ``irrational_rtol`` (a rarer constant needs more evidence, and each candidate costs a
    trial)."""
    sympy = _sympy()
    out = [sympy.Integer(0)] if abs(value) < rtol else []
    found, rare = [], []
    factors = [(sympy.Integer(1), rtol, found), (sympy.pi, rtol, found)]
    factors += [(factor, irrational_rtol, rare) for factor in _irrational_factors()]
    for symbol, tolerance, into in factors:
        fraction = Fraction(value / float(symbol)).limit_denominator(max_denominator)
        number = sympy.Rational(fraction.numerator, fraction.denominator) * symbol
        if fraction != 0 and abs(float(number) - value) <= tolerance * abs(value):
            into.append((fraction.denominator, abs(float(number) - value), number))
    simple = [number for _, _, number in sorted(found, key=lambda f: f[:2])]
    return out + simple + [n for _, _, n in sorted(rare, key=lambda f: f[:2]) if n not in simple]


def snap(
    expressions: Sequence,
    error: Callable[[list], float],
    *,
    rtol: float = 1e-2,
    atol: float = 0.0,
    retune: Callable[[list], list] | None = None,
) -> tuple[list, list[dict]]:
    """Replace floating-point constants by simple numbers where the error does not grow.

    Constants are tried one at a time (largest first); a replacement is kept when
    ``error(new) <= error(original) * (1 + rtol) + atol``. After each kept replacement the
    remaining constants may be re-tuned (``retune``).

    Args:
        expressions: sympy expressions (one per output).
        error: error of a list of expressions (for instance the RMSE on the data).
        rtol, atol: how much worse than the unsnapped formula a snapped one may be.
        retune: maps expressions to expressions with re-fitted floating-point constants.

    Returns:
        The snapped expressions and one record per replacement tried.
    """
    sympy = _sympy()
    current = list(expressions)
    limit = error(current) * (1 + rtol) + atol
    records: list[dict] = []
    tried: set = set()
    while True:
        floats = sorted(
            {f for e in current for f in e.atoms(sympy.Float) if f not in tried},
            key=lambda f: -abs(float(f)),
        )
        if not floats:
            return current, records
        value = floats[0]
        tried.add(value)
        for number in snap_candidates(float(value)):
            trial = [tidy(e.xreplace({value: number})) for e in current]
            if retune is not None:
                trial = retune(trial)
            trial_error = error(trial)
            accepted = trial_error <= limit
            records.append(
                {"value": float(value), "to": str(number), "error": trial_error, "kept": accepted}
            )
            if accepted:
                current = trial
                break


def drop_terms(
    expressions: Sequence,
    error: Callable[[list], float],
    limit: float,
    retune: Callable[[list], list] | None = None,
) -> tuple[list, list[dict]]:
    """Remove additive terms (that depend on the inputs) while the error stays within
    ``limit``, re-tuning the remaining constants after each removal; a network often carries
    small corrections that the exact law does not need.

    Returns:
        The shorter expressions and one record per removal tried.
    """
    sympy = _sympy()
    current, records = list(expressions), []
    for index in range(len(current)):
        for term in sympy.Add.make_args(current[index]):
            if not term.free_symbols - {s for s in term.free_symbols if s.name.startswith("_")}:
                continue
            trial = list(current)
            trial[index] = current[index] - term
            if retune is not None:
                trial = retune(trial)
            trial_error = error(trial)
            kept = trial_error <= limit
            records.append({"drop": str(term), "error": trial_error, "kept": kept})
            if kept:
                current = trial
    return current, records


def fine_tune(
    model: FormulaModel, loss: Callable[[FormulaModel], Tensor], *, steps: int = 50
) -> FormulaModel:
    """Fit the model's constants to ``loss(model)`` with L-BFGS (in place; returns the model).

    The loss is divided by its starting value, so the stopping tolerances are relative (a
    formula for small values has a tiny loss). A step that makes the loss non-finite or larger
    is undone.
    """
    params = list(model.constants.values())
    if not params:
        return model
    saved = [p.detach().clone() for p in params]
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=steps,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-16,
        tolerance_change=1e-18,
    )

    before = float(loss(model).detach())
    scale = before if math.isfinite(before) and before > 0 else 1.0

    def closure():  # relative to the first loss, so the tolerances are relative too
        optimizer.zero_grad(set_to_none=True)
        value = loss(model) / scale
        value.backward()
        return value

    with contextlib.suppress(RuntimeError):
        optimizer.step(closure)
    after = float(loss(model).detach())
    if not math.isfinite(after) or after > before:
        with torch.no_grad():
            for p, value in zip(params, saved, strict=True):
                p.copy_(value)
    return model
