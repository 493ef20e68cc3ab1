"""Wave equation in one space dimension (two standing waves of different frequency).

    u_tt = 4 u_xx                                 for x in (0, 1), t in (0, 1)
    u(0, t) = u(1, t) = 0
    u(x, 0) = sin(pi x) + 0.5 sin(4 pi x),   u_t(x, 0) = 0

Exact solution: u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t).
Model: KAN [2, 10, 1] (inputs x, t), cubic B-splines on 5 intervals, extended to 10, 20 and
40; L-BFGS in float64.
Published anchor: MLP PINN about 1e-1 (relative L2). Target: rel_l2.u <= 1e-2.
Run: kanphys run problems/wave1d.py
"""

import torch

import kanphys as kp
from kanphys import dt, lap

PI = torch.pi
domain = kp.Interval(0.0, 1.0) * kp.TimeInterval(0.0, 1.0)


def exact(p):
    x, t = p[:, 0], p[:, 1]
    return torch.sin(PI * x) * torch.cos(2 * PI * t) + 0.5 * torch.sin(4 * PI * x) * torch.cos(
        8 * PI * t
    )


def initial(p):
    return torch.sin(PI * p[:, 0]) + 0.5 * torch.sin(4 * PI * p[:, 0])


problem = kp.Problem(
    "wave1d",
    domain=domain,
    fields=["u"],
    equations={"wave": lambda s: dt(s.u, 2) - 4 * lap(s.u)},
    conditions=[
        kp.Dirichlet("ends", on=domain.boundary, field="u", value=0.0),
        kp.Initial("initial", field="u", value=initial),
        kp.InitialRate("rate", field="u", value=0.0),
    ],
    exact={"u": exact},
    description="u_tt = 4 u_xx on [0,1] x [0,1], fixed ends, released from rest",
)


def model(grid: int = 5, width: int = 10):
    return kp.KAN([2, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.LBFGS(steps=300, dtype="float64"),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=400),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=600),
        kp.ExtendGrid(grid=40),
        kp.LBFGS(steps=600),
    ],
    sampler=kp.Sobol(interior=4096, boundary=256, initial=512),
    weights={"ends": 100.0, "initial": 100.0, "rate": 10.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
