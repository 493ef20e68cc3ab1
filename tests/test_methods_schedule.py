"""Grid steps that carry Adam's state over, curriculum on a problem constant, and the MLP
baseline trained by the same plan."""

from __future__ import annotations

import json

import pytest
import torch

import kanphys as kp
from kanphys import d, dt
from kanphys.cli import main
from kanphys.runner import build_model, mlp_baseline
from kanphys.train.gridstate import carry_adam_state, coefficient_map, gradient_map

F64 = torch.float64


def test_coefficient_map_reproduces_an_exact_grid_extension(poisson1d, make_surrogate):
    model = make_surrogate(poisson1d, dtype=F64)
    finer = model.extend_grid(10)
    for old, new in zip(model.net.layers, finer.net.layers, strict=True):
        mapping = coefficient_map(old, new)
        torch.testing.assert_close(
            mapping @ old.coef.detach(), new.coef.detach(), rtol=0, atol=1e-10
        )


def test_gradient_map_maps_gradients_of_an_extended_model(poisson1d, make_surrogate):
    model = make_surrogate(poisson1d, dtype=F64)
    finer = model.extend_grid(10)
    x = torch.rand(64, 1, dtype=F64)
    model(x).sin().sum().backward()
    finer(x).sin().sum().backward()
    for old, new in zip(model.net.layers, finer.net.layers, strict=True):
        mapping = coefficient_map(old, new)
        # the chain rule: the old gradient is A^T times the new one
        torch.testing.assert_close(mapping.transpose(1, 2) @ new.coef.grad, old.coef.grad)
        # and the gradient map sends the old gradient to the new one's part in range(A)
        projected = gradient_map(old, new) @ old.coef.grad
        torch.testing.assert_close(mapping.transpose(1, 2) @ projected, old.coef.grad)


def test_adam_moments_follow_the_gradient_map(poisson1d, make_surrogate):
    model = make_surrogate(poisson1d, dtype=F64)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(16, 1, dtype=F64)).square().sum().backward()
    optimizer.step()
    finer = model.extend_grid(10)
    state = carry_adam_state(model, finer, optimizer.state_dict())
    new = torch.optim.Adam(finer.parameters())
    new.load_state_dict(state)
    params = dict(finer.named_parameters())
    for name, old_param in model.named_parameters():
        old_state, new_state = optimizer.state[old_param], new.state[params[name]]
        assert float(new_state["step"]) == 1.0
        if name.endswith("coef"):
            layer = name.split(".")[2]
            mapping = gradient_map(model.net.layers[int(layer)], finer.net.layers[int(layer)])
            torch.testing.assert_close(new_state["exp_avg"], mapping @ old_state["exp_avg"])
            assert new_state["exp_avg"].shape == params[name].shape
        else:
            assert torch.equal(new_state["exp_avg_sq"], old_state["exp_avg_sq"]), name


def test_adam_after_a_grid_extension_starts_from_the_carried_state(poisson1d, make_surrogate):
    stages = (kp.Adam(steps=5), kp.ExtendGrid(grid=10, carry=True), kp.Adam(steps=1))
    seen = {}

    def record(trainer):
        if trainer.position.global_step == 6:
            seen["step"] = [float(s["step"]) for s in trainer.optimizer.state.values()]

    plan = kp.Plan(stages=stages, sampler=kp.Sobol(interior=32, boundary=2))
    kp.Trainer(poisson1d, make_surrogate(poisson1d), plan).fit(record)
    assert seen["step"] and set(seen["step"]) == {6.0}  # 5 carried steps + this one
    reset = kp.Plan(stages=(stages[0], kp.ExtendGrid(grid=10), stages[2]))  # the default
    kp.Trainer(poisson1d, make_surrogate(poisson1d), reset).fit(record)
    assert set(seen["step"]) == {1.0}


def advection() -> kp.Problem:
    line = kp.Interval(0.0, 1.0) * kp.TimeInterval(0.0, 1.0)
    return kp.Problem(
        "advection",
        domain=line,
        equations={"advection": lambda s: dt(s.u) + s.c * d(s.u, "x")},
        constants={"c": 30.0},
    )


def test_curriculum_sets_the_constant_per_stage(make_surrogate):
    problem = advection()
    plan = kp.Plan(
        stages=(kp.Adam(steps=2), kp.Adam(steps=2), kp.Adam(steps=2)),
        sampler=kp.Sobol(interior=16),
        curriculum=[kp.Curriculum("c", values=(1.0, None))],
    )
    seen = []
    trainer = kp.Trainer(problem, make_surrogate(problem), plan)
    trainer.fit(lambda t: seen.append(t.loss_problem().constants["c"]))
    assert seen == [1.0, 1.0, 30.0, 30.0, 30.0, 30.0]
    assert problem.constants == {"c": 30.0}
    state = problem.state(trainer.model, torch.zeros(2, 2))
    assert float(state.c) == 30.0
    with pytest.raises(ValueError, match="not a constant"):
        kp.Trainer(problem, make_surrogate(problem), kp.Plan(curriculum=[kp.Curriculum("k")]))


def test_constants_print_and_must_not_clash():
    assert "c = 30" in str(advection())
    with pytest.raises(kp.ProblemError, match="'x'"):
        kp.Problem(
            "p", domain=kp.Interval(0.0, 1.0), equations={"e": lambda s: s.u}, constants={"x": 1}
        )


def test_mlp_baseline_has_about_the_kans_parameter_count(poisson1d):
    kan = kp.KAN([2, 10, 3])
    n = sum(p.numel() for p in kan.parameters())
    mlp = mlp_baseline(
        kp.Problem(
            "p",
            domain=kp.Rectangle((0, 0), (1, 1)),
            fields=["u", "v", "w"],
            equations={"e": lambda s: s.u},
        ),
        n,
    )
    m = sum(p.numel() for p in mlp.parameters())
    assert abs(m - n) / n < 0.1 and len(mlp.widths) == 5


def test_model_mlp_override_trains_the_baseline_with_the_same_plan(problem_file, tmp_path):
    out = tmp_path / "run"
    code = main(["run", str(problem_file), "--out", str(out), "--quick", "model=mlp", "steps=3"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["net"]["type"] == "MLP"
    metrics = json.loads((out / "metrics.json").read_text())
    kan = build_model(
        kp.load_problem_file(problem_file).problem,
        kp.load_problem_file(problem_file).model,
        {},
        seed=0,
        dtype=F64,
        device="cpu",
    )
    n_kan = sum(p.numel() for p in kan.parameters())
    assert abs(metrics["n_params"] - n_kan) / n_kan < 0.25
    with pytest.raises(ValueError, match="model="):
        kp.run(
            problem_file, kp.RunOptions(out=tmp_path / "x", quick=True, overrides={"model": "cnn"})
        )


def test_update_grid_follows_the_adaptive_points(poisson1d, make_surrogate):
    plan = kp.Plan(
        stages=(kp.Adam(steps=4), kp.UpdateGrid(grid_eps=0.0)),
        sampler=kp.Sobol(interior=32, boundary=2),
        adaptive=kp.RAD(every=4, candidates=256, k=2.0, c=0.0),
    )
    trainer = kp.Trainer(poisson1d, make_surrogate(poisson1d), plan)
    trainer.fit()
    points = trainer.batch()["__interior__"].points
    drawn = torch.as_tensor(poisson1d.domain.sample_interior(32, seed=0, method="sobol"))
    assert not torch.equal(points.double().sort(0).values, drawn.sort(0).values)
    normalized = trainer.model.normalize(points).sort(0).values[:, 0]
    knots = trainer.model.net.layers[0].interior_knots()[0]
    torch.testing.assert_close(knots[[0, -1]], normalized[[0, -1]])
    index = torch.linspace(0, 31, knots.shape[0]).round().long()
    torch.testing.assert_close(knots, normalized[index])
