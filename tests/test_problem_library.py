"""The problem library in problems/: every problem is there, documented, trains in quick mode,
and its reference solution satisfies its equations (closed forms are checked by autograd in
tests/test_problem_files.py; here the inverse problem at its true coefficient and the
computed references to their solvers' accuracy)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kanphys.reference import allen_cahn, cavity
from kanphys.runner import build_model, load_problem_file
from kanphys.train.batch import sample_points, to_tensors
from kanphys.train.loss import residuals
from kanphys.train.plan import Sampler
from kanphys.train.trainer import Trainer

PROBLEMS = Path(__file__).resolve().parents[1] / "problems"
LIBRARY = (
    "poisson2d",
    "poisson2d_exact",
    "poisson_holes",
    "helmholtz2d",
    "diffusion1d",
    "wave1d",
    "advection",
    "burgers",
    "allen_cahn",
    "kovasznay",
    "cavity",
    "plate_hole",
    "inverse_diffusion",
)
F64 = torch.float64


def load(name):
    return load_problem_file(PROBLEMS / f"{name}.py")


# the results table's twelve problems: poisson2d_exact is the Poisson row, poisson2d the plain
# reference example of the same problem
TABLE_NAMES = tuple(n for n in LIBRARY if n != "poisson2d")


def test_the_library_has_all_twelve_problems():
    assert {p.stem for p in PROBLEMS.glob("*.py")} >= set(LIBRARY)
    assert len(TABLE_NAMES) == 12


@pytest.mark.parametrize("name", LIBRARY)
def test_problem_file_documents_equations_reference_and_target(name):
    source = load(name)
    text = source.path.read_text()
    docstring = text.split('"""')[1]
    assert f"Run: kanphys run problems/{name}.py" in docstring
    assert "Target" in docstring or "Expected" in docstring
    assert source.problem.name == name
    assert set(source.problem.exact) == set(source.problem.fields)


def quick_train(name: str):
    """Train the problem file's model by its quick plan in memory (no run directory)."""
    source = load(name)
    plan = source.quick_plan or source.plan.quick()
    model = build_model(source.problem, source.model, {}, seed=0, dtype=torch.float32, device="cpu")
    trainer = Trainer(source.problem, model, plan, seed=0)
    trainer.fit()
    return source.problem, trainer


@pytest.mark.parametrize("name", [n for n in LIBRARY if n not in ("poisson2d",)])
def test_problem_trains_in_quick_mode(name):
    problem, trainer = quick_train(name)
    losses = [row[3] for row in trainer.rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    points = problem.domain.sample_interior(64, seed=1)
    x = torch.as_tensor(points, dtype=trainer.model.dtype)
    with torch.no_grad():
        values = trainer.model(x)
    assert values.shape == (64, len(problem.fields)) and torch.isfinite(values).all()
    for i, field in enumerate(problem.fields):
        exact = problem.exact[field](x.to(F64)).reshape(-1)
        assert torch.isfinite(exact).all()
        assert values[:, i].shape == exact.shape


class Exact(torch.nn.Module):
    """The problem's exact solution as a model, with given parameter values."""

    def __init__(self, problem, parameters):
        super().__init__()
        self.problem = problem
        self.params = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(torch.tensor(v, dtype=F64)) for k, v in parameters.items()}
        )

    def forward(self, points):
        columns = [self.problem.exact[f](points).reshape(-1, 1) for f in self.problem.fields]
        return torch.cat(columns, dim=1)


def exact_residuals(problem, parameters):
    sampler = Sampler(method="sobol", interior=512, boundary=128, initial=128)
    batch = to_tensors(sample_points(problem, sampler, seed=0, epoch=0), F64, "cpu")
    return residuals(problem, Exact(problem, parameters), batch)


def test_inverse_diffusion_residuals_vanish_at_the_true_coefficient_only():
    source = load("inverse_diffusion")
    problem = source.problem
    true = exact_residuals(problem, {"D": 0.25})
    for name in ("diffusion", "ends", "initial"):
        assert float(true[name].detach().abs().max()) < 1e-10, name
    wrong = exact_residuals(problem, {"D": 0.3})
    assert float(wrong["diffusion"].detach().abs().max()) > 0.1
    # the observations carry 1 % noise (of the solution's RMS value), no more
    data = problem.conditions[-1]
    noise = float(true["observations"].detach().square().mean().sqrt())
    rms = float(np.sqrt(np.mean(data.values**2)))
    assert data.points.shape == (1000, 2)
    assert 0.008 * rms < noise < 0.012 * rms


def test_allen_cahn_reference_satisfies_the_equation():
    """Residual of the stored reference: spectral u_xx, centred differences in time."""
    solution = allen_cahn(1024, 5e-4, 1001)
    u, x = solution.u, solution.x
    k = np.pi * np.fft.rfftfreq(len(x), d=1.0 / len(x))
    uxx = np.fft.irfft(-(k**2)[:, None] * np.fft.rfft(u, axis=0), n=len(x), axis=0)
    ut = (u[:, 2:] - u[:, :-2]) / (2 * (solution.t[1] - solution.t[0]))
    inner = u[:, 1:-1]
    residual = ut - 1e-4 * uxx[:, 1:-1] + 5 * inner**3 - 5 * inner
    scale = np.abs(5 * inner**3 - 5 * inner).max()
    # away from the first steps (the initial slope kink) the residual is at the time
    # differencing error
    assert np.sqrt(np.mean(residual[:, 20:] ** 2)) < 1e-4 * scale
    source = load("allen_cahn")
    points = torch.tensor([[x[100], solution.t[500]], [x[700], solution.t[900]]], dtype=F64)
    expected = [u[100, 500], u[700, 900]]
    assert np.allclose(source.problem.exact["u"](points).numpy(), expected, atol=1e-6)


def test_cavity_reference_satisfies_navier_stokes_away_from_the_lid_corners():
    solution = cavity(100.0)
    u, v, p, h = solution.u, solution.v, solution.p, solution.x[1] - solution.x[0]

    def dx(f):
        return (f[2:, 1:-1] - f[:-2, 1:-1]) / (2 * h)

    def dy(f):
        return (f[1:-1, 2:] - f[1:-1, :-2]) / (2 * h)

    def lap(f):
        return (f[2:, 1:-1] + f[:-2, 1:-1] + f[1:-1, 2:] + f[1:-1, :-2] - 4 * f[1:-1, 1:-1]) / h**2

    uc, vc = u[1:-1, 1:-1], v[1:-1, 1:-1]
    momentum_x = uc * dx(u) + vc * dy(u) + dx(p) - lap(u) / 100.0
    momentum_y = uc * dx(v) + vc * dy(v) + dy(p) - lap(v) / 100.0
    away = solution.x[1:-1] < 0.85  # the lid corners are singular
    scale = np.abs(uc * dx(u)).max()
    assert np.abs(dx(u) + dy(v)).max() < 1e-8
    for residual in (momentum_x, momentum_y):
        assert np.sqrt(np.mean(residual[:, away] ** 2)) < 2e-2 * scale
    problem = load("cavity").problem
    lid = torch.tensor([[0.5, 1.0], [0.5, 0.5]], dtype=F64)
    assert problem.exact["u"](lid)[0] == pytest.approx(1.0)
    assert problem.exact["u"](lid)[1] == pytest.approx(float(u[64, 64]))


# ------------------------------------------------------------------ kanphys bench problems
def test_bench_table_lists_every_library_problem():
    from kanphys.bench.problems import PROBLEMS as TABLE

    assert [e.name for e in TABLE] == list(TABLE_NAMES)


def test_bench_problems_quick_writes_records_and_keeps_other_problems(tmp_path):
    from kanphys.cli import main

    path = tmp_path / "problems.json"
    old = {
        "problem": "burgers",
        "model": "kan",
        "rel_l2": {"u": 0.1},
        "measured": {"u": 0.1},
        "wall_time_s": 1.0,
        "n_params": 10,
        "steps": 1,
        "anchor": "-",
        "target": {"u": 5e-3},
        "met": False,
    }
    path.write_text(json.dumps({"settings": {}, "records": [old]}))
    argv = ["bench", "problems", "--only", "diffusion1d", "--quick", "--json", str(path)]
    assert main(argv) == 0
    records = json.loads(path.read_text())["records"]
    assert [(r["problem"], r["model"]) for r in records] == [
        ("diffusion1d", "kan"),
        ("diffusion1d", "mlp"),
        ("burgers", "kan"),
    ]
    for record in records[:2]:
        assert set(record) >= {
            "problem",
            "model",
            "rel_l2",
            "wall_time_s",
            "n_params",
            "steps",
            "anchor",
            "target",
        }
        assert 0 < record["rel_l2"]["u"] < 10 and record["target"] == {"u": 5e-5}
        assert record["met"] is False and record["steps"] > 0
    table = path.with_suffix(".md").read_text()
    assert "| diffusion1d | kan |" in table and "Not run:" in table and "cavity" in table


def test_bench_problems_names_an_unknown_problem():
    from kanphys.bench.problems import benchmark

    with pytest.raises(ValueError, match="nonsense"):
        benchmark(["nonsense"])


def test_bench_budget_stops_training_after_the_step_that_crosses_it():
    from kanphys.bench.problems import train_with_budget

    source = load("diffusion1d")
    model = build_model(source.problem, source.model, {}, seed=0, dtype=F64, device="cpu")
    trainer = Trainer(source.problem, model, source.plan.quick(), seed=0)
    assert train_with_budget(trainer, 0.0) is True
    assert trainer.position.global_step == 1
