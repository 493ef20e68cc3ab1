"""The closed-form derivative engine agrees with nested autograd (the oracle) in float64."""

import pytest
import torch

import kanphys as kp
from kanphys.derivatives import jet
from kanphys.derivatives.analytic import AnalyticEngine, Requests
from kanphys.derivatives.autograd import AutogradEngine
from kanphys.derivatives.state import State

F64 = torch.float64
INDICES = [(), (0,), (1,), (2,), (0, 0), (0, 1), (1, 2), (2, 2), (0, 0, 0), (0, 1, 2), (1, 1, 2)]


def random_kan(basis, base, adaptive=False):
    generator = torch.Generator().manual_seed(3)
    net = kp.KAN([3, 4, 5, 2], basis=basis, base=base, generator=generator, dtype=F64)
    with torch.no_grad():
        for layer in net.layers:
            layer.coef.copy_(torch.randn(layer.coef.shape, generator=generator, dtype=F64))
    model = kp.Surrogate(net, [-1.0, 0.0, 2.0], [1.0, 2.0, 3.0])
    if adaptive:
        model = model.update_grid(points(400, seed=9))
    return model


def points(n, seed=1):
    unit = torch.rand(n, 3, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return unit * 0.98 * torch.tensor([2.0, 2.0, 1.0], dtype=F64) + torch.tensor(
        [-0.99, 0.01, 2.005], dtype=F64
    )


MODELS = {
    "cubic-uniform": (kp.BSpline(grid=5), "silu", False),
    "cubic-adaptive": (kp.BSpline(grid=5), "silu", True),
    "quadratic": (kp.BSpline(grid=7, order=2), None, False),
    "quintic": (kp.BSpline(grid=4, order=5), "identity", False),
    "chebyshev": (kp.Chebyshev(4), "tanh", False),
}


@pytest.mark.parametrize("name", MODELS)
def test_every_derivative_up_to_third_order_matches_autograd(name):
    model = random_kan(*MODELS[name])
    x = points(300)
    fast = AnalyticEngine(model, x, Requests(set(INDICES[1:])))
    oracle = AutogradEngine(model, x)
    for output in range(2):
        for index in INDICES:
            expected = oracle.derivative(output, index)
            scale = expected.abs().max()
            error = (fast.derivative(output, index) - expected).abs().max() / scale
            assert error < 1e-10, f"{name}: d{index} of output {output}: {error:.1e}"


@pytest.mark.parametrize("name", MODELS)
def test_parameter_gradients_of_a_residual_loss_match_autograd(name):
    model = random_kan(*MODELS[name])
    x = points(200)

    def loss(requests):
        s = State(model, x, coordinates="xyt", fields="uv", time_index=2, requests=requests)
        residual = kp.lap(s.u) + kp.d(s.v, "x", "y", "t") - kp.dt(s.u) * s.v
        return residual.square().mean()

    params = list(model.parameters())
    fast = torch.autograd.grad(loss(Requests()), params)
    oracle = torch.autograd.grad(loss(None), params)
    for a, b in zip(fast, oracle, strict=True):
        assert ((a - b).abs().max() / b.abs().max()) < 1e-10


def test_uniform_cubic_layers_take_the_local_path_and_adaptive_ones_do_not():
    assert all(
        jet.is_uniform_cubic(layer) for layer in random_kan(*MODELS["cubic-uniform"]).net.layers
    )
    assert not any(
        jet.is_uniform_cubic(layer) for layer in random_kan(*MODELS["cubic-adaptive"]).net.layers
    )
    float32 = kp.KAN([2, 3, 1], basis=kp.BSpline(grid=20))
    assert all(jet.is_uniform_cubic(layer) for layer in float32.layers)


def test_float32_models_cast_to_float64_keep_exactly_uniform_knots():
    net = kp.KAN([2, 5, 1], basis=kp.BSpline(grid=7, grid_range=(-1.3, 0.9))).double()
    assert all(jet.is_uniform_cubic(layer) for layer in net.layers)
    knots = net.layers[0].knots
    assert torch.allclose(knots[:, 3], torch.full_like(knots[:, 3], -1.3), atol=1e-6)  # float32
    x = torch.rand(300, 2, dtype=F64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    adapted = net.update_grid(x)  # adaptive knots are not evened out by a cast
    assert not jet.is_uniform_cubic(adapted.float().double().layers[0])


def test_local_cubic_basis_equals_the_recursion_including_derivatives():
    knots = kp.BSpline(grid=6).initial_knots(2, F64)
    x = torch.linspace(-2.6, 2.6, 500, dtype=F64).reshape(-1, 1).expand(-1, 2)  # past the knots
    u, interval, inv_width = jet.uniform_cubic_local(x.T, knots)
    slots = jet.basis_slots(interval, knots.shape[1] - 4)
    pieces = jet.cubic_pieces(u, 4)
    reference = jet._bspline_derivatives(x, knots, 3, 3)
    for k in range(4):
        values = pieces[k] * inv_width**k
        spares = torch.zeros(2, *slots.shape[1:], dtype=F64)  # slots 0 and size + 1
        dense = torch.cat([spares[:1], reference[k].permute(2, 1, 0) * 0, spares[1:]])
        dense = dense.scatter_add(0, slots, values)[1:-1].permute(2, 1, 0)
        assert torch.allclose(dense, reference[k], rtol=0, atol=1e-12 * 10**k), k


def test_expression_derivatives_switch_the_term_to_autograd():
    model = random_kan(*MODELS["cubic-uniform"])
    problem = kp.Problem(
        "expr",
        domain=kp.Box((-1, 0, 2), (1, 2, 3)),
        fields=["u", "v"],
        equations={"e": lambda s: s.lap(s.u**2)},
        conditions=[kp.Dirichlet("b", on=kp.Box((-1, 0, 2), (1, 2, 3)).boundary, field="u")],
    )
    plan = kp.Plan(stages=(kp.Adam(steps=1),), sampler=kp.Sobol(interior=32, boundary=16))
    trainer = kp.Trainer(problem, model, plan)
    fast_total, _ = trainer.loss()
    oracle = kp.Trainer(
        problem, model, kp.Plan(stages=plan.stages, sampler=plan.sampler, engine="autograd")
    )
    assert trainer.requests["__interior__"].autograd
    expected = float(oracle.loss()[0].detach())
    assert float(fast_total.detach()) == pytest.approx(expected, rel=1e-12)
