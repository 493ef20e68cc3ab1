"""Hard constraints: conditions that hold exactly by construction of the surrogate.

* Exact values (Dirichlet, initial) through an output transform ``u = g(x) + d(x) N(x)``:
  ``d`` vanishes where the value is imposed and ``g`` takes the imposed value there.
  :func:`distance` builds ``d`` for a domain (boxes, disks and their CSG combinations, composed
  with R-functions), :func:`time_distance` for the initial slice.
* Exact periodicity through an input embedding: a periodic coordinate ``x`` of period ``P``
  enters the network as ``cos(2 pi (x - x0) / P)`` and ``sin(2 pi (x - x0) / P)``.

Declare them on the problem, ``Problem(..., constraints=Constraints(...))``; every surrogate
built for the problem (KAN or MLP, new or restored) then carries them.

Derivatives: the closed-form engine still differentiates the network. With a periodic
embedding, :class:`EmbeddedEngine` seeds the network's input derivatives with those of the
embedding; with output transforms, :class:`ConstrainedEngine` combines the network's
derivatives with those of ``g`` and ``d`` (parameter-free functions of the points,
differentiated by autograd) by Leibniz's rule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from kanphys.derivatives.analytic import AnalyticEngine, Requests
from kanphys.derivatives.autograd import partial
from kanphys.derivatives.jet import Trace, closure, layer_jet
from kanphys.geometry import Difference, Disk, Domain, Intersection, TimeDomain, Union
from kanphys.geometry.primitives import _AxisAlignedBox

__all__ = [
    "BoundConstraints",
    "ConstrainedEngine",
    "Constraints",
    "EmbeddedEngine",
    "HardValue",
    "distance",
    "hard_dirichlet",
    "hard_initial",
    "time_distance",
]

Function = Callable[[Tensor], Tensor]


def _column(values: Tensor | float, x: Tensor) -> Tensor:
    if not isinstance(values, Tensor):
        return torch.full((x.shape[0], 1), float(values), dtype=x.dtype, device=x.device)
    return values.reshape(x.shape[0], 1)


@dataclass(frozen=True)
class HardValue:
    """An exact value for one field: ``u = value(x) + distance(x) * N(x)``.

    Attributes:
        field: the field name.
        value: a number or a function of the physical points ``(N, d)`` (``(N,)`` or
            ``(N, 1)``) equal to the imposed value where ``distance`` vanishes.
        distance: a smooth function of the points, zero exactly where the value is imposed and
            nonzero inside.
    """

    field: str
    value: float | Function
    distance: Function

    def g(self, x: Tensor) -> Tensor:
        return _column(self.value(x) if callable(self.value) else self.value, x)

    def d(self, x: Tensor) -> Tensor:
        return _column(self.distance(x), x)


@dataclass(frozen=True, eq=False)
class Constraints:
    """Hard constraints of a problem.

    Attributes:
        values: exact values, at most one :class:`HardValue` per field.
        periodic: period per periodic coordinate name, e.g. ``{"x": 2 * math.pi}``.
    """

    values: Sequence[HardValue] = ()
    periodic: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "periodic", {k: float(v) for k, v in self.periodic.items()})
        names = [v.field for v in self.values]
        if len(set(names)) != len(names):
            raise ValueError(f"Constraints: more than one HardValue for a field in {names}")
        for name, period in self.periodic.items():
            if not period > 0:
                raise ValueError(f"Constraints: period of {name!r} must be > 0, got {period}")

    def bind(self, coordinates: Sequence[str], fields: Sequence[str]) -> BoundConstraints:
        """The constraints with names resolved to column indices.

        Raises:
            ValueError: naming an unknown field or coordinate.
        """
        for value in self.values:
            if value.field not in fields:
                raise ValueError(f"hard value for unknown field {value.field!r}; fields {fields}")
        for name in self.periodic:
            if name not in coordinates:
                raise ValueError(
                    f"periodic coordinate {name!r} is unknown; coordinates {tuple(coordinates)}"
                )
        return BoundConstraints(
            {tuple(fields).index(v.field): v for v in self.values},
            {tuple(coordinates).index(k): p for k, p in self.periodic.items()},
        )


@dataclass(frozen=True, eq=False)
class BoundConstraints:
    """Constraints by column: ``values`` by field index, ``periodic`` period by coordinate index;
    ``source`` names the problem file that declares them (so a saved model can be rebuilt)."""

    values: Mapping[int, HardValue]
    periodic: Mapping[int, float]
    source: str | None = None

    def n_inputs(self, dim: int) -> int:
        """Width of the network input for ``dim`` coordinates (one more per periodic one)."""
        return dim + len(self.periodic)

    def embed(self, x: Tensor, z: Tensor, lower: Tensor) -> Tensor:
        """Network inputs from physical points ``x`` and normalised ones ``z`` ``(N, d)``.

        Column ``j`` of a periodic coordinate becomes ``cos(theta)`` and ``sin(theta)`` is
        appended, ``theta = 2 pi (x_j - lower_j) / P``.
        """
        if not self.periodic:
            return z
        columns = list(z.unbind(dim=1))
        extra = []
        for j, period in self.periodic.items():
            theta = (2 * math.pi / period) * (x[:, j] - lower[j])
            columns[j] = torch.cos(theta)
            extra.append(torch.sin(theta))
        return torch.stack([*columns, *extra], dim=1)

    def output(self, x: Tensor, n: Tensor) -> Tensor:
        """Field values ``(N, m)`` from the network's outputs ``n`` at physical points ``x``."""
        if not self.values:
            return n
        columns = list(n.split(1, dim=1))
        for i, value in self.values.items():
            columns[i] = value.g(x) + value.d(x) * columns[i]
        return torch.cat(columns, dim=1)


class EmbeddedEngine(AnalyticEngine):
    """The closed-form engine for a KAN surrogate whose periodic coordinates enter the network
    as ``cos(theta)`` and ``sin(theta)``, ``theta = 2 pi (x - x0) / P``.

    The network's input is no longer linear in the coordinates, so its derivatives are seeded
    with those of the embedding (``d^k cos(theta) / dx^k = w^k cos(theta + k pi / 2)``) and
    carried through the layers by the same layer recursion (``jet.layer_jet``).
    """

    def _compute(self) -> None:
        bound = self.model.constraints
        if bound is None or not bound.periodic:
            super()._compute()
            return
        z = self.model.features(self.points)
        indices = closure(self.requests.indices)
        derivs = {key: self._seed(key, z.shape[1]) for key in indices}
        value = z.T.contiguous()
        for layer in self.model.net.layers:
            value, derivs = layer_jet(layer, value, derivs, indices)
        self.values = value.T
        self._derivs = {k: None if v is None else v.T for k, v in derivs.items()}

    def _seed(self, key, width: int) -> Tensor | None:
        """Derivative ``(width, N)`` of the network input by ``key`` (None: zero)."""
        if isinstance(key, Trace):
            parts = [self._seed((a, a), width) for a in key.axes]
            parts = [p for p in parts if p is not None]
            return sum(parts) if parts else None
        if len(set(key)) != 1:
            return None
        j, order = key[0], len(key)
        periodic = self.model.constraints.periodic
        out = self.points.new_zeros(width, self.points.shape[0])
        if j not in periodic:
            if order > 1:
                return None
            out[j] = self.model.inv_half_width[j]
            return out
        omega = 2 * math.pi / periodic[j]
        theta = omega * (self.points[:, j] - self.model.bounds[0][j]) + order * math.pi / 2
        out[j] = omega**order * torch.cos(theta)
        out[self.points.shape[1] + list(periodic).index(j)] = omega**order * torch.sin(theta)
        return out


class ConstrainedEngine(EmbeddedEngine):
    """Closed-form derivatives of ``u = g + d N`` for a KAN surrogate with output transforms.

    The network's derivatives come from the closed-form engine; those of ``g`` and ``d`` from
    autograd on the points (they hold no parameters, so this graph is small and detached);
    Leibniz's rule combines them: ``D^a (d N) = sum over subsets S of the positions of a of
    D^S d * D^(a-S) N``.
    """

    def __init__(self, model, points: Tensor, requests: Requests) -> None:
        super().__init__(model, points, requests)
        self.hard = model.constraints.values
        self._cache: dict[tuple[str, int, tuple[int, ...]], Tensor] = {}

    def _known(self, kind: str, output: int, index: tuple[int, ...]) -> Tensor:
        key = (kind, output, index)
        if key not in self._cache:
            with torch.enable_grad():
                x = self.points.detach().requires_grad_(True)
                value = self.hard[output].g(x) if kind == "g" else self.hard[output].d(x)
                self._cache[key] = partial(value, x, index).detach()
        return self._cache[key]

    def derivative(self, output: int, index: tuple[int, ...]) -> Tensor:
        net = super().derivative
        if output not in self.hard:
            return net(output, index)
        key = tuple(sorted(index))
        total = self._known("g", output, key)
        for size in range(len(key) + 1):
            for chosen in itertools.combinations(range(len(key)), size):
                part = tuple(key[p] for p in chosen)
                rest = tuple(key[p] for p in range(len(key)) if p not in chosen)
                total = total + self._known("d", output, part) * net(output, rest)
        return total

    def laplacian(self, output: int, axes: tuple[int, ...]) -> Tensor:
        """``lap(g + d N) = lap g + N lap d + 2 grad d . grad N + d lap N`` over ``axes``, with
        the network's Laplacian from the closed-form engine as one quantity."""
        inner = getattr(super(), "laplacian", None)
        if output not in self.hard:
            return inner(output, axes)
        if inner is None:
            return sum(self.derivative(output, (a, a)) for a in axes)
        net = super().derivative
        total = self._known("d", output, ()) * inner(output, axes)
        for a in axes:
            total = total + self._known("g", output, (a, a))
            total = total + self._known("d", output, (a, a)) * net(output, ())
            total = total + 2 * self._known("d", output, (a,)) * net(output, (a,))
        return total


def hard_dirichlet(domain: Domain, field: str, value: float | Function = 0.0) -> HardValue:
    """Exact values on the whole (spatial) boundary of ``domain``: ``d = distance(domain)``."""
    return HardValue(field, value, distance(domain))


def hard_initial(domain: TimeDomain, field: str, value: float | Function) -> HardValue:
    """Exact initial values: ``u = value(x) + (t - t0) / (t1 - t0) N``."""
    return HardValue(field, value, time_distance(domain))


def time_distance(domain: TimeDomain) -> Function:
    """``(t - t0) / (t1 - t0)``: zero on the initial slice (time is the last coordinate)."""
    if not isinstance(domain, TimeDomain):
        raise TypeError(f"time_distance needs a TimeDomain, got {type(domain).__name__}")
    t0, length = domain.t0, domain.t1 - domain.t0
    return lambda x: (x[:, -1:] - t0) / length


def distance(domain: Domain) -> Function:
    """An approximate distance function of ``domain``'s (spatial) boundary.

    Zero exactly on the boundary, positive inside, smooth away from the corners of CSG
    combinations. Boxes use the product of their normalised face distances; disks
    ``(R^2 - |x - c|^2) / (2 R)`` (slope 1 on the circle); unions, intersections and
    differences the R-functions ``f + g +- sqrt(f^2 + g^2)`` (Rvachev). For a time domain the
    spatial part's function of the leading coordinates.

    Raises:
        TypeError: for a domain kind without a distance function.
    """
    if isinstance(domain, TimeDomain):
        space = distance(domain.space)
        n = domain.space.dim
        return lambda x: space(x[:, :n])
    if isinstance(domain, _AxisAlignedBox):
        lower, upper = (np.asarray(b, dtype=np.float64) for b in domain.bounds)
        return lambda x: _box(x, lower, upper)
    if isinstance(domain, Disk):
        center, radius = domain.center, domain.radius
        return lambda x: _disk(x, center, radius)
    if isinstance(domain, (Union, Intersection, Difference)):
        left, right = distance(domain.left), distance(domain.right)
        if isinstance(domain, Union):
            return lambda x: _r_or(left(x), right(x))
        if isinstance(domain, Intersection):
            return lambda x: _r_and(left(x), right(x))
        return lambda x: _r_and(left(x), -right(x))
    raise TypeError(f"no distance function for a {type(domain).__name__}; pass your own")


def _box(x: Tensor, lower: np.ndarray, upper: np.ndarray) -> Tensor:
    out = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    for j, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        out = out * (x[:, j : j + 1] - lo) * (hi - x[:, j : j + 1]) / (hi - lo)
    return out


def _disk(x: Tensor, center: Sequence[float], radius: float) -> Tensor:
    r2 = (x[:, 0:1] - center[0]) ** 2 + (x[:, 1:2] - center[1]) ** 2
    return (radius**2 - r2) / (2 * radius)


def _r_and(f: Tensor, g: Tensor) -> Tensor:
    return f + g - torch.sqrt(f * f + g * g)


def _r_or(f: Tensor, g: Tensor) -> Tensor:
    return f + g + torch.sqrt(f * f + g * g)
