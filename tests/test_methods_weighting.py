"""Loss balancing (gradient statistics), pointwise attention (RBA) and causal weights: the
formulas on hand-made cases, and exact resumption of runs that use them."""

from __future__ import annotations

import math

import pytest
import torch

import kanphys as kp
from kanphys import dt, lap
from kanphys.train.causal import causal_factors
from kanphys.train.loss import total_loss
from kanphys.train.weighting import balance_from_gradients, blend, rba_update, term_gradients

F64 = torch.float64


class Interrupt(Exception):
    pass


def stop_at(step):
    def callback(trainer):
        if trainer.position.global_step == step:
            raise Interrupt

    return callback


def test_learning_rate_annealing_weights_follow_their_formula():
    gradients = {
        "pde": torch.tensor([4.0, -8.0, 1.0], dtype=F64),
        "wall": torch.tensor([1.0, -1.0, 2.0], dtype=F64),  # mean |g| = 4/3
        "data": torch.tensor([0.0, 0.5, -0.5], dtype=F64),  # mean |g| = 1/3
    }
    weights = balance_from_gradients(gradients, {"pde"}, "max")
    assert weights == pytest.approx({"pde": 1.0, "wall": 8 / (4 / 3), "data": 8 / (1 / 3)})


def test_lra_reference_is_the_sum_of_the_equations():
    gradients = {
        "a": torch.tensor([1.0, -3.0], dtype=F64),
        "b": torch.tensor([2.0, -2.0], dtype=F64),  # sum: [3, -5] -> max 5
        "wall": torch.tensor([1.0, 1.0], dtype=F64),
    }
    assert balance_from_gradients(gradients, {"a", "b"}, "max")["wall"] == pytest.approx(5.0)


def test_gradient_norm_weights_follow_their_formula():
    gradients = {"pde": torch.tensor([3.0, 4.0], dtype=F64), "wall": torch.tensor([1.0, 0.0])}
    weights = balance_from_gradients(gradients, {"pde"}, "norm")
    assert weights == pytest.approx({"pde": 6 / 5, "wall": 6 / 1})


def test_blend_is_a_moving_average_starting_from_one():
    assert blend({}, {"wall": 11.0}, 0.9) == pytest.approx({"wall": 2.0})
    assert blend({"wall": 2.0}, {"wall": 12.0}, 0.5) == pytest.approx({"wall": 7.0})


def test_term_gradients_match_hand_derivatives():
    w = torch.tensor([2.0, -1.0], dtype=F64, requires_grad=True)
    r = (w[0] * torch.tensor([1.0, 2.0], dtype=F64) + w[1]).unsqueeze(1)  # r_i = w0 x_i + w1
    grads = term_gradients({"t": r}, [w])["t"]
    # d/dw mean(r^2) = mean(2 r [x, 1]), r = [1, 3]
    torch.testing.assert_close(
        grads, torch.tensor([(2 * 1 * 1 + 2 * 3 * 2) / 2, (2 + 6) / 2]).double()
    )


def test_rba_update_follows_its_formula():
    weights = torch.ones(3, 1, dtype=F64)
    r = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 0.0]], dtype=F64)  # |r| = 5, 1, 0
    new = rba_update(weights, r, gamma=0.9, eta=0.5)
    torch.testing.assert_close(new, torch.tensor([[0.9 + 0.5], [0.9 + 0.1], [0.9]], dtype=F64))


def test_pointwise_factors_enter_the_loss_inside_the_mean():
    r = torch.tensor([[1.0], [2.0]], dtype=F64)
    total, values = total_loss({"a": r}, {"a": 3.0}, {"a": torch.tensor([[4.0], [0.5]]).double()})
    assert float(total) == pytest.approx(3.0 * (4 * 1 + 0.5 * 4) / 2)
    assert values == {"a": pytest.approx(2.5)}  # the logged loss stays unweighted


def test_causal_weights_follow_the_accumulated_earlier_loss():
    t = torch.tensor([0.1, 0.2, 0.6, 0.9, 0.95, 0.99], dtype=F64)  # slices of [0, 1]: 2, 1, 3
    squares = torch.tensor([1.0, 3.0, 4.0, 0.5, 1.0, 1.5], dtype=F64)  # slice means 2, 4, 1
    factors, weights = causal_factors(t, squares, 0.0, 1.0, chunks=3, eps=0.5)
    expected = torch.tensor([1.0, math.exp(-0.5 * 2), math.exp(-0.5 * 6)], dtype=F64)
    torch.testing.assert_close(weights, expected)
    # mean(factor * r^2) is the mean over slices of w_i L_i
    loss = (factors[:, 0] * squares).mean()
    assert float(loss) == pytest.approx(float((expected * torch.tensor([2.0, 4.0, 1.0])).mean()))


def test_causal_weights_skip_empty_slices():
    t = torch.tensor([0.05, 0.95], dtype=F64)
    factors, weights = causal_factors(t, torch.tensor([2.0, 1.0]).double(), 0.0, 1.0, 4, 1.0)
    assert weights.tolist() == pytest.approx([1.0, math.exp(-2), math.exp(-2), math.exp(-2)])
    assert float((factors[:, 0] * torch.tensor([2.0, 1.0]).double()).mean()) == pytest.approx(
        (2.0 + math.exp(-2) * 1.0) / 2
    )


def heat() -> kp.Problem:
    domain = kp.Interval(0.0, 1.0) * kp.TimeInterval(0.0, 1.0)
    return kp.Problem(
        "heat",
        domain=domain,
        equations={"heat": lambda s: dt(s.u) - 0.1 * lap(s.u)},
        conditions=[
            kp.Dirichlet("ends", on=domain.boundary, field="u"),
            kp.Initial("initial", field="u", value=lambda p: torch.sin(math.pi * p[:, :1])),
        ],
    )


def test_causal_training_reports_weights_and_needs_time(poisson1d, make_surrogate):
    problem = heat()
    plan = kp.Plan(
        stages=(kp.Adam(steps=3),),
        sampler=kp.Sobol(interior=64, boundary=8, initial=8),
        causal=kp.Causal(eps=10.0, chunks=4),
    )
    trainer = kp.Trainer(problem, make_surrogate(problem), plan)
    trainer.fit()
    weights = trainer.methods.causal
    assert weights.shape == (4,) and weights[0] == 1 and bool((weights[1:] <= weights[:-1]).all())
    with pytest.raises(ValueError, match="time-dependent"):
        kp.Trainer(poisson1d, make_surrogate(poisson1d), plan)


def test_balancing_changes_the_condition_weight(poisson1d, make_surrogate):
    plan = kp.Plan(
        stages=(kp.Adam(steps=4),),
        sampler=kp.Sobol(interior=32, boundary=2),
        balance=kp.GradNorm(every=2, alpha=0.5),
    )
    trainer = kp.Trainer(poisson1d, make_surrogate(poisson1d), plan)
    trainer.fit()
    assert set(trainer.methods.balance) == {"poisson", "ends"}
    assert trainer.methods.balance["poisson"] == 1.0
    assert trainer.methods.balance["ends"] != 1.0
    assert trainer.methods.weights()["ends"] == trainer.methods.balance["ends"]


@pytest.mark.parametrize("chunk_size", [16384, 24])
def test_run_with_every_weighting_method_resumes_exactly(chunk_size, make_surrogate, tmp_path):
    problem = heat()
    plan = kp.Plan(
        stages=(kp.Adam(steps=8), kp.LBFGS(steps=4)),
        sampler=kp.Sobol(interior=48, boundary=8, initial=8, resample_every=5),
        weights={"initial": 10.0},
        balance=kp.GradNorm(every=3),
        attention=kp.RBA(eta=0.1, terms=("heat", "initial")),
        causal=kp.Causal(eps=1.0, chunks=4),
        adaptive=kp.RAR(every=4, candidates=64, add=8),
        checkpoint_every=1,
        chunk_size=chunk_size,
    )
    reference = kp.Trainer(problem, make_surrogate(problem), plan)
    reference.fit()
    for stop in (6, 10):
        path = tmp_path / f"checkpoint{stop}.pt"
        with pytest.raises(Interrupt):
            kp.Trainer(problem, make_surrogate(problem), plan, checkpoint=path).fit(stop_at(stop))
        resumed = kp.Trainer.restore(problem, plan, path)
        resumed.fit()
        assert [r[1:-1] for r in resumed.rows] == [r[1:-1] for r in reference.rows]
        for name, value in reference.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[name], value), name
