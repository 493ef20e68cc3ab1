"""Residual-based adaptive sampling of the interior points: RAR and RAD.

Both draw fresh candidate points, measure the equations' residual there and either add the
worst points to the set (:class:`~kanphys.train.plan.RAR`, Lu et al. 2021) or resample the
whole set from a residual density (:class:`~kanphys.train.plan.RAD`, Wu et al. 2023). The
candidates and the random choice depend only on the seed and the round, so runs are
reproducible and resume exactly (the chosen points are kept in the checkpoint).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from kanphys.problem import Problem
from kanphys.train.batch import INTERIOR, TermPoints
from kanphys.train.loss import residuals
from kanphys.train.plan import RAD, RAR

__all__ = ["adapt", "choose_rad", "choose_rar", "residual_norm"]

SALT = 7919  # keeps the candidate draws apart from the collocation draws


def _seed(seed: int, round_: int, purpose: int = 0) -> int:
    return int(np.random.SeedSequence([seed, SALT, purpose, round_]).generate_state(1)[0])


def residual_norm(problem: Problem, model: nn.Module, points: Tensor, chunk: int = 8192) -> Tensor:
    """``|r|`` ``(N,)``: the 2-norm over all equations' residual columns at ``points``."""
    parts = []
    for start in range(0, points.shape[0], chunk):
        batch = {INTERIOR: TermPoints(points[start : start + chunk])}
        terms = residuals(problem, model, batch)
        stacked = torch.cat([terms[name].detach() for name in problem.equations], dim=1)
        parts.append(stacked.square().sum(dim=1).sqrt())
    return torch.cat(parts)


def choose_rar(norm: Tensor, add: int) -> Tensor:
    """Indices of the ``add`` largest residuals (largest first)."""
    return torch.topk(norm, min(add, norm.shape[0])).indices


def choose_rad(norm: Tensor, n: int, k: float, c: float, seed: int) -> np.ndarray:
    """``n`` distinct indices drawn with probability ``|r|^k / mean(|r|^k) + c``."""
    density = norm.double().cpu().numpy() ** k
    mean = density.mean()
    density = (density / mean if mean > 0 else np.ones_like(density)) + c
    generator = np.random.default_rng(seed)
    size = min(n, int((density > 0).sum()))
    return generator.choice(density.shape[0], size=size, replace=False, p=density / density.sum())


def adapt(
    problem: Problem,
    model: nn.Module,
    method: RAR | RAD,
    current: np.ndarray | None,
    *,
    n_interior: int,
    sampling: str,
    seed: int,
    round_: int,
) -> np.ndarray:
    """One round of adaptive sampling; returns the new adaptive point set ``(M, d)``.

    Args:
        problem: the problem (its equations give the residual).
        model: the current surrogate.
        method: the :class:`RAR` or :class:`RAD` settings.
        current: the RAR points added so far (None: none); unused by RAD.
        n_interior: the interior count (the size of a RAD set).
        sampling: the sampler's method for the candidates.
        seed: the run's seed.
        round_: the adaptation round (0, 1, ...).

    Returns:
        RAR: the added points so far plus the new ones; RAD: the new interior set.
    """
    candidates = problem.domain.sample_interior(
        method.candidates, seed=_seed(seed, round_), method=sampling
    )
    reference = next(model.parameters())
    points = torch.as_tensor(candidates, dtype=reference.dtype, device=reference.device)
    norm = residual_norm(problem, model, points)
    if isinstance(method, RAR):
        room = method.max_points - (0 if current is None else len(current))
        chosen = candidates[choose_rar(norm, max(min(method.add, room), 0)).cpu().numpy()]
        return chosen if current is None else np.concatenate([current, chosen])
    return candidates[choose_rad(norm, n_interior, method.k, method.c, _seed(seed, round_, 1))]
