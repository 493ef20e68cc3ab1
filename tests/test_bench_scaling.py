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
FIT_KEYS |= {"n_train", "iterations", "converged"}
PDE_KEYS = {"model", "widths", "grid", "n_params", "rel_l2", "wall_time_s", "steps", "converged"}


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


def test_until_converged_stops_when_a_round_gains_less_than_the_tolerance():
    errors = iter([1.0, 0.5, 0.3, 0.299, 0.1])
    rounds = []

    def train_round(n: int) -> int:
        rounds.append(n)
        return n

    done, converged = scaling.until_converged(train_round, lambda: next(errors), 100, 30, 0.01)
    assert (done, converged, rounds) == (90, True, [30, 30, 30])  # 0.3 -> 0.299 gains < 1%
    errors = iter([1.0, 0.5, 0.25, 0.125])
    done, converged = scaling.until_converged(train_round, lambda: next(errors), 70, 30, 0.01)
    assert (done, converged, rounds[3:]) == (70, False, [30, 30, 10])  # budget ran out
    done, converged = scaling.until_converged(lambda n: 0, lambda: 1.0, 70, 30, 0.01)
    assert (done, converged) == (0, True)  # the optimiser did nothing: nothing left to gain


def test_make_data_keeps_the_test_samples_and_nests_the_training_samples():
    small, large = scaling.make_data(10, 5, seed=3), scaling.make_data(40, 5, seed=3)
    assert torch.equal(small.x_test, large.x_test) and small.x_test.dtype == torch.float64
    assert torch.equal(small.x_train, large.x_train[:10])  # nested training sets
    torch.testing.assert_close(small.y_train, scaling.target_function(small.x_train))
    assert float(small.x_train.abs().max()) <= 1.0


def test_target_is_judged_against_the_grid_not_the_trainable_count():
    grids = [5, 10, 20]
    records = [
        {
            "part": "fit",
            "model": "KAN",
            "widths": [2, 1, 1],
            "optimizer": "lbfgs",
            "n_train": 1000,
            "grid": g,
            "n_params": 3 * (g + 5),
            "n_params_paper": 3 * g,
            "test_rmse": g**-3.0,
        }
        for g in grids
    ]
    (entry,) = scaling.slopes(records)
    assert entry["slope_paper"] == pytest.approx(-3.0, abs=1e-12)
    assert entry["slope"] < -3.5  # the trainable count makes the same data look steeper
    assert entry["meets_target"] is False
    assert entry["window"] == grids and entry["series"] == "KAN [2, 1, 1] lbfgs, 1000 samples"


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
    assert result["parts"] == ["fit", "pde"]
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
    expected = {
        "KAN [2, 1, 1] lbfgs, 400 samples",
        "KAN [2, 1, 1] lm, 400 samples",
        "KAN [2, 1, 1] lm, 800 samples",
        "KAN [2, 10, 1] lbfgs",
        "MLP depth 2 adam+lbfgs, 400 samples",
    }
    assert expected <= names
    budgets = "\n".join(scaling.budgets(result["settings"]))
    assert "at most 100" in budgets and "rounds of 50" in budgets


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


def test_extra_grids_are_tried_only_while_the_error_still_scales():
    data = scaling.make_data(400, 200, seed=0)
    settings = replace(scaling.QUICK, grids=(3, 5), extra_grids=(8, 400), lm_iters=0)
    records = scaling.kan_fit_series((2, 1, 1), data, settings)
    grids = [r["grid"] for r in records]
    errors = [r["test_rmse"] for r in records]
    assert grids[:3] == [3, 5, 8]  # 3 -> 5 fell faster than 1 / grid
    still_scaling = errors[2] <= errors[1] * 5 / 8
    assert (400 in grids) == still_scaling


@pytest.mark.bench
@pytest.mark.timeout(600)
def test_kan_211_converged_slope_reaches_the_target_and_lbfgs_lags():
    """The committed study's [2, 1, 1] series up to grid 50 (a few minutes): trained to
    convergence (Levenberg-Marquardt) the slope against the grid is <= -3.5; L-BFGS stalls."""
    torch.set_num_threads(1)
    data = scaling.make_data(1000, 1000, seed=0)
    settings = replace(scaling.FULL, grids=(3, 5, 10, 20, 50), extra_grids=())
    records = scaling.kan_fit_series((2, 1, 1), data, settings)
    entries = {e["series"]: e for e in scaling.slopes(records)}
    lm = entries["KAN [2, 1, 1] lm, 1000 samples"]
    assert lm["meets_target"] and lm["slope_paper"] <= scaling.TARGET_SLOPE
    final = {r["optimizer"]: r["test_rmse"] for r in records if r["grid"] == 50}
    assert final["lm"] < final["lbfgs"] / 10
