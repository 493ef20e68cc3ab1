"""``kanphys bench export``: the cube mesh, the memory measurement, and a quick run of it all."""

import json

import numpy as np
import pytest
import pyvista as pv

from kanphys.bench import export as bench
from kanphys.cli import main


def test_cube_mesh_has_n_cubed_points_and_positive_hexahedra_filling_the_cube():
    mesh = bench.cube_mesh(3)
    assert mesh.points.shape == (27, 3)
    [block] = mesh.cells
    assert block.type == "hexahedron" and block.data.shape == (8, 8)
    volumes = pv.from_meshio(mesh).compute_cell_sizes(length=False, area=False)["Volume"]
    np.testing.assert_allclose(volumes, 0.125, rtol=1e-12)  # VTK vertex order: not inverted
    np.testing.assert_array_equal(mesh.points[1], [0.5, 0.0, 0.0])  # x fastest


def test_peak_rss_grows_by_what_is_allocated():
    if not bench._reset_peak():
        pytest.skip("no /proc/self/clear_refs to reset the peak resident set")
    before = bench.peak_rss_mb()
    block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    assert bench.peak_rss_mb() - before >= 60
    del block


def test_quick_benchmark_measures_evaluation_and_export(tmp_path, capsys):
    target = tmp_path / "export.json"
    assert main(["bench", "export", "--quick", "--json", str(target)]) == 0
    content = json.loads(target.read_text())
    records = content["records"]
    stages = [(r["stage"], r["points"], r["chunk"]) for r in records]
    assert stages == [
        ("evaluate", 1728, 64),
        ("export", 1728, 64),
        ("evaluate", 1728, 512),
        ("export", 1728, 512),
        ("evaluate", 216, 64),
        ("evaluate", 216, 512),
    ]
    for record in records:
        n = round(record["points"] ** (1 / 3))
        assert record["wall_s"] > 0 and record["cells"] == (n - 1) ** 3
    for record in records[:2]:
        # u, u_exact, u_error, residual (1 column each) and grad_u (3) at every point, float64
        if record["stage"] == "evaluate":
            assert record["result_mb"] == round(1728 * 7 * 8 / 2**20, 1)
            assert record["working_mb"] == pytest.approx(
                record["peak_rss_growth_mb"] - record["result_mb"], abs=0.11
            )
        else:
            assert record["written_mb"] > 0 and record["working_mb"] is None
    report = (tmp_path / "export.md").read_text()
    assert "| evaluate | 1,728 | 64 |" in report and "working memory" in report
    assert "# Export onto a million-point mesh" in capsys.readouterr().out


def test_a_failing_step_in_its_own_process_is_reported_naming_the_step(tmp_path):
    spec = {"stage": "evaluate", "run": str(tmp_path / "missing"), "mesh": "", "chunk": 7}
    spec |= {"points": 8, "cells": 1, "threads": 1}
    with pytest.raises(RuntimeError, match=r"step evaluate \(chunk 7\): FileNotFoundError"):
        bench.measure(spec)
