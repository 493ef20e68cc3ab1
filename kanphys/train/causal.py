"""Causal weighting in time: later times count once earlier ones are resolved."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["causal_factors"]


def causal_factors(
    t: Tensor, squares: Tensor, t0: float, t1: float, chunks: int, eps: float
) -> tuple[Tensor, Tensor]:
    """Pointwise factors that turn ``mean(r^2)`` into the causally weighted loss.

    The interval ``[t0, t1]`` is cut into ``chunks`` equal slices with mean squares ``L_i``;
    slice ``i`` gets ``w_i = exp(-eps * sum_{j<i} L_j)``. With factor
    ``w_i * N / (M n_i)`` for a point in slice ``i`` (``n_i`` points there, ``M`` non-empty
    slices), ``mean(factor * r^2)`` equals ``(1/M) sum_i w_i L_i``.

    Args:
        t: ``(N,)`` times of the points.
        squares: ``(N,)`` squared residual per point (detached).
        t0: start time.
        t1: end time.
        chunks: number of slices.
        eps: causality parameter.

    Returns:
        The factors ``(N, 1)`` and the slice weights ``w`` ``(chunks,)``.
    """
    squares = squares.detach()
    index = ((t.detach() - t0) / (t1 - t0) * chunks).floor().long().clamp(0, chunks - 1)
    counts = torch.bincount(index, minlength=chunks).to(squares.dtype)
    sums = torch.zeros(chunks, dtype=squares.dtype, device=squares.device).index_add(
        0, index, squares
    )
    losses = sums / counts.clamp(min=1)
    weights = torch.exp(-eps * (torch.cumsum(losses, 0) - losses))
    filled = int((counts > 0).sum())
    factors = weights[index] * t.shape[0] / (filled * counts[index])
    return factors.unsqueeze(1), weights
