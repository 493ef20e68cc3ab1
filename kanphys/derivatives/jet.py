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
from dataclasses import dataclass

import torch
from torch import Tensor

from kanphys.kan.basis import BSpline, Chebyshev, bspline_levels, evenly_spaced, reciprocal
from kanphys.kan.layer import KANLayer

__all__ = [
    "Index",
    "Trace",
    "base_derivatives",
    "basis_derivatives",
    "closure",
    "layer_jet",
    "network_jet",
]

Index = tuple[int, ...]
FEW_OUTPUTS = 4  # up to this many layer outputs, contract local basis values directly


@dataclass(frozen=True)
class Trace:
    """The Laplacian over ``axes``, propagated as one quantity (forward-Laplacian style):

        lap y = phi''(h) |grad h|^2 + phi'(h) lap h

    which costs one channel instead of one per axis.
    """

    axes: tuple[int, ...]


Key = Index | Trace


def _order(key: Key) -> int:
    return 2 if isinstance(key, Trace) else len(key)


def closure(requests: Iterable[Key]) -> tuple[Key, ...]:
    """All non-empty sub-multi-indices of the requests (and the first derivatives a Laplacian
    is built from), ordered by derivative order."""
    out: set[Key] = set()
    for request in requests:
        if isinstance(request, Trace):
            out.add(request)
            out.update((a,) for a in request.axes)
            continue
        request = tuple(sorted(request))
        for size in range(1, len(request) + 1):
            out.update(tuple(sorted(c)) for c in itertools.combinations(request, size))
    return tuple(sorted(out, key=lambda key: (_order(key), isinstance(key, Trace), str(key))))


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
    return list(_Jet.apply(h, evaluate, order, True))


class _Jet(torch.autograd.Function):
    """Derivatives 0..order of a function of ``x`` (``evaluate(x, count)`` gives them); the
    backward pass uses derivative order + 1, so no graph of the evaluation is kept. With
    ``per_basis`` the values carry a trailing basis dimension that the backward sums out."""

    @staticmethod
    def forward(ctx, x: Tensor, evaluate, order: int, per_basis: bool):
        values = evaluate(x.detach(), order + 1)
        ctx.per_basis = per_basis
        ctx.save_for_backward(*values[1:])
        return tuple(values[: order + 1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        total = None
        for grad, derivative in zip(grads, ctx.saved_tensors, strict=True):
            if grad is None:
                continue
            if ctx.per_basis:
                term = (grad * derivative).sum(-1)
                total = term if total is None else total + term
            else:
                total = grad * derivative if total is None else total.addcmul(grad, derivative)
        return total, None, None, None


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
    if n == 0:
        return [t]
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
    """The base function b and its first ``order`` (<= 3) derivatives at ``x``."""
    if order > 3:
        raise ValueError("closed-form derivatives are implemented up to third order")
    if name == "silu":
        return _silu_derivatives(x, order)
    if name == "tanh":
        return _tanh_derivatives(torch.tanh(x), order)
    if name == "identity":
        return [x, torch.ones_like(x), torch.zeros_like(x), torch.zeros_like(x)][: order + 1]
    raise ValueError(f"no closed-form derivatives for base function {name!r}")


def _base_jet(name: str, x: Tensor, order: int) -> list[Tensor]:
    """:func:`base_derivatives`, differentiable in ``x`` through one autograd node whose
    backward is the next derivative (instead of a graph of a dozen elementwise operations)."""
    if not x.requires_grad or order >= 3:
        return base_derivatives(name, x, order)
    return list(_Jet.apply(x, functools.partial(base_derivatives, name), order, False))


def _silu_derivatives(x: Tensor, order: int) -> list[Tensor]:
    """x sigma(x) and its derivatives; with q = sigma' = sigma (1 - sigma), the m-th
    derivative is m sigma^(m-1) + x sigma^(m)."""
    sigma = torch.sigmoid(x)
    values = [x * sigma]
    if order == 0:
        return values
    q = sigma * (1 - sigma)
    values.append(torch.addcmul(sigma, x, q))
    if order == 1:
        return values
    slope = 1 - 2 * sigma
    q1 = q * slope
    values.append(torch.addcmul(2 * q, x, q1))
    if order == 2:
        return values
    q2 = q * (slope * slope - 2 * q)
    values.append(torch.addcmul(3 * q1, x, q2))
    return values


def is_uniform_cubic(layer: KANLayer) -> bool:
    """True for a cubic B-spline layer whose knots are evenly spaced in every input."""
    if not isinstance(layer.basis, BSpline) or layer.basis.order != 3:
        return False
    return bool(evenly_spaced(layer.knots).all())


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
    derivative orders at once as a constant matrix times ``[1, u, u^2, u^3]``. The layout puts
    the points last, so every elementwise operation runs over long contiguous rows.

    Args:
        x: ``(n_in, N)`` points, one row per input.
        knots: ``(n_in, K)`` evenly spaced knots per input.
        n_derivatives: highest x-derivative wanted (at most 3).

    Returns:
        ``(index (4, n_in, N), [values (4, n_in, N) for u-derivative orders 0..n_derivatives],
        1 / width (n_in, 1))``: basis numbers (``size``, a spare slot that the contractions
        ignore, where the basis function does not exist or the point lies outside the knots),
        values, and the factor that turns a u-derivative into an x-derivative (the k-th needs
        its k-th power).
    """
    start, width = knots[:, :1], knots[:, 1:2] - knots[:, :1]
    position = (x - start) / width
    interval = torch.floor(position.detach())
    u = position - interval
    count = n_derivatives + 1
    powers = torch.stack([torch.ones_like(u), u, u * u, u * u * u])
    matrix = torch.tensor(CUBIC[:count], dtype=x.dtype, device=x.device)
    matrix = matrix.transpose(1, 2).reshape(4 * count, 4)
    pieces = (matrix @ powers.reshape(4, -1)).reshape(count, 4, *x.shape)
    size = knots.shape[1] - 4
    offsets = torch.arange(-3, 1, device=x.device).view(4, 1, 1)
    basis = interval.long().unsqueeze(0) + offsets
    basis = basis.clamp_(-1, size).remainder_(size + 1)  # below 0 or above size-1 -> size
    return basis, list(pieces.unbind(0)), 1 / width


def layer_jet(
    layer: KANLayer, value: Tensor, derivs: dict[Key, Tensor | None], indices: tuple[Key, ...]
) -> tuple[Tensor, dict[Key, Tensor]]:
    """Value ``(n_out, N)`` and derivatives of a layer's output from those of its input.

    Everything is laid out points-last (``(features, N)``). Uniform cubic layers take the local
    path (products on the four non-zero basis values, one scatter into the basis matrix); others
    use the dense basis derivatives.

    Args:
        layer: the KAN layer.
        value: ``(n_in, N)`` input.
        derivs: input derivatives ``(n_in, N)`` by multi-index (None where identically zero).
        indices: multi-indices to produce, closed under sub-multi-indices.
    """
    order = max((_order(i) for i in indices), default=0)
    index, inv_width = None, None
    if is_uniform_cubic(layer):
        index, spline, inv_width = uniform_cubic_local(value, layer.knots, order)
    else:
        spline = [b.permute(2, 1, 0) for b in basis_derivatives(layer, value.T, order)]
    base = _base_jet(layer.base, value, order) if layer.base is not None else None
    rows, base_rows, names = [spline[0]], [base[0]] if base else [], []
    for multi in indices:
        factors = _chain_factors(multi, derivs)
        if not factors:
            continue
        names.append(multi)
        rows.append(_combine(spline, _in_u(factors, inv_width)))
        if base:
            base_rows.append(_combine(base, factors))
    stacked = torch.stack(rows)
    if index is not None and layer.n_out <= FEW_OUTPUTS:
        out = _contract_local(layer, stacked, index)
    else:
        out = _contract_dense(layer, stacked, index)
    if base:
        out = out + _contract(layer.scale_base.T, torch.stack(base_rows))
    new = dict.fromkeys(indices)
    new.update(zip(names, out[1:], strict=True))
    return out[0], new


def _in_u(factors: dict[int, Tensor], inv_width: Tensor | None) -> dict[int, Tensor]:
    """Chain factors for u-derivatives of the basis: the k-th times (du/dx)^k."""
    if inv_width is None:
        return factors
    return {k: q * inv_width**k for k, q in factors.items()}


def _combine(values: list[Tensor], factors: dict[int, Tensor]) -> Tensor:
    """``sum_k values[k] * factors[k]``, fused where there are two terms."""
    terms = sorted(factors.items())
    (k, q), rest = terms[0], terms[1:]
    out = values[k] * q
    for k, q in rest:
        out = torch.addcmul(out, values[k], q)
    return out


def _contract_dense(layer: KANLayer, stacked: Tensor, index: Tensor | None) -> Tensor:
    """``(count, n_out, N)`` from basis rows ``(count, size or 4, n_in, N)`` through the dense
    basis matrix (local rows are scattered into it first): one batched matrix product."""
    count, n = stacked.shape[0], stacked.shape[-1]
    stacked = stacked.reshape(count, -1)
    coef = layer.effective_coef()
    if index is not None:
        stacked = _scatter_local(stacked, index, layer.basis.size)
        coef = torch.nn.functional.pad(coef, (0, 0, 0, 1))  # zero spare slot
    coef = coef.permute(2, 1, 0).reshape(layer.n_out, -1)
    return _contract(coef, stacked.view(count, -1, n))


def _contract_local(layer: KANLayer, local: Tensor, index: Tensor) -> Tensor:
    """``(count, n_out, N)`` from local rows ``(count, 4, n_in, N)`` for a layer with few
    outputs: the four coefficients each point meets are gathered instead of building the
    dense basis matrix (which would be mostly zeros and cost more memory than arithmetic)."""
    n_in, slots = layer.n_in, layer.basis.size + 1
    inputs = torch.arange(n_in, device=index.device).view(1, -1, 1)
    coef = torch.nn.functional.pad(layer.effective_coef(), (0, 0, 0, 1))  # zero spare slot
    columns = coef.reshape(n_in * slots, layer.n_out).T
    flat = index + inputs * slots
    outputs = [(local * column.take(flat)).sum((1, 2)) for column in columns]
    return torch.stack(outputs, dim=1)


def _scatter_local(local: Tensor, index: Tensor, size: int) -> Tensor:
    """Local values ``(count, 4 * n_in * N)`` into the dense ``(count, (size + 1) * n_in * N)``
    (the last slot is the spare one, met by zero coefficients).

    One flat index per point and basis function, so the scatter (and the gather of its
    backward) runs along contiguous rows.
    """
    _, n_in, n = index.shape
    within = torch.arange(n_in * n, device=index.device).view(n_in, n)  # input, point
    flat = (index * (n_in * n) + within).view(1, -1).expand(local.shape[0], -1)
    dense = local.new_zeros(local.shape[0], (size + 1) * n_in * n)
    return dense.scatter_add_(1, flat, local)


def _contract(matrix: Tensor, batch: Tensor) -> Tensor:
    """``matrix (a, b) @ batch[c] (b, N)`` for every ``c``, as one batched product."""
    return torch.bmm(matrix.expand(batch.shape[0], -1, -1), batch)


def _chain_factors(index: Key, derivs: dict[Key, Tensor | None]) -> dict[int, Tensor]:
    """For each k, the sum over partitions of ``index`` into k blocks of prod d^B h."""
    factors: dict[int, Tensor] = {}
    if isinstance(index, Trace):
        squares = [derivs[(a,)] ** 2 for a in index.axes if derivs[(a,)] is not None]
        if squares:
            factors[2] = functools.reduce(torch.add, squares)
        if derivs.get(index) is not None:
            factors[1] = derivs[index]
        return factors
    for blocks in partitions(index):
        terms = [derivs.get(b) for b in blocks]
        if any(t is None for t in terms):
            continue
        product = functools.reduce(torch.mul, terms)
        k = len(blocks)
        factors[k] = product if k not in factors else factors[k] + product
    return factors


def network_jet(layers, x: Tensor, scale: Tensor, requests: Iterable[Key]):
    """Value and requested derivatives of a KAN at normalised inputs ``x`` ``(N, d)``.

    Args:
        layers: the KAN's layers.
        x: ``(N, d)`` normalised inputs.
        scale: ``(d,)`` d(normalised)/d(physical) per coordinate.
        requests: multi-indices of physical coordinates, or :class:`Trace` Laplacians.

    Returns:
        ``(value (N, m), {index: (N, m)})`` for every index in the closure of the requests.
    """
    indices = closure(requests)
    d, n = x.shape[1], x.shape[0]
    derivs: dict[Key, Tensor | None] = dict.fromkeys(indices)
    for i in indices:
        if not isinstance(i, Trace) and len(i) == 1:
            first = x.new_zeros(d, n)
            first[i[0]] = scale[i[0]]
            derivs[i] = first
    value = x.T.contiguous()
    for layer in layers:
        value, derivs = layer_jet(layer, value, derivs, indices)
    return value.T, {i: None if v is None else v.T for i, v in derivs.items()}
