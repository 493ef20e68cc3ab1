"""Residual-based adaptive sampling (RAR, RAD): the right points are chosen, reproducibly,
and an interrupted run resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.train.adaptive import adapt, choose_rad, choose_rar, residual_norm
from kanphys.train.batch import INTERIOR


class Interrupt(Exception):
    pass


def stop_at(step):
    def callback(trainer):
        if trainer.position.global_step == step:
            raise Interrupt

    return callback


def bump_problem() -> kp.Problem:
    """Residual u - exp(-100 (x - 0.7)^2) at the model u = 0: largest near x = 0.7."""
    line = kp.Interval(0.0, 1.0)
    return kp.Problem(
        "bump",
        domain=line,
        equations={"fit": lambda s: s.u - torch.exp(-100 * (s.x - 0.7) ** 2)},
    )


def zero_model(problem, closed_form):
    return closed_form(lambda p: torch.zeros(p.shape[0], 1, dtype=p.dtype))


def test_rar_adds_the_candidates_with_the_largest_residual(closed_form):
    problem = bump_problem()
    model = zero_model(problem, closed_form)
    method = kp.RAR(every=1, candidates=200, add=5)
    points = adapt(
        problem, model, method, None, n_interior=10, sampling="uniform", seed=3, round_=0
    )
    assert points.shape == (5, 1)
    candidates = problem.domain.sample_interior(200, seed=_candidate_seed(3, 0), method="uniform")
    residual = np.exp(-100 * (candidates[:, 0] - 0.7) ** 2)
    best = np.sort(candidates[np.argsort(residual)[-5:], 0])
    np.testing.assert_array_equal(np.sort(points[:, 0]), best)
    assert np.abs(points[:, 0] - 0.7).max() < 0.05


def _candidate_seed(seed, round_):
    from kanphys.train.adaptive import _seed

    return _seed(seed, round_)


def test_rar_keeps_earlier_points_and_stops_at_max_points(closed_form):
    problem = bump_problem()
    model = zero_model(problem, closed_form)
    method = kp.RAR(every=1, candidates=100, add=4, max_points=6)
    first = adapt(problem, model, method, None, n_interior=8, sampling="uniform", seed=0, round_=0)
    second = adapt(
        problem, model, method, first, n_interior=8, sampling="uniform", seed=0, round_=1
    )
    third = adapt(
        problem, model, method, second, n_interior=8, sampling="uniform", seed=0, round_=2
    )
    np.testing.assert_array_equal(second[:4], first)
    assert len(second) == 6 and len(third) == 6


def test_choose_rar_is_top_k():
    norm = torch.tensor([0.1, 5.0, 0.3, 4.0, 0.2], dtype=torch.float64)
    assert choose_rar(norm, 2).tolist() == [1, 3]


def test_rad_density_follows_residual_power_plus_c():
    # two groups of candidates: residual 3 and 1, k = 2, c = 0 -> probabilities 9:1 per point
    norm = torch.tensor([3.0] * 1000 + [1.0] * 1000, dtype=torch.float64)
    picks = np.concatenate([choose_rad(norm, 1, k=2.0, c=0.0, seed=s) for s in range(2000)])
    share = (picks < 1000).mean()
    assert abs(share - 0.9) < 0.025
    # c large: nearly uniform
    picks = np.concatenate([choose_rad(norm, 1, k=2.0, c=1e6, seed=s) for s in range(2000)])
    assert abs((picks < 1000).mean() - 0.5) < 0.04


def test_rad_draws_distinct_points_and_is_seeded():
    norm = torch.rand(50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = choose_rad(norm, 30, k=1.0, c=1.0, seed=4)
    assert len(set(a.tolist())) == 30
    np.testing.assert_array_equal(a, choose_rad(norm, 30, k=1.0, c=1.0, seed=4))


def test_residual_norm_combines_equations(closed_form):
    square = kp.Rectangle((0.0, 0.0), (1.0, 1.0))
    problem = kp.Problem(
        "two",
        domain=square,
        fields=["u", "v"],
        equations={"a": lambda s: s.u - 3.0, "b": lambda s: s.v - 4.0},
    )
    model = closed_form(lambda p: torch.zeros(p.shape[0], 2, dtype=p.dtype))
    points = torch.rand(7, 2, dtype=torch.float64)
    torch.testing.assert_close(
        residual_norm(problem, model, points), torch.full((7,), 5.0).double()
    )


@pytest.mark.parametrize("method", [kp.RAR(every=4, candidates=64, add=8), kp.RAD(every=4)])
def test_adaptive_training_resumes_exactly(method, poisson1d, make_surrogate, tmp_path):
    plan = kp.Plan(
        stages=(kp.Adam(steps=14),),
        sampler=kp.Sobol(interior=32, boundary=2, resample_every=6),
        adaptive=method,
        checkpoint_every=1,
    )
    reference = kp.Trainer(poisson1d, make_surrogate(poisson1d), plan)
    reference.fit()
    n = len(reference.batch()[INTERIOR].points)
    assert n == (32 + 3 * 8 if isinstance(method, kp.RAR) else 32)
    path = tmp_path / "checkpoint.pt"
    first = kp.Trainer(poisson1d, make_surrogate(poisson1d), plan, checkpoint=path)
    with pytest.raises(Interrupt):
        first.fit(stop_at(10))
    resumed = kp.Trainer.restore(poisson1d, plan, path)
    resumed.fit()
    assert resumed.rows[-1][1:-1] == reference.rows[-1][1:-1]
    for name, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    np.testing.assert_array_equal(resumed.methods.points, reference.methods.points)
