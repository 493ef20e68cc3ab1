"""Collocation points for every loss term, drawn reproducibly from (seed, epoch, term)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kanphys.problem import Data, Problem, condition_region
from kanphys.train.plan import Sampler

__all__ = ["INTERIOR", "TermPoints", "sample_points", "to_tensors"]

INTERIOR = "__interior__"


@dataclass(frozen=True)
class TermPoints:
    """Points of one loss term: coordinates ``(N, d)``, normals ``(N, d)`` or None, and observed
    values ``(N, k)`` for data terms."""

    points: np.ndarray | Tensor
    normals: np.ndarray | Tensor | None = None
    values: np.ndarray | Tensor | None = None


def _term_seed(seed: int, epoch: int, term: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, term]).generate_state(1)[0])


def sample_points(
    problem: Problem, sampler: Sampler, *, seed: int, epoch: int
) -> dict[str, TermPoints]:
    """Draw the interior points (key ``INTERIOR``) and the points of every condition.

    Data conditions keep their fixed points. The draw depends only on ``(seed, epoch)``.
    """
    n = sampler.count("interior", INTERIOR)
    interior = problem.domain.sample_interior(
        n, seed=_term_seed(seed, epoch, 0), method=sampler.method
    )
    batch = {INTERIOR: TermPoints(interior)}
    for index, condition in enumerate(problem.conditions, start=1):
        if isinstance(condition, Data):
            batch[condition.name] = TermPoints(condition.points, values=condition.values)
            continue
        region = condition_region(problem, condition)
        count = sampler.count(region.kind, condition.name)
        drawn = region.sample(count, seed=_term_seed(seed, epoch, index), method=sampler.method)
        batch[condition.name] = TermPoints(drawn.points, drawn.normals)
    return batch


def to_tensors(batch: dict[str, TermPoints], dtype: torch.dtype, device) -> dict[str, TermPoints]:
    """The same points as tensors of the model's dtype and device."""

    def convert(a):
        return None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

    return {
        k: TermPoints(convert(t.points), convert(t.normals), convert(t.values))
        for k, t in batch.items()
    }
