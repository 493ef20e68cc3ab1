"""Allen-Cahn equation: a stiff reaction-diffusion problem with sharp moving interfaces.

    u_t = 1e-4 u_xx - 5 u^3 + 5 u      for x in (-1, 1), t in (0, 1)
    u(x, 0) = x^2 cos(pi x),           u periodic in x with period 2

Reference: Fourier spectral solution with ETDRK4 (kanphys.reference.allen_cahn: 1024 modes,
dt = 5e-4; relative L2 difference to 4096 modes 3e-6), interpolated between its grid points.
Periodicity is exact (x enters as cos(pi x), sin(pi x)); the equations are weighted causally
in time (Wang, Sankaran and Perdikaris 2024).
Model: KAN [3, 16, 16, 1] (inputs cos pi x, sin pi x, t), cubic B-splines on 5 intervals
extended to 10 and 20; Adam with causal weights, then L-BFGS in float64.
Published anchors: Chebyshev KAN 5.2e-2, best MLP 2.2e-5 (relative L2). Target:
rel_l2.u <= 1e-2.
Run: kanphys run problems/allen_cahn.py
"""

from dataclasses import replace

import torch

import kanphys as kp
from kanphys import dt, lap
from kanphys.reference import allen_cahn

PI = torch.pi
domain = kp.Interval(-1.0, 1.0) * kp.TimeInterval(0.0, 1.0)


def reference(p):
    return allen_cahn()(p)


problem = kp.Problem(
    "allen_cahn",
    domain=domain,
    fields=["u"],
    equations={"allen_cahn": lambda s: dt(s.u) - 1e-4 * lap(s.u) + 5 * s.u**3 - 5 * s.u},
    conditions=[
        kp.Initial("initial", field="u", value=lambda p: p[:, 0] ** 2 * torch.cos(PI * p[:, 0]))
    ],
    exact={"u": reference},
    constraints=kp.Constraints(periodic={"x": 2.0}),
    description="u_t = 1e-4 u_xx - 5 u^3 + 5 u on [-1,1] x [0,1], periodic, u0 = x^2 cos(pi x)",
)


def model(grid: int = 5, width: int = 16):
    return kp.KAN([3, width, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.Adam(steps=3000, lr=1e-2, lr_final=1e-3),
        kp.ExtendGrid(grid=10),
        kp.Adam(steps=2000, lr=3e-3, lr_final=3e-4),
        kp.LBFGS(steps=500, dtype="float64"),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=1000),
    ],
    sampler=kp.Sobol(interior=8192, initial=512),
    weights={"initial": 100.0},
    causal=kp.Causal(eps=1.0, chunks=32),
)

# smoke test: a few steps on few points (the reference is still computed, about a second)
quick_plan = replace(
    plan.quick(),
    stages=(kp.Adam(steps=10), kp.LBFGS(steps=3, dtype="float64")),
    causal=kp.Causal(eps=1.0, chunks=8),
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
