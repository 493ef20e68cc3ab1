"""Derivatives of fields for residual functions, and the engines that compute them."""

from kanphys.derivatives.autograd import AutogradEngine
from kanphys.derivatives.operators import d, div, dn, dt, grad, lap
from kanphys.derivatives.state import FieldTensor, State

__all__ = ["AutogradEngine", "FieldTensor", "State", "d", "div", "dn", "dt", "grad", "lap"]
