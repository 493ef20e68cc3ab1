"""Univariate bases for KAN edges: B-splines on uniform or adaptive grids, Chebyshev polynomials.

A basis is a frozen description (its size and options). The knots of a B-spline basis are state of
the layer that uses it (they move on grid updates), so evaluation takes them as an argument.
Shapes: inputs ``x`` are ``(N, n_in)``; evaluations are ``(N, n_in, size)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

__all__ = [
    "BSpline",
    "Basis",
    "Chebyshev",
    "basis_from_config",
    "bspline_basis",
    "bspline_levels",
    "evenly_spaced",
    "extend_knots",
    "reciprocal",
    "snap_uniform",
]


def extend_knots(interior: Tensor, order: int) -> Tensor:
    """Pad interior knots with ``order`` knots on each side at the mean interior spacing.

    Args:
        interior: ``(n_in, grid + 1)`` increasing knots covering the grid range of each input.
        order: spline order k (3 for cubic).

    Returns:
        ``(n_in, grid + 2 * order + 1)`` knots.
    """
    lo, hi = interior[:, :1], interior[:, -1:]
    h = (hi - lo) / (interior.shape[1] - 1)
    steps = torch.arange(1, order + 1, dtype=interior.dtype, device=interior.device)
    left = lo - h * steps.flip(0)
    right = hi + h * steps
    return torch.cat([left, interior, right], dim=1)


def bspline_basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """Evaluate all B-splines of a given order by the Cox-de Boor recursion.

    Args:
        x: ``(N, n_in)`` points.
        knots: ``(n_in, K)`` non-decreasing knots per input.
        order: spline order k; the result has ``K - 1 - k`` functions per input.

    Returns:
        ``(N, n_in, K - 1 - order)`` basis values; zero outside ``[knots[0], knots[-1])``.
    """
    return bspline_levels(x, knots, order)[-1]


def bspline_levels(x: Tensor, knots: Tensor, order: int) -> list[Tensor]:
    """The Cox-de Boor recursion's B-splines of every order 0..``order``, ``(N, n_in, K-1-p)``."""
    x = x.unsqueeze(-1)
    levels = [((x >= knots[:, :-1]) & (x < knots[:, 1:])).to(x.dtype)]
    for p in range(1, order + 1):
        left = (x - knots[:, : -(p + 1)]) * reciprocal(knots[:, p:-1] - knots[:, : -(p + 1)])
        right = (knots[:, p + 1 :] - x) * reciprocal(knots[:, p + 1 :] - knots[:, 1:-p])
        levels.append(left * levels[-1][..., :-1] + right * levels[-1][..., 1:])
    return levels


def reciprocal(width: Tensor) -> Tensor:
    """1 / width, with 0 for repeated knots (the Cox-de Boor convention 0/0 = 0)."""
    safe = torch.where(width > 0, width, torch.ones_like(width))
    return torch.where(width > 0, 1 / safe, torch.zeros_like(width))


@dataclass(frozen=True)
class BSpline:
    """B-spline basis of a given order on ``grid`` intervals over ``grid_range``.

    Attributes:
        grid: number of grid intervals G.
        order: polynomial order k (3: cubic).
        grid_range: interval the initial uniform grid covers (inputs are normalised to [-1, 1]).
        grid_eps: blend for grid updates from samples: 1 keeps a uniform grid, 0 uses sample
            quantiles (the KAN paper's grid_eps).
    """

    grid: int = 5
    order: int = 3
    grid_range: tuple[float, float] = (-1.0, 1.0)
    grid_eps: float = 0.02

    def __post_init__(self) -> None:
        if self.grid < 1 or self.order < 0:
            raise ValueError(
                f"BSpline: need grid >= 1 and order >= 0, got {self.grid}, {self.order}"
            )
        if not self.grid_range[0] < self.grid_range[1]:
            raise ValueError(f"BSpline: grid_range {self.grid_range} must be increasing")

    @property
    def size(self) -> int:
        """Number of basis functions per input, G + k."""
        return self.grid + self.order

    @property
    def has_knots(self) -> bool:
        return True

    def initial_knots(self, n_in: int, dtype: torch.dtype, device=None) -> Tensor:
        """Uniform knots ``(n_in, G + 2k + 1)`` over ``grid_range``."""
        lo, hi = self.grid_range
        interior = torch.linspace(lo, hi, self.grid + 1, dtype=dtype, device=device)
        return extend_knots(interior.expand(n_in, -1).contiguous(), self.order)

    def evaluate(self, x: Tensor, knots: Tensor) -> Tensor:
        """Basis values ``(N, n_in, size)`` at ``x`` ``(N, n_in)``."""
        return bspline_basis(x, knots, self.order)

    def config(self) -> dict:
        return {"type": "BSpline", **asdict(self), "grid_range": list(self.grid_range)}


def snap_uniform(knots: Tensor, source: torch.dtype) -> Tensor:
    """Knot rows ``(n_in, K)`` that are evenly spaced to within the round-off of ``source``
    recomputed as exactly evenly spaced in their own dtype; other rows are left as they are."""
    if knots.shape[-1] < 2 or not source.is_floating_point:
        return knots
    steps = torch.arange(knots.shape[1], dtype=knots.dtype, device=knots.device)
    width = (knots[:, -1:] - knots[:, :1]) / (knots.shape[1] - 1)
    even = knots[:, :1] + steps * width
    return torch.where(evenly_spaced(knots, source).unsqueeze(1), even, knots)


def evenly_spaced(knots: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Per knot row ``(n_in, K)``: are the knots evenly spaced to within the round-off of
    ``dtype`` (default: their own)? A boolean ``(n_in,)``."""
    eps = torch.finfo(dtype or knots.dtype).eps
    widths = knots[:, 1:] - knots[:, :-1]
    spread = (widths - widths[:, :1]).abs().amax(dim=1)
    return spread <= 64 * eps * knots.abs().amax(dim=1)


@dataclass(frozen=True)
class Chebyshev:
    """Chebyshev polynomials T_0..T_degree of tanh(x) (inputs squashed into (-1, 1)).

    Attributes:
        degree: highest polynomial degree.
    """

    degree: int = 5

    def __post_init__(self) -> None:
        if self.degree < 1:
            raise ValueError(f"Chebyshev: degree must be >= 1, got {self.degree}")

    @property
    def size(self) -> int:
        return self.degree + 1

    @property
    def has_knots(self) -> bool:
        return False

    def initial_knots(self, n_in: int, dtype: torch.dtype, device=None) -> Tensor:
        return torch.empty(n_in, 0, dtype=dtype, device=device)

    def evaluate(self, x: Tensor, knots: Tensor | None = None) -> Tensor:
        """Values ``(N, n_in, degree + 1)`` of T_n(tanh(x))."""
        t = torch.tanh(x)
        terms = [torch.ones_like(t), t]
        for _ in range(2, self.degree + 1):
            terms.append(2 * t * terms[-1] - terms[-2])
        return torch.stack(terms, dim=-1)

    def config(self) -> dict:
        return {"type": "Chebyshev", **asdict(self)}


Basis = BSpline | Chebyshev


def basis_from_config(config: dict) -> Basis:
    """Rebuild a basis from :meth:`config` output."""
    options = dict(config)
    kind = options.pop("type")
    if kind == "BSpline":
        options["grid_range"] = tuple(options["grid_range"])
        return BSpline(**options)
    if kind == "Chebyshev":
        return Chebyshev(**options)
    raise ValueError(f"unknown basis type {kind!r}; expected 'BSpline' or 'Chebyshev'")
