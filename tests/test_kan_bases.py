"""Edge bases: B-splines on uniform and adaptive knots, Chebyshev polynomials, configs."""

import json

import pytest
import torch

from kanphys.kan.basis import BSpline, Chebyshev, basis_from_config, extend_knots

ORDERS = [0, 1, 2, 3, 4]
GRIDS = [1, 3, 7]
F64 = torch.float64


def uniform_knots(grid: int, order: int, n_in: int = 2, dtype=F64) -> torch.Tensor:
    return BSpline(grid=grid, order=order).initial_knots(n_in, dtype)


def adaptive_knots(grid: int, order: int, n_in: int = 2, seed: int = 0, dtype=F64):
    """Random strictly increasing interior knots (spacings 0.05 .. 1.05), padded by the order."""
    generator = torch.Generator().manual_seed(seed)
    spacing = torch.rand(n_in, grid, generator=generator, dtype=F64) + 0.05
    start = torch.rand(n_in, 1, generator=generator, dtype=F64) - 1.5
    interior = torch.cat([start, start + spacing.cumsum(1)], dim=1)
    return extend_knots(interior, order).to(dtype)


KNOTS = {"uniform": uniform_knots, "adaptive": adaptive_knots}


def points_in_grid_range(knots: torch.Tensor, order: int, n: int = 400, seed: int = 1):
    """``n`` points per input in ``[lo, hi)`` of the interior knots, including ``lo`` and the
    interior knots themselves (where the half-open Cox-de Boor intervals switch)."""
    lo, hi = knots[:, order], knots[:, knots.shape[1] - order - 1]
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(n, knots.shape[0], generator=generator, dtype=F64)
    x = (lo + (hi - lo) * u).to(knots.dtype)
    interior = knots[:, order : knots.shape[1] - order - 1].T
    return torch.cat([interior, x], dim=0)


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("order", ORDERS)
def test_bspline_has_grid_plus_order_functions(order, grid):
    basis = BSpline(grid=grid, order=order)
    knots = basis.initial_knots(3, F64)
    assert basis.size == grid + order
    assert knots.shape == (3, grid + 2 * order + 1)
    values = basis.evaluate(torch.zeros(5, 3, dtype=F64), knots)
    assert values.shape == (5, 3, grid + order)


@pytest.mark.parametrize("kind", sorted(KNOTS))
@pytest.mark.parametrize("order", ORDERS)
def test_bspline_partition_of_unity_inside_grid_range(kind, order):
    for grid in GRIDS:
        knots = KNOTS[kind](grid, order)
        x = points_in_grid_range(knots, order)
        total = BSpline(grid=grid, order=order).evaluate(x, knots).sum(-1)
        torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bspline_partition_of_unity_holds_in_each_dtype(dtype):
    knots = adaptive_knots(5, 3, dtype=dtype)
    x = points_in_grid_range(knots, 3)
    values = BSpline(grid=5, order=3).evaluate(x, knots)
    assert values.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(values.sum(-1), torch.ones_like(x), rtol=0, atol=tolerance)


def test_bspline_sum_is_below_one_outside_grid_range():
    """The padding functions do not complete a partition of unity outside [lo, hi]."""
    basis = BSpline(grid=4, order=3)
    knots = basis.initial_knots(1, F64)
    x = torch.tensor([[-1.5], [1.5]], dtype=F64)
    assert (basis.evaluate(x, knots).sum(-1) < 1 - 1e-3).all()


@pytest.mark.parametrize("kind", sorted(KNOTS))
@pytest.mark.parametrize("order", ORDERS)
def test_bspline_reproduces_polynomials_up_to_its_order(kind, order):
    grid = 6
    knots = KNOTS[kind](grid, order)
    x = points_in_grid_range(knots, order)
    values = BSpline(grid=grid, order=order).evaluate(x, knots)
    for power in range(order + 1):
        for i in range(knots.shape[0]):
            target = x[:, i : i + 1] ** power
            design = values[:, i, :]
            coef = torch.linalg.lstsq(design, target, driver="gelsd").solution
            error = (design @ coef - target).abs().max() / target.abs().max()
            assert error < 1e-12, (power, i, float(error))


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_bspline_cannot_reproduce_degree_above_its_order(order):
    """The reproduction test above can fail: x^(k+1) is not a spline of order k."""
    grid = 6
    knots = adaptive_knots(grid, order)
    x = points_in_grid_range(knots, order)
    design = BSpline(grid=grid, order=order).evaluate(x, knots)[:, 0, :]
    target = x[:, :1] ** (order + 1)
    coef = torch.linalg.lstsq(design, target, driver="gelsd").solution
    assert (design @ coef - target).abs().max() / target.abs().max() > 1e-4


@pytest.mark.parametrize("kind", sorted(KNOTS))
@pytest.mark.parametrize("order", ORDERS)
def test_bspline_values_are_nonnegative_and_vanish_outside_the_knots(kind, order):
    knots = KNOTS[kind](4, order)
    lo, hi = knots[:, 0], knots[:, -1]
    x = torch.linspace(-3, 3, 601, dtype=F64).unsqueeze(1).expand(-1, 2) * (hi - lo) / 2
    x = x + (hi + lo) / 2
    values = BSpline(grid=4, order=order).evaluate(x, knots)
    assert values.min() >= 0
    outside = (x < lo) | (x >= hi)
    assert outside.any()
    assert values[outside].abs().max() == 0


def test_linear_bspline_is_the_hat_function():
    """Order 1 on uniform knots: B_j(x) = max(0, 1 - |x - t_(j+1)| / h)."""
    basis = BSpline(grid=4, order=1, grid_range=(0.0, 2.0))
    knots = basis.initial_knots(1, F64)[0]
    h = 0.5
    x = torch.linspace(0, 1.999, 97, dtype=F64).unsqueeze(1)
    values = basis.evaluate(x, knots.unsqueeze(0))[:, 0, :]
    centers = knots[1:-1]
    expected = torch.clamp(1 - (x - centers).abs() / h, min=0)
    torch.testing.assert_close(values, expected, rtol=0, atol=1e-14)


def test_cubic_bspline_values_at_knots_are_one_sixth_two_thirds_one_sixth():
    basis = BSpline(grid=6, order=3, grid_range=(0.0, 6.0))
    knots = basis.initial_knots(1, F64)
    x = torch.tensor([[2.0], [3.0], [4.0]], dtype=F64)
    # B_j is supported on [t_j, t_(j+4)); knots are -3, -2, ..., 9, so function 4 is centred on 3.
    values = basis.evaluate(x, knots)[:, 0, 4]
    torch.testing.assert_close(values, torch.tensor([1 / 6, 2 / 3, 1 / 6], dtype=F64))


def test_initial_knots_are_uniform_over_grid_range_with_padding():
    basis = BSpline(grid=4, order=2, grid_range=(-2.0, 2.0))
    knots = basis.initial_knots(2, F64)
    expected = torch.arange(-4.0, 4.5, 1.0, dtype=F64)
    torch.testing.assert_close(knots, expected.expand(2, -1))


@pytest.mark.parametrize("degree", [1, 2, 5, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chebyshev_values_equal_cos_n_arccos_tanh(degree, dtype):
    x = torch.linspace(-3, 3, 120, dtype=dtype).reshape(-1, 3)
    values = Chebyshev(degree=degree).evaluate(x)
    assert values.shape == (40, 3, degree + 1)
    assert values.dtype == dtype
    n = torch.arange(degree + 1, dtype=F64)
    expected = torch.cos(n * torch.arccos(torch.tanh(x.double())).unsqueeze(-1))
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(values.double(), expected, rtol=0, atol=tolerance)


def test_chebyshev_has_degree_plus_one_functions_and_no_knots():
    basis = Chebyshev(degree=4)
    assert basis.size == 5
    assert not basis.has_knots
    assert basis.initial_knots(3, F64).shape == (3, 0)


@pytest.mark.parametrize(
    "basis",
    [
        BSpline(),
        BSpline(grid=7, order=2, grid_range=(-2.0, 3.0), grid_eps=0.5),
        BSpline(grid=1, order=0),
        Chebyshev(),
        Chebyshev(degree=9),
    ],
    ids=repr,
)
def test_basis_from_config_round_trips_through_json(basis):
    assert basis_from_config(basis.config()) == basis
    assert basis_from_config(json.loads(json.dumps(basis.config()))) == basis


def test_basis_from_config_rejects_unknown_type():
    with pytest.raises(ValueError, match="Legendre"):
        basis_from_config({"type": "Legendre", "degree": 3})


@pytest.mark.parametrize(
    ("make", "culprit"),
    [
        (lambda: BSpline(grid=0), "grid"),
        (lambda: BSpline(order=-1), "order"),
        (lambda: BSpline(grid_range=(1.0, -1.0)), "grid_range"),
        (lambda: Chebyshev(degree=0), "degree"),
    ],
)
def test_invalid_basis_options_raise_naming_the_option(make, culprit):
    with pytest.raises(ValueError, match=culprit):
        make()
