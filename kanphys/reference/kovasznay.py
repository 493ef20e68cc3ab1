"""Kovasznay flow: an exact steady solution of the Navier-Stokes equations (Kovasznay 1948).

    u = 1 - exp(lam x) cos(2 pi y),   v = lam / (2 pi) exp(lam x) sin(2 pi y),
    p = (1 - exp(2 lam x)) / 2,       lam = Re/2 - sqrt(Re^2/4 + 4 pi^2)

solves ``(u . grad) u + grad p = (1/Re) lap u``, ``div u = 0`` everywhere (the flow behind a
grid of cylinders); usually posed on ``[-0.5, 1] x [-0.5, 1.5]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["kovasznay", "kovasznay_lambda"]


def kovasznay_lambda(reynolds: float) -> float:
    return reynolds / 2 - math.sqrt(reynolds**2 / 4 + 4 * math.pi**2)


def kovasznay(x: Tensor, y: Tensor, reynolds: float = 20.0) -> tuple[Tensor, Tensor, Tensor]:
    """``u, v, p`` at points ``(x, y)`` (tensors of one shape)."""
    lam = kovasznay_lambda(reynolds)
    decay = torch.exp(lam * x)
    u = 1 - decay * torch.cos(2 * math.pi * y)
    v = lam / (2 * math.pi) * decay * torch.sin(2 * math.pi * y)
    return u, v, (1 - decay**2) / 2
