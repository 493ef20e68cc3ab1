"""Residuals of every loss term and their weighted mean-square loss."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from kanphys.problem import Data, Problem, ProblemError, as_column
from kanphys.train.batch import INTERIOR, TermPoints

__all__ = ["TrainingError", "residuals", "total_loss"]


class TrainingError(RuntimeError):
    """Training cannot go on (for instance a loss term became NaN)."""


def residuals(
    problem: Problem, model: nn.Module, batch: Mapping[str, TermPoints]
) -> dict[str, Tensor]:
    """Residuals ``(N, k)`` of every equation and condition, by term name."""
    out: dict[str, Tensor] = {}
    if problem.equations:
        state = problem.state(model, batch[INTERIOR].points)
        for name, equation in problem.equations.items():
            value = _call(f"equation {name!r}", equation, state)
            out[name] = as_column(value, state.n_points, f"equation {name!r}")
    for condition in problem.conditions:
        term = batch[condition.name]
        state = problem.state(model, term.points, term.normals)
        what = f"condition {condition.name!r}"
        if isinstance(condition, Data):
            out[condition.name] = _call(what, condition.evaluate, state, term.values)
        else:
            value = _call(what, condition.evaluate, state)
            out[condition.name] = as_column(value, state.n_points, what)
    return out


def _call(what: str, function, *args) -> Tensor:
    """``function(*args)``, with any failure reported under the term's name."""
    try:
        value = function(*args)
    except ProblemError:
        raise
    except Exception as error:
        raise ProblemError(f"{what} failed: {type(error).__name__}: {error}") from error
    if not isinstance(value, Tensor):
        raise ProblemError(f"{what} returned {type(value).__name__}; expected a tensor")
    return value


def total_loss(
    terms: Mapping[str, Tensor], weights: Mapping[str, float]
) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of mean squares, and each term's (unweighted) mean square as a float.

    Raises:
        TrainingError: naming the terms whose loss is not finite.
    """
    squares = {name: r.square().mean() for name, r in terms.items()}
    values = {name: float(v.detach()) for name, v in squares.items()}
    bad = [name for name, v in values.items() if not torch.isfinite(torch.tensor(v))]
    if bad:
        raise TrainingError(
            f"loss became non-finite in {', '.join(bad)}; the last checkpoint is kept"
        )
    total = sum(weights.get(name, 1.0) * v for name, v in squares.items())
    return total, values
