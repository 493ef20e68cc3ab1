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


def uniform_cubic_local(x: Tensor, knots: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where points lie on uniform cubic knots.

    Args:
        x: ``(n_in, N)`` points, one row per input (points last, so every elementwise
            operation runs over long contiguous rows).
        knots: ``(n_in, K)`` evenly spaced knots per input.

    Returns:
        ``(u (n_in, N), interval (n_in, N), 1 / width (n_in, 1))``: the position u in [0, 1)
        inside the knot interval (differentiable in ``x``), the interval's number (integer,
        negative or past ``K - 2`` outside the knots) and du/dx. Basis functions
        ``interval - 3 .. interval`` are the four that can be non-zero there.
    """
    start, width = knots[:, :1], knots[:, 1:2] - knots[:, :1]
    position = (x - start) / width
    interval = torch.floor(position.detach())
    return position - interval, interval.long(), 1 / width


def basis_slots(interval: Tensor, size: int) -> Tensor:
    """``(4, n_in, N)`` slots of the four basis functions that can be non-zero in each
    point's interval: basis function b sits in slot b + 1; slots 0 and ``size + 1`` are spares
    (met by zero coefficients) for functions that do not exist near or past the ends."""
    offsets = torch.arange(-2, 2, device=interval.device).view(4, 1, 1)
    return (interval.unsqueeze(0) + offsets).clamp_(0, size + 1)


def cubic_pieces(u: Tensor, count: int) -> Tensor:
    """The four cubic B-spline pieces at ``u`` and their u-derivatives of orders below
    ``count``: ``(count, 4, *u.shape)``, as a constant matrix times ``[1, u, u^2, u^3]``."""
    powers = torch.stack([torch.ones_like(u), u, u * u, u * u * u]).reshape(4, -1)
    rows = [*CUBIC, ((0.0,) * 4,) * 4][:count]
    matrix = torch.tensor(rows, dtype=u.dtype, device=u.device).transpose(1, 2)
    return (matrix.reshape(4 * count, 4) @ powers).reshape(count, 4, *u.shape)


def layer_jet(
    layer: KANLayer, value: Tensor, derivs: dict[Key, Tensor | None], indices: tuple[Key, ...]
) -> tuple[Tensor, dict[Key, Tensor]]:
    """Value ``(n_out, N)`` and derivatives of a layer's output from those of its input.

    Everything is laid out points-last (``(features, N)``). Uniform cubic layers take the local
    path (one fused autograd node from the four non-zero basis values per point to the
    output); others use the dense basis derivatives.

    Args:
        layer: the KAN layer.
        value: ``(n_in, N)`` input.
        derivs: input derivatives ``(n_in, N)`` by multi-index (None where identically zero).
        indices: multi-indices to produce, closed under sub-multi-indices.
    """
    order = max((_order(i) for i in indices), default=0)
    named = [(multi, f) for multi in indices if (f := _chain_factors(multi, derivs))]
    names = [multi for multi, _ in named]
    if is_uniform_cubic(layer):
        out = _uniform_cubic_jet(layer, value, [f for _, f in named])
    else:
        spline = [b.permute(2, 1, 0) for b in basis_derivatives(layer, value.T, order)]
        rows = [spline[0], *(_combine(spline, f) for _, f in named)]
        out = _contract_dense(layer, torch.stack(rows))
    if layer.base is not None:
        base = _base_jet(layer.base, value, order)
        base_rows = [base[0], *(_combine(base, f) for _, f in named)]
        out = out + _contract(layer.scale_base.T, torch.stack(base_rows))
    new = dict.fromkeys(indices)
    new.update(zip(names, out[1:], strict=True))
    return out[0], new


def _combine(values: list[Tensor], factors: dict[int, Tensor]) -> Tensor:
    """``sum_k values[k] * factors[k]``, fused where there are two terms."""
    terms = sorted(factors.items())
    (k, q), rest = terms[0], terms[1:]
    out = values[k] * q
    for k, q in rest:
        out = torch.addcmul(out, values[k], q)
    return out


def _contract_dense(layer: KANLayer, stacked: Tensor) -> Tensor:
    """``(count, n_out, N)`` from dense basis rows ``(count, size, n_in, N)``: one batched
    matrix product."""
    count, n = stacked.shape[0], stacked.shape[-1]
    return _contract(_coef_matrix(layer), stacked.view(count, -1, n))


def _coef_matrix(layer: KANLayer) -> Tensor:
    """``(n_out, size * n_in)``: the coefficients, columns ordered (basis function, input) as
    the rows of the basis matrix."""
    return layer.effective_coef().permute(2, 1, 0).reshape(layer.n_out, -1)


def _contract(matrix: Tensor, batch: Tensor) -> Tensor:
    """``matrix (a, b) @ batch[c] (b, N)`` for every ``c``, as one batched product."""
    return torch.bmm(matrix.expand(batch.shape[0], -1, -1), batch)


def _uniform_cubic_jet(layer: KANLayer, value: Tensor, factors: list[dict[int, Tensor]]):
    """``(1 + len(factors), n_out, N)``: the spline part of a uniform cubic layer's value and
    of each derivative channel ``sum_k phi^(k)(h) factors[k]``."""
    u, interval, inv_width = uniform_cubic_local(value, layer.knots)
    layout = ((0,), *(tuple(sorted(f)) for f in factors))
    weights = [q * inv_width**k for f in factors for k, q in sorted(f.items())]
    if layer.n_out <= FEW_OUTPUTS:
        return _polynomial_jet(layer, u, interval, layout, weights)
    n_in, n = value.shape
    within = torch.arange(n_in * n, device=value.device).view(n_in, n)
    flat = basis_slots(interval, layer.basis.size) * (n_in * n) + within
    return _UniformCubic.apply(u, _coef_matrix(layer), flat, layout, *weights)


def _polynomial_jet(layer: KANLayer, u: Tensor, interval: Tensor, layout, weights) -> Tensor:
    """The same for a layer with few outputs, from each edge's cubic polynomial on the
    point's interval: its four power coefficients are gathered per point and output, so the
    edge function and its u-derivatives follow by Horner's rule (no basis values at all)."""
    n_in, n = u.shape
    table = _interval_polynomials(layer)  # (n_out, 4, n_in * intervals)
    intervals = table.shape[-1] // n_in
    inputs = torch.arange(n_in, device=u.device).view(-1, 1) * intervals
    index = ((interval + 1).clamp_(0, intervals - 1) + inputs).view(-1)
    top = max(max(k) for k in layout)
    outputs = []
    for powers in table:
        a = powers.index_select(1, index).view(4, n_in, n)
        edges = _horner(a, u, top)
        flat = iter(weights)
        channels = [edges[0]]
        for orders in layout[1:]:
            channels.append(_combine(edges, {k: next(flat) for k in orders}))
        outputs.append(torch.stack(channels).sum(1))
    return torch.stack(outputs, dim=1)


def _interval_polynomials(layer: KANLayer) -> Tensor:
    """``(n_out, 4, n_in * (size + 5))``: the power coefficients (1, u, u^2, u^3) of every
    edge function on every knot interval, with an all-zero interval at each end for points
    outside the knots (interval i + 1 of input r at column ``r * (size + 5) + i + 1``)."""
    coef = torch.nn.functional.pad(layer.effective_coef(), (0, 0, 3, 3))  # missing functions
    windows = coef.unfold(1, 4, 1)  # (n_in, intervals, n_out, 4): functions i - 3 .. i
    pieces = torch.tensor(CUBIC[0], dtype=coef.dtype, device=coef.device)  # (power, piece)
    powers = torch.nn.functional.pad(windows @ pieces.T, (0, 0, 0, 0, 1, 1))
    return powers.permute(2, 3, 0, 1).reshape(layer.n_out, 4, -1)


def _horner(a: Tensor, u: Tensor, order: int) -> list[Tensor]:
    """u-derivatives 0..order of ``a0 + a1 u + a2 u^2 + a3 u^3`` (``a``: ``(4, ...)``)."""
    a0, a1, a2, a3 = a.unbind(0)
    values = [torch.addcmul(a0, torch.addcmul(a1, torch.addcmul(a2, a3, u), u), u)]
    if order >= 1:
        values.append(torch.addcmul(a1, torch.addcmul(a2, a3, u, value=1.5), u, value=2))
    if order >= 2:
        values.append(2 * torch.addcmul(a2, a3, u, value=3))
    if order >= 3:
        values.append(6 * a3)
    return values


class _UniformCubic(torch.autograd.Function):
    """Local rows ``sum_k P_k(u) w_ck`` of the four cubic pieces per point (channel 0 is the
    value, ``P_0``) contracted with the coefficients, as one autograd node: the rows are
    scattered into the basis matrix ``(channels, slots * n_in, N)`` and multiplied, in one
    batched product over the existing basis functions. The backward pass works from the
    saved pieces, with the next u-derivative for the gradient in ``u``, so no graph of the
    elementwise products is kept.
    """

    @staticmethod
    def forward(ctx, u, matrix, flat, layout, *weights):
        pieces = cubic_pieces(u, max(max(k) for k in layout) + 2)
        rows = _local_rows(pieces, layout, weights)
        basis = _scatter_rows(rows, flat, matrix.shape[1] + 2 * u.shape[0])
        ctx.layout = layout
        ctx.save_for_backward(matrix, flat, pieces, basis, *weights)
        return _contract(matrix, _existing(basis, u.shape[0]))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        matrix, flat, pieces, basis, *weights = ctx.saved_tensors
        n_in, grad_matrix = pieces.shape[2], None
        grad_rows = _gather_rows(_basis_grad(matrix, grad, n_in), flat)
        grad_rows = grad_rows.view(grad.shape[0], *pieces.shape[1:])
        if ctx.needs_input_grad[1]:
            grad_matrix = torch.bmm(grad, _existing(basis, n_in).transpose(1, 2)).sum(0)
        grad_u, grad_weights = _local_backward(ctx, pieces, grad_rows, weights)
        return grad_u, grad_matrix, None, None, *grad_weights


def _local_rows(pieces: Tensor, layout, weights) -> Tensor:
    """``(channels, 4, n_in, N)``: row 0 the value pieces, row c ``sum_k P_k w_ck``."""
    rows = pieces.new_empty(len(layout), *pieces.shape[1:])
    rows[0] = pieces[0]
    flat = iter(weights)
    for row, orders in zip(rows[1:], layout[1:], strict=True):
        first, *rest = orders
        torch.mul(pieces[first], next(flat), out=row)
        for k in rest:
            row.addcmul_(pieces[k], next(flat))
    return rows


def _scatter_rows(rows: Tensor, flat: Tensor, slots_times_inputs: int) -> Tensor:
    """Local rows ``(C, 4, n_in, N)`` into the basis matrix ``(C, slots * n_in, N)``, one flat
    index per point and basis function (distinct for existing functions; several missing
    ones may share a spare slot, whose coefficients are zero)."""
    count, n = rows.shape[0], rows.shape[-1]
    basis = rows.new_zeros(count, slots_times_inputs * n)
    basis.scatter_(1, flat.view(1, -1).expand(count, -1), rows.view(count, -1))
    return basis.view(count, slots_times_inputs, n)


def _existing(basis: Tensor, n_in: int) -> Tensor:
    """The rows of the basis matrix ``(C, slots * n_in, N)`` that belong to existing basis
    functions (all but the first and last slot): a view."""
    return basis[:, n_in : basis.shape[1] - n_in]


def _basis_grad(matrix: Tensor, grad: Tensor, n_in: int) -> Tensor:
    """Gradient of the basis matrix ``(C, slots * n_in, N)``, zero in the spare slots: the
    product is written straight into the rows of the existing functions."""
    count, n = grad.shape[0], grad.shape[-1]
    out = grad.new_empty(count, matrix.shape[1] + 2 * n_in, n)
    out[:, :n_in].zero_()
    out[:, -n_in:].zero_()
    torch.bmm(matrix.T.expand(count, -1, -1), grad, out=_existing(out, n_in))
    return out


def _gather_rows(basis_grad: Tensor, flat: Tensor) -> Tensor:
    count = basis_grad.shape[0]
    return basis_grad.view(count, -1).gather(1, flat.view(1, -1).expand(count, -1))


def _local_backward(ctx, pieces: Tensor, grad_rows: Tensor, weights):
    """Gradients in ``u`` and in the weights from those of the local rows: row c is
    ``sum_k P_k(u) w_ck``, so d/dw_ck = sum over pieces of grad * P_k and d/du = sum over
    pieces of grad * sum_k P_(k+1) w_ck."""
    grad_weights, by_order = [], {0: grad_rows[0]}
    flat, position = iter(weights), 4  # forward(u, matrix, flat, layout, *weights)
    for g, orders in zip(grad_rows[1:], ctx.layout[1:], strict=True):
        for k in orders:
            w = next(flat)
            needed = ctx.needs_input_grad[position]
            grad_weights.append((g * pieces[k]).sum(0) if needed else None)
            position += 1
            if ctx.needs_input_grad[0]:
                by_order[k] = g * w if k not in by_order else by_order[k].addcmul_(g, w)
    grad_u = None
    if ctx.needs_input_grad[0]:
        grad_u = sum((pieces[k + 1] * g).sum(0) for k, g in by_order.items())
    return grad_u, grad_weights


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
