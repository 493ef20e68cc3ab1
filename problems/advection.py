"""Linear advection at high speed, periodic in space (a known failure mode of plain PINNs).

    u_t + beta u_x = 0,   beta = 30      for x in (0, 2 pi), t in (0, 1)
    u(x, 0) = sin(x),     u periodic in x with period 2 pi

Exact solution: u = sin(x - beta t).
Periodicity is exact: x enters the network as cos(x) and sin(x) (hard constraint). The speed
is ramped by a curriculum (Krishnapriyan et al. 2021): beta = 1, 5, 10, 20 in the first Adam
stages, then 30.
Model: KAN [3, 10, 10, 1] (inputs cos x, sin x, t), cubic B-splines on 5 intervals extended to
10 and 20; Adam, then L-BFGS in float64 (3000 steps on each grid).
Published anchor: MLP with curriculum 2.0e-2 (relative L2). Target: rel_l2.u <= 1e-2.
Expected: rel_l2.u about 1.1e-3 in about 8 minutes on one CPU core.
Run: kanphys run problems/advection.py
"""

import math
from dataclasses import replace

import torch

import kanphys as kp
from kanphys import d, dt

BETA = 30.0
domain = kp.Interval(0.0, 2 * math.pi) * kp.TimeInterval(0.0, 1.0)

problem = kp.Problem(
    "advection",
    domain=domain,
    fields=["u"],
    equations={"advection": lambda s: dt(s.u) + s.beta * d(s.u, "x")},
    conditions=[kp.Initial("initial", field="u", value=lambda p: torch.sin(p[:, 0]))],
    exact={"u": lambda p: torch.sin(p[:, 0] - BETA * p[:, 1])},
    constants={"beta": BETA},
    constraints=kp.Constraints(periodic={"x": 2 * math.pi}),
    description="u_t + 30 u_x = 0 on [0, 2 pi] x [0, 1], periodic, u(x, 0) = sin(x)",
)


def model(grid: int = 5, width: int = 10):
    return kp.KAN([3, width, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.Adam(steps=500, lr=1e-2),
        kp.Adam(steps=500, lr=1e-2),
        kp.Adam(steps=500, lr=1e-2),
        kp.Adam(steps=1000, lr=1e-2),
        kp.Adam(steps=1000, lr=1e-2, lr_final=1e-3),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=3000, dtype="float64"),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=3000),
    ],
    sampler=kp.Sobol(interior=4096, initial=512),
    weights={"initial": 100.0},
    curriculum=(kp.Curriculum("beta", (1.0, 5.0, 10.0, 20.0)),),
)

# smoke test: the curriculum's first step, then the real speed, a few steps each
quick_plan = replace(
    plan.quick(),
    stages=(kp.Adam(steps=10), kp.Adam(steps=10), kp.LBFGS(steps=3, dtype="float64")),
    curriculum=(kp.Curriculum("beta", (1.0,)),),
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
