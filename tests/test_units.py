"""Units: declared on a problem, checked when declared, derived for gradients, carried by every
writer (read back with h5py, meshio, PyVista / VTK)."""

import json
from dataclasses import replace
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest
import pyvista as pv
import torch

import kanphys as kp
from kanphys import lap
from kanphys.cli import main
from kanphys.evaluate import evaluation_grid
from kanphys.io.export import add_cell_values, evaluate, grid_sites, mesh_sites, write
from kanphys.io.fields import write_fields_h5, write_fields_vtu
from kanphys.io.units import array_units, label, quotient
from kanphys.io.vtk import array_unit
from kanphys.runner import load_problem_file

PI = torch.pi
PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
SQUARE = kp.Rectangle((0.0, 0.0), (1.0, 1.0))
UNITS = {"x": "m", "y": "m", "u": "K", "poisson": "K/m^2"}


def exact(p):
    return torch.sin(PI * p[:, 0]) * torch.sin(PI * p[:, 1])


def square_problem(units=UNITS, **changes) -> kp.Problem:
    """-lap(u) = 2 pi^2 sin(pi x) sin(pi y) on the unit square, with units."""
    problem = kp.Problem(
        "square",
        domain=SQUARE,
        fields=["u"],
        equations={"poisson": lambda s: -lap(s.u) - 2 * PI**2 * exact(s.x_all)[:, None]},
        conditions=[kp.Dirichlet("wall", on=SQUARE.boundary, field="u", value=0.0)],
        exact={"u": exact},
        parameters=[kp.Parameter("k", init=1.0)],
        constants={"rho": 2.0},
        units=units,
    )
    return replace(problem, **changes) if changes else problem


def surrogate(problem: kp.Problem) -> kp.Surrogate:
    torch.manual_seed(0)
    lower, upper = problem.domain.bounds
    net = kp.KAN([problem.domain.dim, 4, len(problem.fields)]).double()
    return kp.Surrogate(net, list(lower), list(upper), problem.initial_parameters())


# --- declaration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ({"z": "m"}, "units given for 'z', which is not a coordinate"),
        ({"wall": "K"}, "units given for 'wall'"),
        ({"u": 3}, "unit of field 'u' must be text such as 'm' or 'K', got 3 (int)"),
        ({"x": None}, "unit of coordinate 'x' must be text"),
        ({"poisson": ""}, "unit of equation 'poisson' is ''"),
        ({"k": " 1/s"}, "unit of parameter 'k' is ' 1/s'"),
        (["x", "m"], "units must be a mapping of names to unit text"),
    ],
)
def test_bad_units_are_refused_naming_the_culprit(units, message):
    with pytest.raises(kp.ProblemError, match="problem 'square': ") as error:
        square_problem(units)
    assert message in str(error.value)


def test_units_for_every_kind_of_name_are_accepted_and_printed():
    units = {"x": "m", "y": "m", "u": "K", "k": "W/m/K", "rho": "kg/m^3", "poisson": "K/m^2"}
    problem = square_problem(units)
    assert problem.units == units
    assert "units:       x [m], y [m], u [K], k [W/m/K], rho [kg/m^3], poisson [K/m^2]" in str(
        problem
    )
    assert "units" not in str(square_problem({}))
    assert square_problem(None).units == {}


def test_problem_files_declare_physical_units():
    heat = load_problem_file(PROBLEMS_DIR / "heat1d.py").problem
    assert heat.units == {"x": "m", "t": "s", "u": "K", "heat": "K/s"}
    plate = load_problem_file(PROBLEMS_DIR / "plate_hole.py").problem
    assert plate.units["ux"] == "m" and plate.units["equilibrium_x"] == "Pa/m"


# --- derived units ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "unit"),
    [
        ("K", "m", "K/m"),
        ("K", "m^2", "K/m^2"),
        ("K", "1", "K"),
        ("1", "m", "1/m"),
        ("m/s", "m", "m/s/m"),
        ("K", "m/s", "K/(m/s)"),
        ("K", "kg m", "K/(kg m)"),
        ("°C", "µm", "°C/µm"),
    ],
)
def test_quotient_of_units(numerator, denominator, unit):
    assert quotient(numerator, denominator) == unit


def test_gradient_of_a_scalar_field_gets_the_field_unit_per_coordinate_unit():
    names = ["u", "grad_u", "u_exact", "u_error", "residual_poisson"]
    units = array_units(square_problem(), names)
    assert units == {
        "u": "K",
        "grad_u": "K/m",
        "u_exact": "K",
        "u_error": "K",
        "residual_poisson": "K/m^2",
    }
    mixed = array_units(square_problem({"x": "m", "y": "km", "u": "K"}), names)
    assert mixed["grad_u"] == ("K/m", "K/km")
    assert "residual_poisson" not in mixed  # the equation has no declared unit
    assert label(mixed["grad_u"]) == "K/m, K/km"
    undeclared = array_units(square_problem({"x": "m", "u": "K"}), names)
    assert "grad_u" not in undeclared and undeclared["u"] == "K"
    assert array_units(square_problem({"x": "m", "y": "m"}), names) == {}


def test_time_is_not_a_gradient_component():
    heat = load_problem_file(PROBLEMS_DIR / "heat1d.py").problem
    units = array_units(heat, ["grad_u", "residual_heat", "u"])
    assert units == {"grad_u": "K/m", "residual_heat": "K/s", "u": "K"}


# --- writers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def square():
    problem = square_problem({"x": "m", "y": "km", "u": "K", "poisson": "K/m^2"})
    model = surrogate(problem)
    return problem, model, evaluate(problem, model, grid_sites(SQUARE, 5))


def check_vtk_units(point_data) -> None:
    assert array_unit(point_data, "u") == "K"
    assert array_unit(point_data, "u_error") == "K"
    assert array_unit(point_data, "grad_u") == "K/m, K/km"
    assert array_unit(point_data, "residual_poisson") == "K/m^2"


def check_field_data(field_data) -> None:
    assert list(field_data["units_u"]) == ["K"]
    assert list(field_data["units_u_exact"]) == ["K"]
    assert list(field_data["units_grad_u"]) == ["K/m", "K/km"]
    assert list(field_data["units_residual_poisson"]) == ["K/m^2"]


def check_sidecar(path: Path) -> None:
    units = json.loads(path.read_text())["units"]
    assert units == {
        "x": "m",
        "y": "km",
        "u": "K",
        "u_exact": "K",
        "u_error": "K",
        "grad_u": ["K/m", "K/km"],
        "residual_poisson": "K/m^2",
    }


def test_vtu_carries_units_as_units_label_and_in_its_metadata_file(square, tmp_path):
    _, _, evaluation = square
    path, side = write(tmp_path / "u.vtu", evaluation, "vtu")
    check_vtk_units(pv.read(path).GetPointData())
    check_sidecar(side)
    mesh = meshio.read(path)  # meshio still reads it
    np.testing.assert_allclose(mesh.point_data["u"], evaluation.frames[0]["u"], atol=1e-15)
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    np.testing.assert_allclose(mesh.point_data["u_exact"], np.sin(np.pi * x) * np.sin(np.pi * y))


@pytest.mark.parametrize("fmt", ["vti", "vts"])
def test_vti_and_vts_carry_units_as_field_data_and_units_label(square, tmp_path, fmt):
    _, _, evaluation = square
    [path] = write(tmp_path / f"u.{fmt}", evaluation, fmt)
    dataset = pv.read(path)
    check_vtk_units(dataset.GetPointData())
    check_field_data(dataset.field_data)


def test_vtkhdf_carries_units_attributes_and_field_data(square, tmp_path):
    _, _, evaluation = square
    [path] = write(tmp_path / "u.hdf", evaluation, "vtkhdf")
    with h5py.File(path, "r") as h5:
        data = h5["VTKHDF/PointData"]
        assert data["u"].attrs["units"] == "K" and data["u_error"].attrs["units"] == "K"
        assert list(data["grad_u"].attrs["units"]) == ["K/m", "K/km"]
        assert data["residual_poisson"].attrs["units"] == "K/m^2"
        assert json.loads(h5.attrs["kanphys_metadata"])["units"]["u"] == "K"
    check_field_data(pv.read(path).field_data)


def test_results_h5_carries_cf_units_attributes(square, tmp_path):
    _, _, evaluation = square
    [path] = write(tmp_path / "results.h5", evaluation, "h5")
    with h5py.File(path, "r") as h5:
        assert h5["fields/u"].attrs["units"] == "K"
        assert h5["exact/u"].attrs["units"] == "K" and h5["error/u"].attrs["units"] == "K"
        assert list(h5["gradient/u"].attrs["units"]) == ["K/m", "K/km"]
        assert h5["residual/poisson"].attrs["units"] == "K/m^2"
        assert list(h5["coordinates"].attrs["units"]) == ["m", "km"]
        assert json.loads(h5.attrs["metadata"])["units"]["grad_u"] == ["K/m", "K/km"]


def test_fields_without_a_unit_get_no_units_attribute(tmp_path):
    problem = square_problem({"u": "K"})
    evaluation = evaluate(problem, surrogate(problem), grid_sites(SQUARE, 3))
    [path] = write(tmp_path / "results.h5", evaluation, "h5")
    with h5py.File(path, "r") as h5:
        assert h5["fields/u"].attrs["units"] == "K"
        assert "units" not in h5["gradient/u"].attrs
        assert "units" not in h5["residual/poisson"].attrs
        assert "units" not in h5["coordinates"].attrs
    dataset = write(tmp_path / "u.vti", evaluation, "vti")[0]
    dataset = pv.read(dataset)
    assert array_unit(dataset.GetPointData(), "grad_u") is None
    assert "units_grad_u" not in dataset.field_data


@pytest.fixture(scope="module")
def heat_series():
    problem = load_problem_file(PROBLEMS_DIR / "heat1d.py").problem
    sites = grid_sites(kp.Interval(0.0, 1.0), 6)
    return evaluate(problem, surrogate(problem), sites, times=np.linspace(0.0, 1.0, 3))


def test_time_series_in_xdmf_h5_pvd_and_results_h5_carry_units(heat_series, tmp_path):
    xdmf, h5_path = write(tmp_path / "h.xdmf", heat_series, "xdmf")
    with h5py.File(h5_path, "r") as h5:
        assert h5["times"].attrs["units"] == "s"
        for k in range(3):
            assert h5[f"step_{k}/u"].attrs["units"] == "K"
            assert h5[f"step_{k}/grad_u"].attrs["units"] == "K/m"
            assert h5[f"step_{k}/residual_heat"].attrs["units"] == "K/s"
    reader = meshio.xdmf.TimeSeriesReader(xdmf)  # meshio still reads the series
    reader.read_points_cells()
    assert {"u", "grad_u"} <= set(reader.read_data(2)[1])
    _, *pieces, side = write(tmp_path / "h.pvd", heat_series, "pvd")
    assert len(pieces) == 3
    for piece in pieces:
        assert array_unit(pv.read(piece).GetPointData(), "grad_u") == "K/m"
    assert json.loads(side.read_text())["units"]["t"] == "s"
    [results] = write(tmp_path / "results.h5", heat_series, "h5")
    with h5py.File(results, "r") as h5:
        assert h5["times"].attrs["units"] == "s"
        assert list(h5["coordinates"].attrs["units"]) == ["m"]
        assert h5["fields/u"].attrs["units"] == "K" and h5["fields/u"].shape == (3, 6)


def test_cell_values_on_a_mesh_carry_units(square, tmp_path):
    problem, model, _ = square
    mesh_path = tmp_path / "square.vtu"
    sites = grid_sites(SQUARE, 4)
    meshio.write(mesh_path, meshio.Mesh(sites.points, [("quad", sites.cells[0][1])]))
    on_mesh = mesh_sites(mesh_path, 2)
    [path, _] = write(tmp_path / "out.vtu", evaluate(problem, model, on_mesh), "vtu")
    add_cell_values(path, problem, model, on_mesh)
    dataset = pv.read(path)
    assert array_unit(dataset.GetCellData(), "u") == "K"
    assert array_unit(dataset.GetCellData(), "grad_u") == "K/m, K/km"
    check_vtk_units(dataset.GetPointData())


def test_fields_vtu_and_fields_h5_of_a_run_carry_units(tmp_path):
    problem = square_problem()
    grid = evaluation_grid(SQUARE, 3)
    values = {"u": np.zeros(9), "grad_u": np.ones((9, 2)), "residual_poisson": np.ones(9)}
    units = {"x": "m", "y": "m", **array_units(problem, values)}
    write_fields_vtu(tmp_path / "fields.vtu", grid, values, units)
    write_fields_h5(
        tmp_path / "fields.h5",
        grid,
        values,
        coordinates=problem.coordinates,
        fields=problem.fields,
        problem=problem.name,
        metadata={"units": units},
        units=units,
    )
    dataset = pv.read(tmp_path / "fields.vtu")
    assert array_unit(dataset.GetPointData(), "grad_u") == "K/m"
    np.testing.assert_array_equal(meshio.read(tmp_path / "fields.vtu").point_data["u"], 0)
    with h5py.File(tmp_path / "fields.h5", "r") as h5:
        assert h5["fields/u"].attrs["units"] == "K"
        assert h5["gradient/u"].attrs["units"] == "K/m"
        assert h5["residual/poisson"].attrs["units"] == "K/m^2"
        assert list(h5["coordinates"].attrs["units"]) == ["m", "m"]


def test_a_run_records_units_in_its_files(tmp_path):
    out = tmp_path / "run"
    argv = ["run", str(PROBLEMS_DIR / "heat1d.py"), "lbfgs_steps=1", "grid=5", "interior=32"]
    argv += ["boundary=16", "initial=16", "--quick", "--resolution", "5", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["units"] == {"x": "m", "t": "s", "u": "K", "heat": "K/s"}
    with h5py.File(out / "fields.h5", "r") as h5:
        assert h5["fields/u"].attrs["units"] == "K"
        assert h5["gradient/u"].attrs["units"] == "K/m"
        assert list(h5["coordinates"].attrs["units"]) == ["m", "s"]
    assert array_unit(pv.read(out / "fields.vtu").GetPointData(), "residual_heat") == "K/s"
    assert json.loads((out / "fields.metadata.json").read_text())["units"]["u_error"] == "K"
    assert "units:       x [m], t [s], u [K], heat [K/s]" in (out / "problem.txt").read_text()
