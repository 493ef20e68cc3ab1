"""Allen-Cahn equation by a Fourier spectral method with ETDRK4 time stepping.

    u_t = eps u_xx + 5 u - 5 u^3   on [-1, 1) (periodic),   u(x, 0) = x^2 cos(pi x)

In Fourier space the linear part ``L = -eps k^2 + 5`` is integrated exactly and the nonlinear
part ``-5 u^3`` by the fourth-order exponential Runge-Kutta scheme of Cox and Matthews (2002).
Its coefficients ``(e^z - 1)/z``-type functions are evaluated by the contour integral of
Kassam and Trefethen (2005, SIAM J. Sci. Comput. 26, 1214-1233), which avoids cancellation
for small ``z``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.interpolate import RectBivariateSpline
from torch import Tensor

__all__ = ["EPSILON", "AllenCahnSolution", "allen_cahn", "etdrk4_coefficients"]

EPSILON = 1e-4


def etdrk4_coefficients(linear: np.ndarray, dt: float, n_contour: int = 32):
    """``E, E2, Q, f1, f2, f3`` of ETDRK4 for the diagonal linear operator ``linear``.

    Each ``phi``-function is the mean over ``n_contour`` points of a circle of radius 1 around
    ``dt * linear`` (Kassam and Trefethen's contour integral).
    """
    z = dt * linear
    roots = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    lr = z[:, None] + roots[None, :]

    def mean(values):
        return dt * np.real(values.mean(axis=1))

    q = mean((np.exp(lr / 2) - 1) / lr)
    f1 = mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr**2)) / lr**3)
    f2 = mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr**3)
    f3 = mean((-4 - 3 * lr - lr**2 + np.exp(lr) * (4 - lr)) / lr**3)
    return np.exp(z), np.exp(z / 2), q, f1, f2, f3


@dataclass(frozen=True, eq=False)
class AllenCahnSolution:
    """The solution on a grid: ``u[i, j]`` at ``x[i]`` (periodic, ``[-1, 1)``) and ``t[j]``.

    Calling it with points ``(N, 2)`` (columns ``x, t``) interpolates: trigonometric refinement
    in ``x`` then bicubic splines.
    """

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray

    def __call__(self, points: Tensor) -> Tensor:
        values = self._spline.ev(
            points[:, 0].detach().cpu().numpy(), points[:, 1].detach().cpu().numpy()
        )
        return torch.as_tensor(values, dtype=points.dtype, device=points.device)

    @functools.cached_property
    def _spline(self) -> RectBivariateSpline:
        n, n_fine = len(self.x), 4 * len(self.x)
        coefficients = np.fft.rfft(self.u, axis=0)
        if n % 2 == 0:  # split the Nyquist mode between +-n/2 so the refinement interpolates
            coefficients[-1] /= 2
        fine = np.fft.irfft(coefficients, n=n_fine, axis=0) * (n_fine / n)
        x = np.linspace(-1.0, 1.0, n_fine + 1)
        return RectBivariateSpline(x, self.t, np.concatenate([fine, fine[:1]]), kx=3, ky=3)


@functools.cache
def allen_cahn(
    n_modes: int = 1024, dt: float = 5e-4, n_times: int = 201, *, epsilon: float = EPSILON
) -> AllenCahnSolution:
    """Solve on ``t in [0, 1]`` and keep ``n_times`` equally spaced times (cached per arguments).

    Args:
        n_modes: grid points (and Fourier modes) on ``[-1, 1)``. The initial value's slope
            jumps across ``x = +-1``, so convergence is algebraic: against 4096 modes the
            relative L2 difference is 1.1e-5 (512), 3.0e-6 (1024), 5.8e-7 (2048).
        dt: time step; ``1 / dt`` must be a multiple of ``n_times - 1``. At ``dt = 1e-3`` the
            time error is already at round-off (about 1e-11).
        n_times: stored times, ``0`` and ``1`` included.
        epsilon: diffusion coefficient.

    Raises:
        ValueError: when the steps do not land on the stored times.
    """
    n_steps = round(1.0 / dt)
    if abs(n_steps * dt - 1.0) > 1e-12 or n_steps % (n_times - 1):
        raise ValueError(
            f"allen_cahn: 1/dt = {1 / dt:g} must be a whole multiple of n_times - 1 = {n_times - 1}"
        )
    x = np.linspace(-1.0, 1.0, n_modes, endpoint=False)
    k = np.pi * np.fft.rfftfreq(n_modes, d=1.0 / n_modes)
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(-epsilon * k**2 + 5.0, dt)

    def nonlinear(v):
        return np.fft.rfft(-5.0 * np.fft.irfft(v, n=n_modes) ** 3)

    v = np.fft.rfft(x**2 * np.cos(np.pi * x))
    stored, every = [np.fft.irfft(v, n=n_modes)], n_steps // (n_times - 1)
    for step in range(1, n_steps + 1):
        nv = nonlinear(v)
        a = E2 * v + Q * nv
        na = nonlinear(a)
        b = E2 * v + Q * na
        nb = nonlinear(b)
        c = E2 * a + Q * (2 * nb - nv)
        v = E * v + nv * f1 + 2 * (na + nb) * f2 + nonlinear(c) * f3
        if step % every == 0:
            stored.append(np.fft.irfft(v, n=n_modes))
    return AllenCahnSolution(x, np.linspace(0.0, 1.0, n_times), np.stack(stored, axis=1))
