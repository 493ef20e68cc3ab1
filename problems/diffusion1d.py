"""Diffusion equation with a source in one space dimension.

    u_t = u_xx + (pi^2 - 1) exp(-t) sin(pi x)    for x in (-1, 1), t in (0, 1)
    u(-1, t) = u(1, t) = 0
    u(x, 0) = sin(pi x)

Exact solution: u = exp(-t) sin(pi x).
The boundary and initial values hold exactly (hard constraint u = sin(pi x) + (1 - x^2) t N).
Model: KAN [2, 10, 1] (inputs x, t), cubic B-splines on 5 intervals, extended to 10 and 20;
L-BFGS in float64.
Published anchor: adaptive KAN 2.1e-4 (relative L2). Target: rel_l2.u <= 5e-5.
Expected: rel_l2.u about 1.2e-5 in 3 minutes on one CPU core (8.5e-5 with soft conditions).
Run: kanphys run problems/diffusion1d.py
"""

import torch

import kanphys as kp
from kanphys import dt, lap

PI = torch.pi
domain = kp.Interval(-1.0, 1.0) * kp.TimeInterval(0.0, 1.0)


def exact(p):
    return torch.exp(-p[:, 1]) * torch.sin(PI * p[:, 0])


def initial(p):
    return torch.sin(PI * p[:, 0])


def vanishing(p):
    """(1 - x^2) t: zero on the ends and at t = 0, where sin(pi x) has the imposed values."""
    return (1 - p[:, 0] ** 2) * p[:, 1]


problem = kp.Problem(
    "diffusion1d",
    domain=domain,
    fields=["u"],
    equations={
        "diffusion": lambda s: (
            dt(s.u) - lap(s.u) - (PI**2 - 1) * torch.exp(-s.t) * torch.sin(PI * s.x)
        )
    },
    conditions=[
        kp.Dirichlet("ends", on=domain.boundary, field="u", value=0.0),
        kp.Initial("initial", field="u", value=initial),
    ],
    exact={"u": exact},
    constraints=kp.Constraints(values=[kp.HardValue("u", initial, vanishing)]),
    description="u_t = u_xx + (pi^2 - 1) exp(-t) sin(pi x) on [-1,1] x [0,1]",
    units={"x": "m", "t": "s", "u": "mol/m^3", "diffusion": "mol/m^3/s"},
)


def model(grid: int = 5, width: int = 10):
    return kp.KAN([2, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.LBFGS(steps=300, dtype="float64"),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=400),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=2500),
    ],
    sampler=kp.Sobol(interior=2048, boundary=256, initial=256),
    weights={"ends": 100.0, "initial": 100.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
