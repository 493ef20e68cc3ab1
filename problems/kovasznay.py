"""Kovasznay flow: steady incompressible Navier-Stokes with an exact solution, Re = 20.

    u u_x + v u_y + p_x - (u_xx + u_yy) / Re = 0
    u v_x + v v_y + p_y - (v_xx + v_yy) / Re = 0
    u_x + v_y = 0                                   on [-0.5, 1] x [-0.5, 1.5]
    u, v = exact on the boundary,   p = exact on the outlet x = 1

Exact solution (Kovasznay 1948, kanphys.reference.kovasznay), lam = Re/2 - sqrt(Re^2/4 + 4 pi^2):
u = 1 - exp(lam x) cos(2 pi y),  v = lam/(2 pi) exp(lam x) sin(2 pi y),
p = (1 - exp(2 lam x)) / 2.
Model: KAN [2, 16, 3], cubic B-splines on 5 intervals extended to 10 and 20 (short stages on
the coarse grids, most of the steps on the finest); L-BFGS in float64.
Published anchor: none found. Target: rel_l2 of u and v <= 1e-3.
Expected: rel_l2 u about 8e-5, v about 6e-4 in 5 minutes on one CPU core.
Run: kanphys run problems/kovasznay.py
"""

import kanphys as kp
from kanphys import d, lap
from kanphys.reference import kovasznay

RE = 20.0
domain = kp.Rectangle((-0.5, -0.5), (1.0, 1.5))


def exact(index):
    return lambda p: kovasznay(p[:, 0], p[:, 1], RE)[index]


def momentum_x(s):
    return s.u * d(s.u, "x") + s.v * d(s.u, "y") + d(s.p, "x") - lap(s.u) / RE


def momentum_y(s):
    return s.u * d(s.v, "x") + s.v * d(s.v, "y") + d(s.p, "y") - lap(s.v) / RE


problem = kp.Problem(
    "kovasznay",
    domain=domain,
    fields=["u", "v", "p"],
    equations={
        "momentum_x": momentum_x,
        "momentum_y": momentum_y,
        "continuity": lambda s: d(s.u, "x") + d(s.v, "y"),
    },
    conditions=[
        kp.Dirichlet("wall_u", on=domain.boundary, field="u", value=exact(0)),
        kp.Dirichlet("wall_v", on=domain.boundary, field="v", value=exact(1)),
        kp.Dirichlet("outlet_p", on=domain.part("right"), field="p", value=exact(2)),
    ],
    exact={"u": exact(0), "v": exact(1), "p": exact(2)},
    description="steady Navier-Stokes, Kovasznay flow at Re = 20 on [-0.5,1] x [-0.5,1.5]",
)


def model(grid: int = 5, width: int = 16):
    return kp.KAN([2, width, 3], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.LBFGS(steps=200, dtype="float64"),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=300),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=2500),
    ],
    sampler=kp.Sobol(interior=4096, boundary=1024),
    weights={"wall_u": 100.0, "wall_v": 100.0, "outlet_p": 10.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
