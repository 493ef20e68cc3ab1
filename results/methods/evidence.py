"""Small measured comparisons of the training methods (docs/methods.md, "Evidence").

Each experiment trains the same seeded model with and without one method and records the
relative L2 error, the final loss and the wall time. Sized for a 2-core CPU: about 45
minutes for all on one thread. Writes ``results/methods/evidence.json`` (one record per run).

Run: OMP_NUM_THREADS=1 python results/methods/evidence.py [NAME ...]
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

import kanphys as kp
from kanphys import d, dt, lap
from kanphys.constraints import Constraints, hard_dirichlet, hard_initial
from kanphys.evaluate import error_metrics, evaluate_fields, evaluation_grid
from kanphys.io.files import write_json
from kanphys.runner import build_model, mlp_baseline
from kanphys.train.trainer import Trainer

PI = math.pi
OUT = Path(__file__).with_name("evidence.json")
SQUARE = kp.Rectangle((-1.0, -1.0), (1.0, 1.0))


def poisson2d(constraints=None, weight_free=True) -> kp.Problem:
    def source(s):
        return 2 * PI**2 * torch.sin(PI * s.x) * torch.sin(PI * s.y)

    conditions = [] if constraints else [kp.Dirichlet("wall", on=SQUARE.boundary, field="u")]
    return kp.Problem(
        "poisson2d",
        domain=SQUARE,
        equations={"poisson": lambda s: -lap(s.u) - source(s)},
        conditions=conditions,
        constraints=constraints,
        exact={"u": lambda p: torch.sin(PI * p[:, 0]) * torch.sin(PI * p[:, 1])},
    )


def peak1d() -> kp.Problem:
    """-u'' = f on [0, 1] with u = exp(-200 (x - 0.6)^2) (a sharp peak)."""
    line = kp.Interval(0.0, 1.0)

    def exact(x):
        return torch.exp(-200 * (x - 0.6) ** 2)

    def minus_second(x):
        return -(400**2 * (x - 0.6) ** 2 - 400) * exact(x)

    return kp.Problem(
        "peak1d",
        domain=line,
        equations={"poisson": lambda s: -lap(s.u) - minus_second(s.x)},
        conditions=[kp.Dirichlet("ends", on=line.boundary, field="u", value=lambda p: exact(p))],
        exact={"u": lambda p: exact(p[:, 0])},
    )


def advection(beta: float, hard: bool = True) -> kp.Problem:
    line = kp.Interval(0.0, 2 * PI) * kp.TimeInterval(0.0, 1.0)
    u0 = lambda p: torch.sin(p[:, 0])  # noqa: E731
    values = [hard_initial(line, "u", u0)] if hard else []
    return kp.Problem(
        "advection",
        domain=line,
        equations={"advection": lambda s: dt(s.u) + s.beta * d(s.u, "x")},
        conditions=[] if hard else [kp.Initial("initial", field="u", value=u0)],
        constants={"beta": beta},
        constraints=Constraints(values=values, periodic={"x": 2 * PI}),
        exact={"u": lambda p: torch.sin(p[:, 0] - beta * p[:, 1])},
    )


def train(problem, plan, *, width=10, depth=1, grid=5, mlp=False, seed=0) -> dict:
    inputs = problem.domain.dim + (len(problem.constraints.periodic) if problem.constraints else 0)

    def factory():
        kan = kp.KAN([inputs, *[width] * depth, 1], basis=kp.BSpline(grid=grid))
        if mlp:
            return mlp_baseline(problem, sum(p.numel() for p in kan.parameters()))
        return kan

    model = build_model(problem, factory, {}, seed=seed, dtype=torch.float32, device="cpu")
    trainer = Trainer(problem, model, plan, seed=seed)
    started = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - started
    grid_points = evaluation_grid(problem.domain, 101).points
    values = evaluate_fields(problem, trainer.model, grid_points, residuals=False)
    return {
        "rel_l2": error_metrics(problem, values)["rel_l2"]["u"],
        "final_loss": trainer.rows[-1][3],
        "wall_time_s": round(wall, 1),
        "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "steps": trainer.position.global_step,
    }


def grid_carry():
    stages = (
        kp.Adam(steps=300, lr=1e-2),
        kp.ExtendGrid(grid=10, carry=True),
        kp.Adam(steps=300, lr=3e-3),
    )
    plan = kp.Plan(
        stages=stages, sampler=kp.Sobol(interior=1024, boundary=256), weights={"wall": 10.0}
    )
    reset = replace(plan, stages=(stages[0], kp.ExtendGrid(grid=10, carry=False), stages[2]))
    for seed in range(3):
        yield (
            f"Adam moments carried over ExtendGrid(10), seed {seed}",
            train(poisson2d(), plan, seed=seed),
        )
        yield (
            f"Adam restarted after ExtendGrid(10), seed {seed}",
            train(poisson2d(), reset, seed=seed),
        )


def sampling():
    base = kp.Plan(
        stages=(kp.Adam(steps=3000, lr=1e-2, lr_final=1e-3),),
        sampler=kp.Sobol(interior=64, boundary=2),
        weights={"ends": 10.0},
    )
    yield "fixed 64 Sobol points", train(peak1d(), base)
    yield (
        "resampled 64 points every 100 steps",
        train(peak1d(), replace(base, sampler=replace(base.sampler, resample_every=100))),
    )
    yield (
        "RAR: 64 + 16 every 250 steps",
        train(peak1d(), replace(base, adaptive=kp.RAR(every=250, candidates=2048, add=16))),
    )
    yield (
        "RAD (k=1, c=1) every 250 steps",
        train(peak1d(), replace(base, adaptive=kp.RAD(every=250, candidates=2048))),
    )


def weighting():
    base = kp.Plan(
        stages=(kp.Adam(steps=1000, lr=1e-2, lr_final=1e-3),),
        sampler=kp.Sobol(interior=1024, boundary=256),
    )
    yield "fixed weights (wall 1)", train(poisson2d(), base)
    yield "fixed weights (wall 100)", train(poisson2d(), replace(base, weights={"wall": 100.0}))
    yield (
        "GradNorm max (learning-rate annealing)",
        train(poisson2d(), replace(base, balance=kp.GradNorm(every=50))),
    )
    yield (
        "GradNorm norm",
        train(poisson2d(), replace(base, balance=kp.GradNorm(every=50, mode="norm"))),
    )
    yield "RBA on the equation", train(poisson2d(), replace(base, attention=kp.RBA()))
    yield (
        "RBA on equation and wall",
        train(poisson2d(), replace(base, attention=kp.RBA(terms=("poisson", "wall")))),
    )


def hard():
    plan = kp.Plan(
        stages=(kp.Adam(steps=500, lr=1e-2, lr_final=1e-3), kp.LBFGS(steps=100, dtype="float64")),
        sampler=kp.Sobol(interior=1024, boundary=256),
        weights={"wall": 100.0},
    )
    yield "soft Dirichlet (weight 100)", train(poisson2d(), plan)
    yield (
        "hard Dirichlet (u = d(x) N(x))",
        train(poisson2d(Constraints([hard_dirichlet(SQUARE, "u")])), replace(plan, weights={})),
    )


def causal():
    plan = kp.Plan(
        stages=(kp.Adam(steps=1500, lr=1e-2, lr_final=1e-3),), sampler=kp.Sobol(interior=2048)
    )
    yield "advection beta=10, plain", train(advection(10.0), plan)
    yield (
        "advection beta=10, causal eps=1",
        train(advection(10.0), replace(plan, causal=kp.Causal(eps=1.0, chunks=16))),
    )


def causal_soft():
    plan = kp.Plan(
        stages=(kp.Adam(steps=1500, lr=1e-2, lr_final=1e-3),),
        sampler=kp.Sobol(interior=2048, initial=256),
        weights={"initial": 10.0},
    )
    problem = advection(10.0, hard=False)
    yield "advection beta=10, soft initial, plain", train(problem, plan)
    yield (
        "advection beta=10, soft initial, causal eps=1",
        train(problem, replace(plan, causal=kp.Causal(eps=1.0, chunks=16))),
    )


def curriculum():
    ramp = (kp.Adam(steps=500, lr=1e-2), kp.Adam(steps=500, lr=1e-2))
    last = kp.Adam(steps=1500, lr=1e-2, lr_final=1e-3)
    plan = kp.Plan(stages=(*ramp, last), sampler=kp.Sobol(interior=2048))
    ramped = replace(plan, curriculum=(kp.Curriculum("beta", (1.0, 10.0)),))
    yield "advection beta=30, plain", train(advection(30.0), plan)
    yield "advection beta=30, curriculum 1, 10, then 30", train(advection(30.0), ramped)


def curriculum_deep():
    ramp = (kp.Adam(steps=500, lr=1e-2), kp.Adam(steps=500, lr=1e-2))
    last = kp.Adam(steps=1500, lr=1e-2, lr_final=1e-3)
    plan = kp.Plan(stages=(*ramp, last), sampler=kp.Sobol(interior=2048))
    ramped = replace(plan, curriculum=(kp.Curriculum("beta", (1.0, 10.0)),))
    yield "KAN [3, 10, 10, 1], beta=30, plain", train(advection(30.0), plan, depth=2)
    yield (
        "KAN [3, 10, 10, 1], beta=30, curriculum 1, 10, then 30",
        train(advection(30.0), ramped, depth=2),
    )


def baseline():
    plan = kp.Plan(
        stages=(kp.Adam(steps=1000, lr=1e-2, lr_final=1e-3), kp.LBFGS(steps=200, dtype="float64")),
        sampler=kp.Sobol(interior=1024, boundary=256),
        weights={"wall": 100.0},
    )
    yield "KAN [2, 10, 1], grid 5", train(poisson2d(), plan)
    yield "MLP [2, w, w, w, 1] (tanh), same parameter count", train(poisson2d(), plan, mlp=True)


EXPERIMENTS = {
    f.__name__: f
    for f in (
        grid_carry,
        sampling,
        weighting,
        hard,
        causal,
        causal_soft,
        curriculum,
        curriculum_deep,
        baseline,
    )
}


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    records = json.loads(OUT.read_text()) if OUT.is_file() else []
    for name in names or list(EXPERIMENTS):
        records = [r for r in records if r["experiment"] != name]
        for label, result in EXPERIMENTS[name]():
            records.append({"experiment": name, "run": label, **result})
            print(json.dumps(records[-1]), flush=True)
            write_json(OUT, records)


if __name__ == "__main__":
    main(sys.argv[1:])
