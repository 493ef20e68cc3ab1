"""``kanphys bench scaling``: slope fitting, the KAN Jacobian and Levenberg-Marquardt, and the
quick study end to end through the command line (records, report, figure)."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import pytest
import torch

from kanphys.bench import scaling
from kanphys.cli import main
from kanphys.kan import KAN, BSpline

FIT_KEYS = {"model", "widths", "grid", "n_params", "test_rmse", "train_rmse", "wall_time_s"}
PDE_KEYS = {"model", "widths", "grid", "n_params", "rel_l2", "wall_time_s"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick study, run once through ``kanphys bench scaling --quick``."""
    folder = tmp_path_factory.mktemp("scaling")
    threads = torch.get_num_threads()
    try:
        argv = ["bench", "scaling", "--quick", "--json", str(folder / "scaling.json")]
        assert main([*argv, "--figure", str(folder / "scaling.png")]) == 0
    finally:
        torch.set_num_threads(threads)
    return folder


def test_fit_slope_recovers_a_known_power_law():
    n = [24, 30, 45, 75, 165, 315]
    slope, intercept = scaling.fit_slope(n, [3.0 * v**-4 for v in n])
    assert slope == pytest.approx(-4.0, abs=1e-12)
    assert intercept == pytest.approx(math.log(3.0), abs=1e-10)
    slope, _ = scaling.fit_slope([1, 2, 4], [1.0, 0.5, 0.25])
    assert slope == pytest.approx(-1.0, abs=1e-14)
    with pytest.raises(ValueError):
        scaling.fit_slope([10], [1.0])


def test_scaling_window_ends_where_the_error_stops_halving_per_doubling():
    grids = [3, 5, 10, 20, 50, 100]
    errors = [1e-2, 3e-3, 2e-4, 1.3e-5, 9e-6, 9.5e-6]
    assert scaling.scaling_window(grids, errors) == 4  # 20 -> 50 gains only 1.4x
    assert scaling.scaling_window([1, 2, 4], [1.0, 0.6, 0.2]) == 1  # 1 -> 2 gains < 2x
    assert scaling.scaling_window([1, 2, 4], [1.0, 0.5, 0.25]) == 3  # exactly 2x is kept
    rates = scaling.local_slopes([1, 2, 4], [1.0, 1 / 16, 1 / 256])
    assert rates == pytest.approx([-4.0, -4.0])


def test_kan_jacobian_matches_autograd():
    torch.manual_seed(0)
    model = KAN([2, 3, 1], BSpline(grid=4), generator=torch.Generator().manual_seed(1))
    model = model.to(torch.float64)
    x = 2 * torch.rand(7, 2, dtype=torch.float64) - 1
    out, jac = scaling.kan_jacobian(model, x)
    rows = []
    for i in range(len(x)):
        grads = torch.autograd.grad(model(x[i : i + 1]).sum(), list(model.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    torch.testing.assert_close(jac, torch.stack(rows), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(out, model(x).detach().reshape(-1))
    assert all(p.grad is None for p in model.parameters())


def test_levenberg_marquardt_fits_a_small_kan_better_than_its_start():
    data = scaling.make_data(100, 10, seed=0)
    model = KAN([2, 1, 1], BSpline(grid=3), generator=torch.Generator().manual_seed(2))
    model = model.to(torch.float64)
    before = scaling.rmse(model, data.x_train, data.y_train)
    done = scaling.levenberg_marquardt(model, data.x_train, data.y_train, 20)
    assert 1 <= done <= 20
    assert scaling.rmse(model, data.x_train, data.y_train) < before / 10


def test_quick_records_have_the_documented_keys_and_types(quick):
    result = json.loads((quick / "scaling.json").read_text())
    assert result["benchmark"] == "scaling" and result["dtype"] == "float64"
    fit = [r for r in result["records"] if r["part"] == "fit"]
    pde = [r for r in result["records"] if r["part"] == "pde"]
    assert {r["model"] for r in fit} == {"KAN", "MLP"} == {r["model"] for r in pde}
    for r in fit:
        assert set(r) >= FIT_KEYS
        assert isinstance(r["test_rmse"], float) and r["test_rmse"] > 0
    for r in pde:
        assert set(r) >= PDE_KEYS
        assert isinstance(r["rel_l2"], float) and r["rel_l2"] > 0
    for r in fit + pde:
        assert isinstance(r["n_params"], int) and r["n_params"] > 0
        assert isinstance(r["wall_time_s"], float) and r["wall_time_s"] >= 0
        assert all(isinstance(w, int) for w in r["widths"])
        assert (r["grid"] is None) == (r["model"] == "MLP")
        if r["model"] == "KAN":
            edges = sum(a * b for a, b in zip(r["widths"][:-1], r["widths"][1:], strict=False))
            assert r["n_params"] == edges * (r["grid"] + 3 + 2)
            assert r["n_params_paper"] == edges * r["grid"]
    names = {e["series"] for e in result["slopes"]}
    assert {"KAN [2, 1, 1] lbfgs", "KAN [2, 1, 1] lm", "KAN [2, 10, 1] lbfgs"} <= names


def test_quick_kan_error_falls_as_the_grid_grows(quick):
    result = json.loads((quick / "scaling.json").read_text())
    for part, metric in (("fit", "test_rmse"), ("pde", "rel_l2")):
        kan = [
            r
            for r in result["records"]
            if r["part"] == part and r["model"] == "KAN" and r["optimizer"] == "lbfgs"
        ]
        grids = [r["grid"] for r in kan]
        assert grids == sorted(grids) and len(grids) >= 2
        errors = [r[metric] for r in kan]
        assert all(b < a for a, b in itertools.pairwise(errors)), (part, errors)
        times = [r["wall_time_s"] for r in kan]
        assert times == sorted(times)  # cumulative along the grid sequence


def test_quick_writes_the_report_and_the_figure(quick):
    report = (quick / "scaling.md").read_text()
    assert "## Function fitting" in report and "## Fitted slopes" in report
    assert "poisson2d" in report
    png = (quick / "scaling.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_extra_grids_are_tried_only_while_the_test_error_improves():
    data = scaling.make_data(150, 150, seed=0)
    settings = replace(
        scaling.QUICK,
        grids=(3, 5),
        extra_grids=(8, 400),
        restarts=4,
        restart_iters=40,
        kan_iters=40,
        lm_iters=0,
    )
    records = scaling.kan_fit_series((2, 1, 1), data, settings)
    grids = [r["grid"] for r in records]
    errors = [r["test_rmse"] for r in records]
    assert grids[:3] == [3, 5, 8]
    assert (400 in grids) == (errors[2] < errors[1])


@pytest.mark.bench
@pytest.mark.timeout(600)
def test_kan_211_lbfgs_slope_reaches_the_target():
    """The committed study's first series (about a minute): slope <= -3.5 over its window."""
    torch.set_num_threads(1)
    data = scaling.make_data(1000, 1000, seed=0)
    settings = replace(scaling.FULL, grids=(3, 5, 10, 20, 50), extra_grids=(), lm_iters=0)
    records = scaling.kan_fit_series((2, 1, 1), data, settings)
    (entry,) = scaling.slopes(records)
    assert entry["slope"] <= scaling.TARGET_SLOPE
