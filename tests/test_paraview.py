"""Every file type kanphys writes, opened in ParaView itself (``pvpython`` under a private Xvfb).

The test installs Debian's ``paraview``, ``python3-paraview`` and ``xvfb`` packages when they
are missing (as root, with apt-get; about 90 s), makes two tiny runs (poisson2d and heat1d),
exports them in every format, and has ``pvpython`` open each file and report its arrays: names,
component counts, value ranges, point and cell counts and time steps. Those are compared here
with the trained model evaluated at the same points, independently of the writers. ParaView
also renders screenshots, which must not be blank; with ``KANPHYS_SCREENSHOTS=DIR`` they are
copied to DIR, and the runs use the problem files' plans with 100 steps per L-BFGS stage, so the
pictures show trained solutions (this is how ``docs/img/paraview-*.png`` are made; minutes).

Facts this relies on: Debian's ParaView 5.11 crashes without an X server, so it runs under
``Xvfb -displayfd`` (a free display, no clashes between parallel jobs); ``sys.exit`` inside
pvpython crashes, ``os._exit`` does not; an XDMF reader shows data only after the pipeline
is updated at an explicit time.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import matplotlib.image
import meshio
import numpy as np
import pytest

import kanphys as kp
from kanphys.cli import main
from kanphys.geometry.mesh import plate_with_hole_mesh
from kanphys.io.export import Sites, evaluate, grid_sites, mesh_sites
from kanphys.runner import load_problem_file

pytestmark = pytest.mark.paraview

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
PACKAGES = ["paraview", "python3-paraview", "xvfb"]
SHRINK = ["lbfgs_steps=1", "grid=5", "interior=64", "boundary=32", "initial=16"]
SHRINK += ["--dtype", "float64"]
N = 21  # grid points per axis
TIMES = np.linspace(0.0, 1.0, 5)


def _apt_get(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=300"]  # another apt-get may hold the lock
    return subprocess.run(
        ["apt-get", *wait, *arguments], env=environment, capture_output=True, text=True, timeout=900
    )


def ensure_paraview() -> str:
    """Path of pvpython, installing Debian's ParaView and Xvfb first if needed (as root)."""
    if shutil.which("pvpython") and shutil.which("Xvfb"):
        return shutil.which("pvpython")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(
            "pvpython or Xvfb missing, and installing them needs root: "
            f"apt-get install --no-install-recommends {' '.join(PACKAGES)}"
        )
    if not shutil.which("apt-get"):
        pytest.skip(f"pvpython or Xvfb missing and no apt-get to install {' '.join(PACKAGES)}")
    install = ("install", "-y", "--no-install-recommends", *PACKAGES)
    result = _apt_get(*install)
    if result.returncode != 0:  # stale package lists: refresh once and retry
        _apt_get("update")
        result = _apt_get(*install)
    if result.returncode != 0 or not shutil.which("pvpython"):  # no package mirror reachable
        pytest.skip(f"apt-get {' '.join(install)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    return shutil.which("pvpython")


@contextmanager
def private_display():
    """An Xvfb server on a display it picks itself (``-displayfd``); yields ``":N"``."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 30)
        number = os.read(read, 64).decode().strip() if ready else ""
        if not number:
            pytest.fail("Xvfb did not report a display within 30 s")
        yield f":{number}"
    finally:
        os.close(read)
        server.terminate()
        server.wait(timeout=10)


# The script pvpython runs: open each file, update at the asked time, report, render.
PVPYTHON_SCRIPT = r"""
import json
import os
import sys
import traceback

from paraview import servermanager
from paraview.simple import (
    ColorBy, CreateView, Delete, GetDisplayProperties, OpenDataFile, ResetCamera,
    SaveScreenshot, Show, UpdatePipeline, WarpByScalar,
)


def arrays(data):
    out = {}
    for name in data.keys():
        array = data[name]
        n = array.GetNumberOfComponents()
        out[name] = {"components": n, "ranges": [list(array.GetRange(c)) for c in range(n)]}
    return out


def units(data):  # UNITS_LABEL of the point arrays; field data string arrays units_<name>
    from vtkmodules.vtkCommonCore import vtkDataArray

    out = {}
    points = data.GetPointData()
    for i in range(points.GetNumberOfArrays()):
        information = points.GetArray(i).GetInformation()
        if information is not None and information.Has(vtkDataArray.UNITS_LABEL()):
            out[points.GetArrayName(i)] = information.Get(vtkDataArray.UNITS_LABEL())
    field = data.GetFieldData()
    for i in range(field.GetNumberOfArrays()):
        array = field.GetAbstractArray(i)
        if array.GetName().startswith("units_"):
            out[array.GetName()] = [array.GetValue(j) for j in range(array.GetNumberOfValues())]
    return out


def inspect(entry):
    reader = OpenDataFile(entry["path"])
    if reader is None:
        return {"error": "ParaView found no reader"}
    times = list(getattr(reader, "TimestepValues", None) or [])
    time = entry.get("time")
    reader.UpdatePipeline(time) if time is not None else reader.UpdatePipeline()
    info = reader.GetDataInformation()
    report = {
        "reader": reader.GetXMLName(),
        "times": times,
        "points": info.GetNumberOfPoints(),
        "cells": info.GetNumberOfCells(),
        "point_data": arrays(reader.PointData),
        "cell_data": arrays(reader.CellData),
    }
    if entry.get("units"):
        report["units"] = units(servermanager.Fetch(reader))
    if entry.get("screenshot"):
        view = CreateView("RenderView")
        view.ViewSize = [900, 700]
        view.OrientationAxesVisibility = 0
        if time is not None:
            view.ViewTime = time
        shown = reader
        if entry.get("warp"):  # a 1-D field as the curve y = scale * u(x), max height `warp`
            shown = WarpByScalar(Input=reader, Scalars=["POINTS", entry["color"]])
            low, high = reader.PointData[entry["color"]].GetRange()
            scale = entry["warp"] / max(abs(low), abs(high), 1e-300)
            shown.Normal, shown.UseNormal, shown.ScaleFactor = [0, 1, 0], 1, scale
        display = Show(shown, view)
        display.SetRepresentationType("Surface")
        if entry.get("edges"):
            display.SetRepresentationType("Surface With Edges")
        if entry.get("line_width"):
            display.LineWidth = entry["line_width"]
        ColorBy(display, (entry.get("association", "POINTS"), entry["color"]))
        display.RescaleTransferFunctionToDataRange(True, False)
        display.SetScalarBarVisibility(view, True)
        view.InteractionMode = "2D"
        ResetCamera(view)
        SaveScreenshot(entry["screenshot"], view, ImageResolution=[900, 700])
        Delete(view)
    return report


spec = json.load(open(sys.argv[1]))
results = {}
for entry in spec:
    try:
        results[entry["name"]] = inspect(entry)
    except Exception:
        results[entry["name"]] = {"error": traceback.format_exc()}
with open(sys.argv[2], "w") as stream:
    json.dump(results, stream)
    stream.flush()
    os.fsync(stream.fileno())
os._exit(0)
"""


# A 3-D problem for the ImageData VTKHDF check (1-D and 2-D grids are written as UnstructuredGrid).
BOX_PROBLEM = """
import kanphys as kp
from kanphys import lap

box = kp.Box((0.0, 0.0, 0.0), (1.0, 1.0, 2.0))


def xy(p):
    return p[:, 0] * p[:, 1]


problem = kp.Problem(
    "box",
    domain=box,
    fields=["u"],
    equations={"laplace": lambda s: lap(s.u)},
    conditions=[kp.Dirichlet("walls", on=box.boundary, field="u", value=xy)],
    exact={"u": xy},
)
"""
M = 6  # points per axis of the 3-D grid


def make_run(folder: Path, name: str) -> Path:
    out = folder / name
    source = PROBLEMS_DIR / f"{name}.py"
    if name == "box":
        source = folder / "box.py"
        source.write_text(BOX_PROBLEM)
    argv = ["run", str(source), "lbfgs_steps=100"]  # docs: trained (shortened) plans
    if name == "box" or not os.environ.get("KANPHYS_SCREENSHOTS"):
        argv += [*SHRINK, "--quick"]
    assert main([*argv, "--resolution", "11", "--out", str(out), "--no-progress"]) == 0
    return out


def export(run_dir: Path, out: Path, fmt: str, *options: str) -> Path:
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out), *options]) == 0
    return out


def expected(run_dir: Path, sites: Sites, times=None) -> dict[str, dict]:
    """Components and per-component ranges of every field, from the model (last time)."""
    problem = load_problem_file(kp.Run.load(run_dir).config["problem_file"]).problem
    evaluation = evaluate(problem, kp.Run.load(run_dir).model(), sites, times=times)
    out = {}
    for name, value in evaluation.frames[-1].items():
        columns = (
            value[:, None] if value.ndim == 1 else np.pad(value, ((0, 0), (0, 3 - value.shape[1])))
        )
        ranges = [[float(np.nanmin(c)), float(np.nanmax(c))] for c in columns.T]
        out[name] = {"components": columns.shape[1], "ranges": ranges}
    return out


def centroid_sites(sites: Sites) -> Sites:
    centroids = np.concatenate([sites.points[c].mean(axis=1) for _, c in sites.cells if len(c)])
    return Sites("points", centroids, ())


@pytest.fixture(scope="module")
def paraview_report(tmp_path_factory):
    pvpython = ensure_paraview()
    folder = tmp_path_factory.mktemp("paraview")
    poisson = make_run(folder, "poisson2d")
    heat = make_run(folder, "heat1d")
    box = make_run(folder, "box")
    plate = folder / "plate.msh"
    meshio.write(plate, plate_with_hole_mesh(n_around=32, n_radial=6), "gmsh22", binary=False)
    grid = grid_sites(kp.Rectangle((-1.0, -1.0), (1.0, 1.0)), N)
    line = grid_sites(kp.Interval(0.0, 1.0), N)
    mesh = mesh_sites(plate, 2)
    grid_expected = expected(poisson, grid)
    series_expected = expected(heat, line, TIMES)
    shots = folder / "shots"
    shots.mkdir()
    times = f"0:1:{len(TIMES)}"
    resolution = ("--resolution", str(N))
    square_grid = {"expect": grid_expected, "points": N * N, "cells": (N - 1) ** 2}
    series = {"expect": series_expected, "points": N, "cells": N - 1, "times": TIMES.tolist()}
    box_grid = grid_sites(kp.Box((0.0, 0.0, 0.0), (1.0, 1.0, 2.0)), M)
    on_plate = ("--mesh", str(plate))
    spec = [
        {"name": "vtu", "path": export(poisson, folder / "p.vtu", "vtu", *resolution),
         **square_grid},
        {"name": "vti", "path": export(poisson, folder / "p.vti", "vti", *resolution),
         **square_grid, "screenshot": str(shots / "paraview-poisson2d-vti.png"), "color": "u"},
        {"name": "vts", "path": export(poisson, folder / "p.vts", "vts", *resolution),
         **square_grid},
        {"name": "vtkhdf-image",
         "path": export(box, folder / "b.hdf", "vtkhdf", "--resolution", str(M)),
         "expect": expected(box, box_grid), "points": M**3, "cells": (M - 1) ** 3},
        {"name": "vtkhdf-grid", "path": export(poisson, folder / "p.hdf", "vtkhdf", *resolution),
         **square_grid, "screenshot": str(shots / "paraview-poisson2d-hdf.png"), "color": "u"},
        {"name": "mesh-vtu", "path": export(poisson, folder / "plate.vtu", "vtu", *on_plate),
         "expect": expected(poisson, mesh), "points": len(mesh.points),
         "cells": sum(len(c) for _, c in mesh.cells),
         "expect_cells": expected(poisson, centroid_sites(mesh)),
         "screenshot": str(shots / "paraview-plate-cells.png"), "color": "u_error",
         "association": "CELLS", "edges": True},
        {"name": "vtkhdf-mesh", "path": export(poisson, folder / "plate.hdf", "vtkhdf", *on_plate),
         "expect": expected(poisson, mesh), "points": len(mesh.points)},
        {"name": "pvd",
         "path": export(heat, folder / "h.pvd", "pvd", "--times", times, *resolution),
         **series, "time": 1.0},
        {"name": "xdmf",
         "path": export(heat, folder / "h.xdmf", "xdmf", "--times", times, *resolution),
         **series, "time": 1.0},
        {"name": "run-pvd", "path": heat / "fields.pvd", "times": np.linspace(0, 1, 11).tolist(),
         "time": 0.5, "expect": expected(heat, grid_sites(kp.Interval(0.0, 1.0)), [0.5]),
         "screenshot": str(shots / "paraview-heat1d-series.png"), "color": "u", "line_width": 6,
         "warp": 0.4, "min_drawn": 0.005},
        {"name": "vtkhdf-units", "path": export(heat, folder / "h.hdf", "vtkhdf", *resolution),
         "units": True},
        {"name": "run-vtu", "path": heat / "fields.vtu", "points": 11 * 11, "units": True,
         "screenshot": str(shots / "paraview-heat1d-space-time.png"), "color": "u"},
    ]  # fmt: skip
    for entry in spec:
        entry["path"] = str(entry["path"])
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "check.py").write_text(PVPYTHON_SCRIPT)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with private_display() as display:
        result = subprocess.run(
            [pvpython, "--force-offscreen-rendering", str(folder / "check.py"),
             str(folder / "spec.json"), str(folder / "report.json")],
            env={**environment, "DISPLAY": display, "OMP_NUM_THREADS": "1"},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    report_file = folder / "report.json"
    assert report_file.is_file(), f"pvpython failed ({result.returncode}):\n{result.stderr}"
    report = json.loads(report_file.read_text())
    copy_to = os.environ.get("KANPHYS_SCREENSHOTS")
    if copy_to:
        for png in shots.glob("*.png"):
            shutil.copy(png, Path(copy_to) / png.name)
    return {entry["name"]: (entry, report[entry["name"]]) for entry in spec}


def check_arrays(reported: dict, wanted: dict, what: str) -> None:
    assert set(wanted) <= set(reported), f"{what}: missing {set(wanted) - set(reported)}"
    for name, want in wanted.items():
        got = reported[name]
        assert got["components"] == want["components"], f"{what} {name} components"
        np.testing.assert_allclose(
            got["ranges"], want["ranges"], rtol=1e-9, atol=1e-12, err_msg=f"{what} {name} range"
        )


NAMES = ["vtu", "vti", "vts", "vtkhdf-image", "vtkhdf-grid", "mesh-vtu", "vtkhdf-mesh", "pvd"]
NAMES += ["xdmf", "run-pvd"]


@pytest.mark.parametrize("name", NAMES)
def test_paraview_reads_the_arrays_kanphys_wrote(paraview_report, name):
    entry, report = paraview_report[name]
    assert "error" not in report, report.get("error")
    check_arrays(report["point_data"], entry["expect"], f"{name} point data")
    if "expect_cells" in entry:
        check_arrays(report["cell_data"], entry["expect_cells"], f"{name} cell data")
    if "points" in entry:
        assert report["points"] == entry["points"]
    if "cells" in entry:
        assert report["cells"] == entry["cells"]


@pytest.mark.parametrize("name", ["pvd", "xdmf", "run-pvd"])
def test_paraview_sees_every_time_step(paraview_report, name):
    entry, report = paraview_report[name]
    np.testing.assert_allclose(report["times"], entry["times"], rtol=1e-12, atol=1e-15)


def test_paraview_reads_vtkhdf_with_its_own_reader(paraview_report):
    for name in ("vtkhdf-image", "vtkhdf-grid", "vtkhdf-mesh"):
        assert paraview_report[name][1]["reader"] in ("HDFReader", "VTKHDFReader")


def test_paraview_reads_the_units_from_vtu_and_vtkhdf(paraview_report):
    vtu = paraview_report["run-vtu"][1]  # heat1d declares x [m], t [s], u [K], heat [K/s]
    assert "error" not in vtu, vtu.get("error")
    assert vtu["units"]["u"] == "K" and vtu["units"]["u_error"] == "K"
    assert vtu["units"]["grad_u"] == "K/m" and vtu["units"]["residual_heat"] == "K/s"
    hdf = paraview_report["vtkhdf-units"][1]  # x-t grid: an UnstructuredGrid of quads
    assert "error" not in hdf, hdf.get("error")
    assert hdf["units"]["units_u"] == ["K"] and hdf["units"]["units_grad_u"] == ["K/m"]
    assert hdf["units"]["units_residual_heat"] == ["K/s"]


@pytest.mark.parametrize("name", ["vti", "vtkhdf-grid", "mesh-vtu", "run-pvd", "run-vtu"])
def test_paraview_screenshots_are_not_blank(paraview_report, name):
    entry, report = paraview_report[name]
    assert "error" not in report, report.get("error")
    image = matplotlib.image.imread(entry["screenshot"])[..., :3]
    assert image.shape[:2] == (700, 900)
    background = np.median(image.reshape(-1, 3), axis=0)
    drawn = np.abs(image - background).sum(axis=2) > 0.05
    least = entry.get("min_drawn", 0.02)
    assert drawn.mean() > least, f"{name}: only {drawn.mean():.2%} of the pixels are drawn"
    colours = np.unique((image[drawn] * 255).astype(np.uint8), axis=0)
    assert len(colours) > 20, f"{name}: {len(colours)} colours drawn; the colour map is missing"
