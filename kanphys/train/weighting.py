"""Loss balancing between terms (gradient statistics) and pointwise attention weights (RBA)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["balance_from_gradients", "blend", "rba_update", "term_gradients"]


def term_gradients(terms: Mapping[str, Tensor], params: Sequence[Tensor]) -> dict[str, Tensor]:
    """The flat gradient of each term's mean square ``mean(r^2)`` by ``params``."""
    out = {}
    for name, r in terms.items():
        grads = torch.autograd.grad(r.square().mean(), params, retain_graph=True, allow_unused=True)
        out[name] = torch.cat(
            [
                (torch.zeros_like(p) if g is None else g).reshape(-1)
                for g, p in zip(grads, params, strict=True)
            ]
        )
    return out


def balance_from_gradients(
    gradients: Mapping[str, Tensor], equations: Collection[str], mode: str
) -> dict[str, float]:
    """New balancing weights from each term's gradient (before blending).

    ``mode="max"`` (learning-rate annealing): equations get 1, every other term
    ``max|g_eq| / mean|g_i|`` with ``g_eq`` the gradient of the equations' summed loss.
    ``mode="norm"``: every term gets ``sum_j |g_j| / |g_i|`` (2-norms). A term with a zero
    gradient is left out (it keeps its weight).
    """
    if mode == "max":
        reference = sum(g for name, g in gradients.items() if name in equations)
        top = float(reference.abs().max()) if isinstance(reference, Tensor) else 0.0
        out = {name: 1.0 for name in gradients if name in equations}
        for name, g in gradients.items():
            mean = float(g.abs().mean())
            if name not in equations and mean > 0 and top > 0:
                out[name] = top / mean
        return out
    norms = {name: float(g.norm()) for name, g in gradients.items()}
    total = sum(norms.values())
    return {name: total / n for name, n in norms.items() if n > 0}


def blend(old: Mapping[str, float], new: Mapping[str, float], alpha: float) -> dict[str, float]:
    """``alpha * old + (1 - alpha) * new`` per term (old weights start at 1)."""
    out = dict(old)
    for name, value in new.items():
        out[name] = alpha * old.get(name, 1.0) + (1 - alpha) * value
    return out


def rba_update(weights: Tensor, r: Tensor, gamma: float, eta: float) -> Tensor:
    """One residual-based attention step: ``gamma * weights + eta * |r| / max|r|``.

    Args:
        weights: ``(N, 1)`` current weights.
        r: ``(N, k)`` residuals of the term (``|r|`` is the row 2-norm).
        gamma: memory.
        eta: learning rate.
    """
    size = r.detach().square().sum(dim=1, keepdim=True).sqrt().to(weights)
    top = size.max()
    return gamma * weights + (eta * size / top if top > 0 else 0.0)
