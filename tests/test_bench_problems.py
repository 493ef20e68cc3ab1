"""``kanphys bench problems --keep DIR --figures DIR``: the run directory of each benchmark run
is kept (and reads back as a run), and the catalogue figure is a small PNG with something
drawn in each panel."""

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from kanphys.bench.problems import caption
from kanphys.cli import main
from kanphys.io.run import Run


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    argv = ["bench", "problems", "--only", "diffusion1d", "--models", "kan", "--quick"]
    argv += ["--budget", "60", "--json", str(folder / "problems.json")]
    argv += ["--keep", str(folder / "runs"), "--figures", str(folder / "figures")]
    assert main(argv) == 0
    record = json.loads((folder / "problems.json").read_text())["records"][0]
    return folder, record


def test_figures_option_writes_a_small_png_per_run(bench_run):
    folder, _ = bench_run
    figure = folder / "figures" / "diffusion1d.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < figure.stat().st_size < 200_000
    image = matplotlib.image.imread(figure)[..., :3]
    height, width = image.shape[:2]
    assert 1000 <= width <= 1200 and 300 <= height <= 400  # 11 x 3.2 inches at 100 dpi
    assert [p.name for p in (folder / "figures").iterdir()] == ["diffusion1d.png"]


def test_each_panel_of_the_figure_is_drawn(bench_run):
    folder, _ = bench_run
    image = matplotlib.image.imread(folder / "figures" / "diffusion1d.png")[..., :3]
    width = image.shape[1]
    panels = {(0.0, 0.3): 0.2, (0.3, 0.6): 0.05, (0.65, 1.0): 0.003}  # maps, then curves
    for (left, right), share in panels.items():  # solution, error, loss history
        panel = image[:, int(left * width) : int(right * width)]
        coloured = np.ptp(panel, axis=2) > 0.2  # neither white, grey nor black
        assert coloured.mean() > share


def test_keep_option_writes_a_run_directory_that_matches_the_record(bench_run):
    folder, record = bench_run
    run = Run.load(folder / "runs" / "diffusion1d-kan")
    assert run.config["problem"] == "diffusion1d" and run.config["budget_s"] == 60
    assert run.metrics["rel_l2"]["u"] == pytest.approx(record["rel_l2"]["u"], rel=1e-9)
    assert run.metrics["steps"] == record["steps"] == len(run.history()["step"])
    model = run.model()
    assert sum(p.numel() for p in model.net.parameters()) == record["n_params"]


def test_redraw_from_the_kept_run_gives_the_same_figure(bench_run, tmp_path):
    from kanphys.bench.problems import redraw

    folder, record = bench_run
    again = redraw(folder / "runs" / "diffusion1d-kan", record, tmp_path / "again.png")
    first = matplotlib.image.imread(folder / "figures" / "diffusion1d.png")
    second = matplotlib.image.imread(again)
    assert first.shape == second.shape
    assert np.mean(np.abs(first - second) > 0.1) < 1e-3  # history.csv holds rounded losses


def test_keep_refuses_to_overwrite_a_run_directory(bench_run, capsys):
    folder, _ = bench_run
    argv = ["bench", "problems", "--only", "diffusion1d", "--models", "kan", "--quick"]
    argv += ["--json", str(folder / "again.json"), "--keep", str(folder / "runs")]
    assert main(argv) == 2
    assert "diffusion1d-kan exists" in capsys.readouterr().out


def test_caption_states_budget_steps_and_measured_error():
    record = {
        "problem": "wave1d",
        "model": "kan",
        "steps": 484,
        "wall_time_s": 301.2,
        "budget_s": 300.0,
        "measured": {"u": 4.63e-1},
        "target": {"u": 1e-2},
    }
    text = caption(record, [2, 10, 1])
    assert text == "wave1d: KAN [2, 10, 1], 484 steps, 301 s of a 300 s budget; u 4.63e-01"


def test_markdown_table_shows_each_rows_budget():
    from kanphys.bench.problems import markdown_table

    record = {
        "problem": "cavity",
        "model": "kan",
        "measured": {"u_centerline": 0.1, "v_centerline": 0.2},
        "target": {"u_centerline": 2e-2, "v_centerline": 2e-2},
        "met": False,
        "rel_l2": {"u": 0.1},
        "n_params": 5,
        "steps": 7,
        "stopped_by_budget": True,
        "wall_time_s": 120.4,
        "budget_s": 120.0,
        "anchor": "Ghia",
    }
    row = [line for line in markdown_table([record], {}).splitlines() if "| cavity" in line]
    assert row == [
        "| cavity | kan | u_centerline 1.00e-01, v_centerline 2.00e-01 | u_centerline <= 0.02, "
        "v_centerline <= 0.02 | no | u 1.00e-01 | 5 | 7 (budget) | 120 | 120 | Ghia |"
    ]


def test_figure_of_a_multi_field_problem_has_a_row_per_field(tmp_path):
    import torch

    from kanphys.plot import catalogue_figure, write_png
    from kanphys.runner import build_model, load_problem_file

    source = load_problem_file(Path(__file__).resolve().parents[1] / "problems" / "kovasznay.py")
    model = build_model(source.problem, source.model, {}, seed=0, dtype=torch.float64, device="cpu")
    history = {"step": np.arange(1.0, 4.0), "stage": np.array([0.0, 0.0, 2.0])}
    history["loss"] = np.array([1.0, 0.5, 0.1])
    for k in range(12):  # more terms than colours in the default cycle; one exactly zero
        history[f"loss_term{k}"] = np.array([0.5, 0.2, 0.05]) * k
    figure = catalogue_figure(source.problem, model, history, "kovasznay", resolution=21)
    path = write_png(figure, tmp_path / "kovasznay.png")
    height, width = matplotlib.image.imread(path).shape[:2]
    assert (width, height) == (1100, 750)  # 11 x (3 fields x 2.5) inches at 100 dpi
    assert len(figure.axes) == 3 * 2 * 2 + 1  # maps with colour bars, and the losses
    curves = [line for line in figure.axes[-1].get_lines() if line.get_label()[0] != "_"]
    assert [line.get_label() for line in curves][:2] == ["loss", "loss_term0 (~0: exact)"]
    assert len({line.get_color() for line in curves}) == len(curves) == 13
