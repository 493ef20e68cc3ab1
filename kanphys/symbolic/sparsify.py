"""Making a KAN readable: a sparsity penalty for training, attribution scores, and pruning.

The penalty (the KAN paper's) is, per layer, the L1 norm of the edge magnitudes
``|phi_ij|_1 = mean_x |phi_ij(x_i)|`` plus the entropy of their distribution, so training
concentrates the function on few edges. Attribution scores say how much each edge and node
contributes to the outputs; :func:`prune` returns a new, smaller model without the nodes and
edges that contribute little.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kanphys.kan.network import KAN
from kanphys.model import Surrogate

__all__ = ["Attribution", "Sparsify", "attribution", "prune"]

EPS = 1e-12


def _kan(model: Surrogate) -> KAN:
    net = getattr(model, "net", None)
    if not isinstance(net, KAN):
        raise TypeError(
            f"sparsification needs a Surrogate around a KAN, got {type(model).__name__}"
            + (f" around {type(net).__name__}" if net is not None else "")
        )
    return net


def _features(model: Surrogate, points: Tensor) -> Tensor:
    """The network's input at physical points (normalised; periodic inputs embedded)."""
    features = getattr(model, "features", None)
    return features(points) if features is not None else model.normalize(points)


@dataclass(frozen=True)
class Sparsify:
    """The sparsity penalty ``weight * sum_layers (l1 * L1 + entropy * H)``.

    Use it as a plan's regulariser: ``Plan(..., regularize=Sparsify(weight=1e-3))``; it is
    evaluated on the interior collocation points (or, without equations, on the data points).

    Attributes:
        weight: overall factor (``lambda`` in the KAN paper).
        l1: factor of the L1 norm of the edge magnitudes.
        entropy: factor of the entropy of the normalised edge magnitudes.
    """

    weight: float = 1e-3
    l1: float = 1.0
    entropy: float = 2.0

    def __post_init__(self) -> None:
        if min(self.weight, self.l1, self.entropy) < 0:
            raise ValueError(f"Sparsify: factors must be >= 0, got {self}")

    def penalty(self, model: Surrogate, points: Tensor) -> Tensor:
        """The penalty (a 0-d tensor) of a KAN surrogate at physical points ``(N, d)``."""
        net = _kan(model)
        z = _features(model, points.detach())
        total = z.new_zeros(())
        for layer in net.layers:
            magnitude = layer.edge_values(z).abs().mean(0)
            l1 = magnitude.sum()
            share = magnitude / (l1 + EPS)
            entropy = -(share * torch.log(share + EPS)).sum()
            total = total + self.l1 * l1 + self.entropy * entropy
            z = layer(z)
        return self.weight * total


@dataclass(frozen=True)
class Attribution:
    """How much each edge and node contributes to the outputs (1 for each output node).

    Attributes:
        edges: per layer ``(n_in, n_out)`` edge scores.
        nodes: per layer of nodes (input, hidden..., output) ``(width,)`` node scores.
        inputs: per layer ``(N, n_in)`` layer inputs at the sample points.
    """

    edges: list[Tensor]
    nodes: list[Tensor]
    inputs: list[Tensor]


def attribution(model: Surrogate, points: Tensor) -> Attribution:
    """Edge and node scores from samples ``points`` ``(N, d)`` (physical coordinates).

    An edge's score is its share of the variation of the node it feeds (standard deviation of
    the edge over the samples divided by that of the node), times that node's score; a node's
    score is the sum of the scores of its outgoing edges. Output nodes score 1.
    """
    net = _kan(model)
    with torch.no_grad():
        inputs, spreads, node_spreads = [], [], []
        z = _features(model, points.detach())
        for layer in net.layers:
            inputs.append(z)
            spreads.append(layer.edge_values(z).std(0))
            z = layer(z)
            node_spreads.append(z.std(0))
        scores = [torch.ones(net.widths[-1], dtype=z.dtype, device=z.device)]
        edges: list[Tensor] = []
        for spread, node_spread in zip(reversed(spreads), reversed(node_spreads), strict=True):
            edge = spread / (node_spread + EPS) * scores[0]
            edges.insert(0, edge)
            scores.insert(0, edge.sum(1))
    return Attribution(edges, scores, inputs)


def prune(model: Surrogate, points: Tensor, threshold: float = 1e-2) -> Surrogate:
    """A new surrogate without the hidden nodes and edges that score below ``threshold``.

    Each removed edge's mean value over the samples is added to a kept edge into the same node
    (through the basis's representation of a constant), so the function changes only by the
    removed variation. Every kept node keeps at least its strongest incoming edge.

    Args:
        model: a surrogate around a KAN (not changed).
        points: ``(N, d)`` physical sample points (collocation or data points).
        threshold: score below which a hidden node or an edge is removed.

    Returns:
        A new :class:`~kanphys.Surrogate` with narrower hidden layers.
    """
    net = _kan(model)
    scores = attribution(model, points)
    keep = [torch.arange(net.widths[0])]
    for hidden in scores.nodes[1:-1]:
        kept = torch.nonzero(hidden >= threshold).flatten()
        keep.append(kept if len(kept) else hidden.argmax().reshape(1))
    keep.append(torch.arange(net.widths[-1]))
    widths = [len(k) for k in keep]
    new = KAN(
        widths,
        net.basis,
        base=net.base,
        noise_scale=net.noise_scale,
        generator=torch.Generator().manual_seed(0),
        dtype=model.dtype,
        device=model.device,
    )
    for index, layer in enumerate(net.layers):
        _copy_pruned(
            layer,
            new.layers[index],
            keep[index],
            keep[index + 1],
            scores.edges[index],
            scores.inputs[index],
            threshold,
        )
    return model.with_net(new)


def _copy_pruned(old, new, rows: Tensor, cols: Tensor, edge_scores, inputs, threshold) -> None:
    """Copy the kept part of a layer, zero weak edges, fold removed means into kept edges."""
    with torch.no_grad():
        means = old.edge_values(inputs).mean(0)
        dropped = torch.ones_like(means, dtype=torch.bool)
        dropped[rows.unsqueeze(1), cols] = edge_scores[rows][:, cols] < threshold
        strongest = edge_scores[rows][:, cols].argmax(0)
        dropped[rows[strongest], cols] = False
        new.knots.copy_(old.knots[rows])
        new.coef.copy_(old.coef[rows][:, :, cols])
        new.scale_spline.copy_(old.scale_spline[rows][:, cols])
        if old.base is not None:
            new.scale_base.copy_(old.scale_base[rows][:, cols])
        for k, j in enumerate(cols.tolist()):
            offset = (means[:, j] * dropped[:, j]).sum()
            for r, i in enumerate(rows.tolist()):
                if dropped[i, j]:
                    new.coef[r, :, k] = 0
                    if old.base is not None:
                        new.scale_base[r, k] = 0
            _add_constant(new, int(strongest[k]), k, offset, inputs[:, rows[strongest[k]]])


def _add_constant(layer, row: int, col: int, value: Tensor, samples: Tensor) -> None:
    """Add ``value`` to edge ``row -> col`` through the spline coefficients that represent 1."""
    if float(value) == 0.0:
        return
    lo, hi = samples.min(), samples.max()
    grid = torch.linspace(float(lo), float(hi), 64, dtype=samples.dtype, device=samples.device)
    full = grid.unsqueeze(1).expand(-1, layer.n_in).contiguous()
    design = layer.basis_values(full)[:, row, :]
    ones = torch.ones(64, 1, dtype=design.dtype, device=design.device)
    unit = torch.linalg.lstsq(design.double().cpu(), ones.double().cpu()).solution[:, 0]
    scale = layer.scale_spline[row, col]
    if float(scale.abs()) < EPS:
        layer.scale_spline[row, col] = 1.0
        scale = layer.scale_spline[row, col]
    layer.coef[row, :, col] += (value / scale) * unit.to(layer.coef)
