"""Declaring a PDE problem: fields, equations, conditions, unknown parameters, exact solution.

A :class:`Problem` is the mathematics only: no point counts, optimisers or devices. It checks
itself when declared and names the culprit of any inconsistency.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kanphys.derivatives.operators import dn
from kanphys.derivatives.state import State
from kanphys.describe import describe_callable
from kanphys.geometry import Domain, Region

__all__ = [
    "Condition",
    "Data",
    "Dirichlet",
    "Initial",
    "InitialRate",
    "Neumann",
    "Parameter",
    "Periodic",
    "Problem",
    "ProblemError",
    "Robin",
    "as_column",
]

Value = float | Callable[[Tensor], Tensor]
RESERVED = {
    "points",
    "normals",
    "fields",
    "coordinates",
    "parameters",
    "d",
    "grad",
    "lap",
    "field",
    "derivative",
    "engine",
    "spatial",
    "n_points",
    "time_index",
    "x_all",
}


class ProblemError(ValueError):
    """A problem declaration is inconsistent; the message names the culprit."""


def as_column(values: Tensor, n: int, what: str) -> Tensor:
    """Check that ``values`` is ``(n,)`` or ``(n, 1)`` and return it as ``(n, 1)``.

    Raises:
        ProblemError: naming ``what`` and the shape received.
    """
    if (values.ndim == 1 and values.shape[0] == n) or values.shape == (n, 1):
        return values.reshape(n, 1)
    hint = ""
    if values.shape == (n, n):
        hint = " (an (N, 1) tensor combined with an (N,) tensor broadcasts to (N, N))"
    raise ProblemError(
        f"{what} returned shape {tuple(values.shape)}; expected ({n},) or ({n}, 1){hint}"
    )


def evaluate_value(value: Value, points: Tensor, what: str) -> Tensor:
    """A constant or a callable of the points ``(N, d)`` as an ``(N, 1)`` tensor."""
    if callable(value):
        return as_column(torch.as_tensor(value(points)), points.shape[0], what)
    return torch.full((points.shape[0], 1), float(value), dtype=points.dtype, device=points.device)


def _describe_value(value: Value) -> str:
    return describe_callable(value) if callable(value) else repr(float(value))


@dataclass(frozen=True)
class Parameter:
    """An unknown scalar of an inverse problem, trained with the model; ``s.<name>`` in residuals.

    Attributes:
        name: identifier used in residuals.
        init: initial value (required).
    """

    name: str
    init: float | None = None

    def __post_init__(self) -> None:
        if self.init is None:
            raise ProblemError(
                f"parameter {self.name!r} has no initial value: Parameter({self.name!r}, init=...)"
            )


@dataclass(frozen=True)
class Condition:
    """A residual imposed on a region (boundary, initial slice, or interior part).

    Attributes:
        name: loss term name.
        on: the region its points are sampled from.
        residual: function of the state returning ``(N,)`` or ``(N, 1)``.
    """

    name: str
    on: Region
    residual: Callable[[State], Tensor]

    @property
    def fields(self) -> tuple[str, ...]:
        return ()

    def evaluate(self, state: State) -> Tensor:
        return self.residual(state)

    def describe(self) -> str:
        return f"{describe_callable(self.residual)} = 0 on {self.on.name}"


@dataclass(frozen=True)
class Dirichlet:
    """Prescribed field value: ``u = value`` on a region.

    Attributes:
        name: loss term name.
        on: region (e.g. ``square.boundary`` or ``square.part("left")``).
        field: field name.
        value: a number, or a function of the points ``(N, d)`` returning ``(N,)`` or ``(N, 1)``.
    """

    name: str
    on: Region
    field: str
    value: Value = 0.0

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def evaluate(self, state: State) -> Tensor:
        target = evaluate_value(self.value, state.points, f"value of condition {self.name!r}")
        return state.field(self.field) - target

    def describe(self) -> str:
        return f"Dirichlet {self.field} = {_describe_value(self.value)} on {self.on.name}"


@dataclass(frozen=True)
class Neumann:
    """Prescribed outward normal derivative: ``du/dn = value`` on a boundary region."""

    name: str
    on: Region
    field: str
    value: Value = 0.0

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def evaluate(self, state: State) -> Tensor:
        target = evaluate_value(self.value, state.points, f"value of condition {self.name!r}")
        return dn(state.field(self.field)) - target

    def describe(self) -> str:
        return f"Neumann d{self.field}/dn = {_describe_value(self.value)} on {self.on.name}"


@dataclass(frozen=True)
class Initial:
    """Initial value ``u(x, t0) = value(x, t0)``; ``on`` defaults to the domain's initial slice."""

    name: str
    field: str
    value: Value = 0.0
    on: Region | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def evaluate(self, state: State) -> Tensor:
        target = evaluate_value(self.value, state.points, f"value of condition {self.name!r}")
        return state.field(self.field) - target

    def describe(self) -> str:
        return f"Initial {self.field} = {_describe_value(self.value)} at t = t0"


@dataclass(frozen=True)
class InitialRate:
    """Initial rate ``du/dt(x, t0) = value(x, t0)`` (second order in time, e.g. waves)."""

    name: str
    field: str
    value: Value = 0.0
    on: Region | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def evaluate(self, state: State) -> Tensor:
        target = evaluate_value(self.value, state.points, f"value of condition {self.name!r}")
        return state.derivative(state.fields.index(self.field), (state.time_index,)) - target

    def describe(self) -> str:
        return f"Initial rate d{self.field}/dt = {_describe_value(self.value)} at t = t0"


@dataclass(frozen=True)
class Robin:
    """Robin condition ``a u + b du/dn = value`` on a boundary region.

    Attributes:
        name: loss term name.
        on: boundary region (normals needed).
        field: field name.
        a: coefficient of the value.
        b: coefficient of the outward normal derivative.
        value: right-hand side, a number or a function of the points ``(N, d)``.
    """

    name: str
    on: Region
    field: str
    a: float = 1.0
    b: float = 1.0
    value: Value = 0.0

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def evaluate(self, state: State) -> Tensor:
        target = evaluate_value(self.value, state.points, f"value of condition {self.name!r}")
        u = state.field(self.field)
        return self.a * u + self.b * dn(u) - target

    def describe(self) -> str:
        value, u = _describe_value(self.value), self.field
        return f"Robin {self.a} {u} + {self.b} d{u}/dn = {value} on {self.on.name}"


@dataclass(frozen=True)
class Periodic:
    """Soft periodicity in one coordinate: values (and first derivatives) match across.

    Points are drawn on ``on`` (the low face, e.g. ``domain.part("left")``) and paired with the
    points shifted by ``period`` along ``coordinate``; the residual has one column per field
    and, with ``derivatives``, one more per field for every first derivative by the spatial
    coordinates (shape ``(N, k)``).

    Attributes:
        name: loss term name.
        on: the low face.
        coordinate: the periodic coordinate's name.
        period: the shift from the low face to the high one.
        fields: the periodic fields (default: all of the problem's fields).
        derivatives: also match the first derivatives.
    """

    name: str
    on: Region
    coordinate: str
    period: float
    fields: tuple[str, ...] = ()
    derivatives: bool = True

    def __post_init__(self) -> None:
        fields = (self.fields,) if isinstance(self.fields, str) else tuple(self.fields)
        object.__setattr__(self, "fields", fields)

    def partner(self, points: Tensor, coordinates: Sequence[str]) -> Tensor:
        """The matching points ``(N, d)`` on the opposite face."""
        shift = torch.zeros(points.shape[1], dtype=points.dtype, device=points.device)
        shift[list(coordinates).index(self.coordinate)] = self.period
        return points + shift

    def evaluate(self, low: State, high: State) -> Tensor:
        """Differences ``(N, k)`` between the states at the paired points."""
        names = self.fields or low.fields
        columns = []
        for name in names:
            a, b = low.field(name), high.field(name)
            columns.append(a - b)
            if self.derivatives:
                for i in low.spatial:
                    index = low.fields.index(name)
                    columns.append(low.derivative(index, (i,)) - high.derivative(index, (i,)))
        return torch.cat(columns, dim=1)

    def describe(self) -> str:
        what = ", ".join(self.fields) or "all fields"
        extra = " and first derivatives" if self.derivatives else ""
        return f"Periodic {what}{extra} in {self.coordinate} with period {self.period}"


@dataclass(frozen=True, eq=False)
class Data:
    """Observations of fields at fixed points (an inverse problem's data).

    Attributes:
        name: loss term name.
        points: ``(N, d)`` coordinates.
        values: ``(N,)`` or ``(N, k)`` observed values of ``fields``.
        fields: observed field names (one per column of ``values``).
    """

    name: str
    points: np.ndarray
    values: np.ndarray
    fields: tuple[str, ...] = ("u",)

    def __post_init__(self) -> None:
        fields = (self.fields,) if isinstance(self.fields, str) else tuple(self.fields)
        points = np.asarray(self.points, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float64)
        if points.ndim == 2 and values.size == points.shape[0] * len(fields):
            values = values.reshape(points.shape[0], len(fields))
        if points.ndim != 2 or values.shape != (points.shape[0], len(fields)):
            raise ProblemError(
                f"data {self.name!r}: points must be (N, d) and values (N, {len(fields)}) for "
                f"fields {fields}; got {points.shape} and {np.shape(self.values)}"
            )
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "values", values)

    def evaluate(self, state: State, values: Tensor) -> Tensor:
        predicted = torch.cat([state.field(f) for f in self.fields], dim=1)
        return predicted - values

    def describe(self) -> str:
        return f"Data {', '.join(self.fields)} at {self.points.shape[0]} points"


AnyCondition = Condition | Dirichlet | Neumann | Robin | Initial | InitialRate | Periodic | Data


@dataclass(frozen=True, eq=False)
class Problem:
    """A PDE problem: the domain, the fields, the residual equations and the conditions.

    Attributes:
        name: short identifier (used for run directories).
        domain: a :class:`~kanphys.geometry.Domain` (space, or space * time).
        fields: names of the unknown scalar fields, in output order.
        equations: residual functions by name; each maps a :class:`State` to ``(N,)`` or
            ``(N, 1)`` and must vanish at the solution.
        conditions: boundary, initial and data conditions.
        parameters: unknown scalars (inverse problems).
        exact: exact or reference solution per field, functions of the points ``(N, d)``.
        description: free text shown when the problem is printed.
        constants: named known constants, ``s.<name>`` in residuals (a 0-d tensor); a plan's
            :class:`~kanphys.train.plan.Curriculum` can ramp them over the stages.
        constraints: hard constraints (:class:`kanphys.constraints.Constraints`) built into
            every surrogate of this problem: exact boundary or initial values, periodicity.
        units: unit text by name of a coordinate, field, parameter, constant or equation
            (``{"x": "m", "t": "s", "u": "K", "heat": "K/s"}``); exported arrays carry them
            (gradients get derived units, see :mod:`kanphys.io.units`). Optional.
    """

    name: str
    domain: Domain
    fields: Sequence[str] = ("u",)
    equations: Mapping[str, Callable[[State], Tensor]] = field(default_factory=dict)
    conditions: Sequence[AnyCondition] = ()
    parameters: Sequence[Parameter] = ()
    exact: Mapping[str, Callable[[Tensor], Tensor]] | None = None
    description: str = ""
    constants: Mapping[str, float] = field(default_factory=dict)
    constraints: Any = None
    units: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fields = (self.fields,) if isinstance(self.fields, str) else tuple(self.fields)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "equations", dict(self.equations))
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(self, "parameters", tuple(self.parameters))
        object.__setattr__(self, "exact", dict(self.exact or {}))
        object.__setattr__(self, "constants", {k: float(v) for k, v in self.constants.items()})
        if self.units is None or isinstance(self.units, Mapping):
            object.__setattr__(self, "units", dict(self.units or {}))
        validate(self)

    @property
    def coordinates(self) -> tuple[str, ...]:
        return tuple(self.domain.names)

    @property
    def time_index(self) -> int | None:
        return self.domain.time_index

    @property
    def terms(self) -> tuple[str, ...]:
        """All loss term names: equations first, then conditions."""
        return (*self.equations, *(c.name for c in self.conditions))

    def initial_parameters(self) -> dict[str, float]:
        return {p.name: float(p.init) for p in self.parameters}

    def state(self, model, points: Tensor, normals: Tensor | None = None, requests=None) -> State:
        """The :class:`State` of ``model`` at ``points`` ``(N, d)``.

        ``requests`` (a :class:`~kanphys.derivatives.analytic.Requests`) selects the closed-form
        derivative engine for KAN surrogates; without it autograd is used.
        """
        params = {
            **{
                k: torch.tensor(v, dtype=points.dtype, device=points.device)
                for k, v in self.constants.items()
            },
            **getattr(model, "params", {}),
        }
        return State(
            model,
            points,
            coordinates=self.coordinates,
            fields=self.fields,
            time_index=self.time_index,
            normals=normals,
            parameters=dict(params),
            requests=requests,
        )

    def __str__(self) -> str:
        lines = [f"Problem {self.name!r}"]
        if self.description:
            lines.append(f"  {self.description.strip().splitlines()[0]}")
        lines += [
            f"  domain:      {self.domain!r}",
            f"  coordinates: {', '.join(self.coordinates)}",
            f"  fields:      {', '.join(self.fields)}",
        ]
        if self.constants:
            lines.append(
                "  constants:   " + ", ".join(f"{k} = {v:g}" for k, v in self.constants.items())
            )
        if self.parameters:
            lines.append(
                "  parameters:  " + ", ".join(f"{p.name} (init {p.init})" for p in self.parameters)
            )
        lines.append("  equations:")
        lines += [f"    {n}: {describe_callable(f)} = 0" for n, f in self.equations.items()]
        lines.append("  conditions:")
        lines += [f"    {c.name}: {c.describe()}" for c in self.conditions]
        if self.exact:
            lines.append(f"  exact:       {', '.join(self.exact)}")
        if self.units:
            lines.append("  units:       " + ", ".join(f"{k} [{u}]" for k, u in self.units.items()))
        return "\n".join(lines)


def _check_name(name: object, what: str, taken: set[str]) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ProblemError(f"{what} name {name!r} must be a Python identifier")
    if name in taken or name in RESERVED:
        raise ProblemError(f"{what} name {name!r} is already used (or reserved)")
    taken.add(name)
    return name


def validate(problem: Problem) -> None:
    """Check a problem declaration; raise :class:`ProblemError` naming the first culprit."""
    if not isinstance(problem.domain, Domain):
        raise ProblemError(
            f"problem {problem.name!r}: domain must be a kanphys Domain, got "
            f"{type(problem.domain).__name__}"
        )
    if not problem.fields:
        raise ProblemError(f"problem {problem.name!r} declares no fields")
    taken = set(problem.coordinates)
    for name in problem.fields:
        _check_name(name, "field", taken)
    for p in problem.parameters:
        _check_name(p.name, "parameter", taken)
    for name in problem.constants:
        _check_name(name, "constant", taken)
    terms: set[str] = set()
    for name, residual in problem.equations.items():
        _check_name(name, "equation", terms)
        if not callable(residual):
            raise ProblemError(
                f"equation {name!r} must be a function of the state, got {residual!r}"
            )
    for condition in problem.conditions:
        _check_condition(problem, condition, terms)
    if not terms:
        raise ProblemError(f"problem {problem.name!r} has no equations and no conditions")
    if problem.constraints is not None:
        try:
            problem.constraints.bind(problem.coordinates, problem.fields)
        except (AttributeError, ValueError) as error:
            raise ProblemError(f"problem {problem.name!r}: constraints: {error}") from error
    for name, function in problem.exact.items():
        if name not in problem.fields:
            raise ProblemError(
                f"exact solution given for {name!r}, which is not a field {problem.fields}"
            )
        if not callable(function):
            raise ProblemError(f"exact solution of {name!r} must be a function of the points")
    _check_units(problem)


def _check_units(problem: Problem) -> None:
    """Units are text, given for the problem's own names only."""
    if not isinstance(problem.units, Mapping):
        raise ProblemError(
            f"problem {problem.name!r}: units must be a mapping of names to unit text such as "
            f"{{'x': 'm', 'u': 'K'}}, got {type(problem.units).__name__}"
        )
    known = {
        **dict.fromkeys(problem.coordinates, "coordinate"),
        **dict.fromkeys(problem.fields, "field"),
        **{p.name: "parameter" for p in problem.parameters},
        **dict.fromkeys(problem.constants, "constant"),
        **dict.fromkeys(problem.equations, "equation"),
    }
    for name, unit in problem.units.items():
        if name not in known:
            raise ProblemError(
                f"problem {problem.name!r}: units given for {name!r}, which is not a coordinate, "
                f"field, parameter, constant or equation; known names: {', '.join(known)}"
            )
        if not isinstance(unit, str):
            raise ProblemError(
                f"problem {problem.name!r}: unit of {known[name]} {name!r} must be text such as "
                f"'m' or 'K', got {unit!r} ({type(unit).__name__})"
            )
        if not unit.strip() or unit != unit.strip():
            raise ProblemError(
                f"problem {problem.name!r}: unit of {known[name]} {name!r} is {unit!r}; give "
                "non-empty text without surrounding spaces ('1' for dimensionless)"
            )


def _check_condition(problem: Problem, condition: AnyCondition, terms: set[str]) -> None:
    if not isinstance(condition, AnyCondition):
        raise ProblemError(f"{condition!r} is not a kanphys condition")
    _check_name(condition.name, "condition", terms)
    for name in condition.fields:
        if name not in problem.fields:
            raise ProblemError(
                f"condition {condition.name!r} refers to unknown field {name!r}; "
                f"the fields are {problem.fields}"
            )
    if isinstance(condition, Periodic) and condition.coordinate not in problem.coordinates:
        raise ProblemError(
            f"periodic condition {condition.name!r}: unknown coordinate {condition.coordinate!r};"
            f" the coordinates are {problem.coordinates}"
        )
    if isinstance(condition, (Initial, InitialRate)) and problem.time_index is None:
        raise ProblemError(f"initial condition {condition.name!r} needs a time-dependent domain")
    if isinstance(condition, Data):
        _check_inside(problem, condition.name, condition.points, "its data")
    else:
        region = condition_region(problem, condition)
        if region.dim != problem.domain.dim:
            raise ProblemError(
                f"condition {condition.name!r}: region {region.name!r} is {region.dim}-D, "
                f"the domain is {problem.domain.dim}-D"
            )
        points = region.sample(64, seed=0, method="uniform").points
        _check_inside(problem, condition.name, points, f"its region {region.name!r}")
        if isinstance(condition, Periodic):
            partner = condition.partner(torch.as_tensor(points), problem.coordinates).numpy()
            _check_inside(problem, condition.name, partner, "its shifted (partner) points")


def _check_inside(problem: Problem, name: str, points: np.ndarray, what: str) -> None:
    if points.ndim != 2 or points.shape[1] != problem.domain.dim:
        raise ProblemError(
            f"condition {name!r}: {what} must be (N, {problem.domain.dim}), got {points.shape}"
        )
    outside = int((~problem.domain.contains(points, tol=1e-6)).sum())
    if outside:
        raise ProblemError(
            f"condition {name!r}: {what} lies outside the domain {problem.domain!r} "
            f"({outside} of {len(points)} points)"
        )


def condition_region(problem: Problem, condition: AnyCondition) -> Region:
    """The region a condition's points are sampled from."""
    if isinstance(condition, (Initial, InitialRate)):
        return condition.on if condition.on is not None else problem.domain.initial
    return condition.on
