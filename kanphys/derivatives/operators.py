"""Differential operators for residual functions: ``grad``, ``lap``, ``dt``, ``dn``, ``d``, ``div``.

They take fields of a state (``s.u``) and ask the state's derivative engine, so problem files
never call autograd themselves. To differentiate an expression of fields, use the state's
methods: ``s.lap(s.u ** 2)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kanphys.derivatives.state import FieldTensor, State

__all__ = ["d", "div", "dn", "dt", "grad", "lap"]


def _field(u: Tensor, operator: str) -> FieldTensor:
    if not isinstance(u, FieldTensor):
        raise TypeError(
            f"{operator}() takes a field of the state, such as s.u; got a {type(u).__name__}. "
            f"To differentiate an expression, use the state's method: s.{operator}(expr)"
        )
    return u


def d(u: Tensor, *coordinates: str) -> Tensor:
    """Partial derivative ``(N, 1)`` of field ``u`` by coordinate names: ``d(s.u, "x", "y")``."""
    if not coordinates:
        raise ValueError("d() needs at least one coordinate name, e.g. d(s.u, 'x')")
    field = _field(u, "d")
    return field.kp_state.d(field, *coordinates)


def grad(u: Tensor) -> Tensor:
    """Spatial gradient ``(N, d_space)`` of field ``u``."""
    field = _field(u, "grad")
    return field.kp_state.grad(field)


def lap(u: Tensor) -> Tensor:
    """Spatial Laplacian ``(N, 1)`` of field ``u``."""
    field = _field(u, "lap")
    return field.kp_state.lap(field)


def dt(u: Tensor, order: int = 1) -> Tensor:
    """Time derivative ``(N, 1)`` of field ``u`` of the given order."""
    field = _field(u, "dt")
    state: State = field.kp_state
    if state.time_index is None:
        raise ValueError("dt() needs a time-dependent domain (space * TimeInterval(t0, t1))")
    return state.derivative(field.kp_field, (state.time_index,) * order)


def dn(u: Tensor) -> Tensor:
    """Outward normal derivative ``(N, 1)`` of field ``u`` on a boundary."""
    field = _field(u, "dn")
    state: State = field.kp_state
    if state.normals is None:
        raise ValueError("dn() needs boundary points with normals; it is not defined inside")
    gradient = torch.cat([state.derivative(field.kp_field, (i,)) for i in state.spatial], dim=1)
    normals = state.normals[:, list(state.spatial)]
    return (gradient * normals).sum(dim=1, keepdim=True)


def div(*components: Tensor) -> Tensor:
    """Divergence ``(N, 1)`` of fields, one per spatial coordinate: ``div(s.u, s.v)``."""
    fields = [_field(c, "div") for c in components]
    state: State = fields[0].kp_state
    if len(fields) != len(state.spatial):
        raise ValueError(f"div() needs {len(state.spatial)} components, got {len(fields)}")
    return sum(
        state.derivative(f.kp_field, (i,)) for f, i in zip(fields, state.spatial, strict=True)
    )
