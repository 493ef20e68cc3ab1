"""KAN models: bases, layers, networks with grid update and extension, and an MLP baseline."""

from kanphys.kan.basis import BSpline, Chebyshev, basis_from_config, bspline_basis
from kanphys.kan.layer import KANLayer
from kanphys.kan.network import KAN, MLP, model_from_config

__all__ = [
    "KAN",
    "MLP",
    "BSpline",
    "Chebyshev",
    "KANLayer",
    "basis_from_config",
    "bspline_basis",
    "model_from_config",
]
