"""Fitting edges to the library: ``y ~ c * f(a * x + b) + d`` for every edge and candidate at once.

For edge samples ``x, y`` ``(E, N)`` and each library function the fit runs in three steps, all
batched over edges, candidates and starting points (the only Python loop is over the library's
functions, to call each one on a whole tensor):

1. a global search over a grid of ``(a, b)`` in the edge's normalised input range, with the
   optimal ``(c, d)`` of each grid point in closed form (linear least squares), scored by R^2;
2. Levenberg-Marquardt refinement of ``(a, b, c, d)`` from the best few grid points;
3. ranking by ``log10(1 - R^2) + complexity_weight * complexity`` (lower is better).

Fits are done in float64 on ``t = (x - m) / h`` with ``[m - h, m + h]`` the sampled range and
converted back to ``x`` at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from kanphys.symbolic.library import Primitive

__all__ = ["EdgeFit", "FitOptions", "fit_edges", "rank"]


@dataclass(frozen=True)
class EdgeFit:
    """One candidate for one edge: ``c * f(a * x + b) + d`` with its quality.

    Attributes:
        name: the library function's name (``"numeric"`` for an edge left as a spline).
        a, b, c, d: the constants, in the edge's own input variable.
        r2: coefficient of determination on the edge samples (1 is exact).
        complexity: the library function's complexity.
        score: ``log10(1 - r2) + complexity_weight * complexity`` (lower is better).
    """

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: float
    score: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "a", "b", "c", "d", "r2", "score")}


@dataclass(frozen=True)
class FitOptions:
    """How edges are fitted.

    Attributes:
        scales: number of grid values of ``|a|`` (log-spaced in ``[a_min, a_max]``, both signs).
        shifts: number of grid values of ``b`` in ``[-b_max, b_max]``.
        a_min, a_max: range of ``|a|`` in normalised input units (a floor on ``|a|`` keeps
            e.g. ``c * cos(a x)`` with tiny ``a`` from mimicking a parabola).
        b_max: half-range of the shift grid.
        starts: grid points refined per edge and candidate.
        search_samples: about this many of the samples are used in the grid search.
        iterations: Levenberg-Marquardt iterations.
        complexity_weight: decades of ``1 - R^2`` one unit of complexity is worth.
        r2_floor: ``1 - R^2`` below this counts as exact in the score.
    """

    scales: int = 24
    shifts: int = 33
    a_min: float = 0.5
    a_max: float = 20.0
    b_max: float = 4.0
    starts: int = 3
    search_samples: int = 50
    iterations: int = 40
    complexity_weight: float = 1.0
    r2_floor: float = 1e-14


def _grid(primitive: Primitive, options: FitOptions, like: Tensor) -> tuple[Tensor, Tensor]:
    """Grid values ``(Q,)`` of ``a`` and ``b`` (in normalised units) for one primitive."""
    if primitive.scale == "free":
        magnitudes = torch.logspace(
            math.log10(options.a_min), math.log10(options.a_max), options.scales
        ).to(like)
        scales = torch.cat([-magnitudes.flip(0), magnitudes])
    elif primitive.scale == "sign":
        scales = like.new_tensor([-1.0, 1.0])
    else:
        scales = like.new_tensor([1.0])
    if primitive.shift:
        shifts = torch.linspace(-options.b_max, options.b_max, options.shifts).to(like)
    else:
        shifts = like.new_zeros(1)
    a, b = torch.meshgrid(scales, shifts, indexing="ij")
    return a.reshape(-1), b.reshape(-1)


def _values(primitive: Primitive, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``f(a t + b)`` with NaN where the argument interval over the samples is unsafe.

    Args:
        a, b: ``(..., 1)`` constants.
        t: samples ``(..., N)``.
    """
    t_lo, t_hi = t.min(-1, keepdim=True).values, t.max(-1, keepdim=True).values
    ends = torch.stack(torch.broadcast_tensors(a * t_lo + b, a * t_hi + b))
    lo, hi = ends.min(0).values, ends.max(0).values
    safe = primitive.valid(lo, hi)
    u = torch.where(safe, a, torch.zeros_like(a)) * t + torch.where(safe, b, torch.ones_like(b))
    g = primitive.torch_function(u)
    return torch.where(safe & torch.isfinite(g), g, torch.full_like(g, math.nan))


def _linear_fit(g: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares ``c, d`` of ``y ~ c g + d`` along the last axis, and ``R^2`` (NaN -> -inf)."""
    g_mean, y_mean = g.mean(-1, keepdim=True), y.mean(-1, keepdim=True)
    dg, dy = g - g_mean, y - y_mean
    var_g, var_y = dg.square().mean(-1), dy.square().mean(-1)
    cov = (dg * dy).mean(-1)
    c = cov / var_g
    d = y_mean.squeeze(-1) - c * g_mean.squeeze(-1)
    r2 = cov.square() / (var_g * var_y)
    bad = ~torch.isfinite(r2) | (var_g <= 1e-30 * var_y.clamp_min(1e-300))
    return c, d, torch.where(bad, torch.full_like(r2, -math.inf), r2)


def _search(primitive: Primitive, t: Tensor, y: Tensor, options: FitOptions) -> Tensor:
    """The best ``starts`` grid points per edge: ``(E, S, 4)`` parameters ``(a, b, c, d)``."""
    a, b = _grid(primitive, options, t)
    g = _values(primitive, a[None, :, None], b[None, :, None], t[:, None, :])
    c, d, r2 = _linear_fit(g, y[:, None, :].expand_as(g))
    best = r2.topk(min(options.starts, r2.shape[1]), dim=1).indices
    params = torch.stack([a[best], b[best], c.gather(1, best), d.gather(1, best)], dim=-1)
    return params.nan_to_num(0.0)


def _residual_and_jacobian(
    primitive: Primitive, params: Tensor, t: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    """Residuals ``(B, N)`` of ``c f(a t + b) + d - y`` and their Jacobian ``(B, N, 4)``."""
    a, b, c, d = (params[:, i : i + 1] for i in range(4))
    with torch.enable_grad():
        u = (a * t + b).detach().requires_grad_(True)
        g = _values(primitive, a, b, t)
        g_plain = primitive.torch_function(u)
        (slope,) = torch.autograd.grad(g_plain.sum(), u)
    r = c * g + d - y
    jac = torch.stack([c * slope * t, c * slope, g, torch.ones_like(g)], dim=-1)
    return r, jac.detach()


def _refine(primitive: Primitive, params: Tensor, t: Tensor, y: Tensor, options) -> Tensor:
    """Levenberg-Marquardt on ``(a, b, c, d)`` for a batch ``(B, 4)``; returns the refined batch.

    Fixed constants (``a`` unless its scale is free, ``b`` unless shifted) keep their values;
    steps that leave the safe argument interval or make ``|a|`` smaller than ``a_min`` are
    rejected.
    """
    free = torch.tensor(
        [primitive.scale == "free", primitive.shift, True, True], device=params.device
    )
    lam = torch.full((params.shape[0],), 1e-3, dtype=params.dtype, device=params.device)
    r, jac = _residual_and_jacobian(primitive, params, t, y)
    loss = r.square().sum(-1).nan_to_num(math.inf)
    eye = torch.eye(4, dtype=params.dtype, device=params.device)
    for _ in range(options.iterations):
        jac = jac * free
        jtj = jac.transpose(1, 2) @ jac
        grad = (jac.transpose(1, 2) @ r.unsqueeze(-1)).squeeze(-1)
        damping = lam[:, None, None] * (jtj * eye + 1e-12 * eye)
        system = jtj + damping + eye * (~free)
        step = torch.linalg.solve(system, -grad.nan_to_num(0.0).unsqueeze(-1)).squeeze(-1)
        trial = params + step.nan_to_num(0.0) * free
        r_new, jac_new = _residual_and_jacobian(primitive, trial, t, y)
        loss_new = r_new.square().sum(-1).nan_to_num(math.inf)
        if primitive.scale == "free":
            loss_new = torch.where(
                trial[:, 0].abs() < options.a_min, torch.full_like(loss_new, math.inf), loss_new
            )
        better = loss_new < loss
        params = torch.where(better[:, None], trial, params)
        r = torch.where(better[:, None], r_new, r)
        jac = torch.where(better[:, None, None], jac_new, jac)
        loss = torch.where(better, loss_new, loss)
        lam = torch.where(better, lam * 0.3, lam * 10).clamp(1e-12, 1e12)
    return params


def _fit_primitive(primitive: Primitive, t: Tensor, y: Tensor, options: FitOptions):
    """Best ``(a, b, c, d)`` ``(E, 4)`` (normalised units) and R^2 ``(E,)`` of one primitive."""
    n_edges = t.shape[0]
    stride = max(1, t.shape[1] // options.search_samples)
    starts = _search(primitive, t[:, ::stride], y[:, ::stride], options)
    n_starts = starts.shape[1]
    flat_t = t.repeat_interleave(n_starts, 0)
    flat_y = y.repeat_interleave(n_starts, 0)
    refined = _refine(primitive, starts.reshape(-1, 4), flat_t, flat_y, options)
    g = _values(primitive, refined[:, :1], refined[:, 1:2], flat_t)
    r2 = 1 - (refined[:, 2:3] * g + refined[:, 3:4] - flat_y).square().sum(-1) / (
        flat_y - flat_y.mean(-1, keepdim=True)
    ).square().sum(-1)
    r2 = r2.nan_to_num(-math.inf).reshape(n_edges, n_starts)
    best = r2.argmax(1)
    index = torch.arange(n_edges)
    return refined.reshape(n_edges, n_starts, 4)[index, best], r2[index, best]


def fit_edges(
    x: Tensor,
    y: Tensor,
    library: Mapping[str, Primitive],
    options: FitOptions = FitOptions(),
) -> list[list[EdgeFit]]:
    """Fit every library function to every edge; candidates per edge, best first.

    Args:
        x: ``(E, N)`` inputs of each edge (a sampled range; more than one distinct value).
        y: ``(E, N)`` the edge's values there.
        library: the candidate functions (``"0"``, the constant, is not fitted here).
        options: grid sizes and ranking weight.

    Returns:
        For each edge, its :class:`EdgeFit` candidates sorted by score.

    Raises:
        ValueError: if shapes differ or an edge's samples span no range.
    """
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"edge samples x {tuple(x.shape)} and y {tuple(y.shape)} must be (E, N)")
    x, y = x.detach().to(torch.float64), y.detach().to(torch.float64)
    lo, hi = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
    flat = torch.nonzero(hi[:, 0] <= lo[:, 0]).flatten().tolist()
    if flat:
        raise ValueError(f"the input samples of edge(s) {flat} span no range; cannot fit them")
    center, half = (hi + lo) / 2, (hi - lo) / 2
    t = (x - center) / half
    per_edge: list[list[EdgeFit]] = [[] for _ in range(x.shape[0])]
    for name, primitive in library.items():
        if name == "0":
            continue
        params, r2 = _fit_primitive(primitive, t, y, options)
        a = params[:, 0] / half[:, 0]
        b = params[:, 1] - params[:, 0] * center[:, 0] / half[:, 0]
        constants = _canonical(primitive, a, b, params[:, 2], params[:, 3], x, y)
        for e in range(x.shape[0]):
            fit = _edge_fit(name, primitive, [v[e] for v in constants], r2[e])
            per_edge[e].append(rank(fit, options))
    return [sorted(fits, key=lambda f: f.score) for fits in per_edge]


def _canonical(primitive: Primitive, a, b, c, d, x: Tensor, y: Tensor) -> list[Tensor]:
    """One way of writing each fit in ``x``: ``b = 0`` for unshifted functions, ``a = +-1`` when
    the scale is absorbed by ``c`` or ``d`` (``c, d`` are then refitted), and ``a > 0`` for even
    and odd functions."""
    if primitive.scale != "free":
        magnitude = a.abs().clamp_min(1e-300)
        a, b = torch.sign(a), b / magnitude
    if not primitive.shift:
        b = torch.zeros_like(b)
    if primitive.scale != "free" or not primitive.shift:
        g = _values(primitive, a[:, None], b[:, None], x)
        c_new, d_new, r2 = _linear_fit(g, y)
        keep = torch.isfinite(r2) & torch.isfinite(c_new)
        c, d = torch.where(keep, c_new, c), torch.where(keep, d_new, d)
    if primitive.parity:
        flip = a < 0
        a, b = torch.where(flip, -a, a), torch.where(flip, -b, b)
        c = torch.where(flip & (primitive.parity < 0), -c, c)
    if primitive.period:
        b = b - primitive.period * torch.round(b / primitive.period)
    return [a, b, c, d]


def _edge_fit(name: str, primitive: Primitive, constants, r2: Tensor) -> EdgeFit:
    a, b, c, d = (float(v) for v in constants)
    return EdgeFit(name, a, b, c, d, float(r2), primitive.complexity, math.inf)


def rank(fit: EdgeFit, options: FitOptions = FitOptions()) -> EdgeFit:
    """The fit with its score ``log10(max(1 - r2, r2_floor)) + weight * complexity``."""
    if not math.isfinite(fit.r2):
        return EdgeFit(**{**fit.__dict__, "score": math.inf})
    error = max(1 - fit.r2, options.r2_floor)
    score = math.log10(error) + options.complexity_weight * fit.complexity
    return EdgeFit(**{**fit.__dict__, "score": score})
