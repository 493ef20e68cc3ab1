"""The fast derivative engine for KAN surrogates: closed-form forward derivatives (see ``jet``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from kanphys.derivatives.jet import Index, Trace, network_jet
from kanphys.kan.network import KAN

__all__ = ["MAX_ORDER", "AnalyticEngine", "NeedsAutograd", "Requests", "supports_analytic"]

MAX_ORDER = 3


class NeedsAutograd(Exception):
    """A residual asked for something only autograd provides (an expression's derivative)."""


@dataclass
class Requests:
    """What the residuals of one loss term ask for, learned as they run.

    Attributes:
        indices: multi-indices of the derivatives asked for so far (and Laplacians).
        autograd: True once the term needed autograd (it then keeps using it).
        changed: True when an evaluation added indices (the loss then redoes the term in one
            pass, so every evaluation builds the same computation).
    """

    indices: set[Index | Trace] = field(default_factory=set)
    autograd: bool = False
    changed: bool = False


def supports_analytic(model: nn.Module) -> bool:
    """True for a surrogate around a KAN whose bases and base functions have closed forms."""
    net = getattr(model, "net", None)
    return isinstance(net, KAN) and hasattr(model, "inv_half_width")


class AnalyticEngine:
    """Values and derivatives of a KAN surrogate, propagated forward in closed form.

    All derivatives in ``requests.indices`` are computed in one pass; a derivative asked for
    later is added to the requests and the pass is redone (so the next evaluation of the same
    term computes everything at once).

    Args:
        model: a :class:`~kanphys.Surrogate` around a :class:`~kanphys.KAN`.
        points: ``(N, d)`` coordinates.
        requests: the term's request record (shared across evaluations).
    """

    def __init__(self, model: nn.Module, points: Tensor, requests: Requests) -> None:
        self.model, self.points, self.requests = model, points.detach(), requests
        self._compute()

    def _compute(self) -> None:
        x = self.model.normalize(self.points)
        self.values, self._derivs = network_jet(
            self.model.net.layers, x, self.model.inv_half_width, self.requests.indices
        )

    def derivative(self, output: int, index: tuple[int, ...]) -> Tensor:
        """``d^k u_output / dx_index`` as ``(N, 1)``; ``index=()`` gives the value."""
        key = tuple(sorted(index))
        if not key:
            return self.values[:, output : output + 1]
        if len(key) > MAX_ORDER:
            self.requests.autograd = True
            raise NeedsAutograd(f"derivative of order {len(key)} > {MAX_ORDER}")
        return self._lookup(output, key)

    def laplacian(self, output: int, axes: tuple[int, ...]) -> Tensor:
        """``sum_a d^2 u_output / dx_a^2`` over ``axes`` as ``(N, 1)``, carried through the
        layers as one quantity."""
        return self._lookup(output, Trace(tuple(sorted(axes))))

    def _lookup(self, output: int, key: Index | Trace) -> Tensor:
        if key not in self._derivs:
            self.requests.indices.add(key)
            self.requests.changed = True
            self._compute()
        value = self._derivs[key]
        if value is None:
            return self.values.new_zeros(self.values.shape[0], 1)
        return value[:, output : output + 1]
