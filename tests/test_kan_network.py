"""KAN layers and networks: shapes, dtypes, memory, grid update and extension, configs, MLP."""

import json

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from kanphys import KAN, MLP, BSpline, Chebyshev, KANLayer, Surrogate
from kanphys.kan import model_from_config

F64 = torch.float64


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def inputs(n: int, width: int, seed: int = 1, dtype=F64, low=-1.0, high=1.0) -> torch.Tensor:
    u = torch.rand(n, width, generator=seeded(seed), dtype=F64)
    return (low + (high - low) * u).to(dtype)


def max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs().max() / b.abs().max()).detach())


class ShapeRecorder(TorchDispatchMode):
    """Records the shape of every tensor that an aten operation produces."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.shapes.append(tuple(value.shape))
        return out


# ------------------------------------------------------------------------------- shapes, dtypes
@pytest.mark.parametrize("widths", [[2, 5, 1], [3, 4, 4, 2]])
@pytest.mark.parametrize("kind", ["KAN", "KAN-chebyshev", "MLP"])
def test_forward_maps_n_by_first_width_to_n_by_last_width(widths, kind):
    model = {
        "KAN": lambda: KAN(widths),
        "KAN-chebyshev": lambda: KAN(widths, Chebyshev(degree=4)),
        "MLP": lambda: MLP(widths),
    }[kind]()
    assert model(torch.zeros(7, widths[0])).shape == (7, widths[-1])
    assert model.widths == widths


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls", [KAN, MLP])
def test_output_dtype_follows_the_model(cls, dtype):
    model = cls([2, 5, 1], dtype=dtype)
    assert all(p.dtype == dtype for p in model.parameters())
    assert all(b.dtype == dtype for b in model.buffers())
    assert model(torch.rand(4, 2, dtype=dtype)).dtype == dtype


@pytest.mark.parametrize(
    "layer",
    [
        lambda: KANLayer(3, 4, BSpline(grid=5), generator=seeded(), dtype=F64),
        lambda: KANLayer(
            3, 4, BSpline(grid=3, order=1), base="tanh", generator=seeded(), dtype=F64
        ),
        lambda: KANLayer(3, 4, BSpline(), base=None, generator=seeded(), dtype=F64),
        lambda: KANLayer(3, 4, Chebyshev(degree=3), base="identity", generator=seeded(), dtype=F64),
    ],
    ids=["bspline-silu", "linear-tanh", "no-base", "chebyshev-identity"],
)
def test_layer_forward_is_the_sum_of_its_edge_functions(layer):
    layer = layer()
    x = inputs(50, 3)
    edges = layer.edge_values(x)
    assert edges.shape == (50, 3, 4)
    torch.testing.assert_close(edges.sum(1), layer(x), rtol=0, atol=1e-14)


def test_edge_function_is_base_plus_scaled_spline():
    """phi_ji(x) = w_b b(x) + w_s sum_k c_k B_k(x), checked edge by edge from the parts."""
    layer = KANLayer(2, 3, BSpline(grid=4), generator=seeded(), dtype=F64)
    x = inputs(20, 2)
    basis = layer.basis.evaluate(x, layer.knots)
    for i in range(2):
        for j in range(3):
            spline = basis[:, i, :] @ layer.coef[i, :, j]
            expected = layer.scale_base[i, j] * torch.nn.functional.silu(x[:, i])
            expected = expected + layer.scale_spline[i, j] * spline
            torch.testing.assert_close(layer.edge_values(x)[:, i, j], expected)


def test_forward_forms_no_n_by_inputs_by_outputs_tensor():
    n, n_in, n_out = 11, 3, 4  # basis size 8, so (N, n_in, size) cannot be mistaken for it
    layer = KANLayer(n_in, n_out, BSpline(grid=5, order=3), generator=seeded())
    x = inputs(n, n_in, dtype=torch.float32).requires_grad_(True)
    forbidden = {(n, n_in, n_out), (n, n_out, n_in), (n_in, n, n_out), (n_in, n_out, n)}

    with ShapeRecorder() as probe:
        layer.edge_values(x)
    assert forbidden & set(probe.shapes), "the probe must see the edge tensor of edge_values"

    with ShapeRecorder() as recorder:
        layer(x).sum().backward()
    assert not forbidden & set(recorder.shapes)
    # nothing bigger than the Cox-de Boor table (N, n_in, knots - 1) is formed
    largest = max(torch.Size(s).numel() for s in recorder.shapes)
    assert largest <= n * n_in * (layer.knots.shape[1] - 1)


def test_network_forward_forms_no_n_by_inputs_by_outputs_tensor():
    widths, n = [3, 5, 2], 13
    model = KAN(widths, BSpline(grid=4, order=2), generator=seeded())
    x = inputs(n, 3, dtype=torch.float32)
    forbidden = {(n, 3, 5), (n, 5, 3), (n, 5, 2), (n, 2, 5)}
    with ShapeRecorder() as recorder:
        model(x)
    assert recorder.shapes
    assert not forbidden & set(recorder.shapes)


# ------------------------------------------------------------------------------ grid extension
def hidden_inputs_inside_grid_range(model: KAN, x: torch.Tensor, tol: float = 1e-12) -> bool:
    for layer, h in zip(model.layers, model.layer_inputs(x), strict=True):
        interior = layer.interior_knots()
        if not ((h >= interior[:, 0] - tol) & (h <= interior[:, -1] + tol)).all():
            return False
    return True


@pytest.mark.parametrize("widths", [[1, 1], [2, 5, 1], [3, 4, 4, 2]])
@pytest.mark.parametrize("new_grid", [10, 20])
def test_extend_grid_reproduces_the_function_inside_the_grid_range(widths, new_grid):
    model = KAN(widths, BSpline(grid=5), generator=seeded(), dtype=F64)
    x = inputs(500, widths[0])
    assert hidden_inputs_inside_grid_range(model, x)  # precondition of the exactness claim
    extended = model.extend_grid(new_grid)
    assert extended.basis.grid == new_grid
    assert all(layer.knots.shape[1] == new_grid + 7 for layer in extended.layers)
    assert max_relative(extended(x), model(x)) < 1e-10
    assert model.basis.grid == 5  # the original is left alone


@pytest.mark.parametrize("new_grid", [10, 20])
def test_extend_grid_after_update_grid_reproduces_the_function(new_grid):
    model = KAN([2, 5, 1], BSpline(grid=5), generator=seeded(), dtype=F64)
    samples = inputs(400, 2, seed=3) ** 3  # concentrated near 0: a clearly non-uniform grid
    adapted = model.update_grid(samples)
    knots = adapted.layers[0].interior_knots()
    assert not torch.allclose(knots, torch.linspace(-1, 1, 6, dtype=F64).expand(2, -1), atol=0.05)
    extended = adapted.extend_grid(new_grid)
    assert hidden_inputs_inside_grid_range(adapted, samples)
    assert max_relative(extended(samples), adapted(samples)) < 1e-10


def test_extend_grid_with_samples_follows_hidden_values_that_leave_the_grid_range():
    model = KAN([2, 5, 1], BSpline(grid=5), noise_scale=1.0, generator=seeded(), dtype=F64)
    x = inputs(500, 2)
    assert not hidden_inputs_inside_grid_range(model, x)
    # Given the samples, the grids grow to cover the hidden values and the refit includes them.
    # Grown grids are no longer nested in the old ones, so the refit is a least-squares
    # approximation that improves as the grid is refined (exactness holds on nested grids,
    # tested above); without the samples the out-of-range values are lost.
    errors = [max_relative(model.extend_grid(g, x)(x), model(x)) for g in (10, 20, 40)]
    assert errors[0] < 1e-2 and errors[2] < 2e-4
    assert errors[0] > errors[1] > errors[2]
    assert max_relative(model.extend_grid(40)(x), model(x)) > 10 * errors[2]


# -------------------------------------------------------------------------------- grid update
def test_update_grid_with_eps_zero_puts_knots_at_sample_quantiles():
    model = KAN([1, 3, 1], BSpline(grid=8, grid_eps=0.0), generator=seeded(), dtype=F64)
    samples = torch.randn(4001, 1, generator=seeded(5), dtype=F64) * 0.2
    knots = model.update_grid(samples).layers[0].interior_knots()[0]
    counts = torch.histogram(samples[:, 0], bins=knots).hist
    assert knots[0] == samples.min() and knots[-1] == samples.max()
    torch.testing.assert_close(counts, torch.full_like(counts, 4001 / 8), rtol=0, atol=2.0)


def test_update_grid_with_eps_one_is_uniform_over_the_sample_range():
    model = KAN([2, 3, 1], BSpline(grid=4), generator=seeded(), dtype=F64)
    samples = inputs(300, 2, low=-0.5, high=0.3)
    knots = model.update_grid(samples, grid_eps=1.0).layers[0].interior_knots()
    lo, hi = samples.min(0).values, samples.max(0).values
    expected = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, 5, dtype=F64)
    torch.testing.assert_close(knots, expected)


def test_update_grid_moves_knots_toward_the_samples_and_keeps_the_function_close():
    model = KAN([2, 5, 1], BSpline(grid=5), generator=seeded(), dtype=F64)
    samples = inputs(2000, 2, seed=3) ** 3  # density peaks at 0
    adapted = model.update_grid(samples)
    old = model.layers[0].interior_knots()
    new = adapted.layers[0].interior_knots()
    # the middle knots crowd toward 0, where the samples are
    assert (new[:, 1:-1].abs() < old[:, 1:-1].abs()).all()
    assert (new[:, 1:-1].abs() < 0.3).all()
    # the refit keeps the function up to the error of approximating the old splines on the new
    # knots: a relative L2 error of 2.5 % for this seed (1 % for uniform samples)
    with torch.no_grad():
        error = (adapted(samples) - model(samples)).norm() / model(samples).norm()
    assert error < 5e-2
    # and the second layer's grid covers the first layer's new outputs
    hidden = adapted.layer_inputs(samples)[1]
    knots = adapted.layers[1].interior_knots()
    assert torch.allclose(knots[:, 0], hidden.min(0).values)
    assert torch.allclose(knots[:, -1], hidden.max(0).values)


def test_update_grid_keeps_a_smooth_function_to_high_accuracy():
    """A KAN with a linear spline part is refitted exactly on any knots (quantified closeness)."""
    model = KAN([1, 1], BSpline(grid=5), base=None, dtype=F64)
    with torch.no_grad():
        knots = model.layers[0].knots[0]
        greville = (knots[1:-3] + knots[2:-2] + knots[3:-1]) / 3  # coefficients of x for cubics
        model.layers[0].coef.copy_(greville.reshape(1, -1, 1))
    samples = inputs(500, 1, seed=2) ** 3
    torch.testing.assert_close(model(samples), samples, rtol=0, atol=1e-13)
    adapted = model.update_grid(samples)
    torch.testing.assert_close(adapted(samples), samples, rtol=0, atol=1e-12)


@pytest.mark.parametrize("operation", ["update_grid", "extend_grid"])
def test_grid_operations_need_a_bspline_basis(operation):
    model = KAN([2, 3, 1], Chebyshev())
    argument = torch.zeros(5, 2) if operation == "update_grid" else 10
    with pytest.raises(TypeError, match="BSpline"):
        getattr(model, operation)(argument)


def test_grid_operations_leave_torchs_global_random_state_alone():
    model = KAN([2, 3, 1], generator=seeded())
    before = torch.random.get_rng_state()
    model.extend_grid(10)
    model.update_grid(torch.rand(50, 2, generator=seeded(1)) * 2 - 1)
    assert torch.equal(torch.random.get_rng_state(), before)


# ---------------------------------------------------------------------------- configs, seeding
def trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    """Perturb every parameter so a config round trip cannot pass by re-initialisation."""
    with torch.no_grad():
        for index, p in enumerate(model.parameters()):
            p.add_(torch.randn(p.shape, generator=seeded(100 + index), dtype=p.dtype))
    return model


@pytest.mark.parametrize(
    "make",
    [
        lambda: KAN([2, 5, 1], BSpline(grid=6, order=2), dtype=F64),
        lambda: KAN([3, 4, 4, 2], Chebyshev(degree=3), base="tanh", dtype=F64),
        lambda: KAN([2, 3, 1], base=None, noise_scale=0.3, dtype=F64),
        lambda: KAN([2, 5, 1], dtype=F64).extend_grid(12),
        lambda: KAN([2, 5, 1], dtype=F64).update_grid(torch.rand(64, 2, dtype=F64) ** 2),
        lambda: MLP([2, 8, 8, 1], activation="sin", dtype=F64),
    ],
    ids=["bspline", "chebyshev", "no-base", "extended", "updated", "mlp"],
)
def test_model_from_config_and_state_dict_reproduce_outputs_exactly(make):
    model = trained_looking(make())
    config = json.loads(json.dumps(model.config()))
    rebuilt = model_from_config(config, dtype=F64)
    rebuilt.load_state_dict(model.state_dict())
    x = inputs(64, model.widths[0])
    assert type(rebuilt) is type(model)
    assert torch.equal(rebuilt(x), model(x))


def test_model_from_config_rejects_unknown_type():
    with pytest.raises(ValueError, match="Transformer"):
        model_from_config({"type": "Transformer", "widths": [2, 1]})


@pytest.mark.parametrize("cls", [KAN, MLP])
def test_seeding_with_a_generator_gives_identical_models(cls):
    first = cls([2, 5, 1], generator=seeded(7))
    second = cls([2, 5, 1], generator=seeded(7))
    other = cls([2, 5, 1], generator=seeded(8))
    expected = second.state_dict()
    for name, value in first.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert any(
        not torch.equal(a, c)
        for a, c in zip(first.parameters(), other.parameters(), strict=True)
        if a.abs().sum() > 0
    )


def test_mlp_has_the_kan_interface():
    mlp = MLP([2, 6, 1], generator=seeded())
    kan = KAN([2, 6, 1], generator=seeded())
    for attribute in ("widths", "config", "forward"):
        assert hasattr(mlp, attribute) and hasattr(kan, attribute)
    assert mlp.config() == {"type": "MLP", "widths": [2, 6, 1], "activation": "tanh"}
    x = torch.rand(9, 2)
    expected = mlp.linears[1](torch.tanh(mlp.linears[0](x)))
    torch.testing.assert_close(mlp(x), expected)


@pytest.mark.parametrize("cls", [KAN, MLP])
@pytest.mark.parametrize("widths", [[2], [], [2, 0, 1], [3, -1]])
def test_bad_widths_raise_naming_the_widths(cls, widths):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: widths .*{widths}".replace("[", r"\[")):
        cls(widths)


def test_unknown_base_function_and_activation_are_named():
    with pytest.raises(ValueError, match="'relu'"):
        KAN([2, 1], base="relu")
    with pytest.raises(ValueError, match="'gelu'"):
        MLP([2, 1], activation="gelu")


# ---------------------------------------------------------------------------------- surrogate
def surrogate(dtype=F64):
    net = KAN([2, 4, 1], generator=seeded(), dtype=dtype)
    return Surrogate(net, [0.5, -3.0], [2.5, 1.0], {"k": 0.25})


def test_surrogate_maps_the_bounding_box_onto_the_grid_range():
    model = surrogate()
    corners = torch.tensor([[0.5, -3.0], [2.5, 1.0], [1.5, -1.0]], dtype=F64)
    expected = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(model.normalize(corners), expected)
    torch.testing.assert_close(model(corners), model.net(expected))


def test_surrogate_refuses_points_of_another_dtype_or_width():
    model = surrogate()
    with pytest.raises(ValueError, match="float32"):
        model(torch.zeros(3, 2, dtype=torch.float32))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="not a box"):
        Surrogate(KAN([2, 1]), [0.0, 1.0], [1.0, 1.0])


def test_surrogate_grid_operations_keep_bounds_parameters_and_function():
    model = surrogate()
    with torch.no_grad():
        model.params["k"].fill_(1.75)  # "trained"
    x = torch.tensor([[0.7, -2.0], [2.0, 0.5], [1.1, -0.1]], dtype=F64)
    extended = model.extend_grid(10)
    assert extended.net.basis.grid == 10
    assert float(extended.params["k"].detach()) == 1.75
    torch.testing.assert_close(extended.bounds, model.bounds)
    torch.testing.assert_close(extended(x), model(x), rtol=0, atol=1e-12)
    adapted = model.update_grid(x)
    knots = adapted.net.layers[0].interior_knots()
    normalised = model.normalize(x)
    span = torch.stack([normalised.min(0).values, normalised.max(0).values])
    torch.testing.assert_close(knots[:, [0, -1]].T, span)


def test_surrogate_from_config_and_state_dict_reproduce_outputs_exactly():
    model = trained_looking(surrogate().extend_grid(8))
    config = json.loads(json.dumps(model.config()))
    rebuilt = Surrogate.from_config(config, dtype=F64)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(20, 2, generator=seeded(4), dtype=F64) * 2
    assert torch.equal(rebuilt(x), model(x))
    assert rebuilt.params["k"] == model.params["k"]
