"""``kanphys plot``: the figures of a run are written, not blank, and show what the run holds."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.cli import main
from kanphys.plot import edge_curves, edge_importance, loss_figure

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
SHRINK = ["lbfgs_steps=1", "grid=5", "interior=64", "boundary=32", "initial=16", "width=3"]


def make_run(tmp_path_factory, name: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "run"
    argv = ["run", str(PROBLEMS_DIR / f"{name}.py"), *SHRINK, "--quick", "--resolution", "11"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def poisson_plots(tmp_path_factory):
    run = make_run(tmp_path_factory, "poisson2d")
    assert main(["plot", str(run)]) == 0
    return run, run / "plots"


@pytest.fixture(scope="module")
def heat_plots(tmp_path_factory):
    run = make_run(tmp_path_factory, "heat1d")
    out = run.parent / "figures"
    assert main(["plot", str(run), "--out", str(out), "--formats", "png"]) == 0
    return run, out


def drawn_fraction(path: Path) -> float:
    """Share of the pixels that differ from the most common colour (the background)."""
    image = matplotlib.image.imread(path)[..., :3]
    colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[np.argmax(counts)]
    return float(np.mean(np.abs(image - background).sum(axis=2) > 0.05))


FIGURES_2D = ["network", "edges_layer0", "edges_layer1", "loss", "solution", "render"]


@pytest.mark.parametrize("name", FIGURES_2D)
def test_plot_writes_every_figure_as_png_and_pdf(poisson_plots, name):
    _, folder = poisson_plots
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    height, width = matplotlib.image.imread(png).shape[:2]
    assert width >= 300 and height >= 300
    assert drawn_fraction(png) > 0.02


def test_a_time_dependent_1d_problem_gets_a_space_time_map_and_no_render(heat_plots):
    _, folder = heat_plots
    names = sorted(p.name for p in folder.iterdir())
    expected = ["edges_layer0.png", "edges_layer1.png", "loss.png", "network.png", "solution.png"]
    assert names == expected
    image = matplotlib.image.imread(folder / "solution.png")
    # Three maps (u, u_exact, u_error) side by side: much wider than tall.
    assert image.shape[1] > 2.5 * image.shape[0]
    assert drawn_fraction(folder / "solution.png") > 0.2


def surrogate(widths, seed=0) -> kp.Surrogate:
    net = kp.KAN(widths, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return kp.Surrogate(net, [0.0, 0.0], [1.0, 2.0])


def test_edge_importance_is_relative_and_zero_for_a_silent_edge():
    model = surrogate([2, 2, 1])
    with torch.no_grad():
        model.net.layers[0].coef[1, :, 0] = 0.0
        model.net.layers[0].scale_base[1, 0] = 0.0
    points = np.random.default_rng(0).uniform([0, 0], [1, 2], (500, 2))
    importance = edge_importance(model, points)
    assert [i.shape for i in importance] == [(2, 2), (2, 1)]
    assert max(float(i.max()) for i in importance) == 1.0
    assert importance[0][1, 0] == 0.0
    assert np.all(np.delete(importance[0].ravel(), 2) > 0)


def test_edge_curves_span_the_inputs_each_layer_sees():
    model = surrogate([2, 3, 1])
    points = np.array([[0.0, 0.0], [1.0, 2.0], [0.5, 0.5]])
    (grid0, values0), (_, values1) = edge_curves(model, points)
    # Layer 0 sees the coordinates normalised to [-1, 1].
    np.testing.assert_allclose(grid0[0], [-1.0, -1.0], atol=1e-15)
    np.testing.assert_allclose(grid0[-1], [1.0, 1.0], atol=1e-15)
    assert values0.shape == (101, 2, 3) and values1.shape == (101, 3, 1)
    with torch.no_grad():
        direct = model.net.layers[0].edge_values(torch.as_tensor(grid0)).numpy()
    np.testing.assert_array_equal(values0, direct)


def test_loss_figure_draws_each_term_of_the_history():
    history = {
        "step": np.arange(1.0, 5.0),
        "loss": np.array([4.0, 2.0, 1.0, 0.5]),
        "loss_pde": np.array([3.0, 1.5, 0.8, 0.4]),
        "loss_wall": np.array([1.0, 0.5, 0.2, 0.1]),
        "lr": np.full(4, 1e-2),
    }
    axes = loss_figure(history).axes[0]
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert sorted(lines) == ["loss", "loss_pde", "loss_wall"]
    np.testing.assert_array_equal(lines["loss_pde"].get_ydata(), history["loss_pde"])
    np.testing.assert_array_equal(lines["loss"].get_xdata(), history["step"])
    assert axes.get_yscale() == "log"


def test_plot_refuses_an_unknown_format(poisson_plots, capsys):
    run, _ = poisson_plots
    assert main(["plot", str(run), "--formats", "gif", "--out", str(run / "x")]) == 2
    assert "unknown plot format(s) gif" in capsys.readouterr().err
