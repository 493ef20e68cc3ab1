"""Inverse diffusion: recover the diffusion coefficient from noisy observations.

    u_t = D u_xx + (D_true pi^2 - 1) exp(-t) sin(pi x),   D unknown (true 0.25)
    u(-1, t) = u(1, t) = 0,   u(x, 0) = sin(pi x)        for x in (-1, 1), t in (0, 1)

plus 1000 observations of u at random points with Gaussian noise of 1 % of the solution's
RMS value (fixed seed). The source is known; D is a trained Parameter (initial value 1).
Exact solution at D = 0.25: u = exp(-t) sin(pi x).
Model: KAN [2, 10, 1] (inputs x, t), cubic B-splines on 5 intervals extended to 10; L-BFGS in
float64.
Published anchor: adaptive KAN 3.6 % error in D at heavy noise. Target: |D - 0.25| / 0.25
<= 1 %.
Run: kanphys run problems/inverse_diffusion.py
"""

import numpy as np
import torch

import kanphys as kp
from kanphys import dt, lap

PI = torch.pi
D_TRUE = 0.25
N_OBSERVATIONS = 1000
NOISE = 0.01
domain = kp.Interval(-1.0, 1.0) * kp.TimeInterval(0.0, 1.0)


def exact(p):
    return torch.exp(-p[:, 1]) * torch.sin(PI * p[:, 0])


def observations(seed: int = 0) -> kp.Data:
    """``N_OBSERVATIONS`` noisy values of the exact solution at random points."""
    rng = np.random.default_rng(seed)
    points = np.column_stack(
        [rng.uniform(-1.0, 1.0, N_OBSERVATIONS), rng.uniform(0.0, 1.0, N_OBSERVATIONS)]
    )
    values = exact(torch.as_tensor(points)).numpy()
    noisy = values + NOISE * np.sqrt(np.mean(values**2)) * rng.standard_normal(values.shape)
    return kp.Data("observations", points=points, values=noisy, fields=("u",))


def source(x, t):
    return (D_TRUE * PI**2 - 1) * torch.exp(-t) * torch.sin(PI * x)


problem = kp.Problem(
    "inverse_diffusion",
    domain=domain,
    fields=["u"],
    parameters=[kp.Parameter("D", init=1.0)],
    equations={"diffusion": lambda s: dt(s.u) - s.D * lap(s.u) - source(s.x, s.t)},
    conditions=[
        kp.Dirichlet("ends", on=domain.boundary, field="u", value=0.0),
        kp.Initial("initial", field="u", value=lambda p: torch.sin(PI * p[:, 0])),
        observations(),
    ],
    exact={"u": exact},
    description="recover D (true 0.25) in u_t = D u_xx + f from 1000 noisy observations",
)


def model(grid: int = 5, width: int = 10):
    return kp.KAN([2, width, 1], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.LBFGS(steps=500, dtype="float64"),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=800),
    ],
    sampler=kp.Sobol(interior=2048, boundary=256, initial=256),
    weights={"ends": 10.0, "initial": 10.0, "observations": 10.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
