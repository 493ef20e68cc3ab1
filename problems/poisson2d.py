"""Poisson equation on the square [-1, 1]^2 (the KAN paper's PDE example).

    -lap(u) = 2 pi^2 sin(pi x) sin(pi y)    in (-1, 1)^2
          u = 0                             on the boundary

Exact solution: u = sin(pi x) sin(pi y).
Model: KAN [2, 10, 1], cubic B-splines on 5 intervals, extended to 10 and 20;
L-BFGS in float64 throughout.
Expected: rel_l2.u about 3e-4 (at most 1e-3) in about 1 minute on one CPU core.
The boundary values are soft here, so the network output is the solution itself (the
symbolic recovery of sin(pi x) sin(pi y) reads it); problems/poisson2d_exact.py makes them
exact and reaches about 7e-5.
Run: kanphys run problems/poisson2d.py
"""

import torch

import kanphys as kp
from kanphys import lap

PI = torch.pi
square = kp.Rectangle((-1.0, -1.0), (1.0, 1.0))


def source(x, y):
    return 2 * PI**2 * torch.sin(PI * x) * torch.sin(PI * y)


problem = kp.Problem(
    "poisson2d",
    domain=square,
    fields=["u"],
    equations={"poisson": lambda s: -lap(s.u) - source(s.x, s.y)},
    conditions=[kp.Dirichlet("wall", on=square.boundary, field="u", value=0.0)],
    exact={"u": lambda p: torch.sin(PI * p[:, 0]) * torch.sin(PI * p[:, 1])},
    description="-lap(u) = 2 pi^2 sin(pi x) sin(pi y) on [-1,1]^2, u = 0 on the boundary",
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
    weights={"wall": 100.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
