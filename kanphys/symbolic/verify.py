"""Checking a formula on points it was not fitted on, next to the network it came from.

For data: RMSE, relative L2 and largest error on held-out samples. For a PDE: the RMS of every
residual (equations and conditions) on freshly drawn collocation points, and the relative L2
and largest error against the exact or reference solution on the evaluation grid.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from kanphys.problem import Problem

__all__ = ["data_metrics", "problem_metrics"]


def _predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    points = torch.as_tensor(x, dtype=model.dtype, device=model.device)
    with torch.no_grad():
        return model(points).detach().to(torch.float64).cpu().numpy()


def _errors(predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    error = predicted - y
    norm = float(np.linalg.norm(y))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "rel_l2": float(np.linalg.norm(error) / norm) if norm > 0 else float("nan"),
        "max_abs_error": float(np.abs(error).max()),
    }


def data_metrics(
    network: nn.Module, formula: nn.Module, x: np.ndarray, y: np.ndarray
) -> dict[str, dict[str, float]]:
    """Errors of the network and of the formula on held-out samples ``x`` ``(N, d)``,
    ``y`` ``(N, m)``, as ``{"network": {...}, "formula": {...}}``."""
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    return {
        "network": _errors(_predict(network, x), y),
        "formula": _errors(_predict(formula, x), y),
    }


def residual_rms(
    problem: Problem, model: nn.Module, batch: Mapping, *, autograd: bool = True
) -> dict[str, float]:
    """RMS of every residual term of ``model`` on ``batch`` (tensors of the model's dtype)."""
    from collections import defaultdict

    from kanphys.derivatives.analytic import Requests
    from kanphys.train.loss import residuals

    requests = None if autograd else defaultdict(Requests)
    terms = residuals(problem, model, batch, requests)
    return {name: float(r.detach().square().mean().sqrt()) for name, r in terms.items()}


def problem_metrics(
    problem: Problem,
    network: nn.Module,
    formula: nn.Module,
    *,
    seed: int = 12345,
    interior: int = 4096,
    boundary: int = 512,
    resolution: int | None = None,
) -> dict[str, dict]:
    """PDE residuals on fresh collocation points and errors against the exact solution on
    the evaluation grid, for the network and for the formula.

    Args:
        problem: the problem both models solve.
        network: the trained surrogate.
        formula: the formula model.
        seed: seed of the fresh collocation points (not the training seed).
        interior, boundary: numbers of fresh points.
        resolution: evaluation grid points per axis.
    """
    from kanphys.evaluate import error_metrics, evaluate_fields, evaluation_grid
    from kanphys.train.batch import sample_points, to_tensors
    from kanphys.train.plan import Sobol

    sampler = Sobol(interior=interior, boundary=boundary, initial=boundary)
    drawn = sample_points(problem, sampler, seed=seed, epoch=0)
    grid = evaluation_grid(problem.domain, resolution)
    out: dict[str, dict] = {}
    for name, model in (("network", network), ("formula", formula)):
        batch = to_tensors(drawn, model.dtype, model.device)
        metrics: dict = {"residual_rms": residual_rms(problem, model, batch)}
        if problem.exact:
            values = evaluate_fields(problem, model, grid.points, residuals=False)
            metrics.update(error_metrics(problem, values))
        out[name] = metrics
    return out
