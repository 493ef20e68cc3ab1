"""Robin, soft periodic and initial-rate conditions, and vector problems (Navier-Stokes,
elasticity) from declaration to training."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch

import kanphys as kp
from kanphys import d, div, dt, lap
from kanphys.derivatives.analytic import Requests
from kanphys.train.batch import INTERIOR, TermPoints
from kanphys.train.loss import residuals

F64 = torch.float64
PI = math.pi


def evaluate(problem, model, name, points, normals=None, engine="auto"):
    batch = {name: TermPoints(points, normals)}
    requests = defaultdict(Requests) if engine == "auto" else None
    return residuals(problem, model, batch, requests)[name].detach()


def test_robin_residual_vanishes_at_its_solution_and_not_elsewhere(closed_form):
    line = kp.Interval(0.0, 1.0)
    # u = exp(x): at x = 1, 2 u + 3 du/dn = 5 e
    robin = kp.Robin("right", on=line.part("right"), field="u", a=2.0, b=3.0, value=5 * math.e)
    problem = kp.Problem("robin", domain=line, conditions=[robin])
    drawn = line.part("right").sample(4, seed=0)
    points, normals = torch.as_tensor(drawn.points), torch.as_tensor(drawn.normals)
    exact = closed_form(lambda p: torch.exp(p[:, 0]))
    assert float(evaluate(problem, exact, "right", points, normals).abs().max()) < 1e-12
    wrong = closed_form(lambda p: torch.exp(p[:, 0]) + p[:, 0])
    residual = evaluate(problem, wrong, "right", points, normals)
    torch.testing.assert_close(residual, torch.full((4, 1), 2.0 + 3.0, dtype=F64))


def test_robin_uses_the_outward_normal_on_the_left(closed_form):
    line = kp.Interval(0.0, 1.0)
    robin = kp.Robin("left", on=line.part("left"), field="u", a=0.0, b=1.0, value=-1.0)
    problem = kp.Problem("robin", domain=line, conditions=[robin])
    drawn = line.part("left").sample(2, seed=0)
    exact = closed_form(lambda p: p[:, 0])  # du/dn = -du/dx = -1
    r = evaluate(
        problem, exact, "left", torch.as_tensor(drawn.points), torch.as_tensor(drawn.normals)
    )
    assert float(r.abs().max()) < 1e-12


def periodic_problem(derivatives=True):
    domain = kp.Interval(0.0, 2 * PI) * kp.TimeInterval(0.0, 1.0)
    condition = kp.Periodic(
        "periodic", on=domain.part("left"), coordinate="x", period=2 * PI, derivatives=derivatives
    )
    return kp.Problem("periodic", domain=domain, fields=["u", "v"], conditions=[condition])


@pytest.mark.parametrize("engine", ["auto", "autograd"])
def test_periodic_condition_matches_values_and_derivatives(engine, closed_form, make_surrogate):
    problem = periodic_problem()
    points = torch.as_tensor(problem.domain.part("left").sample(5, seed=0).points)
    periodic = closed_form(
        lambda p: torch.stack([torch.sin(p[:, 0]) * p[:, 1], torch.cos(3 * p[:, 0])], 1)
    )
    r = evaluate(problem, periodic, "periodic", points, engine=engine)
    assert r.shape == (5, 4)  # (u, u_x, v, v_x)
    assert float(r.abs().max()) < 1e-12
    # u = x t: the values differ by 2 pi t, the x-derivatives agree
    linear = closed_form(lambda p: torch.stack([p[:, 0] * p[:, 1], 0 * p[:, 0]], 1))
    r = evaluate(problem, linear, "periodic", points, engine=engine)
    torch.testing.assert_close(r[:, 0], -2 * PI * points[:, 1])
    assert float(r[:, 1:].abs().max()) < 1e-12
    # |sin(x / 2)| matches in value but not in slope: 1/2 and -1/2
    kink = closed_form(lambda p: torch.stack([torch.sin(p[:, 0] / 2), 0 * p[:, 0]], 1))
    r = evaluate(problem, kink, "periodic", points, engine=engine)
    torch.testing.assert_close(r[:, 1], torch.ones(5, dtype=F64))
    # and a KAN through the closed-form engine agrees with autograd
    kan = make_surrogate(problem, dtype=F64)
    fast = evaluate(problem, kan, "periodic", points.double(), engine="auto")
    slow = evaluate(problem, kan, "periodic", points.double(), engine="autograd")
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_periodic_condition_checks_its_coordinate_and_partner_points():
    domain = kp.Interval(0.0, 1.0)
    with pytest.raises(kp.ProblemError, match="unknown coordinate 'y'"):
        kp.Problem(
            "p", domain=domain, conditions=[kp.Periodic("per", domain.part("left"), "y", 1.0)]
        )
    with pytest.raises(kp.ProblemError, match="partner"):
        kp.Problem(
            "p", domain=domain, conditions=[kp.Periodic("per", domain.part("left"), "x", 2.0)]
        )


def test_initial_rate_is_the_time_derivative_at_t0(closed_form):
    domain = kp.Interval(0.0, 1.0) * kp.TimeInterval(0.0, 1.0)
    rate = kp.InitialRate("rate", field="u", value=lambda p: 2 * torch.sin(PI * p[:, 0]))
    problem = kp.Problem(
        "wave",
        domain=domain,
        equations={"wave": lambda s: dt(s.u, 2) - 4 * lap(s.u)},
        conditions=[rate],
    )
    points = torch.as_tensor(domain.initial.sample(6, seed=0).points)
    exact = closed_form(lambda p: torch.sin(PI * p[:, 0]) * torch.sin(2 * PI * p[:, 1]) / PI)
    assert float(evaluate(problem, exact, "rate", points).abs().max()) < 1e-12
    wrong = closed_form(lambda p: torch.sin(PI * p[:, 0]) * torch.cos(2 * PI * p[:, 1]))
    torch.testing.assert_close(
        evaluate(problem, wrong, "rate", points), -2 * torch.sin(PI * points[:, :1])
    )
    with pytest.raises(kp.ProblemError, match="time-dependent"):
        kp.Problem("p", domain=kp.Interval(0.0, 1.0), conditions=[kp.InitialRate("r", field="u")])


# ------------------------------------------------------------------ vector problems
RE = 20.0
LAMBDA = RE / 2 - math.sqrt(RE**2 / 4 + 4 * PI**2)


def kovasznay_exact(p):
    x, y = p[:, 0], p[:, 1]
    u = 1 - torch.exp(LAMBDA * x) * torch.cos(2 * PI * y)
    v = LAMBDA / (2 * PI) * torch.exp(LAMBDA * x) * torch.sin(2 * PI * y)
    pressure = 0.5 * (1 - torch.exp(2 * LAMBDA * x))
    return torch.stack([u, v, pressure], dim=1)


def kovasznay() -> kp.Problem:
    box = kp.Rectangle((-0.5, -0.5), (1.0, 1.5))
    exact = {name: (lambda p, i=i: kovasznay_exact(p)[:, i]) for i, name in enumerate("uvp")}
    return kp.Problem(
        "kovasznay",
        domain=box,
        fields=["u", "v", "p"],
        equations={
            "momentum_x": lambda s: (
                s.u * d(s.u, "x") + s.v * d(s.u, "y") + d(s.p, "x") - lap(s.u) / RE
            ),
            "momentum_y": lambda s: (
                s.u * d(s.v, "x") + s.v * d(s.v, "y") + d(s.p, "y") - lap(s.v) / RE
            ),
            "continuity": lambda s: div(s.u, s.v),
        },
        conditions=[
            kp.Dirichlet(f"wall_{f}", on=box.boundary, field=f, value=exact[f]) for f in "uv"
        ],
        exact=exact,
    )


def elasticity() -> kp.Problem:
    """Plane stress, E = 1, nu = 0.3, displacement (ux, uy) = (x^2 y, x y^2) with body force."""
    nu = 0.3
    c = 1 / (1 - nu**2)
    box = kp.Rectangle((0.0, 0.0), (1.0, 1.0))

    def stresses(s):
        exx, eyy = d(s.ux, "x"), d(s.uy, "y")
        gxy = d(s.ux, "y") + d(s.uy, "x")
        return c * (exx + nu * eyy), c * (eyy + nu * exx), c * (1 - nu) / 2 * gxy

    def force(p):  # -div(sigma) of the exact displacement
        x, y = p[:, :1], p[:, 1:]
        fx = c * (2 * y + nu * 2 * y) + c * (1 - nu) / 2 * (0 + 2 * y)
        fy = c * (2 * x + nu * 2 * x) + c * (1 - nu) / 2 * (2 * x + 0)
        return -fx, -fy

    def balance(axis):
        def residual(s):
            sxx, syy, sxy = stresses(s)
            f = force(s.points)[axis]
            if axis == 0:
                return s.d(sxx, "x") + s.d(sxy, "y") + f
            return s.d(sxy, "x") + s.d(syy, "y") + f

        return residual

    exact = {"ux": lambda p: p[:, 0] ** 2 * p[:, 1], "uy": lambda p: p[:, 0] * p[:, 1] ** 2}
    return kp.Problem(
        "elasticity",
        domain=box,
        fields=["ux", "uy"],
        equations={"balance_x": balance(0), "balance_y": balance(1)},
        conditions=[
            kp.Dirichlet(f"wall_{f}", on=box.boundary, field=f, value=exact[f]) for f in exact
        ],
        exact=exact,
    )


@pytest.mark.parametrize("make", [kovasznay, elasticity])
@pytest.mark.parametrize("engine", ["auto", "autograd"])
def test_vector_problem_residuals_vanish_at_the_exact_solution(make, engine, closed_form):
    problem = make()
    fields = problem.exact
    model = closed_form(lambda p: torch.stack([fields[f](p) for f in problem.fields], dim=1))
    points = torch.as_tensor(problem.domain.sample_interior(50, seed=0))
    batch = {INTERIOR: TermPoints(points)}
    terms = residuals(problem, model, batch, defaultdict(Requests) if engine == "auto" else None)
    for name in problem.equations:
        assert float(terms[name].detach().abs().max()) < 1e-10, name


@pytest.mark.parametrize("make", [kovasznay, elasticity])
def test_vector_problem_trains_end_to_end_with_either_engine(make, make_surrogate):
    problem = make()
    plan = kp.Plan(
        stages=(kp.Adam(steps=15, lr=1e-2), kp.LBFGS(steps=5)),
        sampler=kp.Sobol(interior=64, boundary=32),
    )
    histories = []
    for engine in ("auto", "autograd"):
        model = make_surrogate(problem, dtype=F64, hidden=4)
        trainer = kp.Trainer(problem, model, kp.Plan(**{**plan.__dict__, "engine": engine}))
        trainer.fit()
        histories.append(torch.tensor([row[3] for row in trainer.rows]))
    assert histories[0][-1] < histories[0][0] / 2  # the loss fell
    torch.testing.assert_close(histories[0][:15], histories[1][:15], rtol=1e-7, atol=0)
