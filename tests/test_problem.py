"""Declaring problems: every inconsistency is refused naming its culprit; residual failures are
reported under the equation's name; printing a problem shows what was declared."""

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys import ProblemError, dn, lap

SQUARE = kp.Rectangle((0.0, 0.0), (1.0, 1.0))
HEAT_DOMAIN = kp.Interval(0.0, 1.0) * kp.TimeInterval(0.0, 1.0)


def poisson(s):
    return -lap(s.u) - 1.0


def declare(**changes):
    """The unit-square Poisson problem with some declaration changed."""
    options = {
        "name": "square",
        "domain": SQUARE,
        "fields": ["u"],
        "equations": {"poisson": poisson},
        "conditions": [kp.Dirichlet("wall", on=SQUARE.boundary, field="u")],
    }
    return kp.Problem(**{**options, **changes})


def test_a_consistent_declaration_is_accepted():
    problem = declare(exact={"u": lambda p: p[:, 0]})
    assert problem.fields == ("u",)
    assert problem.coordinates == ("x", "y")
    assert problem.terms == ("poisson", "wall")
    assert problem.time_index is None


@pytest.mark.parametrize(
    ("changes", "culprit"),
    [
        ({"conditions": [kp.Dirichlet("wall", on=SQUARE.boundary, field="w")]}, "'w'"),
        ({"conditions": [kp.Neumann("flux", on=SQUARE.part("left"), field="v")]}, "'v'"),
        ({"fields": ["u", "u"]}, "field name 'u'"),
        ({"fields": ["u", "x"]}, "field name 'x'"),
        ({"fields": ["y"]}, "field name 'y'"),
        ({"fields": ["lap"]}, "field name 'lap'"),
        ({"fields": ["u", "not-a-name"]}, "'not-a-name'"),
        ({"fields": ["u", "lambda"]}, "'lambda'"),
        ({"fields": []}, "no fields"),
        ({"equations": {"wall": poisson}}, "condition name 'wall'"),
        ({"equations": {"poisson": 3.0}}, "equation 'poisson'"),
        ({"equations": {}, "conditions": []}, "no equations and no conditions"),
        ({"parameters": [kp.Parameter("u", init=1.0)]}, "parameter name 'u'"),
        (
            {"parameters": [kp.Parameter("k", init=1.0), kp.Parameter("k", init=2.0)]},
            "parameter name 'k'",
        ),
        ({"exact": {"v": lambda p: p[:, 0]}}, "'v'"),
        ({"exact": {"u": 1.0}}, "exact solution of 'u'"),
        ({"domain": "unit square"}, "Domain"),
    ],
    ids=[
        "unknown-field-dirichlet",
        "unknown-field-neumann",
        "duplicate-field",
        "field-is-coordinate-x",
        "field-is-coordinate-y",
        "field-is-reserved",
        "field-not-identifier",
        "field-is-keyword",
        "no-fields",
        "equation-and-condition-share-name",
        "equation-not-callable",
        "nothing-to-solve",
        "parameter-is-field",
        "duplicate-parameter",
        "exact-for-unknown-field",
        "exact-not-callable",
        "domain-not-a-domain",
    ],
)
def test_inconsistent_declarations_raise_naming_the_culprit(changes, culprit):
    with pytest.raises(ProblemError, match=culprit):
        declare(**changes)


def test_problem_error_is_a_value_error():
    assert issubclass(ProblemError, ValueError)


def test_condition_on_a_side_of_another_rectangle_is_refused():
    other = kp.Rectangle((0.0, 0.0), (2.0, 2.0))
    condition = kp.Dirichlet("far_wall", on=other.part("right"), field="u")
    with pytest.raises(ProblemError, match=r"'far_wall'.*outside the domain"):
        declare(conditions=[condition])


def test_condition_on_a_region_of_another_dimension_is_refused():
    condition = kp.Dirichlet("ends", on=kp.Interval(0.0, 1.0).boundary, field="u")
    with pytest.raises(ProblemError, match=r"'ends'.*1-D.*2-D"):
        declare(conditions=[condition])


def test_condition_on_a_boundary_part_of_the_same_domain_is_accepted():
    condition = kp.Neumann("flux", on=SQUARE.part("left"), field="u", value=1.0)
    assert declare(conditions=[condition]).terms == ("poisson", "flux")


def test_parameter_without_initial_value_is_refused_naming_it():
    with pytest.raises(ProblemError, match="'kappa'"):
        kp.Parameter("kappa")


def test_initial_condition_on_a_space_only_domain_is_refused():
    with pytest.raises(ProblemError, match=r"'start'.*time-dependent"):
        declare(conditions=[kp.Initial("start", field="u", value=0.0)])


def test_initial_condition_defaults_to_the_initial_slice():
    problem = kp.Problem(
        "heat",
        domain=HEAT_DOMAIN,
        equations={"heat": lambda s: kp.dt(s.u) - lap(s.u)},
        conditions=[kp.Initial("start", field="u", value=1.0)],
    )
    assert problem.time_index == 1
    assert problem.coordinates == ("x", "t")


@pytest.mark.parametrize(
    ("points", "values", "culprit"),
    [
        (np.array([[0.5, 0.5], [2.0, 0.5]]), np.zeros(2), "'probe'.*outside"),
        (np.array([[0.5, 0.5], [0.2, 0.5]]), np.zeros((2, 2)), "'probe'"),
        (np.array([0.5, 0.5, 0.5]), np.zeros(3), "'probe'"),
    ],
    ids=["outside", "too-many-columns", "points-not-2d"],
)
def test_bad_data_is_refused_naming_the_condition(points, values, culprit):
    with pytest.raises(ProblemError, match=culprit):
        declare(conditions=[kp.Data("probe", points=points, values=values)])


def test_data_with_fewer_values_than_points_is_refused_naming_the_condition():
    points = np.array([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]])
    with pytest.raises(ProblemError, match="'probe'"):
        kp.Data("probe", points=points, values=np.zeros(2))


# ---------------------------------------------------------------- failures during training
def train_one_step(problem):
    lower, upper = problem.domain.bounds
    net = kp.KAN([2, 3, 1], generator=torch.Generator().manual_seed(0))
    model = kp.Surrogate(net, list(lower), list(upper))
    plan = kp.Plan(stages=(kp.Adam(steps=5),), sampler=kp.Sobol(interior=16, boundary=8))
    steps = []
    trainer = kp.Trainer(problem, model, plan)
    try:
        trainer.fit(callback=lambda t: steps.append(t.position.global_step))
    finally:
        assert steps == []  # it fails at the first step, before any step is recorded


def test_residual_of_the_wrong_shape_fails_at_the_first_step_naming_the_equation():
    problem = declare(equations={"poisson": lambda s: -lap(s.u) - s.x[:, 0]})  # (N,1) - (N,)
    with pytest.raises(ProblemError, match=r"equation 'poisson'.*\(16, 16\).*broadcasts"):
        train_one_step(problem)


def test_condition_value_of_the_wrong_shape_fails_naming_the_condition():
    wall = kp.Dirichlet("wall", on=SQUARE.boundary, field="u", value=lambda p: p)  # (N, 2)
    with pytest.raises(ProblemError, match=r"condition 'wall'.*\(8, 2\)"):
        train_one_step(declare(conditions=[wall]))


def test_residual_asking_for_an_unknown_field_is_reported_with_the_equation_name():
    problem = declare(equations={"poisson": lambda s: -lap(s.w) - 1.0})
    with pytest.raises(ProblemError, match=r"equation 'poisson' failed: AttributeError.*'w'"):
        train_one_step(problem)


def test_failing_condition_residual_is_reported_with_the_condition_name():
    flux = kp.Condition("flux", on=SQUARE.part("top"), residual=lambda s: dn(s.u) - s.missing)
    with pytest.raises(ProblemError, match=r"condition 'flux' failed: AttributeError"):
        train_one_step(declare(conditions=[flux]))


def test_residual_returning_a_number_is_refused_naming_the_equation():
    problem = declare(equations={"poisson": lambda s: 0.0})
    with pytest.raises(ProblemError, match="equation 'poisson' returned float"):
        train_one_step(problem)


# ------------------------------------------------------------------------------------ printing
def test_printing_a_problem_shows_fields_equations_and_conditions():
    source = 3.0
    problem = kp.Problem(
        "heat",
        domain=HEAT_DOMAIN,
        fields=["u", "v"],
        equations={
            "heat": lambda s: kp.dt(s.u) - lap(s.u) - source * s.v,
            "coupling": poisson,
        },
        conditions=[
            kp.Dirichlet("left", on=HEAT_DOMAIN.part("left"), field="u", value=0.0),
            kp.Neumann("right", on=HEAT_DOMAIN.part("right"), field="v", value=2.5),
            kp.Initial("start", field="u", value=lambda p: torch.sin(p[:, 0])),
            kp.Condition("link", on=HEAT_DOMAIN.boundary, residual=lambda s: s.u - s.v),
            kp.Data("probe", points=[[0.5, 0.5]], values=[1.0], fields=("v",)),
        ],
        parameters=[kp.Parameter("k", init=0.5)],
        exact={"u": lambda p: p[:, 0]},
        description="Heat with a second field.\nMore text.",
    )
    text = str(problem)
    for expected in [
        "Problem 'heat'",
        "Heat with a second field.",
        "coordinates: x, t",
        "fields:      u, v",
        "k (init 0.5)",
        "heat: kp.dt(s.u) - lap(s.u) - source * s.v = 0",
        "coupling: poisson(...) = 0",
        "left: Dirichlet u = 0.0 on left",
        "right: Neumann dv/dn = 2.5 on right",
        "start: Initial u = torch.sin(p[:, 0]) at t = t0",
        "link: s.u - s.v = 0 on boundary",
        "probe: Data v at 1 points",
        "exact:       u",
    ]:
        assert expected in text, expected
    assert "More text." not in text


def test_printing_the_poisson_equation_shows_its_source_text():
    problem = declare(equations={"poisson": lambda s: -lap(s.u) - 2 * s.x})
    assert "poisson: -lap(s.u) - 2 * s.x = 0" in str(problem)
    assert "wall: Dirichlet u = 0.0 on boundary" in str(problem)
