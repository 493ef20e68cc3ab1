"""Exact and computed reference solutions of the problem library (no downloads).

* :func:`burgers`: viscous Burgers by Cole-Hopf and Gauss-Hermite quadrature.
* :func:`allen_cahn`: Allen-Cahn by Fourier spectral ETDRK4.
* :func:`cavity`: steady lid-driven cavity by finite differences and Newton's method, with
  Ghia et al.'s centerline tables.
* :class:`Kirsch`: plate with a hole under uniaxial tension (closed form).
* :func:`kovasznay`: Kovasznay flow (closed form).

Computed references are produced on demand (seconds) and cached in memory per arguments.
"""

from kanphys.reference.allen_cahn import AllenCahnSolution, allen_cahn
from kanphys.reference.burgers import burgers
from kanphys.reference.cavity import GHIA_RE100_U, GHIA_RE100_V, CavitySolution, cavity
from kanphys.reference.kirsch import Kirsch
from kanphys.reference.kovasznay import kovasznay, kovasznay_lambda

__all__ = [
    "GHIA_RE100_U",
    "GHIA_RE100_V",
    "AllenCahnSolution",
    "CavitySolution",
    "Kirsch",
    "allen_cahn",
    "burgers",
    "cavity",
    "kovasznay",
    "kovasznay_lambda",
]
