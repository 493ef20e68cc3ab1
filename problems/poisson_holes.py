"""Poisson equation on a square with four circular holes (a CSG domain).

    -lap(u) = 2 pi^2 sin(pi x) cos(pi y)     in [-1, 1]^2 minus four disks
          u = u_exact                        on the outer square
      du/dn = grad(u_exact) . n              on the holes

The holes are disks of radius 0.2 centred at (+-0.5, +-0.5); n is the outward normal of the
domain (pointing into a hole). Manufactured solution:
u = sin(pi x) cos(pi y) + (x^2 - y^2) / 2 (the harmonic part keeps u from vanishing on the
square).
Model: KAN [2, 10, 1], cubic B-splines on 5 intervals, extended to 10 and 20; L-BFGS in
float64.
Published anchor: MLP PINN about 1e-2 (relative L2). Target: rel_l2.u <= 1e-3.
Run: kanphys run problems/poisson_holes.py
"""

import torch

import kanphys as kp
from kanphys import lap

PI = torch.pi
RADIUS = 0.2
CENTERS = ((-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5))
square = kp.Rectangle((-1.0, -1.0), (1.0, 1.0))
holes = kp.Disk(CENTERS[0], RADIUS, "holes")
for center in CENTERS[1:]:
    holes = holes | kp.Disk(center, RADIUS, "holes")
domain = square - holes


def exact(p):
    x, y = p[:, 0], p[:, 1]
    return torch.sin(PI * x) * torch.cos(PI * y) + (x**2 - y**2) / 2


def normal_derivative(p):
    """grad(u_exact) . n on the holes, with n = (center - p) / radius of the nearest hole."""
    x, y = p[:, 0], p[:, 1]
    ux = PI * torch.cos(PI * x) * torch.cos(PI * y) + x
    uy = -PI * torch.sin(PI * x) * torch.sin(PI * y) - y
    cx = torch.where(x < 0, -0.5, 0.5).to(p.dtype)
    cy = torch.where(y < 0, -0.5, 0.5).to(p.dtype)
    return (ux * (cx - x) + uy * (cy - y)) / RADIUS


problem = kp.Problem(
    "poisson_holes",
    domain=domain,
    fields=["u"],
    equations={
        "poisson": lambda s: -lap(s.u) - 2 * PI**2 * torch.sin(PI * s.x) * torch.cos(PI * s.y)
    },
    conditions=[
        kp.Dirichlet("outer", on=square.boundary, field="u", value=exact),
        kp.Neumann("holes", on=domain.part("holes"), field="u", value=normal_derivative),
    ],
    exact={"u": exact},
    description="-lap(u) = f on [-1,1]^2 minus 4 disks; Dirichlet outside, Neumann on the holes",
)


def model(grid: int = 5, width: int = 10):
    return kp.KAN([2, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.LBFGS(steps=300, dtype="float64"),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=400),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=800),
    ],
    sampler=kp.Sobol(interior=2048, boundary=512),
    weights={"outer": 100.0, "holes": 10.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
