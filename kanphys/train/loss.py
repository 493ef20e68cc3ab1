"""Residuals of every loss term and their weighted mean-square loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from torch import Tensor, nn

from kanphys.derivatives.analytic import NeedsAutograd, Requests
from kanphys.derivatives.state import State
from kanphys.problem import Data, Periodic, Problem, ProblemError, as_column
from kanphys.train.batch import INTERIOR, TermPoints

__all__ = ["TrainingError", "check_finite", "regularization", "residuals", "total_loss"]


class TrainingError(RuntimeError):
    """Training cannot go on (for instance a loss term became NaN)."""


def residuals(
    problem: Problem,
    model: nn.Module,
    batch: Mapping[str, TermPoints],
    requests: Mapping[str, Requests] | None = None,
) -> dict[str, Tensor]:
    """Residuals ``(N, k)`` of every equation and condition, by term name.

    Args:
        problem: the problem.
        model: the surrogate.
        batch: points per term (``INTERIOR`` for the equations); terms missing from it are
            skipped.
        requests: per-term request records (key ``INTERIOR`` for the equations), e.g. a
            ``defaultdict(Requests)``; given, KAN
            surrogates use the closed-form derivative engine. Terms that differentiate
            expressions switch to autograd by themselves.
    """

    def record(name: str) -> Requests | None:
        return None if requests is None else requests[name]

    out: dict[str, Tensor] = {}
    if problem.equations and INTERIOR in batch:
        term = batch[INTERIOR]
        out.update(_with_retry(lambda r: _equations(problem, model, term, r), record(INTERIOR)))
    for condition in problem.conditions:
        if condition.name not in batch:
            continue
        term = batch[condition.name]

        def evaluate(record, condition=condition, term=term):
            return {condition.name: _condition(problem, model, condition, term, record)}

        out.update(_with_retry(evaluate, record(condition.name)))
    return out


def _with_retry(evaluate: Callable, record: Requests | None) -> dict[str, Tensor]:
    """Evaluate a term; redo it once if it switched to autograd or asked for new derivatives,
    so that the result always comes from one pass with the term's full set of derivatives."""
    if record is not None:
        record.changed = False
    try:
        out = evaluate(record)
    except NeedsAutograd:
        return evaluate(record)
    if record is not None and record.changed:
        record.changed = False
        out = evaluate(record)
    return out


def _equations(problem: Problem, model, term: TermPoints, record) -> dict[str, Tensor]:
    state = problem.state(model, term.points, requests=record)
    out = {}
    for name, equation in problem.equations.items():
        value = _call(f"equation {name!r}", equation, state)
        out[name] = as_column(value, state.n_points, f"equation {name!r}")
    return out


def _condition(problem: Problem, model, condition, term: TermPoints, record) -> Tensor:
    state: State = problem.state(model, term.points, term.normals, requests=record)
    what = f"condition {condition.name!r}"
    if isinstance(condition, Periodic):
        partner = condition.partner(term.points, problem.coordinates)
        high = problem.state(model, partner, term.normals, requests=record)
        return _call(what, condition.evaluate, state, high)
    if isinstance(condition, Data):
        return _call(what, condition.evaluate, state, term.values)
    return as_column(_call(what, condition.evaluate, state), state.n_points, what)


def _call(what: str, function, *args) -> Tensor:
    """``function(*args)``, with any failure reported under the term's name."""
    try:
        value = function(*args)
    except (ProblemError, NeedsAutograd):
        raise
    except Exception as error:
        raise ProblemError(f"{what} failed: {type(error).__name__}: {error}") from error
    if not isinstance(value, Tensor):
        raise ProblemError(f"{what} returned {type(value).__name__}; expected a tensor")
    return value


def check_finite(values: Mapping[str, float]) -> None:
    """Raise :class:`TrainingError` naming the terms whose loss is not finite."""
    bad = [name for name, v in values.items() if not math.isfinite(v)]
    if bad:
        raise TrainingError(
            f"loss became non-finite in {', '.join(bad)}; the last checkpoint is kept"
        )


def total_loss(
    terms: Mapping[str, Tensor],
    weights: Mapping[str, float],
    factors: Mapping[str, Tensor] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of mean squares, and each term's (unweighted) mean square as a float.

    Args:
        terms: residuals ``(N, k)`` by term name.
        weights: a weight per term (default 1).
        factors: optional pointwise factors ``(N, 1)`` per term that multiply the squared
            residuals inside the mean (causal and attention weights).

    Raises:
        TrainingError: naming the terms whose loss is not finite.
    """
    factors = factors or {}
    values = {name: float(r.detach().square().mean()) for name, r in terms.items()}
    check_finite(values)
    total = sum(
        weights.get(name, 1.0)
        * (r.square() if name not in factors else factors[name] * r.square()).mean()
        for name, r in terms.items()
    )
    return total, values


def regularization(regularize, model: nn.Module, batch: Mapping[str, TermPoints]) -> float:
    """Backpropagate a plan's regulariser on the interior points; return its value (0 if None).

    ``regularize.penalty(model, points)`` gives a 0-d tensor (see
    :class:`kanphys.symbolic.Sparsify`).
    """
    if regularize is None:
        return 0.0
    penalty = regularize.penalty(model, batch[INTERIOR].points)
    penalty.backward()
    return float(penalty.detach())
