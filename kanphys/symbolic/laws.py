"""From a trained KAN surrogate to a formula: sample the edges, fit them, compose, tune, snap.

:func:`fit_edges_of` samples every edge of a KAN over the range its inputs take at given points
and fits the library to all of them at once; :func:`formula_of` composes the chosen fits into a
sympy expression per output, tunes its constants against a loss, snaps them to simple numbers
and simplifies. Neither changes the model.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from kanphys.kan.network import KAN
from kanphys.model import Surrogate
from kanphys.symbolic.fit import EdgeFit, FitOptions, fit_edges
from kanphys.symbolic.formula import (
    FormulaModel,
    affine_inputs,
    compose,
    drop_terms,
    fine_tune,
    monic,
    simplest,
    snap,
    tidy,
)
from kanphys.symbolic.library import Primitive, make_library

__all__ = ["EdgeReport", "SymbolicOptions", "SymbolicResult", "fit_edges_of", "formula_of"]

log = logging.getLogger(__name__)

Edge = tuple[int, int, int]
NUMERIC = "numeric"
DEAD = "0"


@dataclass(frozen=True)
class SymbolicOptions:
    """How a KAN is turned into a formula.

    Attributes:
        library: names of the library functions to try (None: all of the default library).
        extra: user primitives added to the library.
        fit: grid sizes and ranking of the edge fits.
        samples: points per edge on its input range.
        fixed: edges ``(layer, source, target)`` fixed by hand to a library function's name,
            or to ``"numeric"`` to keep the spline.
        tune_steps: L-BFGS iterations when tuning constants against the loss (0: no tuning).
        snap: drop additive terms, then replace constants by simple rationals and multiples of
            pi, where that does not worsen the error.
        snap_rtol: how much worse (relative) a snapped formula may be.
        snap_atol: how much worse (absolute, as a fraction of the error of the zero
            function) a snapped formula may be.
        simplify: rewrite the final expression by identities when that makes it shorter.
        max_constants: above this many constants, terms are not dropped and constants are
            snapped without re-tuning the others (each re-tuning costs a fit).
        dead_tolerance: an edge whose spread is below this fraction of the largest edge spread
            of its layer is a constant.
        transform: applied to each composed expression before tuning, e.g. ``sympy.exp`` for
            a network trained on the logarithm of the outputs (None: as composed).
    """

    library: tuple[str, ...] | None = None
    extra: tuple[Primitive, ...] = ()
    fit: FitOptions = field(default_factory=FitOptions)
    samples: int = 201
    fixed: Mapping[Edge, str] = field(default_factory=dict)
    tune_steps: int = 100
    snap: bool = True
    snap_rtol: float = 1e-2
    snap_atol: float = 1e-9
    simplify: bool = True
    max_constants: int = 40
    dead_tolerance: float = 1e-8
    transform: Callable | None = None


@dataclass(frozen=True)
class EdgeReport:
    """One edge: where it is, its ranked candidates, the choice, and its samples.

    Attributes:
        edge: ``(layer, source, target)``.
        fits: candidates, best first (empty for a constant edge).
        chosen: the fit used in the formula.
        x: ``(n,)`` edge inputs sampled over their range.
        y: ``(n,)`` the network's edge values there.
    """

    edge: Edge
    fits: tuple[EdgeFit, ...]
    chosen: EdgeFit
    x: np.ndarray
    y: np.ndarray

    def to_dict(self, top: int = 3) -> dict:
        layer, source, target = self.edge
        return {
            "layer": layer,
            "source": source,
            "target": target,
            "chosen": self.chosen.to_dict(),
            "candidates": [f.to_dict() for f in self.fits[:top]],
        }


@dataclass
class SymbolicResult:
    """What :func:`formula_of` found.

    Attributes:
        expressions: one sympy expression per output (input names as symbols).
        inputs: input names.
        outputs: output names.
        edges: the edge reports.
        formula: a :class:`FormulaModel` evaluating ``expressions``.
        snapping: one record per attempted replacement of a constant.
        error_before_snap: the loss-based error after tuning, before snapping.
        error: the loss-based error of the final formula.
    """

    expressions: list
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    edges: list[EdgeReport]
    formula: FormulaModel
    snapping: list[dict]
    error_before_snap: float
    error: float


def _kan(model: Surrogate) -> KAN:
    if not isinstance(getattr(model, "net", None), KAN):
        raise TypeError(f"symbolic fitting needs a Surrogate around a KAN, got {type(model)}")
    if getattr(model, "constraints", None) is not None:
        raise TypeError(
            "symbolic fitting does not support surrogates with hard constraints (periodic "
            "embeddings, exact-value transforms) yet"
        )
    return model.net


def _edge_samples(layer, z: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Inputs ``(n, n_in)`` spanning each input's range in ``z`` and edge values ``(n, n_in,
    n_out)`` there."""
    lo, hi = z.min(0).values, z.max(0).values
    unit = torch.linspace(0, 1, n, dtype=z.dtype, device=z.device).unsqueeze(1)
    x = lo + (hi - lo) * unit
    with torch.no_grad():
        return x, layer.edge_values(x)


def fit_edges_of(
    model: Surrogate, points: Tensor, options: SymbolicOptions = SymbolicOptions()
) -> list[EdgeReport]:
    """Fit the library to every edge of the surrogate's KAN.

    Args:
        model: a surrogate around a KAN (unchanged).
        points: ``(N, d)`` physical points whose layer inputs set each edge's sampled range.
        options: library, fitting and fixed edges.

    Returns:
        One report per edge, layer by layer (constant edges get the ``"0"`` fit: a constant).

    Raises:
        ValueError: for a fixed edge that does not exist or names an unknown function.
    """
    net = _kan(model)
    library = make_library(options.library, options.extra)
    _check_fixed(net, options.fixed, library)
    inputs = net.layer_inputs(model.normalize(points.detach()))
    pending: list[tuple[Edge, Tensor, Tensor]] = []
    reports: dict[Edge, EdgeReport] = {}
    for index, (layer, z) in enumerate(zip(net.layers, inputs, strict=True)):
        x, values = _edge_samples(layer, z, options.samples)
        spread = values.std(0)
        largest = float(spread.max())
        for i in range(layer.n_in):
            for j in range(layer.n_out):
                edge, y = (index, i, j), values[:, i, j]
                constant = float(spread[i, j]) <= options.dead_tolerance * max(largest, 1e-300)
                constant = constant or options.fixed.get(edge) == DEAD
                if constant or float(x[-1, i] - x[0, i]) <= 0:
                    fit = EdgeFit(DEAD, 0.0, 0.0, 0.0, float(y.mean()), 1.0, 0.0, -np.inf)
                    reports[edge] = EdgeReport(edge, (), fit, _np(x[:, i]), _np(y))
                else:
                    pending.append((edge, x[:, i], y))
    if pending:
        xs = torch.stack([p[1] for p in pending])
        ys = torch.stack([p[2] for p in pending])
        ranked = fit_edges(xs, ys, library, options.fit)
        for (edge, x, y), fits in zip(pending, ranked, strict=True):
            chosen = _choose(fits, options.fixed.get(edge))
            reports[edge] = EdgeReport(edge, tuple(fits), chosen, _np(x), _np(y))
    return [reports[e] for e in sorted(reports)]


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def _check_fixed(net: KAN, fixed: Mapping[Edge, str], library) -> None:
    for edge, name in fixed.items():
        layer, i, j = edge
        ok = 0 <= layer < len(net.layers) and 0 <= i < net.widths[layer]
        if not ok or not 0 <= j < net.widths[layer + 1]:
            raise ValueError(f"fixed edge {edge} does not exist in a KAN of widths {net.widths}")
        if name not in library and name != NUMERIC:
            raise ValueError(f"fixed edge {edge}: unknown function {name!r}")


def _choose(fits: list[EdgeFit], fixed: str | None) -> EdgeFit:
    if fixed is None:
        return fits[0]
    if fixed == NUMERIC:
        return EdgeFit(NUMERIC, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, -np.inf)
    return next(f for f in fits if f.name == fixed)


def _edge_expression(fit: EdgeFit, library: Mapping[str, Primitive], numeric_name: str):
    """``z -> c * f(a z + b) + d`` as a sympy expression builder."""
    import sympy

    if fit.name == DEAD:
        return lambda z: sympy.Float(fit.d, 17)
    if fit.name == NUMERIC:
        return lambda z: sympy.Function(numeric_name)(z)
    primitive = library[fit.name]
    a = sympy.Integer(round(fit.a)) if primitive.scale != "free" else sympy.Float(fit.a, 17)
    b = sympy.Float(fit.b, 17) if primitive.shift else sympy.Integer(0)
    c, d = sympy.Float(fit.c, 17), sympy.Float(fit.d, 17)
    if fit.name == "x":
        return lambda z: c * z + d
    return lambda z: c * primitive.sympy_function(a * z + b) + d


def _numeric_edge(layer, i: int, j: int) -> Callable[[Tensor], Tensor]:
    """The spline of edge ``i -> j`` (a copy of the layer) as a function of a column ``(N, 1)``."""
    layer = copy.deepcopy(layer)

    def edge(z: Tensor) -> Tensor:
        full = z.new_zeros(z.shape[0], layer.n_in)
        full = full.index_copy(1, torch.tensor([i], device=z.device), z.reshape(-1, 1))
        return layer.to(z.dtype).edge_values(full)[:, i, j : j + 1]

    return edge


def formula_of(
    model: Surrogate,
    points: Tensor,
    loss: Callable[[torch.nn.Module], Tensor],
    *,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    options: SymbolicOptions = SymbolicOptions(),
) -> SymbolicResult:
    """Fit, compose, tune, snap and simplify a formula for every output of ``model``.

    Args:
        model: a surrogate around a (pruned) KAN; unchanged.
        points: ``(N, d)`` physical points (data or collocation points).
        loss: the training loss of a model (a 0-d tensor), e.g. the data misfit or the PDE
            residual loss; the formula's constants are tuned against it and snapping is
            judged by ``sqrt(loss)``.
        inputs: input names (the formula's symbols).
        outputs: output names.
        options: see :class:`SymbolicOptions`.
    """
    import sympy

    reports = fit_edges_of(model, points, options)
    expressions, numeric = _compose(model, reports, inputs, options)
    if options.transform is not None:
        expressions = [options.transform(e) for e in expressions]
    expressions = [tidy(monic(e)) for e in expressions]
    parameters = {k: float(v) for k, v in model.params.items()}
    settings = {"outputs": outputs, "parameters": parameters, "numeric": numeric}

    def build(exprs) -> FormulaModel:
        return FormulaModel.from_expressions(exprs, inputs, **settings, dtype=points.dtype)

    def error(exprs) -> float:
        value = float(loss(build(exprs)).detach())
        return max(value, 0.0) ** 0.5 if np.isfinite(value) else float("inf")

    def retune(exprs, steps: int = options.tune_steps) -> list:
        if steps <= 0:
            return exprs
        return fine_tune(build(exprs), loss, steps=steps).sympy()

    expressions = retune(expressions)
    before = error(expressions)
    records: list[dict] = []
    if options.snap:
        atol = options.snap_atol * error([sympy.Integer(0)] * len(outputs))
        small = sum(len(e.atoms(sympy.Float)) for e in expressions) <= options.max_constants
        if small:
            expressions, records = drop_terms(
                expressions, error, before * (1 + options.snap_rtol) + atol, retune
            )
        expressions, snapped = snap(
            expressions,
            error,
            rtol=options.snap_rtol,
            atol=atol,
            retune=(lambda e: retune(e, options.tune_steps // 4)) if small else None,
        )
        records += snapped
    if options.simplify:
        expressions = [simplest(e) for e in expressions]
    final = build(expressions)
    return SymbolicResult(
        final.sympy(),
        tuple(inputs),
        tuple(outputs),
        reports,
        final,
        records,
        before,
        error(expressions),
    )


def _compose(model: Surrogate, reports, inputs, options: SymbolicOptions):
    """The chosen edge fits composed (with the input normalisation) into one expanded
    expression per output, and the torch functions of the edges left numeric."""
    net = _kan(model)
    library = make_library(options.library, options.extra)
    numeric: dict[str, Callable] = {}
    layers: list[dict] = [{} for _ in net.layers]
    for report in reports:
        layer, i, j = report.edge
        name = f"phi_{layer}_{i}_{j}"
        if report.chosen.name == NUMERIC:
            numeric[name] = _numeric_edge(net.layers[layer], i, j)
        layers[layer][(i, j)] = _edge_expression(report.chosen, library, name)
    normalized = affine_inputs(inputs, model.center.tolist(), model.inv_half_width.tolist())
    return [tidy(e) for e in compose(layers, normalized)], numeric
