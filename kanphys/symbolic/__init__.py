"""Symbolic laws from trained KANs: sparsify, fit edges, compose, verify, export.

The steps are pure functions over a trained surrogate (the model is never changed; pruning
returns a new one):

- :class:`Sparsify` (a plan's ``regularize``), :func:`attribution`, :func:`prune`;
- :func:`fit_edges` (vectorised over edges and library functions), :func:`fit_edges_of`;
- :func:`formula_of` (compose, tune, snap, simplify) giving a :class:`FormulaModel`;
- :func:`data_metrics`, :func:`problem_metrics` (verification next to the network);
- :func:`latex`, :func:`python_source`, :func:`formula_json`, :func:`load_formula`;
- :func:`regress` (tabular data) and :func:`symbolic_run` (a run directory).
"""

from kanphys.symbolic.cli import symbolic_run
from kanphys.symbolic.export import (
    edge_figure,
    formula_json,
    latex,
    load_formula,
    python_source,
    write_formula_fields,
)
from kanphys.symbolic.fit import EdgeFit, FitOptions, fit_edges
from kanphys.symbolic.formula import FormulaModel, fine_tune, snap, snap_candidates, to_torch
from kanphys.symbolic.laws import (
    EdgeReport,
    SymbolicOptions,
    SymbolicResult,
    fit_edges_of,
    formula_of,
)
from kanphys.symbolic.library import DEFAULT_LIBRARY, Primitive, make_library
from kanphys.symbolic.regress import Regression, RegressOptions, regress
from kanphys.symbolic.sparsify import Attribution, Sparsify, attribution, prune
from kanphys.symbolic.verify import data_metrics, problem_metrics

__all__ = [
    "DEFAULT_LIBRARY",
    "Attribution",
    "EdgeFit",
    "EdgeReport",
    "FitOptions",
    "FormulaModel",
    "Primitive",
    "RegressOptions",
    "Regression",
    "Sparsify",
    "SymbolicOptions",
    "SymbolicResult",
    "attribution",
    "data_metrics",
    "edge_figure",
    "fine_tune",
    "fit_edges",
    "fit_edges_of",
    "formula_json",
    "formula_of",
    "latex",
    "load_formula",
    "make_library",
    "problem_metrics",
    "prune",
    "python_source",
    "regress",
    "snap",
    "snap_candidates",
    "symbolic_run",
    "to_torch",
    "write_formula_fields",
]
