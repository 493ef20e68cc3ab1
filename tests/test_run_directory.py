"""The run directory of ``kanphys run problems/poisson2d.py --quick``: its files, their content and
layout, and :class:`kanphys.Run` reading it back.

One small run (made in-process through ``kanphys.cli.main``) is shared by every test here. Its
overrides only shrink it (they do not assume a particular stage layout of poisson2d's plan, which
may change); what the plan then was is read back from config.json. The ``steps=`` and model
overrides are tested on a problem file with a known plan in test_cli.py.
"""

import csv
import json
import math
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.cli import main
from kanphys.runner import load_problem_file

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
RESOLUTION = 21
OVERRIDES = {"lbfgs_steps": 1, "grid": 7, "interior": 64, "boundary": 32}
COLUMNS = ["step", "stage", "lr", "loss", "loss_poisson", "loss_wall", "time_s"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("poisson2d") / "run"
    overrides = [f"{k}={v}" for k, v in OVERRIDES.items()]
    argv = [
        "run",
        str(PROBLEMS_DIR / "poisson2d.py"),
        *overrides,
        "--quick",
        "--out",
        str(out),
        "--resolution",
        str(RESOLUTION),
        "--no-progress",
    ]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def config(run_dir):
    return json.loads((run_dir / "config.json").read_text())


@pytest.fixture(scope="module")
def plan(config):
    """What the recorded plan implies: the stage of every step, final grid and dtype."""
    stages = config["plan"]["stages"]
    stage_of_step = [
        index
        for index, stage in enumerate(stages)
        if stage["type"] in ("Adam", "LBFGS")
        for _ in range(stage["steps"])
    ]
    grids = [s["grid"] for s in stages if s["type"] == "ExtendGrid"]
    switch = any(s["type"] == "LBFGS" and s["dtype"] == "float64" for s in stages)
    return {
        "stage_of_step": stage_of_step,
        "steps": len(stage_of_step),
        "grid": grids[-1] if grids else OVERRIDES["grid"],
        "dtype": "float64" if switch else "float32",
        "weights": config["plan"]["weights"],
    }


@pytest.fixture(scope="module")
def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def h5(run_dir):
    with h5py.File(run_dir / "fields.h5", "r") as handle:
        yield handle


def test_run_writes_exactly_the_documented_files(run_dir):
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "fields.h5",
        "fields.vtu",
        "history.csv",
        "metrics.json",
        "problem.txt",
    ]


def test_metrics_json_has_the_documented_keys_and_values(metrics, plan, run_dir):
    for key in [
        "problem",
        "rel_l2",
        "max_abs_error",
        "wall_time_s",
        "steps",
        "n_params",
        "dtype",
        "device",
        "seed",
        "versions",
    ]:
        assert key in metrics, key
    assert metrics["problem"] == "poisson2d"
    assert set(metrics["rel_l2"]) == {"u"} and set(metrics["max_abs_error"]) == {"u"}
    assert 0 < metrics["rel_l2"]["u"] < math.inf
    assert metrics["wall_time_s"] > 0
    assert metrics["steps"] == plan["steps"] > 0
    assert metrics["dtype"] == plan["dtype"]
    assert metrics["device"] == "cpu"
    assert metrics["seed"] == 0
    assert metrics["versions"]["torch"] == torch.__version__
    assert metrics["versions"]["kanphys"] == kp.__version__
    model = kp.Run.load(run_dir).model()
    assert metrics["n_params"] == sum(p.numel() for p in model.parameters())


def test_error_metrics_agree_with_the_written_fields(metrics, h5):
    error, exact = h5["error/u"][:], h5["exact/u"][:]
    assert metrics["rel_l2"]["u"] == pytest.approx(np.linalg.norm(error) / np.linalg.norm(exact))
    assert metrics["max_abs_error"]["u"] == pytest.approx(np.abs(error).max())


def test_history_csv_has_one_row_per_step(run_dir, plan):
    with open(run_dir / "history.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == COLUMNS
    data = np.array(rows[1:], dtype=float)
    assert data[:, 0].tolist() == list(range(1, plan["steps"] + 1))
    assert data[:, 1].tolist() == plan["stage_of_step"]
    weighted = data[:, 4] * plan["weights"].get("poisson", 1.0)
    weighted = weighted + data[:, 5] * plan["weights"].get("wall", 1.0)
    np.testing.assert_allclose(data[:, 3], weighted, rtol=1e-6)
    history = kp.Run.load(run_dir).history()
    assert list(history) == rows[0]
    np.testing.assert_array_equal(history["loss"], data[:, 3])


def test_problem_txt_prints_the_problem(run_dir):
    text = (run_dir / "problem.txt").read_text()
    assert "Problem 'poisson2d'" in text
    assert "fields:      u" in text
    assert "poisson: -lap(s.u) - source(s.x, s.y) = 0" in text
    assert "wall: Dirichlet u = 0.0 on boundary" in text


def test_config_json_records_how_the_run_was_made(config):
    assert config["problem"] == "poisson2d"
    assert config["problem_file"] == str(PROBLEMS_DIR / "poisson2d.py")
    assert config["quick"] is True
    assert config["overrides"] == OVERRIDES
    assert config["resolution"] == RESOLUTION
    assert config["seed"] == 0 and config["dtype"] == "float32"
    sampler = config["plan"]["sampler"]
    assert (sampler["interior"], sampler["boundary"]) == (64, 32)  # plan overrides
    for stage in config["plan"]["stages"]:
        if stage["type"] == "LBFGS":
            assert stage["steps"] == 1  # lbfgs_steps=1
    assert config["model"]["net"]["basis"]["grid"] == 7  # grid=7 reached model()
    assert config["model"]["net"]["widths"] == [2, 10, 1]


def test_checkpoint_loads_with_weights_only_and_holds_the_final_model(run_dir, plan):
    content = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert content["position"]["global_step"] == plan["steps"]
    assert content["dtype"] == plan["dtype"]
    assert content["model_config"]["net"]["basis"]["grid"] == plan["grid"]
    model = kp.Run.load(run_dir).model()
    assert model.net.basis.grid == plan["grid"]
    assert model.net.layers[0].knots.shape == (2, plan["grid"] + 7)
    assert not model.training


def test_fields_vtu_holds_fields_exact_solution_and_error_on_the_grid(run_dir):
    mesh = meshio.read(run_dir / "fields.vtu")
    assert mesh.points.shape == (RESOLUTION**2, 3)
    assert np.all(mesh.points[:, 2] == 0)
    assert [(c.type, c.data.shape) for c in mesh.cells] == [("quad", ((RESOLUTION - 1) ** 2, 4))]
    data = mesh.point_data
    assert {"u", "u_exact", "u_error", "grad_u", "residual_poisson"} <= set(data)
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    np.testing.assert_allclose(data["u_exact"], np.sin(np.pi * x) * np.sin(np.pi * y), atol=1e-12)
    np.testing.assert_allclose(data["u_error"], data["u"] - data["u_exact"], atol=1e-12)
    assert data["grad_u"].shape == (RESOLUTION**2, 3)


def test_fields_h5_has_the_documented_layout(h5, run_dir, metrics):
    m = RESOLUTION**2
    assert h5["coordinates"].shape == (m, 2)
    assert list(h5["coordinates"].attrs["names"]) == ["x", "y"]
    assert h5["cells"].shape == ((RESOLUTION - 1) ** 2, 4)
    assert h5["cells"].attrs["cell_type"] == "quad"
    assert h5["cells"][:].min() == 0 and h5["cells"][:].max() == m - 1
    assert h5["fields/u"].shape == (m,)
    assert h5["gradient/u"].shape == (m, 2)
    assert h5["exact/u"].shape == (m,)
    assert h5["error/u"].shape == (m,)
    assert h5["residual/poisson"].shape == (m,)
    assert set(h5) == {"coordinates", "cells", "fields", "gradient", "exact", "error", "residual"}
    assert h5.attrs["problem"] == "poisson2d"
    metadata = json.loads(h5.attrs["metadata"])
    assert metadata["metrics"] == metrics
    assert metadata["config"] == json.loads((run_dir / "config.json").read_text())
    # the evaluation grid is the regular 21 x 21 grid over [-1, 1]^2
    axis = np.linspace(-1, 1, RESOLUTION)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    np.testing.assert_allclose(h5["coordinates"][:], grid, atol=1e-15)
    p = h5["coordinates"][:]
    exact = np.sin(np.pi * p[:, 0]) * np.sin(np.pi * p[:, 1])
    np.testing.assert_allclose(h5["exact/u"][:], exact, atol=1e-12)


def test_vtu_and_h5_hold_the_same_values(run_dir, h5):
    data = meshio.read(run_dir / "fields.vtu").point_data
    np.testing.assert_array_equal(data["u"], h5["fields/u"][:])
    np.testing.assert_array_equal(data["grad_u"][:, :2], h5["gradient/u"][:])


def test_run_model_evaluates_to_the_values_in_fields_h5(run_dir, h5):
    model = kp.Run.load(run_dir).model()
    points = torch.as_tensor(h5["coordinates"][:], dtype=model.dtype)
    with torch.no_grad():
        values = model(points)[:, 0].numpy()
    np.testing.assert_allclose(values, h5["fields/u"][:], rtol=0, atol=1e-12)


def test_written_gradient_and_residual_agree_with_autograd(run_dir, h5):
    """The fields are evaluated by whichever derivative engine; autograd must agree."""
    problem = load_problem_file(PROBLEMS_DIR / "poisson2d.py").problem
    model = kp.Run.load(run_dir).model()
    points = torch.as_tensor(h5["coordinates"][:], dtype=model.dtype)
    state = problem.state(model, points)
    gradient = state.grad(state.u).detach().numpy()
    residual = problem.equations["poisson"](state).detach().numpy()[:, 0]
    np.testing.assert_allclose(h5["gradient/u"][:], gradient, rtol=0, atol=1e-10)
    scale = np.abs(residual).max()
    np.testing.assert_allclose(h5["residual/poisson"][:], residual, rtol=0, atol=1e-10 * scale)


def test_run_load_refuses_a_directory_without_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        kp.Run.load(tmp_path)
