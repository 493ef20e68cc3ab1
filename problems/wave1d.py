"""Wave equation in one space dimension (two standing waves of different frequency).

    u_tt = 4 u_xx                                 for x in (0, 1), t in (0, 1)
    u(0, t) = u(1, t) = 0
    u(x, 0) = sin(pi x) + 0.5 sin(4 pi x),   u_t(x, 0) = 0

Exact solution: u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t).
The ends, the initial value and the initial rate hold exactly (hard constraint
u = u(x, 0) + 4 x (1 - x) t^2 / (t + 0.05) N: the factor vanishes on the ends and like t^2 at
t = 0, yet grows like t, so that N stays of moderate size).
Model: KAN [2, 20, 1] (inputs x, t), cubic B-splines on 10 intervals, extended to 20 and 40
(cos(8 pi t) needs a fine grid in t from the start); L-BFGS in float64.
Published anchor: MLP PINN about 1e-1 (relative L2). Target: rel_l2.u <= 1e-2.
Expected: rel_l2.u about 8.5e-3 in 6.5 minutes on one CPU core (4.4e-1 with soft conditions,
width 10 and grid 5 -> 40).
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


def vanishing(p):
    """4 x (1 - x) t^2 / (t + 0.05): zero on the ends, zero with zero slope at t = 0."""
    x, t = p[:, 0], p[:, 1]
    return 4 * x * (1 - x) * t**2 / (t + 0.05)


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
    constraints=kp.Constraints(values=[kp.HardValue("u", initial, vanishing)]),
    description="u_tt = 4 u_xx on [0,1] x [0,1], fixed ends, released from rest",
)


def model(grid: int = 10, width: int = 20):
    return kp.KAN([2, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.LBFGS(steps=300, dtype="float64"),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=600),
        kp.ExtendGrid(grid=40),
        kp.LBFGS(steps=4000),
    ],
    sampler=kp.Sobol(interior=4096, boundary=256, initial=512),
    weights={"ends": 100.0, "initial": 100.0, "rate": 10.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
