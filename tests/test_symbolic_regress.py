"""Symbolic regression end to end (exp(sin(pi x) + y^2) comes back exactly) and the
``kanphys regress`` / ``kanphys symbolic`` commands and the files they write."""

import importlib.util
import json

import numpy as np
import sympy
import torch

from kanphys.cli import main
from kanphys.symbolic import RegressOptions, load_formula, regress

FILES = ("formula.tex", "formula.py", "formula.json", "symbolic.json", "symbolic_edges.png")


def test_regression_recovers_exp_of_sin_plus_square_exactly():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1000, 2))
    y = np.exp(np.sin(np.pi * x[:, 0]) + x[:, 1] ** 2)
    options = RegressOptions(hidden=(1,), sparsify=None, warmup=200, grids=(10,), lbfgs_steps=50)
    found = regress(x, y, ("x", "y"), "f", options)
    X, Y = sympy.symbols("x y", real=True)
    assert (
        sympy.simplify(found.result.expressions[0] - sympy.exp(sympy.sin(sympy.pi * X) + Y**2)) == 0
    )
    assert found.metrics["formula"]["rmse"] <= 1e-6
    assert found.metrics["formula"]["rmse"] < found.metrics["network"]["rmse"]


def _write_csv(path, x, y, f):
    table = np.column_stack([x, y, f])
    np.savetxt(path, table, delimiter=",", header="x,y,f", comments="", fmt="%.17g")


def test_regress_command_writes_the_formula_files(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (2, 300))
    _write_csv(tmp_path / "data.csv", x, y, 2 * x + y**2)
    out = tmp_path / "out"
    argv = ["regress", str(tmp_path / "data.csv"), "--inputs", "x,y", "--output", "f"]
    argv += ["--out", str(out), "--hidden", "1", "--sparsity", "0", "--warmup", "100"]
    assert main([*argv, "--grids", "10"]) == 0
    assert all((out / name).is_file() for name in FILES)
    content = json.loads((out / "formula.json").read_text())
    X, Y = sympy.symbols("x y")
    assert sympy.simplify(sympy.sympify(content["expression"]) - (2 * X + Y**2)) == 0
    report = json.loads((out / "symbolic.json").read_text())
    assert {"edges", "verification", "snapping"} <= set(report)
    assert report["verification"]["formula"]["rmse"] < 1e-8
    spec = importlib.util.spec_from_file_location("regressed", out / "formula.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    np.testing.assert_allclose(module.formula(x, y), 2 * x + y**2, rtol=1e-12, atol=1e-12)


def test_regress_command_names_a_missing_column(tmp_path, capsys):
    _write_csv(tmp_path / "data.csv", [0.0, 1.0], [1.0, 2.0], [3.0, 4.0])
    argv = ["regress", str(tmp_path / "data.csv"), "--inputs", "x,z", "--output", "f"]
    assert main(argv) == 2
    assert "'z'" in capsys.readouterr().err


POISSON1D = """
import torch

import kanphys as kp
from kanphys import lap

line = kp.Interval(0.0, 1.0)
problem = kp.Problem(
    "poisson1d",
    domain=line,
    fields=["u"],
    equations={"poisson": lambda s: -lap(s.u) - torch.pi**2 * torch.sin(torch.pi * s.x)},
    conditions=[kp.Dirichlet("ends", on=line.boundary, field="u", value=0.0)],
    exact={"u": lambda p: torch.sin(torch.pi * p[:, 0])},
)


def model():
    return kp.KAN([1, 3, 1], basis=kp.BSpline(grid=5))


plan = kp.Plan(
    stages=[kp.LBFGS(steps=200, dtype="float64"), kp.ExtendGrid(grid=10), kp.LBFGS(steps=200)],
    sampler=kp.Sobol(interior=128, boundary=2),
    weights={"ends": 100.0},
    regularize=kp.Sparsify(weight=1e-4),
)
"""


def test_symbolic_command_recovers_the_solution_of_a_pde_from_its_run(tmp_path):
    """-u'' = pi^2 sin(pi x), u(0) = u(1) = 0, trained without solution data: the formula is
    exactly sin(pi x), verified on fresh points next to the network."""
    (tmp_path / "poisson1d.py").write_text(POISSON1D)
    run = tmp_path / "run"
    argv = ["run", str(tmp_path / "poisson1d.py"), "--out", str(run), "--resolution", "11"]
    assert main([*argv, "--no-progress"]) == 0
    assert main(["symbolic", str(run), "--export", "vtu"]) == 0
    assert all((run / name).is_file() for name in FILES)
    content = json.loads((run / "formula.json").read_text())
    x = sympy.Symbol("x")
    assert sympy.simplify(sympy.sympify(content["expression"]) - sympy.sin(sympy.pi * x)) == 0
    report = json.loads((run / "symbolic.json").read_text())
    network, formula = report["verification"]["network"], report["verification"]["formula"]
    assert {"poisson", "ends"} <= set(formula["residual_rms"])
    assert formula["residual_rms"]["poisson"] < 1e-10 < network["residual_rms"]["poisson"]
    assert formula["rel_l2"]["u"] < 1e-12 < network["rel_l2"]["u"]
    assert (run / "export" / "formula.vtu").is_file()
    points = torch.linspace(0, 1, 5, dtype=torch.float64).reshape(-1, 1)
    with torch.no_grad():
        values = load_formula(run)(points)[:, 0]
    torch.testing.assert_close(values, torch.sin(torch.pi * points[:, 0]), rtol=0, atol=1e-15)
