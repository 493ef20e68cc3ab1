"""Lid-driven cavity: steady incompressible Navier-Stokes at Re = 100.

    u u_x + v u_y + p_x - (u_xx + u_yy) / Re = 0
    u v_x + v v_y + p_y - (v_xx + v_yy) / Re = 0
    u_x + v_y = 0                                   on (0, 1)^2
    u = 1, v = 0 on the lid y = 1;   u = v = 0 on the other walls;   p(0, 0) = 0

Reference: streamfunction-vorticity finite differences on a 129 x 129 grid solved by Newton's
method (kanphys.reference.cavity; centerlines within 1e-2 of Ghia, Ghia and Shin 1982, whose
tables it also carries), pressure by least squares, interpolated by bicubic splines.
Model: KAN [2, 16, 16, 3], cubic B-splines on 5 intervals extended to 10 and 20; Adam with
residual-based resampling (RAD, the lid corners), then L-BFGS in float64 (3000 steps on each
grid).
Published anchor: Ghia et al. centerline tables. Target: relative L2 of u on x = 0.5 and of v
on y = 0.5 (against the reference) <= 2e-2.
Expected: centerline errors about 1.8e-2 (u) and 4.2e-2 (v) in about 24 minutes on one CPU
core (against Ghia's tables: 7e-3 and 1.7e-2).
Run: kanphys run problems/cavity.py
"""

from dataclasses import replace

import kanphys as kp
from kanphys import d, lap
from kanphys.reference import cavity

RE = 100.0
box = kp.Rectangle((0.0, 0.0), (1.0, 1.0))
walls = ("left", "right", "bottom")


def reference(name):
    return lambda p: cavity(RE).field(name)(p)


def momentum_x(s):
    return s.u * d(s.u, "x") + s.v * d(s.u, "y") + d(s.p, "x") - lap(s.u) / RE


def momentum_y(s):
    return s.u * d(s.v, "x") + s.v * d(s.v, "y") + d(s.p, "y") - lap(s.v) / RE


problem = kp.Problem(
    "cavity",
    domain=box,
    fields=["u", "v", "p"],
    equations={
        "momentum_x": momentum_x,
        "momentum_y": momentum_y,
        "continuity": lambda s: d(s.u, "x") + d(s.v, "y"),
    },
    conditions=[
        kp.Dirichlet("lid_u", on=box.part("top"), field="u", value=1.0),
        kp.Dirichlet("lid_v", on=box.part("top"), field="v", value=0.0),
        *[kp.Dirichlet(f"{w}_u", on=box.part(w), field="u", value=0.0) for w in walls],
        *[kp.Dirichlet(f"{w}_v", on=box.part(w), field="v", value=0.0) for w in walls],
        kp.Data("gauge", points=[[0.0, 0.0]], values=[0.0], fields=("p",)),
    ],
    exact={"u": reference("u"), "v": reference("v"), "p": reference("p")},
    description="lid-driven cavity, steady Navier-Stokes at Re = 100 on (0, 1)^2",
)


def model(grid: int = 5, width: int = 16):
    return kp.KAN([2, width, width, 3], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.Adam(steps=2000, lr=1e-2, lr_final=1e-3),
        kp.ExtendGrid(grid=10),
        kp.Adam(steps=1000, lr=3e-3, lr_final=3e-4),
        kp.LBFGS(steps=3000, dtype="float64"),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=3000),
    ],
    sampler=kp.Sobol(interior=4096, boundary=256),
    weights={
        name: 10.0
        for name in (
            "lid_u",
            "lid_v",
            "left_u",
            "left_v",
            "right_u",
            "right_v",
            "bottom_u",
            "bottom_v",
        )
    },
    adaptive=kp.RAD(every=500, candidates=16384),
)

# smoke test: a few steps on few points (the reference is still computed, a few seconds)
quick_plan = replace(
    plan.quick(),
    stages=(kp.Adam(steps=10), kp.ExtendGrid(grid=10), kp.LBFGS(steps=3, dtype="float64")),
    adaptive=kp.RAD(every=5, candidates=512),
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
