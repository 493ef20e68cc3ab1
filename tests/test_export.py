"""``kanphys export``: every writer read back (meshio, h5py, pyvista) against the model itself.

Two tiny run directories (poisson2d and heat1d, one L-BFGS step each on few points) are made
once through ``kanphys.cli.main``; every export here reads them. The values written must equal
the trained model evaluated at the written points.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest
import pyvista as pv
import torch
from scipy.spatial import Delaunay

import kanphys as kp
from kanphys import lap
from kanphys.cli import main
from kanphys.io.export import Evaluation, evaluate, grid_sites, point_sites, write
from kanphys.io.vtkhdf import write_vtkhdf

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
SHRINK = ["lbfgs_steps=1", "grid=5", "interior=64", "boundary=32"]
N = 11  # export grid points per axis


def make_run(tmp_path_factory, name: str, extra=()) -> Path:
    out = tmp_path_factory.mktemp(name) / "run"
    argv = ["run", str(PROBLEMS_DIR / f"{name}.py"), *SHRINK, *extra, "--quick"]
    assert main([*argv, "--resolution", "11", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def poisson_run(tmp_path_factory):
    return make_run(tmp_path_factory, "poisson2d")


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    return make_run(tmp_path_factory, "heat1d", ["initial=16"])


def predict(run_dir: Path, points: np.ndarray) -> np.ndarray:
    """The run's model at ``points`` (every coordinate, time last)."""
    model = kp.Run.load(run_dir).model()
    with torch.no_grad():
        return model(torch.as_tensor(points, dtype=model.dtype))[:, 0].double().numpy()


def export(run_dir: Path, out: Path, fmt: str, *options: str) -> Path:
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out), *options]) == 0
    return out


def check_poisson_data(run_dir, points, data, n_points):
    """Point data of a poisson2d export at ``points`` (3 columns, z = 0)."""
    assert {"u", "grad_u", "u_exact", "u_error", "residual_poisson"} <= set(data)
    assert np.asarray(data["u"]).shape == (n_points,)
    assert np.asarray(data["grad_u"]).shape == (n_points, 3)
    np.testing.assert_array_equal(np.asarray(data["grad_u"])[:, 2], 0)
    np.testing.assert_allclose(points[:, 2], 0)
    np.testing.assert_allclose(data["u"], predict(run_dir, points[:, :2]), atol=1e-10)
    exact = np.sin(np.pi * points[:, 0]) * np.sin(np.pi * points[:, 1])
    np.testing.assert_allclose(data["u_exact"], exact, atol=1e-12)


def test_vtu_round_trips_through_meshio_and_pyvista(poisson_run, tmp_path):
    path = export(poisson_run, tmp_path / "out.vtu", "vtu", "--resolution", str(N))
    mesh = meshio.read(path)
    assert [(c.type, c.data.shape) for c in mesh.cells] == [("quad", ((N - 1) ** 2, 4))]
    check_poisson_data(poisson_run, mesh.points, mesh.point_data, N * N)
    grid = pv.read(path)
    assert (grid.n_points, grid.n_cells) == (N * N, (N - 1) ** 2)
    check_poisson_data(poisson_run, grid.points, grid.point_data, N * N)
    metadata = json.loads((tmp_path / "out.metadata.json").read_text())
    assert metadata["problem"] == "poisson2d"
    assert metadata["metrics"]["problem"] == "poisson2d"
    assert metadata["config"]["problem_file"].endswith("poisson2d.py")
    assert "torch" in metadata["versions"]


@pytest.mark.parametrize("fmt", ["vti", "vts"])
def test_vti_and_vts_hold_the_regular_grid(poisson_run, tmp_path, fmt):
    path = export(poisson_run, tmp_path / f"out.{fmt}", fmt, "--resolution", str(N))
    grid = pv.read(path)
    assert type(grid) is {"vti": pv.ImageData, "vts": pv.StructuredGrid}[fmt]
    assert grid.dimensions == (N, N, 1)
    assert (grid.n_points, grid.n_cells) == (N * N, (N - 1) ** 2)
    np.testing.assert_allclose(grid.bounds[:4], [-1, 1, -1, 1])
    check_poisson_data(poisson_run, np.asarray(grid.points), grid.point_data, N * N)
    assert "vtkGhostType" not in grid.point_data  # the square fills its bounding box
    assert grid.field_data["kanphys_problem"][0] == "poisson2d"
    metadata = json.loads(grid.field_data["kanphys_metadata"][0])
    assert metadata["metrics"] == kp.Run.load(poisson_run).metrics


def test_vtkhdf_of_a_2d_grid_is_an_unstructured_grid_of_quads(poisson_run, tmp_path):
    # ParaView 5.11 cannot read ImageData of 2-D grids, so they are written as quads
    path = export(poisson_run, tmp_path / "out.hdf", "vtkhdf", "--resolution", str(N))
    with h5py.File(path, "r") as h5:
        root = h5["VTKHDF"]
        assert list(root.attrs["Version"]) == [1, 0]
        assert root.attrs["Type"] == b"UnstructuredGrid"
        assert root["NumberOfPoints"][:].tolist() == [N * N]
        assert root["NumberOfCells"][:].tolist() == [(N - 1) ** 2]
        assert set(root["Types"][:]) == {9}  # VTK_QUAD
        assert root["PointData/grad_u"].shape == (N * N, 3)
        assert h5.attrs["kanphys_problem"] == "poisson2d"
    grid = pv.read(path)
    assert isinstance(grid, pv.UnstructuredGrid) and grid.n_cells == (N - 1) ** 2
    np.testing.assert_allclose(grid.points[:, :2].min(axis=0), [-1, -1])
    np.testing.assert_allclose(grid.points[:, :2].max(axis=0), [1, 1])
    np.testing.assert_allclose(grid.compute_cell_sizes()["Area"], (2 / (N - 1)) ** 2)
    check_poisson_data(poisson_run, np.asarray(grid.points), grid.point_data, N * N)


def test_vtkhdf_of_a_1d_grid_is_an_unstructured_grid_of_lines(tmp_path):
    sites = grid_sites(kp.Interval(0.0, 1.0), 5)
    evaluation = Evaluation(sites, ("x",), ({"u": sites.points[:, 0] ** 2},))
    path = write_vtkhdf(tmp_path / "line.hdf", evaluation)
    with h5py.File(path, "r") as h5:
        assert h5["VTKHDF"].attrs["Type"] == b"UnstructuredGrid"
        assert h5["VTKHDF/Connectivity"][:].tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
        assert set(h5["VTKHDF/Types"][:]) == {3}  # VTK_LINE
    grid = pv.read(path)
    np.testing.assert_array_equal(grid.points[:, 0], [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(grid.point_data["u"], [0.0, 0.0625, 0.25, 0.5625, 1.0])


def test_vtkhdf_unstructured_grid_of_a_point_cloud(poisson_run, tmp_path):
    cloud = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    np.save(tmp_path / "cloud.npy", cloud)
    path = export(
        poisson_run, tmp_path / "cloud.hdf", "vtkhdf", "--points", str(tmp_path / "cloud.npy")
    )
    with h5py.File(path, "r") as h5:
        root = h5["VTKHDF"]
        assert root.attrs["Type"] == b"UnstructuredGrid"
        assert root["NumberOfPoints"][:].tolist() == [50]
        assert root["NumberOfCells"][:].tolist() == [50]
        assert root["Offsets"].shape == (51,) and set(root["Types"][:]) == {1}  # VTK_VERTEX
    grid = pv.read(path)
    assert isinstance(grid, pv.UnstructuredGrid) and (grid.n_points, grid.n_cells) == (50, 50)
    np.testing.assert_allclose(grid.points[:, :2], cloud)
    check_poisson_data(poisson_run, np.asarray(grid.points), grid.point_data, 50)


def disk_mesh() -> meshio.Mesh:
    """A triangulated unit disk, points stored with z = 0."""
    radius, angle = np.meshgrid(np.linspace(0.2, 1, 5), np.linspace(0, 2 * np.pi, 17)[:-1])
    xy = np.vstack(
        [[0.0, 0.0], np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1).reshape(-1, 2)]
    )
    triangles = Delaunay(xy).simplices
    return meshio.Mesh(np.hstack([xy, np.zeros((len(xy), 1))]), [("triangle", triangles)])


@pytest.mark.parametrize("suffix", [".msh", ".vtu"])
def test_export_onto_a_triangle_mesh(poisson_run, tmp_path, suffix):
    source = disk_mesh()
    mesh_file = tmp_path / f"disk{suffix}"
    meshio.write(mesh_file, source)
    path = export(poisson_run, tmp_path / "on_disk.vtu", "vtu", "--mesh", str(mesh_file))
    mesh = meshio.read(path)
    np.testing.assert_allclose(mesh.points, source.points)
    blocks = [(c.type, c.data) for c in mesh.cells]
    assert [t for t, _ in blocks] == ["triangle"]
    np.testing.assert_array_equal(blocks[0][1], source.cells[0].data)
    check_poisson_data(poisson_run, mesh.points, mesh.point_data, len(source.points))


def test_pvd_time_series_of_the_heat_equation(heat_run, tmp_path):
    path = export(heat_run, tmp_path / "heat.pvd", "pvd", "--times", "0:1:3", "--resolution", "9")
    root = ET.parse(path).getroot()
    entries = root.findall("Collection/DataSet")
    assert [float(e.get("timestep")) for e in entries] == [0.0, 0.5, 1.0]
    reader = pv.get_reader(path)
    assert reader.time_values == [0.0, 0.5, 1.0]
    for entry, t in zip(entries, [0.0, 0.5, 1.0], strict=True):
        piece = pv.read(path.parent / entry.get("file"))
        assert isinstance(piece, pv.ImageData) and piece.dimensions == (9, 1, 1)
        x = np.asarray(piece.points)[:, 0]
        np.testing.assert_allclose(x, np.linspace(0, 1, 9))
        assert piece.point_data["grad_u"].shape == (9, 3)
        assert piece.field_data["TimeValue"][0] == t
        expected = predict(heat_run, np.stack([x, np.full_like(x, t)], 1))
        np.testing.assert_allclose(piece.point_data["u"], expected, atol=1e-10)
        exact = np.exp(-(np.pi**2) * t) * np.sin(np.pi * x)
        np.testing.assert_allclose(piece.point_data["u_exact"], exact, atol=1e-12)


def test_xdmf_time_series_references_datasets_in_its_h5(heat_run, tmp_path):
    path = export(
        heat_run, tmp_path / "heat.xdmf", "xdmf", "--times", "0:0.5:4", "--resolution", "9"
    )
    times = np.linspace(0, 0.5, 4)
    root = ET.parse(path).getroot()
    collection = root.find("Domain/Grid")
    assert (collection.get("GridType"), collection.get("CollectionType")) == (
        "Collection",
        "Temporal",
    )
    grids = collection.findall("Grid")
    np.testing.assert_allclose([float(g.find("Time").get("Value")) for g in grids], times)
    with h5py.File(tmp_path / "heat.h5", "r") as h5:
        for grid in grids:
            for item in grid.iter("DataItem"):
                file_name, dataset = item.text.split(":")
                assert file_name == "heat.h5"
                shape = tuple(int(n) for n in item.get("Dimensions").split())
                assert h5[dataset].shape == shape
            names = {a.get("Name"): a.get("AttributeType") for a in grid.findall("Attribute")}
            assert names["u"] == "Scalar" and names["grad_u"] == "Vector"
        assert grids[0].find("Topology").get("TopologyType") == "Polyline"
        assert h5["mesh/points"].shape == (9, 3)
        assert h5.attrs["kanphys_problem"] == "heat1d"
    with meshio.xdmf.TimeSeriesReader(path) as reader:
        points, cells = reader.read_points_cells()
        assert cells[0].type == "line" and len(cells[0].data) == 8
        for k, t in enumerate(times):
            time, data, _ = reader.read_data(k)
            assert time == pytest.approx(t)
            expected = predict(heat_run, np.stack([points[:, 0], np.full(9, t)], 1))
            np.testing.assert_allclose(data["u"], expected, atol=1e-10)
            assert data["grad_u"].shape == (9, 3)


def test_results_h5_layout_of_a_time_series(heat_run, tmp_path):
    path = export(heat_run, tmp_path / "results.h5", "h5", "--times", "0:1:5", "--resolution", "7")
    with h5py.File(path, "r") as h5:
        assert h5.attrs["layout"] == "kanphys-results-1"
        assert h5.attrs["problem"] == "heat1d" and h5.attrs["kind"] == "grid"
        assert list(h5["coordinates"].attrs["names"]) == ["x"]
        np.testing.assert_allclose(h5["coordinates"][:, 0], np.linspace(0, 1, 7))
        np.testing.assert_allclose(h5["times"][:], np.linspace(0, 1, 5))
        assert h5["cells/line"].shape == (6, 2)
        assert h5["fields/u"].shape == (5, 7)
        assert h5["gradient/u"].shape == (5, 7, 1)
        assert h5["exact/u"].shape == h5["error/u"].shape == h5["residual/heat"].shape == (5, 7)
        assert list(h5.attrs["shape"]) == [7] and h5["inside"][:].all()
        x = h5["coordinates"][:, 0]
        for k, t in enumerate(h5["times"][:]):
            expected = predict(heat_run, np.stack([x, np.full_like(x, t)], 1))
            np.testing.assert_allclose(h5["fields/u"][k], expected, atol=1e-10)
        assert json.loads(h5.attrs["metadata"])["metrics"]["problem"] == "heat1d"


def test_results_h5_of_points_from_a_csv_with_selected_fields(poisson_run, tmp_path):
    cloud = np.array([[0.0, 0.0], [0.5, -0.25], [-0.75, 0.5]])
    np.savetxt(tmp_path / "p.csv", cloud, delimiter=",", header="x,y", comments="")
    path = export(
        poisson_run,
        tmp_path / "r.h5",
        "h5",
        "--points",
        str(tmp_path / "p.csv"),
        "--fields",
        "u,grad_u",
    )
    with h5py.File(path, "r") as h5:
        assert set(h5) == {"coordinates", "cells", "fields", "gradient"}
        assert h5.attrs["kind"] == "points"
        np.testing.assert_allclose(h5["coordinates"][:], cloud)
        np.testing.assert_allclose(h5["fields/u"][:], predict(poisson_run, cloud), atol=1e-10)
        assert h5["gradient/u"].shape == (3, 2)


def test_heat_problem_without_times_exports_the_space_time_grid(heat_run, tmp_path):
    grid = pv.read(export(heat_run, tmp_path / "xt.vti", "vti", "--resolution", "5"))
    assert grid.dimensions == (5, 5, 1)
    points = np.asarray(grid.points)[:, :2]
    np.testing.assert_allclose(grid.point_data["u"], predict(heat_run, points), atol=1e-10)


@pytest.fixture(scope="module")
def plate():
    """A square with a hole (CSG) and a small untrained surrogate on it."""
    domain = kp.Rectangle((0.0, 0.0), (1.0, 1.0)) - kp.Disk((0.5, 0.5), 0.3)
    problem = kp.Problem(
        "plate",
        domain=domain,
        fields=["u"],
        equations={"laplace": lambda s: lap(s.u)},
        conditions=[kp.Dirichlet("wall", on=domain.boundary, field="u", value=0.0)],
    )
    net = kp.KAN([2, 3, 1], basis=kp.BSpline(grid=5), generator=torch.Generator().manual_seed(0))
    model = kp.Surrogate(net, [0.0, 0.0], [1.0, 1.0], {})
    return problem, model


def test_csg_grid_blanks_outside_points_in_vti_and_removes_cells_in_vtu(plate, tmp_path):
    problem, model = plate
    sites = grid_sites(problem.domain, 21)
    evaluation = evaluate(problem, model, sites, fields=["u", "grad_u"])
    outside = ~sites.inside
    assert outside.any() and not outside.all()
    with torch.no_grad():
        expected = model(torch.as_tensor(sites.points[~outside], dtype=model.dtype))[:, 0]
    hidden_cells = ~sites.inside[sites.cells[0][1]].all(axis=1)
    for name, fmt in [("plate.vti", "vti"), ("plate.vts", "vts"), ("plate.hdf", "vtkhdf")]:
        write(tmp_path / name, evaluation, fmt)
        image = pv.read(tmp_path / name)
        assert (image.n_points, image.n_cells) == (21 * 21, 20 * 20)
        np.testing.assert_allclose(image.points[:, :2], sites.points)
        u = np.asarray(image.point_data["u"])
        assert np.isnan(u[outside]).all() and np.isfinite(u[~outside]).all()
        np.testing.assert_array_equal(image.point_data["inside"], sites.inside)
        np.testing.assert_array_equal(image.point_data["vtkGhostType"], np.where(outside, 2, 0))
        ghost = np.asarray(image.cell_data["vtkGhostType"])
        np.testing.assert_array_equal(ghost, np.where(hidden_cells, 32, 0))
        np.testing.assert_allclose(u[~outside], expected.double().numpy(), atol=1e-6)
    write(tmp_path / "plate.vtu", evaluation, "vtu")
    mesh = meshio.read(tmp_path / "plate.vtu")
    assert len(mesh.points) < sites.inside.sum() + 1
    assert problem.domain.contains(mesh.points[:, :2], tol=1e-9).all()
    assert np.isfinite(mesh.point_data["u"]).all()


def test_a_failing_writer_leaves_the_existing_file_untouched(plate, tmp_path):
    problem, model = plate
    sites = point_sites_with_unknown_cells(problem, tmp_path)
    evaluation = evaluate(problem, model, sites, fields=["u"])
    for name, fmt in [("old.hdf", "vtkhdf"), ("old.xdmf", "xdmf")]:
        target = tmp_path / name
        target.write_text("previous content")
        with pytest.raises(ValueError, match="cell type"):
            write(target, evaluation, fmt)
        assert target.read_text() == "previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.hdf", "old.xdmf", "p.npy"]


def point_sites_with_unknown_cells(problem, folder):
    np.save(folder / "p.npy", np.array([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]))
    sites = point_sites(folder / "p.npy", 2)
    return type(sites)("mesh", sites.points, (("polygon7", np.array([[0, 1, 2]])),))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--format", "stl"], "unknown format 'stl'"),
        (["--format", "vtu", "--fields", "u,v"], "unknown field(s) v"),
        (["--format", "vtu", "--times", "0:1:3"], "has no time coordinate"),
        (["--format", "vti", "--points", "POINTS"], "needs a regular grid"),
        (["--format", "vtu", "--mesh", "MESH3D"], "3 coordinate columns"),
        (["--format", "vtu", "--mesh", "missing.msh"], "does not exist"),
    ],
)
def test_export_errors_exit_2_naming_the_problem(poisson_run, tmp_path, capsys, options, message):
    np.save(tmp_path / "points.npy", np.zeros((2, 2)))
    meshio.write(
        tmp_path / "cube.vtu",
        meshio.Mesh(np.random.default_rng(0).uniform(size=(4, 3)), [("tetra", [[0, 1, 2, 3]])]),
    )
    names = {"POINTS": str(tmp_path / "points.npy"), "MESH3D": str(tmp_path / "cube.vtu")}
    options = [names.get(o, o) for o in options]
    assert main(["export", str(poisson_run), *options, "--out", str(tmp_path / "x.out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.out").exists()


def test_time_series_needs_a_series_format(heat_run, tmp_path, capsys):
    assert main(["export", str(heat_run), "--format", "vtu", "--times", "0:1:2"]) == 2
    assert "needs --format pvd, xdmf or h5" in capsys.readouterr().err


def test_default_output_goes_into_the_run_directory(poisson_run):
    assert main(["export", str(poisson_run), "--format", "h5", "--resolution", "5"]) == 0
    with h5py.File(poisson_run / "export" / "results.h5", "r") as h5:
        assert h5["fields/u"].shape == (25,)
