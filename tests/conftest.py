"""Shared helpers: closed-form models, a tiny 1D Poisson problem, tiny plans and problem files.

Everything here is small on purpose: the whole suite has to run in a few minutes on two cores.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import kanphys as kp
from kanphys import lap

PI = math.pi


class ClosedForm(nn.Module):
    """A model whose fields are a closed-form function of the points.

    ``function`` maps points ``(N, d)`` to ``(N, m)`` (or ``(N,)`` for one field). The dummy
    parameter makes it an ordinary trainable module with a dtype, like the real surrogates.
    """

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor], dtype=torch.float64):
        super().__init__()
        self.function = function
        self.dummy = nn.Parameter(torch.zeros((), dtype=dtype))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        values = self.function(points)
        if values.ndim == 1:
            values = values.unsqueeze(1)
        return values + 0 * self.dummy


def make_poisson1d() -> kp.Problem:
    """-u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0; exact u = sin(pi x)."""
    line = kp.Interval(0.0, 1.0)
    return kp.Problem(
        "poisson1d",
        domain=line,
        fields=["u"],
        equations={"poisson": lambda s: -lap(s.u) - PI**2 * torch.sin(PI * s.x)},
        conditions=[kp.Dirichlet("ends", on=line.boundary, field="u", value=0.0)],
        exact={"u": lambda p: torch.sin(PI * p[:, 0])},
    )


def _make_surrogate(
    problem: kp.Problem,
    *,
    hidden: int = 3,
    grid: int = 5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    basis=None,
) -> kp.Surrogate:
    """A seeded ``[d, hidden, m]`` KAN surrogate over the problem's bounding box."""
    generator = torch.Generator().manual_seed(seed)
    net = kp.KAN(
        [problem.domain.dim, hidden, len(problem.fields)],
        basis=basis or kp.BSpline(grid=grid),
        generator=generator,
        dtype=dtype,
    )
    lower, upper = problem.domain.bounds
    return kp.Surrogate(net, list(lower), list(upper), problem.initial_parameters())


def _make_plan(**changes) -> kp.Plan:
    """Adam 20 steps, ExtendGrid(10), L-BFGS 10 steps on 32 points, checkpoint every step."""
    options = {
        "stages": (kp.Adam(steps=20, lr=1e-2), kp.ExtendGrid(grid=10), kp.LBFGS(steps=10)),
        "sampler": kp.Sobol(interior=32, boundary=2),
        "weights": {"ends": 10.0},
        "checkpoint_every": 1,
    }
    return kp.Plan(**{**options, **changes})


# A problem file for the command-line tests: the 1D Poisson problem with a small default plan.
# Its equation can hold training at the first evaluation (while a file ``hold`` exists beside
# it, announcing this with a file ``waiting``), so a test can send a signal at a known step.
PROBLEM_FILE_SOURCE = textwrap.dedent(
    '''
    """Test problem: -u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0."""

    import pathlib
    import time

    import torch

    import kanphys as kp
    from kanphys import lap

    HERE = pathlib.Path(__file__).parent
    line = kp.Interval(0.0, 1.0)


    def hold_while_asked():
        hold = HERE / "hold"
        if hold.exists():
            (HERE / "waiting").touch()
            deadline = time.monotonic() + 60
            while hold.exists() and time.monotonic() < deadline:
                time.sleep(0.01)


    def poisson(s):
        hold_while_asked()
        return -lap(s.u) - torch.pi**2 * torch.sin(torch.pi * s.x)


    problem = kp.Problem(
        "poisson1d",
        domain=line,
        fields=["u"],
        equations={"poisson": poisson},
        conditions=[kp.Dirichlet("ends", on=line.boundary, field="u", value=0.0)],
        exact={"u": lambda p: torch.sin(torch.pi * p[:, 0])},
    )


    def model(grid: int = 5, width: int = 4):
        return kp.KAN([1, width, 1], basis=kp.BSpline(grid=grid))


    plan = kp.Plan(
        stages=[kp.Adam(steps=12, lr=1e-2), kp.LBFGS(steps=3)],
        sampler=kp.Sobol(interior=32, boundary=2),
        checkpoint_every=1,
    )
    '''
)


@pytest.fixture(scope="session")
def closed_form() -> type[ClosedForm]:
    """The :class:`ClosedForm` wrapper: ``closed_form(lambda p: p[:, 0] ** 2)``."""
    return ClosedForm


@pytest.fixture(scope="session")
def poisson1d() -> kp.Problem:
    return make_poisson1d()


@pytest.fixture(scope="session")
def make_surrogate() -> Callable[..., kp.Surrogate]:
    """``make_surrogate(problem, hidden=3, grid=5, seed=0, dtype=torch.float32, basis=None)``."""
    return _make_surrogate


@pytest.fixture(scope="session")
def make_plan() -> Callable[..., kp.Plan]:
    """``make_plan(**changes)``: the tiny plan (Adam 20, ExtendGrid 10, L-BFGS 10), changed."""
    return _make_plan


@pytest.fixture
def problem_file(tmp_path: Path) -> Path:
    """The 1D Poisson problem file, written into its own folder under ``tmp_path``."""
    folder = tmp_path / "problem"
    folder.mkdir()
    path = folder / "poisson1d.py"
    path.write_text(PROBLEM_FILE_SOURCE)
    return path
