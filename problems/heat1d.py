"""Heat equation in one space dimension.

    u_t = u_xx                     for x in (0, 1), t in (0, 1)
    u(0, t) = u(1, t) = 0
    u(x, 0) = sin(pi x)

Exact solution: u = exp(-pi^2 t) sin(pi x).
Model: KAN [2, 10, 1] (inputs x, t), cubic B-splines on 5 intervals, extended to 10 and 20;
L-BFGS in float64 throughout.
Expected: rel_l2.u about 6e-4 (at most 1e-3) in about 1.5 minutes on 2 CPU cores.
Run: kanphys run problems/heat1d.py
"""

import torch

import kanphys as kp
from kanphys import dt, lap

PI = torch.pi
domain = kp.Interval(0.0, 1.0) * kp.TimeInterval(0.0, 1.0)

problem = kp.Problem(
    "heat1d",
    domain=domain,
    fields=["u"],
    equations={"heat": lambda s: dt(s.u) - lap(s.u)},
    conditions=[
        kp.Dirichlet("ends", on=domain.boundary, field="u", value=0.0),
        kp.Initial("initial", field="u", value=lambda p: torch.sin(PI * p[:, 0])),
    ],
    exact={"u": lambda p: torch.exp(-(PI**2) * p[:, 1]) * torch.sin(PI * p[:, 0])},
    description="u_t = u_xx on [0,1] x [0,1], u = 0 at both ends, u(x, 0) = sin(pi x)",
    units={"x": "m", "t": "s", "u": "K", "heat": "K/s"},
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
    sampler=kp.Sobol(interior=2048, boundary=256, initial=256),
    weights={"ends": 100.0, "initial": 100.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
