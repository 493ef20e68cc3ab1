"""Kirsch's solution: an infinite plate with a circular hole under uniaxial tension.

A hole of radius ``a`` at the origin, traction-free; far away ``sigma_xx = S``, the other
stresses vanish. In polar coordinates ``(r, theta)`` (Kirsch 1898; Barber, Elasticity, 8.4.1):

    sigma_rr = S/2 (1 - a^2/r^2) + S/2 (1 - 4 a^2/r^2 + 3 a^4/r^4) cos 2 theta
    sigma_tt = S/2 (1 + a^2/r^2) - S/2 (1 + 3 a^4/r^4) cos 2 theta
    sigma_rt = -S/2 (1 + 2 a^2/r^2 - 3 a^4/r^4) sin 2 theta

and, in plane stress (``kappa = (3 - nu)/(1 + nu)``, ``mu = E / (2 (1 + nu))``), the
displacements

    u_r = S/(4 mu) [r ((kappa - 1)/2 + cos 2 theta) + a^2/r (1 + (1 + kappa) cos 2 theta)
                    - a^4/r^3 cos 2 theta]
    u_t = -S/(4 mu) [r + a^2/r (kappa - 1) + a^4/r^3] sin 2 theta.

The functions take torch tensors, so strains can be checked by autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Kirsch"]


@dataclass(frozen=True)
class Kirsch:
    """Kirsch's plate: tension ``S``, hole radius ``a``, Young's modulus ``E``, Poisson's ``nu``
    (plane stress)."""

    tension: float = 1.0
    radius: float = 0.2
    young: float = 1.0
    poisson: float = 0.3

    def stress_polar(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``sigma_rr, sigma_tt, sigma_rt`` at points ``(x, y)`` outside the hole."""
        s, a2 = self.tension, self.radius**2
        r2, c2, s2 = _polar(x, y)
        q2, q4 = a2 / r2, a2**2 / r2**2
        rr = s / 2 * (1 - q2) + s / 2 * (1 - 4 * q2 + 3 * q4) * c2
        tt = s / 2 * (1 + q2) - s / 2 * (1 + 3 * q4) * c2
        rt = -s / 2 * (1 + 2 * q2 - 3 * q4) * s2
        return rr, tt, rt

    def stress(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Cartesian ``sigma_xx, sigma_yy, sigma_xy``."""
        rr, tt, rt = self.stress_polar(x, y)
        _, c2, s2 = _polar(x, y)
        mean, half = (rr + tt) / 2, (rr - tt) / 2
        return mean + half * c2 - rt * s2, mean - half * c2 + rt * s2, half * s2 + rt * c2

    def displacement(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Cartesian displacements ``u_x, u_y`` (zero rigid motion: ``u_x = 0`` on ``x = 0``,
        ``u_y = 0`` on ``y = 0``)."""
        nu, a2 = self.poisson, self.radius**2
        kappa, mu = (3 - nu) / (1 + nu), self.young / (2 * (1 + nu))
        r2, c2, s2 = _polar(x, y)
        r = torch.sqrt(r2)
        scale = self.tension / (4 * mu)
        ur = scale * (
            r * ((kappa - 1) / 2 + c2) + a2 / r * (1 + (1 + kappa) * c2) - a2**2 / r**3 * c2
        )
        ut = -scale * (r + a2 / r * (kappa - 1) + a2**2 / r**3) * s2
        cos, sin = x / r, y / r
        return ur * cos - ut * sin, ur * sin + ut * cos

    def hooke(self, exx: Tensor, eyy: Tensor, exy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Plane-stress stresses from strains (``exy`` the tensor shear strain)."""
        factor = self.young / (1 - self.poisson**2)
        return (
            factor * (exx + self.poisson * eyy),
            factor * (eyy + self.poisson * exx),
            factor * (1 - self.poisson) * exy,
        )


def _polar(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``r^2, cos 2 theta, sin 2 theta`` without angles."""
    r2 = x**2 + y**2
    return r2, (x**2 - y**2) / r2, 2 * x * y / r2
