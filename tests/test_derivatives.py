"""Derivatives in residuals: operators on fields and expressions, their errors, and KANs.

Closed-form models (x^2 + y^2, sin(x) cos(y) exp(t), ...) give exact references; random KANs
are checked against finite differences in float64 and, along the training path (whatever
derivative engine the trainer picks), against autograd.
"""

import math

import pytest
import torch

import kanphys as kp
from kanphys import d, div, dn, dt, grad, lap

F64 = torch.float64
DTYPES = [torch.float32, torch.float64]
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-11}

SQUARE = kp.Rectangle((-1.0, 0.0), (1.5, 2.0))
SPACE_TIME = SQUARE * kp.TimeInterval(0.0, 1.0)


def problem_on(domain, fields=("u",), parameters=()):
    """A problem whose residuals are never evaluated: it only provides coordinates and fields."""
    return kp.Problem(
        "derivatives",
        domain=domain,
        fields=list(fields),
        equations={"zero": lambda s: s.points[:, :1] * 0},
        parameters=list(parameters),
    )


def interior(domain, n=40, dtype=F64, seed=0):
    return torch.as_tensor(domain.sample_interior(n, seed=seed), dtype=dtype)


def close(actual, expected, dtype=F64, scale=1.0):
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale)


def xyt(points):
    return [points[:, i : i + 1] for i in range(points.shape[1])]


# ------------------------------------------------------------------------- closed-form fields
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "domain",
    [kp.Interval(-1.0, 2.0), SQUARE, kp.Box((0.0, -1.0, 0.0), (1.0, 1.0, 3.0))],
    ids=["1d", "2d", "3d"],
)
def test_laplacian_of_sum_of_squares_is_2d(domain, dtype, closed_form):
    model = closed_form(lambda p: (p**2).sum(1), dtype=dtype)
    points = interior(domain, dtype=dtype)
    s = problem_on(domain).state(model, points)
    close(lap(s.u), torch.full_like(points[:, :1], 2.0 * domain.dim), dtype)
    close(grad(s.u), 2 * points, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_and_mixed_partials_of_a_closed_form(dtype, closed_form):
    model = closed_form(lambda p: torch.sin(p[:, 0]) * torch.cos(p[:, 1]) + p[:, 0] * p[:, 1] ** 2)
    model = model.to(dtype)
    points = interior(SQUARE, dtype=dtype)
    x, y = xyt(points)
    s = problem_on(SQUARE).state(model, points)
    expected = torch.cat(
        [torch.cos(x) * torch.cos(y) + y**2, -torch.sin(x) * torch.sin(y) + 2 * x * y], dim=1
    )
    close(grad(s.u), expected, dtype, scale=10)
    close(d(s.u, "x"), expected[:, :1], dtype, scale=10)
    mixed = -torch.cos(x) * torch.sin(y) + 2 * y
    close(d(s.u, "x", "y"), mixed, dtype, scale=10)
    close(d(s.u, "y", "x"), mixed, dtype, scale=10)
    close(d(s.u, "y", "y"), -torch.sin(x) * torch.cos(y) + 2 * x, dtype, scale=10)


def sin_cos_exp(p):
    return torch.sin(p[:, 0]) * torch.cos(p[:, 1]) * torch.exp(p[:, 2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_time_derivatives_and_spatial_operators_on_a_space_time_domain(dtype, closed_form):
    model = closed_form(sin_cos_exp).to(dtype)
    points = interior(SPACE_TIME, dtype=dtype)
    x, y, t = xyt(points)
    u = torch.sin(x) * torch.cos(y) * torch.exp(t)
    s = problem_on(SPACE_TIME).state(model, points)
    close(s.u, u, dtype, scale=10)
    close(dt(s.u), u, dtype, scale=10)
    close(dt(s.u, order=2), u, dtype, scale=10)
    close(d(s.u, "t"), u, dtype, scale=10)
    close(lap(s.u), -2 * u, dtype, scale=10)  # time is not part of the Laplacian
    assert grad(s.u).shape == (points.shape[0], 2)


def test_time_derivative_of_a_polynomial_in_time(closed_form):
    model = closed_form(lambda p: p[:, 0] * p[:, 2] ** 3)
    points = interior(SPACE_TIME)
    x, _, t = xyt(points)
    s = problem_on(SPACE_TIME).state(model, points)
    close(dt(s.u), 3 * x * t**2)
    close(dt(s.u, order=2), 6 * x * t)
    close(dt(s.u, order=3), 6 * x)
    close(lap(s.u), torch.zeros_like(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_third_derivatives(dtype, closed_form):
    model = closed_form(sin_cos_exp).to(dtype)
    points = interior(SPACE_TIME, dtype=dtype)
    x, y, t = xyt(points)
    s = problem_on(SPACE_TIME).state(model, points)
    e = torch.exp(t)
    close(d(s.u, "x", "x", "x"), -torch.cos(x) * torch.cos(y) * e, dtype, scale=10)
    close(d(s.u, "y", "y", "y"), torch.sin(x) * torch.sin(y) * e, dtype, scale=10)
    close(d(s.u, "x", "y", "t"), -torch.cos(x) * torch.sin(y) * e, dtype, scale=10)
    close(d(s.u, "t", "y", "x"), -torch.cos(x) * torch.sin(y) * e, dtype, scale=10)
    close(d(s.u, "x", "x", "y"), torch.sin(x) * torch.sin(y) * e, dtype, scale=10)


def test_derivatives_of_several_fields_are_kept_apart(closed_form):
    model = closed_form(lambda p: torch.stack([p[:, 0] ** 3, p[:, 0] * p[:, 1], p[:, 1] ** 2], 1))
    points = interior(SQUARE)
    x, y = xyt(points)
    s = problem_on(SQUARE, fields=("a", "b", "c")).state(model, points)
    close(lap(s.a), 6 * x)
    close(lap(s.b), torch.zeros_like(x))
    close(lap(s.c), torch.full_like(x, 2.0))
    close(d(s.b, "x", "y"), torch.ones_like(x))
    close(div(s.b, s.c), y + 2 * y)


def test_divergence_of_a_closed_form_vector_field(closed_form):
    model = closed_form(lambda p: torch.stack([p[:, 0] * p[:, 1] ** 2, torch.sin(p[:, 1])], 1))
    points = interior(SQUARE)
    _, y = xyt(points)
    s = problem_on(SQUARE, fields=("u", "v")).state(model, points)
    close(div(s.u, s.v), y**2 + torch.cos(y))


def test_divergence_needs_one_component_per_spatial_coordinate(closed_form):
    model = closed_form(lambda p: torch.stack([p[:, 0], p[:, 1]], 1))
    s = problem_on(SQUARE, fields=("u", "v")).state(model, interior(SQUARE))
    with pytest.raises(ValueError, match="2 components"):
        div(s.u)


# --------------------------------------------------------------------------- normal derivatives
def test_normal_derivative_on_a_disk_uses_the_analytic_normals(closed_form):
    center, radius = (0.3, -0.2), 0.7
    disk = kp.Disk(center, radius)
    samples = disk.boundary.sample(64, seed=3)
    points, normals = torch.as_tensor(samples.points), torch.as_tensor(samples.normals)
    x, y = xyt(points)
    analytic = (points - torch.tensor(center, dtype=F64)) / radius
    close(normals, analytic)
    model = closed_form(lambda p: p[:, 0] ** 2 + p[:, 1] ** 3 + p[:, 0] * p[:, 1])
    s = problem_on(disk).state(model, points, normals)
    expected = (2 * x + y) * analytic[:, :1] + (3 * y**2 + x) * analytic[:, 1:]
    close(dn(s.u), expected)


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        ("left", lambda x, y: -(2 * x + 3 * y)),
        ("right", lambda x, y: 2 * x + 3 * y),
        ("bottom", lambda x, y: -(3 * x)),
        ("top", lambda x, y: 3 * x),
    ],
)
def test_normal_derivative_on_rectangle_sides(side, expected, closed_form):
    model = closed_form(lambda p: p[:, 0] ** 2 + 3 * p[:, 0] * p[:, 1])
    samples = SQUARE.part(side).sample(16, seed=1)
    points = torch.as_tensor(samples.points)
    s = problem_on(SQUARE).state(model, points, torch.as_tensor(samples.normals))
    close(dn(s.u), expected(*xyt(points)))


def test_normal_derivative_on_the_lateral_boundary_ignores_time(closed_form):
    domain = kp.Interval(-1.0, 2.0) * kp.TimeInterval(0.0, 1.0)
    samples = domain.boundary.sample(20, seed=2)
    points = torch.as_tensor(samples.points)
    model = closed_form(lambda p: p[:, 0] ** 2 + 5 * p[:, 1] ** 2)
    s = problem_on(domain).state(model, points, torch.as_tensor(samples.normals))
    x, _ = xyt(points)
    close(dn(s.u), 2 * x * torch.sign(x))  # outward: -u_x at x = -1, +u_x at x = 2


# ------------------------------------------------------------------------------- expressions
def test_state_methods_differentiate_expressions_of_fields(closed_form):
    model = closed_form(lambda p: p[:, 0] ** 2 + p[:, 1] ** 3)
    points = interior(SQUARE)
    x, y = xyt(points)
    u = x**2 + y**3
    s = problem_on(SQUARE).state(model, points)
    close(s.lap(s.u**2), 8 * x**2 + 4 * u + 18 * y**4 + 12 * u * y, scale=100)
    close(s.d(s.u * s.x, "x"), u + 2 * x**2)
    close(s.grad(s.u**2), torch.cat([4 * x * u, 6 * y**2 * u], dim=1), scale=10)
    close(s.d(s.u**2, "x", "y", "y"), 2 * 2 * x * 6 * y, scale=10)
    close(s.d(s.u, "x", "x"), torch.full_like(x, 2.0))  # a field through the method works too
    close(s.lap(s.u), 2 + 6 * y)


def test_state_methods_differentiate_expressions_of_coordinates(closed_form):
    model = closed_form(lambda p: p[:, 0])
    points = interior(SQUARE)
    x, y = xyt(points)
    s = problem_on(SQUARE).state(model, points)
    close(s.d(s.x**3, "x", "x"), 6 * x)
    close(s.lap(torch.sin(s.x) * s.y), -torch.sin(x) * y)
    close(s.lap(torch.ones_like(x)), torch.zeros_like(x))  # constants have zero derivatives


def test_state_gives_coordinates_parameters_and_names_unknown_attributes(closed_form):
    model = closed_form(lambda p: p[:, 0])
    model.params = torch.nn.ParameterDict({"k": torch.nn.Parameter(torch.tensor(2.5, dtype=F64))})
    points = interior(SPACE_TIME)
    s = kp.Problem(
        "with-k",
        domain=SPACE_TIME,
        equations={"e": lambda s: s.u * s.k},
        parameters=[kp.Parameter("k", init=1.0)],
    ).state(model, points)
    close(s.x, points[:, :1])
    close(s.t, points[:, 2:])
    assert s.k is model.params["k"] and float(s.k.detach()) == 2.5
    assert s.points.shape == points.shape and s.normals is None
    with pytest.raises(AttributeError, match=r"'w'.*fields \('u',\)"):
        _ = s.w


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("lap", lambda s: lap(s.u**2)),
        ("grad", lambda s: grad(2 * s.u)),
        ("d", lambda s: d(s.u + 1, "x")),
        ("dt", lambda s: dt(-s.u)),
        ("dn", lambda s: dn(s.u * s.u)),
        ("div", lambda s: div(s.u * 1.0, s.u)),
        ("lap", lambda s: lap(s.x)),
    ],
)
def test_operators_on_non_fields_raise_type_error_pointing_to_the_state_method(
    name, call, closed_form
):
    model = closed_form(lambda p: p[:, 0] ** 2)
    s = problem_on(SPACE_TIME).state(model, interior(SPACE_TIME))
    with pytest.raises(TypeError, match=rf"s\.{name}\(expr\)"):
        call(s)


def test_time_derivative_on_a_space_only_domain_raises(closed_form):
    s = problem_on(SQUARE).state(closed_form(lambda p: p[:, 0]), interior(SQUARE))
    with pytest.raises(ValueError, match="time"):
        dt(s.u)


def test_normal_derivative_inside_the_domain_raises(closed_form):
    s = problem_on(SQUARE).state(closed_form(lambda p: p[:, 0]), interior(SQUARE))
    with pytest.raises(ValueError, match="normals"):
        dn(s.u)


def test_partial_derivative_needs_known_coordinate_names(closed_form):
    s = problem_on(SQUARE).state(closed_form(lambda p: p[:, 0]), interior(SQUARE))
    with pytest.raises(ValueError, match="coordinate"):
        d(s.u)
    with pytest.raises(ValueError, match="'t'"):
        d(s.u, "t")


# --------------------------------------------------------------------------------- real KANs
def finite_difference(f, points, steps):
    """Fourth-order central differences of ``f`` along ``steps`` (a list of (axis, h)), nested:
    f' = (-f(x + 2h) + 8 f(x + h) - 8 f(x - h) + f(x - 2h)) / 12h."""
    if not steps:
        return f(points)
    (axis, h), rest = steps[0], steps[1:]
    shift = torch.zeros_like(points[0])
    shift[axis] = h
    total = 0
    for k, weight in ((2, -1.0), (1, 8.0), (-1, -8.0), (-2, 1.0)):
        total = total + weight * finite_difference(f, points + k * shift, rest)
    return total / (12 * h)


KAN_BASES = {
    "bspline-order5": kp.BSpline(grid=4, order=5),
    "chebyshev": kp.Chebyshev(degree=4),
}


@pytest.mark.parametrize("basis", list(KAN_BASES.values()), ids=list(KAN_BASES))
def test_random_kan_derivatives_match_finite_differences(basis, make_surrogate):
    problem = problem_on(SPACE_TIME)
    model = make_surrogate(problem, hidden=4, seed=3, dtype=F64, basis=basis)
    with torch.no_grad():  # make the network clearly nonlinear
        for p in model.net.parameters():
            p.mul_(3)
    points = interior(SPACE_TIME, n=30, seed=4)
    s = problem.state(model, points)

    def u(p):
        with torch.no_grad():
            return model(p)

    scale = u(points).abs().max()
    h = 1e-3  # errors fall like h^4 down to here (1e-2 gives 1e-4 on third derivatives)
    cases = [
        (d(s.u, "x"), [(0, h)], 1e-8),
        (dt(s.u), [(2, h)], 1e-8),
        (d(s.u, "x", "y"), [(0, h), (1, h)], 1e-7),
        (lap(s.u), None, 1e-7),
        (d(s.u, "y", "y", "t"), [(1, h), (1, h), (2, h)], 1e-5),
        (d(s.u, "x", "x", "x"), [(0, h)] * 3, 1e-5),
    ]
    for value, steps, tolerance in cases:
        if steps is None:
            reference = finite_difference(u, points, [(0, h)] * 2)
            reference = reference + finite_difference(u, points, [(1, h)] * 2)
        else:
            reference = finite_difference(u, points, steps)
        assert reference.abs().max() > 1e-3 * scale  # the derivative is not trivially zero
        error = float(((value - reference).abs().max() / reference.abs().max()).detach())
        assert error < tolerance, (steps, error)


def test_training_loss_derivatives_agree_with_autograd(make_surrogate):
    """Whatever engine the trainer uses for KANs, its derivatives equal autograd's pointwise."""
    holder = {}

    def reference(s, operator):
        state = holder["problem"].state(holder["model"], s.points, s.normals)
        return operator(state)

    def term(operator):
        return lambda s: operator(s) - reference(s, operator)

    operators = {
        "ux": lambda s: d(s.u, "x"),
        "ut": lambda s: dt(s.u),
        "laplacian": lambda s: lap(s.u),
        "uxy": lambda s: d(s.u, "x", "y"),
        "uxyt": lambda s: d(s.u, "x", "y", "t"),
        "uyyy": lambda s: d(s.u, "y", "y", "y"),
        "heat": lambda s: dt(s.u) - 0.3 * lap(s.u) + s.u * d(s.u, "x"),
    }
    problem = kp.Problem(
        "engines",
        domain=SPACE_TIME,
        equations={name: term(op) for name, op in operators.items()},
        conditions=[kp.Condition("flux", on=SPACE_TIME.boundary, residual=term(lambda s: dn(s.u)))],
    )
    model = make_surrogate(problem, hidden=4, seed=5, dtype=F64)
    holder.update(problem=problem, model=model)
    plan = kp.Plan(stages=(kp.Adam(steps=1),), sampler=kp.Sobol(interior=64, boundary=32))
    trainer = kp.Trainer(problem, model, plan)
    for _ in range(2):  # a second evaluation may take a different (cached) path
        _, terms = trainer.loss()
        assert set(terms) == {*operators, "flux"}
        for name, value in terms.items():
            assert math.sqrt(value) < 1e-12, name


def test_trainer_uses_the_closed_form_engine_for_kan_surrogates(
    monkeypatch, poisson1d, make_surrogate
):
    """The fast engine must actually run in training (the agreement test above is vacuous
    otherwise)."""
    analytic = pytest.importorskip("kanphys.derivatives.analytic")
    built = []
    original = analytic.AnalyticEngine.__init__

    def spy(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(analytic.AnalyticEngine, "__init__", spy)
    model = make_surrogate(poisson1d, dtype=F64)
    plan = kp.Plan(stages=(kp.Adam(steps=1),), sampler=kp.Sobol(interior=32, boundary=2))
    trainer = kp.Trainer(poisson1d, model, plan)
    trainer.loss()
    trainer.loss()
    assert built
