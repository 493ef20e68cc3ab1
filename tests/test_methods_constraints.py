"""Hard constraints: exact boundary and initial values, exact periodicity, and derivatives of
constrained KANs from the closed-form engine equal to autograd's."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys import dt, lap
from kanphys.constraints import Constraints, HardValue, distance, hard_dirichlet, hard_initial
from kanphys.derivatives.analytic import Requests
from kanphys.runner import build_model, n_inputs
from kanphys.train.loss import residuals

F64 = torch.float64
SQUARE = kp.Rectangle((-1.0, -1.0), (1.0, 1.0))
HOLES = SQUARE - kp.Disk((0.3, 0.2), 0.25) - kp.Disk((-0.4, -0.3), 0.2)


def surrogate(problem, factory=None, seed=0):
    return build_model(problem, factory, {}, seed=seed, dtype=F64, device="cpu")


def problem_on(domain, constraints, equations=None, fields=("u",)):
    return kp.Problem(
        "p",
        domain=domain,
        fields=list(fields),
        equations=equations or {"pde": lambda s: -lap(s.u) - 1.0},
        constraints=constraints,
    )


def boundary_value(p):
    return torch.sin(3 * p[:, 0]) + p[:, 1] ** 2


@pytest.mark.parametrize("domain", [SQUARE, HOLES, SQUARE | kp.Disk((1.0, 0.0), 0.5)])
def test_hard_dirichlet_values_are_exact_on_the_boundary(domain):
    problem = problem_on(domain, Constraints([hard_dirichlet(domain, "u", boundary_value)]))
    model = surrogate(problem)
    points = torch.as_tensor(domain.boundary.sample(400, seed=1).points)
    error = (model(points) - boundary_value(points).unsqueeze(1)).abs().max()
    assert float(error.detach()) < 1e-12
    inside = torch.as_tensor(domain.sample_interior(400, seed=2))
    assert float((model(inside) - boundary_value(inside).unsqueeze(1)).abs().max().detach()) > 1e-3


@pytest.mark.parametrize("domain", [SQUARE, HOLES, kp.Disk((0.0, 0.0), 1.0)])
def test_distance_vanishes_on_the_boundary_and_is_positive_inside(domain):
    d = distance(domain)
    on = torch.as_tensor(domain.boundary.sample(300, seed=0).points)
    inside = torch.as_tensor(domain.sample_interior(300, seed=0))
    assert float(d(on).abs().max()) < 1e-12
    assert float(d(inside).min()) > 0


def test_disk_distance_has_unit_slope_on_the_circle():
    d = distance(kp.Disk((0.5, -0.5), 2.0))
    p = torch.tensor([[2.5, -0.5]], dtype=F64, requires_grad=True)
    (gradient,) = torch.autograd.grad(d(p).sum(), p)
    torch.testing.assert_close(gradient, torch.tensor([[-1.0, 0.0]], dtype=F64))


def test_periodic_embedding_output_matches_across_the_period():
    line = kp.Interval(0.0, 2 * math.pi) * kp.TimeInterval(0.0, 1.0)
    problem = problem_on(
        line,
        Constraints(periodic={"x": 2 * math.pi}),
        equations={"advection": lambda s: dt(s.u) + kp.d(s.u, "x")},
    )
    assert n_inputs(problem) == 3
    model = surrogate(problem)
    t = torch.linspace(0, 1, 11, dtype=F64).unsqueeze(1)
    left = model(torch.cat([torch.zeros_like(t), t], dim=1))
    right = model(torch.cat([torch.full_like(t, 2 * math.pi), t], dim=1))
    torch.testing.assert_close(left, right, rtol=0, atol=1e-12)
    # and so are the x-derivatives
    x = torch.cat([torch.zeros_like(t), t], dim=1).requires_grad_(True)
    y = torch.cat([torch.full_like(t, 2 * math.pi), t], dim=1).requires_grad_(True)
    (gx,) = torch.autograd.grad(model(x).sum(), x)
    (gy,) = torch.autograd.grad(model(y).sum(), y)
    torch.testing.assert_close(gx, gy, rtol=0, atol=1e-10)
    middle = model(torch.tensor([[math.pi, 0.5]], dtype=F64))
    assert not torch.allclose(middle, left[5:6])


def test_hard_initial_values_are_exact_at_t0():
    line = kp.Interval(-1.0, 1.0) * kp.TimeInterval(0.5, 2.0)
    u0 = lambda p: -torch.sin(math.pi * p[:, 0])  # noqa: E731
    problem = problem_on(
        line,
        Constraints([hard_initial(line, "u", u0)]),
        equations={"burgers": lambda s: dt(s.u) + s.u * kp.d(s.u, "x") - 0.01 * lap(s.u)},
    )
    model = surrogate(problem)
    points = torch.as_tensor(line.initial.sample(100, seed=0).points)
    torch.testing.assert_close(model(points), u0(points).unsqueeze(1), rtol=0, atol=1e-12)


def test_an_mlp_carries_the_constraints_too():
    problem = problem_on(SQUARE, Constraints([hard_dirichlet(SQUARE, "u", 0.0)]))
    model = surrogate(problem, factory=lambda: kp.MLP([2, 8, 1], dtype=F64))
    points = torch.as_tensor(SQUARE.boundary.sample(50, seed=0).points)
    assert float(model(points).abs().max().detach()) < 1e-12


def constrained_derivatives(problem, model, engine):
    """Every derivative up to third order of every field, through a residual."""
    x = torch.as_tensor(problem.domain.sample_interior(40, seed=5))
    requests = defaultdict(Requests) if engine == "auto" else None
    state = problem.state(model, x, requests=None if requests is None else requests["pde"])
    out = []
    indices = [(), (0,), (1,), (0, 0), (0, 1), (1, 1), (0, 0, 1), (1, 1, 1)]
    for field in range(len(problem.fields)):
        for index in indices:
            out.append(state.derivative(field, index))
        out.append(lap(state.field(problem.fields[field])))
    return torch.cat(out, dim=1), state.engine


def test_closed_form_derivatives_of_a_constrained_kan_equal_autograd():
    hard = HardValue("u", lambda p: torch.cos(p[:, 0]) * p[:, 1], distance(HOLES))
    problem = problem_on(HOLES, Constraints([hard]), fields=("u", "v"))
    model = surrogate(problem)
    fast, engine = constrained_derivatives(problem, model, "auto")
    slow, _ = constrained_derivatives(problem, model, "autograd")
    assert type(engine).__name__ == "ConstrainedEngine"
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)


def test_constrained_residual_gradients_equal_autograd():
    problem = problem_on(SQUARE, Constraints([hard_dirichlet(SQUARE, "u", boundary_value)]))
    model = surrogate(problem)
    batch = {"__interior__": kp.train.batch.TermPoints(torch.as_tensor(SQUARE.sample_interior(30)))}

    def gradient(requests):
        model.zero_grad()
        residuals(problem, model, batch, requests)["pde"].square().mean().backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    torch.testing.assert_close(
        gradient(defaultdict(Requests)), gradient(None), rtol=1e-10, atol=1e-12
    )


def test_constrained_training_resumes_and_needs_the_constraints_to_load(tmp_path):
    problem = problem_on(SQUARE, Constraints([hard_dirichlet(SQUARE, "u", 0.0)]))
    model = surrogate(problem)
    plan = kp.Plan(stages=(kp.Adam(steps=3),), sampler=kp.Sobol(interior=32, boundary=8))
    trainer = kp.Trainer(problem, model, plan, checkpoint=tmp_path / "c.pt")
    trainer.fit()
    restored = kp.Trainer.restore(problem, plan, tmp_path / "c.pt")
    points = torch.as_tensor(SQUARE.sample_interior(10)).to(restored.model.dtype)
    torch.testing.assert_close(restored.model(points), trainer.model(points), rtol=0, atol=0)
    with pytest.raises(ValueError, match="hard constraints"):
        kp.Surrogate.from_config(trainer.model.config())


def test_unknown_names_are_reported():
    with pytest.raises(ValueError, match="'w'"):
        Constraints([hard_dirichlet(SQUARE, "w")]).bind(("x", "y"), ("u",))
    with pytest.raises(ValueError, match="'z'"):
        Constraints(periodic={"z": 1.0}).bind(("x", "y"), ("u",))
    with pytest.raises(TypeError, match="distance"):
        distance(np.zeros(2))


@pytest.mark.parametrize("hard_values", [False, True])
def test_closed_form_derivatives_through_a_periodic_embedding_equal_autograd(hard_values):
    line = kp.Interval(0.0, 2 * math.pi) * kp.TimeInterval(0.0, 1.0)
    values = [hard_initial(line, "u", lambda p: torch.sin(p[:, 0]))] if hard_values else []
    problem = problem_on(
        line,
        Constraints(values, periodic={"x": 2 * math.pi}),
        equations={"pde": lambda s: dt(s.u) + kp.d(s.u, "x")},
        fields=("u", "v"),
    )
    model = surrogate(problem)
    fast, engine = constrained_derivatives(problem, model, "auto")
    slow, _ = constrained_derivatives(problem, model, "autograd")
    expected = "ConstrainedEngine" if hard_values else "EmbeddedEngine"
    assert type(engine).__name__ == expected
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)


def test_a_constrained_run_directory_gives_back_its_model(tmp_path):
    source = tmp_path / "hard.py"
    source.write_text(
        "import kanphys as kp\n"
        "from kanphys import lap\n"
        "from kanphys.constraints import Constraints, hard_dirichlet\n"
        "square = kp.Rectangle((0.0, 0.0), (1.0, 1.0))\n"
        "problem = kp.Problem('hard', domain=square, equations={'pde': lambda s: -lap(s.u) - 1},\n"
        "    constraints=Constraints([hard_dirichlet(square, 'u', 2.0)]))\n"
        "plan = kp.Plan(stages=[kp.Adam(steps=2)], sampler=kp.Sobol(interior=16, boundary=4))\n"
    )
    run = kp.run(source, kp.RunOptions(out=tmp_path / "run", dtype="float64"))
    model = run.model()
    corners = torch.tensor([[0.0, 0.0], [1.0, 0.5]], dtype=F64)
    torch.testing.assert_close(model(corners).detach(), torch.full((2, 1), 2.0, dtype=F64))


def test_a_problem_checks_its_constraints():
    with pytest.raises(kp.ProblemError, match="constraints: hard value for unknown field 'w'"):
        problem_on(SQUARE, Constraints([hard_dirichlet(SQUARE, "w")]))
