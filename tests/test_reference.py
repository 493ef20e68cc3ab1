"""Reference solutions of the problem library, checked against published values, their own
equations (autograd in float64) and convergence in their resolution."""

import math

import numpy as np
import pytest
import torch

from kanphys.reference import (
    GHIA_RE100_U,
    GHIA_RE100_V,
    Kirsch,
    allen_cahn,
    burgers,
    cavity,
    kovasznay,
)
from kanphys.reference.allen_cahn import etdrk4_coefficients

F64 = torch.float64


def gradient(value, variable):
    return torch.autograd.grad(
        value.sum(), variable, create_graph=True, allow_unused=True, materialize_grads=True
    )[0]


# ----------------------------------------------------------------------------- Burgers
def test_burgers_steepest_slope_matches_basdevant():
    """Basdevant et al. (1986): max |u_x| = 152.00516 at x = 0, t = 1.6037 / pi."""
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    u = burgers(x, torch.full((1,), 1.6037 / math.pi, dtype=F64))
    assert float(gradient(u, x).detach()) == pytest.approx(-152.00516, abs=1e-5)


def test_burgers_is_odd_in_x_and_starts_from_minus_sine():
    x = torch.linspace(-1, 1, 101, dtype=F64)
    for t in (0.1, 0.5, 1.0):
        u = burgers(x, torch.full_like(x, t))
        assert torch.allclose(u, -u.flip(0), atol=1e-13)
    assert torch.allclose(burgers(x, torch.zeros_like(x)), -torch.sin(math.pi * x), atol=1e-14)


def test_burgers_converges_in_the_number_of_nodes():
    x, t = torch.meshgrid(
        torch.linspace(-1, 1, 129, dtype=F64), torch.linspace(0, 1, 41, dtype=F64), indexing="ij"
    )
    best = burgers(x, t, n_nodes=300)
    errors = [float((burgers(x, t, n_nodes=n) - best).abs().max()) for n in (32, 48, 64, 128)]
    assert errors == sorted(errors, reverse=True)
    assert errors[0] > 1e-4 and errors[-1] < 1e-13


def test_burgers_satisfies_its_equation():
    nu = 0.01 / math.pi
    generator = torch.Generator().manual_seed(0)
    x = (2 * torch.rand(400, generator=generator, dtype=F64) - 1).requires_grad_()
    t = (0.02 + 0.98 * torch.rand(400, generator=generator, dtype=F64)).requires_grad_()
    u = burgers(x, t)
    ux = gradient(u, x)
    residual = gradient(u, t) + u * ux - nu * gradient(ux, x)
    assert float(residual.detach().abs().max()) < 1e-8


def test_burgers_rejects_too_many_nodes():
    with pytest.raises(ValueError, match="n_nodes"):
        burgers(torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64), n_nodes=400)


# -------------------------------------------------------------------------- Allen-Cahn
def test_etdrk4_coefficients_match_their_closed_forms_away_from_zero():
    z = np.array([-3.0, -1.0, 0.5, 2.0])
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(z, 1.0)
    assert np.allclose(e, np.exp(z)) and np.allclose(e2, np.exp(z / 2))
    assert np.allclose(q, (np.exp(z / 2) - 1) / z, atol=1e-13)
    assert np.allclose(f1, (-4 - z + np.exp(z) * (4 - 3 * z + z**2)) / z**3, atol=1e-12)
    assert np.allclose(f2, (2 + z + np.exp(z) * (z - 2)) / z**3, atol=1e-12)
    assert np.allclose(f3, (-4 - 3 * z - z**2 + np.exp(z) * (4 - z)) / z**3, atol=1e-12)
    # at z = 0 the phi-functions take their limits 1/2, 1/6, 1/6, 1/6 (no cancellation)
    _, _, q0, a0, b0, c0 = etdrk4_coefficients(np.zeros(1), 1.0)
    assert np.allclose([q0[0], a0[0], b0[0], c0[0]], [0.5, 1 / 6, 1 / 6, 1 / 6], atol=1e-14)


def test_allen_cahn_converges_in_time_step_and_modes():
    coarse_dt = allen_cahn(256, 1e-2, 51).u
    fine_dt = allen_cahn(256, 2e-3, 51).u
    finest_dt = allen_cahn(256, 1e-3, 51).u
    assert np.abs(fine_dt - finest_dt).max() < 0.1 * np.abs(coarse_dt - finest_dt).max()
    assert np.abs(fine_dt - finest_dt).max() < 1e-7
    few, more, most = (allen_cahn(n, 2e-3, 51).u for n in (128, 256, 512))
    assert np.abs(more - most[::2]).max() < 0.5 * np.abs(few - most[::4]).max()


def test_allen_cahn_keeps_its_symmetry_and_settles_into_plus_minus_one():
    solution = allen_cahn(256, 2e-3, 51)
    u = solution.u
    assert np.allclose(u[1:, :], u[1:, :][::-1], atol=1e-12)  # even in x (x[0] = -1 pairs itself)
    assert np.allclose(solution.u[:, 0], solution.x**2 * np.cos(np.pi * solution.x))
    assert u[:, -1].min() > -1.0 - 1e-6 and u[:, -1].max() < 1.0 + 1e-6
    assert np.mean(np.abs(np.abs(u[:, -1]) - 1) < 0.05) > 0.75


def test_allen_cahn_interpolation_reproduces_the_stored_values_and_times():
    solution = allen_cahn(256, 2e-3, 51)
    finer = allen_cahn(256, 2e-3, 101)
    x = torch.as_tensor(solution.x[::3], dtype=F64)
    for j in (10, 25, 40):
        on_grid = solution(torch.stack([x, torch.full_like(x, solution.t[j])], 1))
        assert np.allclose(on_grid.numpy(), solution.u[::3, j], atol=1e-10)
        t = (finer.t[2 * j + 1]) * torch.ones_like(x)
        between = solution(torch.stack([x, t], 1)).numpy()
        assert np.abs(between - finer.u[::3, 2 * j + 1]).max() < 2e-3


def test_allen_cahn_rejects_steps_that_miss_the_stored_times():
    with pytest.raises(ValueError, match="n_times"):
        allen_cahn(64, 3e-3, 51)


# -------------------------------------------------------------------------------- cavity
@pytest.fixture(scope="module")
def cavity65():
    return cavity(100.0, 65)


def centerlines(solution):
    y = torch.as_tensor(GHIA_RE100_U[:, 0], dtype=F64)
    x = torch.as_tensor(GHIA_RE100_V[:, 0], dtype=F64)
    u = solution.field("u")(torch.stack([torch.full_like(y, 0.5), y], 1)).numpy()
    v = solution.field("v")(torch.stack([x, torch.full_like(x, 0.5)], 1)).numpy()
    return u, v


def test_cavity_centerlines_match_ghia(cavity65):
    u, v = centerlines(cavity65)
    assert np.abs(u - GHIA_RE100_U[:, 1]).max() < 5e-3
    assert np.abs(v - GHIA_RE100_V[:, 1]).max() < 1e-2
    assert cavity65.newton_steps <= 10


def test_cavity_extrema_approach_botella_peyret_as_the_grid_is_refined(cavity65):
    """Spectral values (Botella and Peyret 1998): min u = -0.2140424 on x = 0.5, max v =
    0.1795728 and min v = -0.2538030 on y = 0.5."""
    exact = np.array([-0.2140424, 0.1795728, -0.2538030])
    errors = []
    for solution in (cavity(100.0, 33), cavity65):
        middle = len(solution.x) // 2
        found = [solution.u[middle].min(), solution.v[:, middle].max(), solution.v[:, middle].min()]
        errors.append(np.abs(np.array(found) - exact))
    assert (errors[1] < 0.5 * errors[0]).all()
    assert errors[1].max() < 5e-3


def test_cavity_satisfies_the_walls_and_is_divergence_free(cavity65):
    s = cavity65
    assert np.allclose(s.u[1:-1, -1], 1.0) and np.allclose(s.u[:, 0], 0.0)
    assert np.allclose(s.v[0], 0.0) and np.allclose(s.v[-1], 0.0)
    h = s.x[1] - s.x[0]
    divergence = (s.u[2:, 1:-1] - s.u[:-2, 1:-1] + s.v[1:-1, 2:] - s.v[1:-1, :-2]) / (2 * h)
    assert np.abs(divergence).max() < 1e-8
    assert s.p[0, 0] == pytest.approx(0.0, abs=1e-10)


# -------------------------------------------------------------------------------- Kirsch
def polar_points(radius, n=300, seed=0):
    generator = torch.Generator().manual_seed(seed)
    r = radius * (1 + 4 * torch.rand(n, generator=generator, dtype=F64))
    theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=F64)
    return (r * torch.cos(theta)).requires_grad_(), (r * torch.sin(theta)).requires_grad_()


def test_kirsch_hole_is_traction_free_and_concentrates_stress_threefold():
    plate = Kirsch(tension=2.0, radius=0.3)
    theta = torch.linspace(0, 2 * math.pi, 64, dtype=F64)
    x, y = 0.3 * torch.cos(theta), 0.3 * torch.sin(theta)
    rr, _, rt = plate.stress_polar(x, y)
    assert rr.abs().max() < 1e-14 and rt.abs().max() < 1e-14
    top = plate.stress(torch.zeros(1, dtype=F64), torch.full((1,), 0.3, dtype=F64))[0]
    assert float(top) == pytest.approx(3 * 2.0)


def test_kirsch_far_field_is_uniaxial_tension():
    plate = Kirsch(tension=1.5, radius=0.2)
    x, y = polar_points(1e4)
    sxx, syy, sxy = plate.stress(x.detach(), y.detach())
    assert torch.allclose(sxx, torch.full_like(sxx, 1.5), atol=1e-8)
    assert syy.abs().max() < 1e-8 and sxy.abs().max() < 1e-8


def test_kirsch_displacements_give_the_stresses_and_satisfy_equilibrium():
    plate = Kirsch(tension=1.0, radius=0.2, young=3.0, poisson=0.25)
    x, y = polar_points(0.2)
    ux, uy = plate.displacement(x, y)
    exx, eyy = gradient(ux, x), gradient(uy, y)
    exy = (gradient(ux, y) + gradient(uy, x)) / 2
    sxx, syy, sxy = plate.hooke(exx, eyy, exy)
    for mine, exact in zip((sxx, syy, sxy), plate.stress(x, y), strict=True):
        assert torch.allclose(mine, exact, atol=1e-12)
    assert (gradient(sxx, x) + gradient(sxy, y)).abs().max() < 1e-10
    assert (gradient(sxy, x) + gradient(syy, y)).abs().max() < 1e-10


def test_kirsch_displacements_respect_the_symmetry_planes():
    plate = Kirsch()
    s = torch.linspace(0.2, 2.0, 20, dtype=F64)
    assert plate.displacement(torch.zeros_like(s), s)[0].abs().max() < 1e-15
    assert plate.displacement(s, torch.zeros_like(s))[1].abs().max() < 1e-15


# ----------------------------------------------------------------------------- Kovasznay
def test_kovasznay_satisfies_steady_navier_stokes_at_re_20():
    reynolds = 20.0
    generator = torch.Generator().manual_seed(1)
    x = (-0.5 + 1.5 * torch.rand(500, generator=generator, dtype=F64)).requires_grad_()
    y = (-0.5 + 2.0 * torch.rand(500, generator=generator, dtype=F64)).requires_grad_()
    u, v, p = kovasznay(x, y, reynolds)
    ux, uy, vx, vy = gradient(u, x), gradient(u, y), gradient(v, x), gradient(v, y)
    lap_u = gradient(ux, x) + gradient(uy, y)
    lap_v = gradient(vx, x) + gradient(vy, y)
    momentum_x = u * ux + v * uy + gradient(p, x) - lap_u / reynolds
    momentum_y = u * vx + v * vy + gradient(p, y) - lap_v / reynolds
    for residual in (momentum_x, momentum_y, ux + vy):
        assert residual.abs().max() < 1e-12
    # and it is not trivially satisfied: the convection term is of order one
    assert (u * ux).abs().max() > 0.5
