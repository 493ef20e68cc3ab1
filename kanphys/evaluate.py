"""Evaluating a trained surrogate: a dense grid over the domain, fields, errors and residuals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kanphys.derivatives.analytic import NeedsAutograd, Requests, supports_analytic
from kanphys.geometry import Domain
from kanphys.problem import Problem, as_column

__all__ = [
    "DEFAULT_RESOLUTION",
    "EvaluationGrid",
    "error_metrics",
    "evaluate_fields",
    "evaluation_grid",
]

DEFAULT_RESOLUTION = {1: 1001, 2: 101, 3: 41, 4: 17}
CELL_TYPES = {1: "line", 2: "quad", 3: "hexahedron"}


@dataclass(frozen=True)
class EvaluationGrid:
    """Points ``(M, d)`` of a regular grid inside a domain, with its cells ``(C, 2^d)``."""

    points: np.ndarray
    cells: np.ndarray
    cell_type: str


def evaluation_grid(domain: Domain, resolution: int | None = None) -> EvaluationGrid:
    """A regular grid over the domain's bounding box, keeping the cells inside the domain.

    Cells with a vertex outside a CSG domain are removed (not set to zero), and points no kept
    cell uses are dropped.

    Args:
        domain: the domain (time counts as one more axis).
        resolution: points per axis (default by dimension: 1001, 101, 41).
    """
    dim = domain.dim
    if dim not in CELL_TYPES:
        raise ValueError(f"evaluation grids support 1 to 3 coordinates, the domain has {dim}")
    n = resolution or DEFAULT_RESOLUTION[dim]
    lower, upper = domain.bounds
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(lower, upper, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    cells = _structured_cells((n,) * dim)
    inside = domain.contains(points, tol=1e-9)
    cells = cells[inside[cells].all(axis=1)]
    used = np.unique(cells)
    renumber = np.full(points.shape[0], -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    return EvaluationGrid(points[used], renumber[cells], CELL_TYPES[dim])


def _structured_cells(shape: tuple[int, ...]) -> np.ndarray:
    """Connectivity of the cells of a structured grid in VTK vertex order."""
    index = np.arange(np.prod(shape)).reshape(shape)
    offsets = {1: [(0,), (1,)], 2: [(0, 0), (1, 0), (1, 1), (0, 1)]}
    if len(shape) == 3:
        offsets[3] = [(*o, 0) for o in offsets[2]] + [(*o, 1) for o in offsets[2]]
    vertices = []
    for offset in offsets[len(shape)]:
        shifted = tuple(slice(o, o + s - 1) for o, s in zip(offset, shape, strict=True))
        vertices.append(index[shifted].reshape(-1))
    return np.stack(vertices, axis=1)


def evaluate_fields(
    problem: Problem,
    model: nn.Module,
    points: np.ndarray,
    *,
    chunk: int = 8192,
    residuals: bool = True,
) -> dict[str, np.ndarray]:
    """Fields, spatial gradients, exact values, errors and equation residuals at ``points``.

    Returns arrays keyed ``u`` ``(M,)``, ``grad_u`` ``(M, d_space)``, ``u_exact``, ``u_error``
    (prediction minus exact) and ``residual_<equation>``; evaluated in chunks of ``chunk``
    points so memory stays bounded.
    """
    parts = [
        _evaluate_chunk(problem, model, points[i : i + chunk], residuals)
        for i in range(0, points.shape[0], chunk)
    ]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _evaluate_chunk(problem: Problem, model: nn.Module, points: np.ndarray, residuals: bool):
    x = torch.as_tensor(points, dtype=model.dtype, device=model.device)
    out = None
    if supports_analytic(model):
        try:
            with torch.no_grad():
                out = _model_values(problem, model, x, residuals, Requests())
        except NeedsAutograd:
            out = None
    if out is None:
        out = _model_values(problem, model, x, residuals, None)
    for name, exact in problem.exact.items():
        value = _numpy(as_column(torch.as_tensor(exact(x)), len(x), f"exact solution of {name!r}"))
        out[f"{name}_exact"] = value[:, 0]
        out[f"{name}_error"] = out[name] - value[:, 0]
    return out


def _model_values(
    problem: Problem, model: nn.Module, x: torch.Tensor, residuals: bool, requests: Requests | None
) -> dict[str, np.ndarray]:
    """Fields, gradients and residuals; closed-form derivatives when ``requests`` is given."""
    out: dict[str, np.ndarray] = {}
    state = problem.state(model, x, requests=requests)
    for name in problem.fields:
        out[name] = _numpy(state.field(name))[:, 0]
        out[f"grad_{name}"] = _numpy(state.grad(state.field(name)))
    if residuals:
        for name, equation in problem.equations.items():
            out[f"residual_{name}"] = _numpy(as_column(equation(state), len(x), name))[:, 0]
    return out


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float64).cpu().numpy()


def error_metrics(problem: Problem, values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """``rel_l2`` and ``max_abs_error`` per field with an exact solution."""
    rel, worst = {}, {}
    for name in problem.exact:
        error, exact = values[f"{name}_error"], values[f"{name}_exact"]
        norm = np.linalg.norm(exact)
        rel[name] = (
            float(np.linalg.norm(error) / norm) if norm > 0 else float(np.linalg.norm(error))
        )
        worst[name] = float(np.abs(error).max())
    return {"rel_l2": rel, "max_abs_error": worst}
