"""What a residual function receives: fields, coordinates and parameters at a set of points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from kanphys.derivatives.analytic import AnalyticEngine, NeedsAutograd, Requests, supports_analytic
from kanphys.derivatives.autograd import AutogradEngine, partial

__all__ = ["FieldTensor", "State"]


class FieldTensor(torch.Tensor):
    """The values ``(N, 1)`` of one field; remembers which field it is so operators can ask the
    derivative engine for its derivatives. Arithmetic on it gives plain tensors."""

    __torch_function__ = torch._C._disabled_torch_function_impl
    kp_state: State
    kp_field: int
    kp_name: str


class State:
    """Fields, coordinates and parameters at ``N`` points, as seen by residual functions.

    Attribute access reads like the mathematics: ``s.u`` is field ``u`` ``(N, 1)``, ``s.x`` and
    ``s.t`` are coordinate columns ``(N, 1)``, ``s.k`` an unknown parameter (a 0-d tensor),
    ``s.points`` all coordinates ``(N, d)`` and ``s.normals`` the outward unit normals on a
    boundary ``(N, d)`` (None elsewhere).

    Args:
        model: maps ``(N, d)`` points to ``(N, m)`` field values.
        points: ``(N, d)`` coordinates.
        coordinates: names of the ``d`` coordinates.
        fields: names of the ``m`` fields.
        time_index: index of the time coordinate, or None.
        normals: ``(N, d)`` outward unit normals, or None.
        parameters: unknown parameters by name.
        requests: the loss term's request record; given, a KAN surrogate uses the closed-form
            engine (``kanphys.derivatives.analytic``), otherwise autograd is used.
    """

    def __init__(
        self,
        model: nn.Module,
        points: Tensor,
        *,
        coordinates: Sequence[str],
        fields: Sequence[str],
        time_index: int | None = None,
        normals: Tensor | None = None,
        parameters: Mapping[str, Tensor] | None = None,
        requests: Requests | None = None,
    ) -> None:
        self.points = points.detach()
        self.normals = normals
        self.coordinates, self.fields = tuple(coordinates), tuple(fields)
        self.time_index = time_index
        self.parameters = dict(parameters or {})
        self._model = model
        self.requests = requests
        self._engine: AutogradEngine | AnalyticEngine | None = None
        self._fields: dict[str, FieldTensor] = {}

    @property
    def n_points(self) -> int:
        return self.points.shape[0]

    @property
    def spatial(self) -> tuple[int, ...]:
        """Indices of the spatial coordinates (all but time)."""
        return tuple(i for i in range(len(self.coordinates)) if i != self.time_index)

    @property
    def engine(self) -> AutogradEngine | AnalyticEngine:
        if self._engine is None:
            analytic = self.requests is not None and not self.requests.autograd
            if analytic and supports_analytic(self._model):
                make = getattr(self._model, "analytic_engine", None)
                self._engine = (
                    AnalyticEngine(self._model, self.points, self.requests)
                    if make is None
                    else make(self.points, self.requests)
                )
            else:
                self._engine = AutogradEngine(self._model, self.points)
        return self._engine

    @property
    def x_all(self) -> Tensor:
        """The coordinates ``(N, d)`` that every field is differentiated by."""
        return self.engine.points

    def _autograd_points(self) -> Tensor:
        """Coordinates that expressions can be differentiated by (switches off the fast engine)."""
        if isinstance(self.engine, AnalyticEngine):
            self.requests.autograd = True
            raise NeedsAutograd("an expression of the fields is differentiated")
        return self.engine.points

    def field(self, name: str) -> FieldTensor:
        """Field ``name`` as ``(N, 1)``."""
        if name not in self._fields:
            index = self._field_index(name)
            value = self.engine.derivative(index, ()).as_subclass(FieldTensor)
            value.kp_state, value.kp_field, value.kp_name = self, index, name
            self._fields[name] = value
        return self._fields[name]

    def derivative(self, field: int, index: tuple[int, ...]) -> Tensor:
        """``(N, 1)`` partial derivative of field number ``field`` by coordinates ``index``."""
        return self.engine.derivative(field, index)

    def coordinate_index(self, name: str) -> int:
        if name not in self.coordinates:
            raise ValueError(f"unknown coordinate {name!r}; the coordinates are {self.coordinates}")
        return self.coordinates.index(name)

    def d(self, expr: Tensor, *coordinates: str) -> Tensor:
        """Partial derivative of any expression of the fields by coordinate names."""
        index = tuple(self.coordinate_index(c) for c in coordinates)
        if isinstance(expr, FieldTensor) and expr.kp_state is self:
            return self.derivative(expr.kp_field, index)
        return partial(expr, self._autograd_points(), index)

    def grad(self, expr: Tensor) -> Tensor:
        """Spatial gradient ``(N, d_space)`` of an expression."""
        names = [self.coordinates[i] for i in self.spatial]
        return torch.cat([self.d(expr, c) for c in names], dim=1)

    def lap(self, expr: Tensor) -> Tensor:
        """Spatial Laplacian ``(N, 1)`` of an expression."""
        names = [self.coordinates[i] for i in self.spatial]
        own_field = isinstance(expr, FieldTensor) and expr.kp_state is self
        if own_field and len(names) > 1 and hasattr(self.engine, "laplacian"):
            return self.engine.laplacian(expr.kp_field, self.spatial)
        return sum(self.d(expr, c, c) for c in names)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.fields:
            return self.field(name)
        if name in self.coordinates:
            i = self.coordinates.index(name)
            return self.x_all[:, i : i + 1]
        if name in self.parameters:
            return self.parameters[name]
        raise AttributeError(
            f"the state has no {name!r}: fields {self.fields}, coordinates {self.coordinates}, "
            f"parameters {tuple(self.parameters)}"
        )

    def _field_index(self, name: str) -> int:
        if name not in self.fields:
            raise ValueError(f"unknown field {name!r}; the fields are {self.fields}")
        return self.fields.index(name)
