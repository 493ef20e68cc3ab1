"""Viscous Burgers equation by the Cole-Hopf transform, integrated by Gauss-Hermite quadrature.

    u_t + u u_x = nu u_xx,   u(x, 0) = -sin(pi x),   u(-1, t) = u(1, t) = 0

The Cole-Hopf transform turns the equation into the heat equation, whose solution is a
convolution with the heat kernel (Basdevant et al. 1986, Comput. Fluids 14, 23-41):

    u(x, t) = - int sin(pi (x - e)) f(x - e) G(e, t) de / int f(x - e) G(e, t) de,
    f(y) = exp(-cos(pi y) / (2 pi nu)),   G(e, t) = exp(-e^2 / (4 nu t)).

Substituting ``e = sqrt(4 nu t) z`` turns both integrals into Gauss-Hermite sums with weight
``exp(-z^2)``. The sums are written in torch, so the result can be differentiated by autograd
(in float64 the residual of the equation is at the quadrature error).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_NODES", "NU", "burgers"]

NU = 0.01 / math.pi
MAX_NODES = 300


def burgers(x: Tensor, t: Tensor, *, nu: float = NU, n_nodes: int = 128) -> Tensor:
    """The solution ``u(x, t)`` at points ``x``, ``t`` (same shape, any), in their dtype.

    Args:
        x: positions in ``[-1, 1]``.
        t: times ``>= 0``.
        nu: viscosity (default ``0.01 / pi``, the standard benchmark).
        n_nodes: Gauss-Hermite nodes (at most 300, where numpy's nodes stay finite); for
            ``nu = 0.01/pi`` 64 nodes give 2e-10 and 96 or more about 1e-15 (max abs).

    Returns:
        ``u`` with the broadcast shape of ``x`` and ``t``.

    Raises:
        ValueError: for ``n_nodes`` outside ``[2, 300]``.
    """
    if not 2 <= n_nodes <= MAX_NODES:
        raise ValueError(f"burgers: n_nodes must be in [2, {MAX_NODES}], got {n_nodes}")
    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
    options = {"dtype": x.dtype, "device": x.device}
    z = torch.as_tensor(nodes, **options)
    log_w = torch.as_tensor(np.log(weights), **options)
    x, t = torch.broadcast_tensors(x, t)
    y = x.unsqueeze(-1) - torch.sqrt(4 * nu * t.clamp(min=0)).unsqueeze(-1) * z
    exponent = log_w - torch.cos(math.pi * y) / (2 * math.pi * nu)
    # normalise by the largest term so that exp() neither overflows nor underflows
    weight = torch.exp(exponent - exponent.amax(dim=-1, keepdim=True).detach())
    return -(torch.sin(math.pi * y) * weight).sum(-1) / weight.sum(-1)
