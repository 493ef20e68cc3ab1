"""Symbolic laws: the library and vectorised edge fits, snapping, the formula model and its
exports (LaTeX, Python, JSON), attribution and pruning, and the plan's regulariser hook."""

import importlib.util
import math

import numpy as np
import pytest
import sympy
import torch

import kanphys as kp
from kanphys.symbolic import (
    FormulaModel,
    Sparsify,
    SymbolicOptions,
    attribution,
    fit_edges,
    fit_edges_of,
    formula_json,
    formula_of,
    latex,
    load_formula,
    make_library,
    prune,
    python_source,
    snap,
    snap_candidates,
)
from kanphys.symbolic.export import write_formula_files

# (name, a, b, c, d) in the canonical form of each fit, on x in [-1, 2]
TRUE_EDGES = [
    ("x", 1.0, 0.0, 1.7, -0.4),
    ("x^2", 1.0, -0.3, 2.0, 1.0),
    ("x^3", 1.0, 0.2, -0.5, 0.1),
    ("x^4", 1.0, -0.6, 0.8, 0.0),
    ("1/x", 1.0, 2.5, 1.0, 0.3),
    ("1/x^2", 1.0, -3.0, 2.0, 0.0),
    ("sqrt", -1.0, 3.0, 1.5, 0.2),
    ("exp", -1.3, 0.0, 0.7, 0.2),
    ("log", 1.0, 1.7, 2.0, 0.5),
    ("sin", 2.0, 0.5, 1.5, -0.3),
    ("cos", 2.5, 0.3, -1.0, 0.0),
    ("tan", 0.7, -0.2, 1.0, 0.0),
    ("tanh", 3.0, -1.0, 1.0, 0.0),
    ("abs", 1.0, -0.5, 1.2, 0.1),
    ("arctan", 2.0, -1.0, 1.0, 0.5),
    ("arcsin", 0.6, -0.3, 1.0, 0.0),
    ("gaussian", 2.0, -1.0, 1.0, 0.0),
]


@pytest.fixture(scope="module")
def edge_fits():
    library = make_library()
    x = torch.linspace(-1, 2, 201, dtype=torch.float64).repeat(len(TRUE_EDGES), 1)
    y = torch.stack(
        [c * library[n].torch_function(a * x[0] + b) + d for n, a, b, c, d in TRUE_EDGES]
    )
    return fit_edges(x, y, library)


@pytest.mark.parametrize("index", range(len(TRUE_EDGES)), ids=[e[0] for e in TRUE_EDGES])
def test_library_functions_are_recovered_with_their_parameters(edge_fits, index):
    name, a, b, c, d = TRUE_EDGES[index]
    fits = edge_fits[index]
    assert 1 - fits[0].r2 < 1e-12  # the chosen fit is exact (sin and cos may swap)
    fit = next(f for f in fits if f.name == name)
    assert 1 - fit.r2 < 1e-12
    assert [fit.a, fit.b, fit.c, fit.d] == pytest.approx([a, b, c, d], abs=1e-6)


def test_simplest_exact_fit_wins():
    library = make_library()
    x = torch.linspace(-1, 1, 101, dtype=torch.float64).repeat(2, 1)
    y = torch.stack([3 * x[0] + 1, x[0] ** 2])  # cos/exp/tanh nearly fit these too
    fits = fit_edges(x, y, library)
    assert [fits[0][0].name, fits[1][0].name] == ["x", "x^2"]


def test_singular_functions_keep_their_poles_outside_the_samples():
    library = make_library(["1/x", "log", "sqrt", "tan", "arcsin"])
    x = torch.linspace(-1, 1, 101, dtype=torch.float64).reshape(1, -1)
    fits = fit_edges(x, torch.sin(3 * x), library)[0]
    for fit in fits:
        ends = torch.tensor([fit.a * -1 + fit.b, fit.a * 1 + fit.b])
        lo, hi = ends.min().reshape(1), ends.max().reshape(1)
        if math.isfinite(fit.score):
            assert bool(library[fit.name].valid(lo, hi)), fit


def test_fit_rejects_edges_without_range():
    x = torch.zeros(1, 10, dtype=torch.float64)
    with pytest.raises(ValueError, match="span no range"):
        fit_edges(x, x, make_library(["sin"]))


def test_unknown_library_function_is_named():
    with pytest.raises(ValueError, match="'sinc'"):
        make_library(["sin", "sinc"])


def test_snap_candidates_are_simple_numbers_nearby():
    assert sympy.pi in snap_candidates(3.14159265)
    assert sympy.Rational(1, 2) in snap_candidates(0.5000001)
    assert snap_candidates(1e-12)[0] == 0
    assert snap_candidates(0.6) == [sympy.Rational(3, 5)]


def _data_error(x, y):
    def error(expressions):
        model = FormulaModel.from_expressions(expressions, ["x"])
        with torch.no_grad():
            return float((model(x)[:, 0] - y).square().mean().sqrt())

    return error


def test_snap_replaces_constants_only_where_the_error_does_not_grow():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64).reshape(-1, 1)
    X = sympy.Symbol("x", real=True)
    exact, _ = snap([sympy.Float(0.5000000001) * X], _data_error(x, 0.5 * x[:, 0]))
    assert exact == [X / 2]
    kept, records = snap([sympy.Float(0.5012) * X], _data_error(x, 0.5012 * x[:, 0]))
    assert kept == [sympy.Float(0.5012) * X]
    assert records and not any(r["kept"] for r in records)


@pytest.fixture
def formula():
    x, y = sympy.symbols("x y", real=True)
    expression = 0.3 * sympy.exp(sympy.sin(sympy.pi * x) + y**2) - 1.25 * sympy.atan(2 * x * y)
    return FormulaModel.from_expressions(
        [expression, sympy.sqrt(1 + x**2) * sympy.tanh(y)], ["x", "y"], outputs=["f", "g"]
    )


def test_formula_py_equals_lambdify_equals_the_formula_model(formula, tmp_path):
    write_formula_files(tmp_path, formula)
    spec = importlib.util.spec_from_file_location("formula_module", tmp_path / "formula.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    points = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    x, y = points[:, 0], points[:, 1]
    with torch.no_grad():
        model = formula(torch.as_tensor(points)).numpy()
    symbols = sympy.symbols("x y", real=True)
    reference = [sympy.lambdify(symbols, e, "numpy")(x, y) for e in formula.sympy()]
    numpy_values = module.formula(x, y)
    torch_values = module.formula_torch(torch.as_tensor(x), torch.as_tensor(y))
    for k in range(2):
        np.testing.assert_allclose(model[:, k], reference[k], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(numpy_values[k], reference[k], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(torch_values[k].numpy(), reference[k], rtol=1e-14, atol=1e-15)


def test_formula_json_round_trip(formula, tmp_path):
    write_formula_files(tmp_path, formula)
    back = load_formula(tmp_path / "formula.json")
    points = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (32, 2)))
    with torch.no_grad():
        torch.testing.assert_close(back(points), formula(points), rtol=1e-15, atol=1e-15)
    content = formula_json(formula)
    parsed = sympy.sympify(content["expression"])
    assert {str(s) for s in parsed.free_symbols} == {"x", "y"}
    assert latex(formula).splitlines()[1].startswith("g = ")


def test_formula_model_differentiates_like_the_closed_form():
    x = sympy.Symbol("x", real=True)
    model = FormulaModel.from_expressions([sympy.sin(sympy.pi * x)], ["x"])
    points = torch.linspace(-1, 1, 11, dtype=torch.float64).reshape(-1, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(points).sum(), points)
    torch.testing.assert_close(grad, math.pi * torch.cos(math.pi * points.detach()))


def test_formula_model_rejects_unknown_symbols_and_wrong_shapes():
    x, z = sympy.symbols("x z")
    with pytest.raises(ValueError, match="unknown symbols"):
        FormulaModel([x + z], ["x"])
    with pytest.raises(ValueError, match=r"shape \(N, 1\)"):
        FormulaModel([x], ["x"])(torch.zeros(3, 2, dtype=torch.float64))


def _surrogate(widths, seed=0):
    net = kp.KAN(
        widths,
        kp.BSpline(grid=5),
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )
    return kp.Surrogate(net, [-1.0] * widths[0], [1.0] * widths[0])


def test_prune_removes_silent_nodes_and_folds_constant_edges():
    model = _surrogate([2, 3, 1])
    first, second = model.net.layers
    with torch.no_grad():
        second.coef[2].zero_()  # hidden node 2 no longer reaches the output
        second.scale_base[2] = 0
        first.coef[1, :, 0] = 0.7  # edge y -> node 0 becomes the constant 0.7 * w_s
        first.scale_base[1, 0] = 0
    points = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (256, 2)))
    scores = attribution(model, points)
    assert float(scores.nodes[1][2]) == 0.0
    assert float(scores.edges[0][1, 0]) < 1e-12
    pruned = prune(model, points, threshold=1e-2)
    assert pruned.net.widths == [2, 2, 1]
    with torch.no_grad():
        assert float(pruned.net.layers[0].edge_values(points)[:, 1, 0].abs().max()) == 0.0
        torch.testing.assert_close(pruned(points), model(points), rtol=1e-12, atol=1e-12)


def test_sparsify_penalty_is_l1_plus_entropy_of_edge_magnitudes():
    model = _surrogate([2, 2, 1])
    points = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (64, 2)))
    expected, z = 0.0, points
    for layer in model.net.layers:
        magnitude = layer.edge_values(z).abs().mean(0)
        share = magnitude / magnitude.sum()
        expected += magnitude.sum() - 3.0 * (share * torch.log(share)).sum()
        z = layer(z)
    value = Sparsify(weight=0.5, l1=1.0, entropy=3.0).penalty(model, points)
    torch.testing.assert_close(value, 0.5 * expected, rtol=1e-9, atol=0)


def test_plan_regularizer_adds_the_penalty_to_the_training_loss(poisson1d, make_surrogate):
    sparsify = Sparsify(weight=0.1)
    plan = kp.Plan(
        stages=(kp.Adam(steps=1),), sampler=kp.Sobol(interior=16, boundary=2), regularize=sparsify
    )
    model = make_surrogate(poisson1d, dtype=torch.float64)
    trainer = kp.Trainer(poisson1d, model, plan)
    total, terms = trainer.loss_and_backward()
    points = trainer.batch()["__interior__"].points
    penalty = float(sparsify.penalty(trainer.model, points).detach())
    assert penalty > 0
    assert total == pytest.approx(sum(terms.values()) + penalty, rel=1e-12)
    assert plan.to_dict()["regularize"]["type"] == "Sparsify"


def test_python_export_refuses_numeric_edges():
    x = sympy.Symbol("x")
    model = FormulaModel([sympy.Function("phi_0_0_0")(x)], ["x"], numeric={"phi_0_0_0": torch.sin})
    with pytest.raises(ValueError, match="phi_0_0_0"):
        python_source(model)
    with torch.no_grad():
        values = model(torch.ones(2, 1, dtype=torch.float64))
    torch.testing.assert_close(values, torch.sin(torch.ones(2, 1, dtype=torch.float64)))


def test_edges_can_be_fixed_by_hand_or_left_numeric():
    model = _surrogate([1, 2, 1], seed=3)
    points = torch.linspace(-1, 1, 64, dtype=torch.float64).reshape(-1, 1)
    fixed = {(0, 0, 0): "x^3", (0, 0, 1): "0", (1, 0, 0): "numeric"}
    options = SymbolicOptions(fixed=fixed, tune_steps=0, snap=False, simplify=False)
    reports = {r.edge: r.chosen.name for r in fit_edges_of(model, points, options)}
    assert reports == {
        (0, 0, 0): "x^3",
        (0, 0, 1): "0",
        (1, 0, 0): "numeric",
        (1, 1, 0): reports[(1, 1, 0)],
    }

    def loss(candidate):
        return (candidate(points) - model(points).detach()).square().mean()

    result = formula_of(model, points, loss, inputs=("x",), outputs=("u",), options=options)
    assert "phi_1_0_0" in str(result.expressions[0])
    with torch.no_grad():
        assert torch.isfinite(result.formula(points)).all()
    with pytest.raises(ValueError, match=r"\(0, 5, 0\) does not exist"):
        fit_edges_of(model, points, SymbolicOptions(fixed={(0, 5, 0): "sin"}))
