"""Forward propagation of derivatives through KAN layers in closed form.

For a layer ``y_j = sum_i phi_ji(h_i)`` the partial derivatives of ``y`` by the coordinates
follow from those of ``h`` by Faa di Bruno's formula, e.g.

    d_a y   = phi'(h) d_a h
    d_ab y  = phi''(h) d_a h d_b h + phi'(h) d_ab h

and the derivatives of a B-spline are lower-order B-splines, so every term is a basis
evaluation times a product of input derivatives, contracted with the same coefficients as the
forward pass (one matrix product per requested derivative, no ``(N, n_in, n_out)`` tensor).
Only the requested multi-indices and the ones they are built from are propagated. Parameter
gradients then come from ordinary first-order autograd through this computation.

A multi-index is a sorted tuple of coordinate indices: ``(0, 0)`` is d^2/dx^2, ``(0, 1, 1)`` is
d^3/dx dy^2.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable

import torch
from torch import Tensor

from kanphys.kan.basis import BSpline, Chebyshev, bspline_levels, reciprocal
from kanphys.kan.layer import KANLayer

__all__ = ["Index", "base_derivatives", "basis_derivatives", "closure", "layer_jet", "network_jet"]

Index = tuple[int, ...]


def closure(requests: Iterable[Index]) -> tuple[Index, ...]:
    """All non-empty sub-multi-indices of the requests, ordered by derivative order."""
    out: set[Index] = set()
    for request in requests:
        request = tuple(sorted(request))
        for size in range(1, len(request) + 1):
            out.update(tuple(sorted(c)) for c in itertools.combinations(request, size))
    return tuple(sorted(out, key=lambda index: (len(index), index)))


@functools.lru_cache(maxsize=256)
def partitions(index: Index) -> tuple[tuple[Index, ...], ...]:
    """Set partitions of the positions of ``index``, each block as a sorted sub-multi-index."""
    results: list[tuple[Index, ...]] = []

    def split(items: list[int], blocks: list[list[int]]) -> None:
        if not items:
            results.append(tuple(tuple(sorted(index[p] for p in b)) for b in blocks))
            return
        first, rest = items[0], items[1:]
        for block in blocks:
            block.append(first)
            split(rest, blocks)
            block.pop()
        blocks.append([first])
        split(rest, blocks)
        blocks.pop()

    split(list(range(len(index))), [])
    return tuple(results)


def basis_derivatives(layer: KANLayer, h: Tensor, order: int) -> list[Tensor]:
    """Basis values and their first ``order`` derivatives at ``h``: each ``(N, n_in, size)``.

    Differentiable in ``h`` through a custom autograd function whose backward is the next
    derivative of the basis, so no graph of the recursion is kept.
    """
    if isinstance(layer.basis, BSpline):
        knots, k = layer.knots, layer.basis.order

        def evaluate(x: Tensor, count: int) -> list[Tensor]:
            return _bspline_derivatives(x, knots, k, count)
    elif isinstance(layer.basis, Chebyshev):
        degree = layer.basis.degree

        def evaluate(x: Tensor, count: int) -> list[Tensor]:
            return _chebyshev_derivatives(x, degree, count)
    else:
        raise TypeError(f"no closed-form derivatives for basis {layer.basis!r}")
    if not h.requires_grad:
        return evaluate(h, order)
    return list(_BasisJet.apply(h, evaluate, order))


class _BasisJet(torch.autograd.Function):
    """Basis derivatives 0..order of ``x``; backward uses derivative order + 1."""

    @staticmethod
    def forward(ctx, x: Tensor, evaluate, order: int):
        values = evaluate(x.detach(), order + 1)
        ctx.save_for_backward(*values[1:])
        return tuple(values[: order + 1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        derivatives = ctx.saved_tensors
        total = None
        for grad, derivative in zip(grads, derivatives, strict=True):
            if grad is not None:
                term = (grad * derivative).sum(-1)
                total = term if total is None else total + term
        return total, None, None


def _bspline_derivatives(x: Tensor, knots: Tensor, order: int, n_derivatives: int) -> list[Tensor]:
    """Cox-de Boor for every order p <= k, then d B_{i,p} = p (B_{i,p-1}/(t_{i+p}-t_i)
    - B_{i+1,p-1}/(t_{i+p+1}-t_{i+1})) applied repeatedly."""
    levels = bspline_levels(x, knots, order)
    out = [levels[order]]
    for m in range(1, n_derivatives + 1):
        if m > order:
            out.append(torch.zeros_like(levels[order]))
            continue
        current = levels[order - m]
        for p in range(order - m + 1, order + 1):
            left = reciprocal(knots[:, p:-1] - knots[:, : -(p + 1)])
            right = reciprocal(knots[:, p + 1 :] - knots[:, 1:-p])
            current = p * (current[..., :-1] * left - current[..., 1:] * right)
        out.append(current)
    return out


def _chebyshev_derivatives(x: Tensor, degree: int, n_derivatives: int) -> list[Tensor]:
    """T_n(tanh x) and its x-derivatives: polynomial derivatives by the three-term recursion,
    then the chain rule through t = tanh(x)."""
    t = torch.tanh(x)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    columns = [[one, t]] + [[zero, one]] + [[zero, zero] for _ in range(2, n_derivatives + 1)]
    for n in range(2, degree + 1):
        for m, poly in enumerate(columns):
            previous = 2 * m * columns[m - 1][n - 1] if m else 0
            poly.append(previous + 2 * t * poly[n - 1] - poly[n - 2])
    in_t = [torch.stack(c[: degree + 1], dim=-1) for c in columns]
    inner = _tanh_derivatives(t, n_derivatives)
    return [_compose(in_t, [d.unsqueeze(-1) for d in inner], m) for m in range(n_derivatives + 1)]


def _tanh_derivatives(t: Tensor, n: int) -> list[Tensor]:
    """tanh and its first four derivatives, as functions of t = tanh(x)."""
    s = 1 - t * t
    return [t, s, -2 * t * s, s * (6 * t * t - 2), s * t * (16 - 24 * t * t)][: n + 1]


def _compose(outer: list[Tensor], inner: list[Tensor], m: int) -> Tensor:
    """m-th derivative of f(g(x)) from f's derivatives at g and g's derivatives (m <= 4)."""
    if m == 0:
        return outer[0]
    if m == 1:
        return outer[1] * inner[1]
    if m == 2:
        return outer[2] * inner[1] ** 2 + outer[1] * inner[2]
    if m == 3:
        return outer[3] * inner[1] ** 3 + 3 * outer[2] * inner[1] * inner[2] + outer[1] * inner[3]
    if m == 4:
        g1, g2, g3, g4 = inner[1:5]
        return (
            outer[4] * g1**4
            + 6 * outer[3] * g1**2 * g2
            + outer[2] * (3 * g2**2 + 4 * g1 * g3)
            + outer[1] * g4
        )
    raise ValueError("closed-form derivatives are implemented up to third order")


def base_derivatives(name: str, x: Tensor, order: int) -> list[Tensor]:
    """The base function b and its first ``order`` derivatives at ``x`` ``(N, n_in)``."""
    if name == "silu":
        sigma = torch.sigmoid(x)
        q = sigma * (1 - sigma)
        q1 = q * (1 - 2 * sigma)
        q2 = q * ((1 - 2 * sigma) ** 2 - 2 * q)
        values = [x * sigma, sigma + x * q, 2 * q + x * q1, 3 * q1 + x * q2]
    elif name == "tanh":
        values = _tanh_derivatives(torch.tanh(x), 3)
    elif name == "identity":
        values = [x, torch.ones_like(x), torch.zeros_like(x), torch.zeros_like(x)]
    else:
        raise ValueError(f"no closed-form derivatives for base function {name!r}")
    if order > 3:
        raise ValueError("closed-form derivatives are implemented up to third order")
    return values[: order + 1]


def is_uniform_cubic(layer: KANLayer) -> bool:
    """True for a cubic B-spline layer whose knots are evenly spaced in every input."""
    if not isinstance(layer.basis, BSpline) or layer.basis.order != 3:
        return False
    knots = layer.knots
    widths = knots[:, 1:] - knots[:, :-1]
    spread = (widths - widths[:, :1]).abs().max()
    return bool(spread <= 64 * torch.finfo(knots.dtype).eps * knots.abs().max())


# Coefficients of the four cubic B-spline pieces in powers of u (rows: 1, u, u^2, u^3), and of
# their first three u-derivatives: piece m of derivative k is [1, u, u^2, u^3] @ CUBIC[k][:, m].
CUBIC = (
    (
        (1 / 6, 4 / 6, 1 / 6, 0.0),
        (-0.5, 0.0, 0.5, 0.0),
        (0.5, -1.0, 0.5, 0.0),
        (-1 / 6, 0.5, -0.5, 1 / 6),
    ),
    ((-0.5, 0.0, 0.5, 0.0), (1.0, -2.0, 1.0, 0.0), (-0.5, 1.5, -1.5, 0.5), (0.0, 0.0, 0.0, 0.0)),
    ((1.0, -2.0, 1.0, 0.0), (-1.0, 3.0, -3.0, 1.0), (0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
    ((-1.0, 3.0, -3.0, 1.0), (0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
)


def uniform_cubic_local(x: Tensor, knots: Tensor, n_derivatives: int):
    """Cubic B-splines on uniform knots, evaluated locally from the distance to the knots.

    Each point lies in one knot interval, where only four basis functions are non-zero; they
    are cubic polynomials of the position u in [0, 1) inside the interval, evaluated for all
    derivative orders at once as ``[1, u, u^2, u^3]`` times a constant matrix.

    Args:
        x: ``(N, n_in)`` points.
        knots: ``(n_in, K)`` evenly spaced knots per input.
        n_derivatives: highest x-derivative wanted (at most 3).

    Returns:
        ``(index (N, n_in, 4), [values (N, n_in, 4) for derivative orders 0..n_derivatives])``:
        basis numbers (clamped into range) and values (zero where the basis function does not
        exist or the point lies outside the knots).
    """
    start, width = knots[:, 0], knots[:, 1] - knots[:, 0]
    position = (x - start) / width
    interval = torch.floor(position.detach())
    u = position - interval
    powers = torch.stack([torch.ones_like(u), u, u * u, u * u * u], dim=-1)
    count = n_derivatives + 1
    matrix = torch.tensor(CUBIC[:count], dtype=x.dtype, device=x.device)
    matrix = matrix.permute(1, 0, 2).reshape(4, 4 * count)
    scale = (1 / width).unsqueeze(-1) ** torch.arange(count, dtype=x.dtype, device=x.device)
    size = knots.shape[1] - 4
    basis = interval.long().unsqueeze(-1) + torch.arange(-3, 1, device=x.device)
    valid = ((basis >= 0) & (basis < size)).to(x.dtype)
    pieces = (powers @ matrix).reshape(*u.shape, count, 4)
    pieces = pieces * (scale.unsqueeze(-1) * valid.unsqueeze(-2))
    return basis.clamp(0, size - 1), list(pieces.unbind(-2))


def layer_jet(
    layer: KANLayer, value: Tensor, derivs: dict[Index, Tensor | None], indices: tuple[Index, ...]
) -> tuple[Tensor, dict[Index, Tensor]]:
    """Value ``(N, n_out)`` and derivatives of a layer's output from those of its input.

    Uniform cubic layers take the local path (products on the four non-zero basis values, one
    scatter into the basis matrix); others use the dense basis derivatives.

    Args:
        layer: the KAN layer.
        value: ``(N, n_in)`` input.
        derivs: input derivatives ``(N, n_in)`` by multi-index (None where identically zero).
        indices: multi-indices to produce, closed under sub-multi-indices.
    """
    order = max((len(i) for i in indices), default=0)
    index = None
    if is_uniform_cubic(layer):
        index, spline = uniform_cubic_local(value, layer.knots, order)
    else:
        spline = basis_derivatives(layer, value, order)
    base = base_derivatives(layer.base, value, order) if layer.base is not None else None
    rows, base_rows, names = [spline[0]], [base[0]] if base else [], []
    for multi in indices:
        factors = _chain_factors(multi, derivs)
        if not factors:
            continue
        names.append(multi)
        rows.append(sum(spline[k] * q.unsqueeze(-1) for k, q in factors.items()))
        if base:
            base_rows.append(sum(base[k] * q for k, q in factors.items()))
    count, n = len(rows), value.shape[0]
    stacked = torch.stack(rows)
    if index is not None:
        dense = stacked.new_zeros(count, n, layer.n_in, layer.basis.size)
        stacked = dense.scatter_add(-1, index.expand(count, -1, -1, -1), stacked)
    coef = layer.effective_coef().reshape(-1, layer.n_out)
    out = (stacked.reshape(count * n, -1) @ coef).reshape(count, n, -1)
    if base:
        out = out + torch.stack(base_rows) @ layer.scale_base
    new = dict.fromkeys(indices)
    new.update(zip(names, out[1:], strict=True))
    return out[0], new


def _chain_factors(index: Index, derivs: dict[Index, Tensor | None]) -> dict[int, Tensor]:
    """For each k, the sum over partitions of ``index`` into k blocks of prod d^B h."""
    factors: dict[int, Tensor] = {}
    for blocks in partitions(index):
        terms = [derivs.get(b) for b in blocks]
        if any(t is None for t in terms):
            continue
        product = functools.reduce(torch.mul, terms)
        k = len(blocks)
        factors[k] = product if k not in factors else factors[k] + product
    return factors


def network_jet(layers, x: Tensor, scale: Tensor, requests: Iterable[Index]):
    """Value and requested derivatives of a KAN at normalised inputs ``x`` ``(N, d)``.

    Args:
        layers: the KAN's layers.
        x: ``(N, d)`` normalised inputs.
        scale: ``(d,)`` d(normalised)/d(physical) per coordinate.
        requests: multi-indices of physical coordinates.

    Returns:
        ``(value (N, m), {index: (N, m)})`` for every index in the closure of the requests.
    """
    indices = closure(requests)
    first = torch.diag(scale).unsqueeze(0).expand(x.shape[0], -1, -1)
    derivs: dict[Index, Tensor | None] = {
        i: (first[:, i[0]] if len(i) == 1 else None) for i in indices
    }
    value = x
    for layer in layers:
        value, derivs = layer_jet(layer, value, derivs, indices)
    return value, derivs
