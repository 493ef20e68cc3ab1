"""Every problem file in problems/: it loads, its model fits the problem, and its exact solution
makes every equation and condition vanish (float64)."""

from pathlib import Path

import pytest
import torch

from kanphys.problem import Data
from kanphys.runner import load_problem_file, n_inputs
from kanphys.train.batch import INTERIOR, sample_points, to_tensors
from kanphys.train.loss import residuals
from kanphys.train.plan import Sampler

PROBLEM_FILES = sorted((Path(__file__).resolve().parents[1] / "problems").glob("*.py"))
# references computed on a grid and interpolated: their residual is checked, to the solver's
# accuracy, in tests/test_problem_library.py
COMPUTED_REFERENCES = {"allen_cahn", "cavity"}
F64 = torch.float64


def test_the_problem_folder_has_problem_files():
    assert len(PROBLEM_FILES) >= 2


@pytest.fixture(params=PROBLEM_FILES, ids=[p.stem for p in PROBLEM_FILES])
def source(request):
    return load_problem_file(request.param)


class ExactSolution(torch.nn.Module):
    """Returns the problem's exact solution for every field (and carries its parameters)."""

    def __init__(self, problem, parameters):
        super().__init__()
        self.problem = problem
        self.params = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(torch.tensor(v, dtype=F64)) for k, v in parameters.items()}
        )
        self.dummy = torch.nn.Parameter(torch.zeros((), dtype=F64))

    def forward(self, points):
        columns = [self.problem.exact[f](points).reshape(-1, 1) for f in self.problem.fields]
        return torch.cat(columns, dim=1) + 0 * self.dummy


class Zero(ExactSolution):
    def forward(self, points):
        return torch.zeros(points.shape[0], len(self.problem.fields), dtype=F64) + 0 * self.dummy


def test_problem_file_loads_with_a_matching_model_and_plan(source):
    problem = source.problem
    assert set(problem.exact) == set(problem.fields), "every field needs an exact solution"
    if source.model is not None:
        net = source.model()
        assert net.widths[0] == n_inputs(problem)
        assert net.widths[-1] == len(problem.fields)
    for plan in (source.plan, source.quick_plan or source.plan.quick()):
        assert set(plan.weights) <= set(problem.terms)
        assert plan.total_steps > 0


def test_exact_solution_has_zero_residual_everywhere(source):
    problem = source.problem
    if problem.parameters:
        pytest.skip("inverse problem: the residual vanishes only at the unknown true parameters")
    if problem.name in COMPUTED_REFERENCES:
        pytest.skip("computed reference: checked in tests/test_problem_library.py")
    parameters = problem.initial_parameters()
    sampler = Sampler(method="sobol", interior=512, boundary=128, initial=128)
    batch = to_tensors(sample_points(problem, sampler, seed=0, epoch=0), F64, "cpu")
    exact = residuals(problem, ExactSolution(problem, parameters), batch)
    # the scale of each term: its residual for u = 0 (the forcing) or the solution's size
    forcing = residuals(problem, Zero(problem, parameters), batch)
    size = max(float(problem.exact[f](batch[INTERIOR].points).abs().max()) for f in problem.fields)
    assert set(exact) == set(problem.terms)
    for name, value in exact.items():
        scale = max(1.0, size, float(forcing[name].abs().max().detach()))
        worst = float(value.abs().max().detach())
        assert worst < 1e-8 * scale, f"{name}: max |residual| {worst:.3g} (scale {scale:.3g})"


def test_conditions_are_sampled_on_their_regions(source):
    """The residual check above is only meaningful if every condition got real points."""
    problem = source.problem
    batch = sample_points(problem, Sampler(interior=64, boundary=16, initial=16), seed=0, epoch=0)
    assert problem.domain.contains(batch[INTERIOR].points, tol=1e-9).all()
    for condition in problem.conditions:
        points = batch[condition.name].points
        assert len(points) > 0
        if not isinstance(condition, Data):
            assert problem.domain.contains(points, tol=1e-9).all()
