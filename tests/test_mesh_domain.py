"""Domains from meshes: measures, named parts, sampling, normals, containment, and a problem
declared on a mesh that trains and is written back onto the same mesh."""

import itertools
import math
import textwrap
import xml.etree.ElementTree as ET

import meshio
import numpy as np
import pytest
import pyvista as pv
import torch

import kanphys as kp
from kanphys.cli import main
from kanphys.geometry.mesh import MeshDomain, MeshError, facet_distance, plate_with_hole_mesh

RADIUS, N_AROUND, N_RADIAL = 0.3, 32, 6


def plate(cell_type="quad") -> meshio.Mesh:
    return plate_with_hole_mesh(
        radius=RADIUS, n_around=N_AROUND, n_radial=N_RADIAL, cell_type=cell_type
    )


def hole_polygon_area() -> float:
    """Area of the regular N_AROUND-gon inscribed in the hole (the mesh's hole is that polygon)."""
    return N_AROUND / 2 * RADIUS**2 * math.sin(2 * math.pi / N_AROUND)


def hole_polygon_perimeter() -> float:
    return N_AROUND * 2 * RADIUS * math.sin(math.pi / N_AROUND)


def unit_cube_tets(n: int = 3) -> meshio.Mesh:
    """The unit cube, n^3 cubes each split into 6 tetrahedra (Kuhn: conforming)."""
    axis = np.linspace(0.0, 1.0, n + 1)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    index = np.arange(len(points)).reshape(n + 1, n + 1, n + 1)
    tets = []
    for corner in itertools.product(range(n), repeat=3):
        for order in itertools.permutations(range(3)):
            vertex = np.array(corner)
            path = [index[tuple(vertex)]]
            for axis_index in order:
                vertex[axis_index] += 1
                path.append(index[tuple(vertex)])
            tets.append(path)
    return meshio.Mesh(points, [("tetra", np.array(tets))])


def box_hexahedra(n: int = 2) -> meshio.Mesh:
    """The box [0, 2] x [0, 1] x [0, 1] as n x n x n hexahedra (VTK vertex order)."""
    x, y, z = np.linspace(0, 2, n + 1), np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1)
    points = np.stack(np.meshgrid(x, y, z, indexing="ij"), -1).reshape(-1, 3)
    index = np.arange(len(points)).reshape(n + 1, n + 1, n + 1)
    hexes = []
    for i, j, k in itertools.product(range(n), repeat=3):
        bottom = [index[i, j, k], index[i + 1, j, k], index[i + 1, j + 1, k], index[i, j + 1, k]]
        top = [index[i, j, k + 1], index[i + 1, j, k + 1], index[i + 1, j + 1, k + 1]]
        hexes.append([*bottom, *top, index[i, j + 1, k + 1]])
    return meshio.Mesh(points, [("hexahedron", np.array(hexes))])


@pytest.mark.parametrize("cell_type", ["quad", "triangle"])
def test_plate_measures_are_those_of_the_meshed_polygon(cell_type):
    domain = MeshDomain(plate(cell_type))
    assert domain.dim == 2 and domain.names == ("x", "y")
    assert domain.measure == pytest.approx(4.0 - hole_polygon_area(), rel=1e-13)
    assert domain.boundary_measure == pytest.approx(8.0 + hole_polygon_perimeter(), rel=1e-13)
    lower, upper = domain.bounds
    np.testing.assert_allclose(lower, [-1.0, -1.0], atol=1e-15)
    np.testing.assert_allclose(upper, [1.0, 1.0], atol=1e-15)


def test_gmsh_physical_groups_become_named_parts(tmp_path):
    path = tmp_path / "plate.msh"
    meshio.write(path, plate("triangle"), file_format="gmsh22", binary=False)
    domain = MeshDomain.read(path)
    assert sorted(domain.parts) == ["bottom", "hole", "left", "right", "top"]
    measures = {face.name: face.measure for face in domain._leaf_faces(hole=False)}
    assert measures["hole"] == pytest.approx(hole_polygon_perimeter(), rel=1e-13)
    for side in ("left", "right", "bottom", "top"):
        assert measures[side] == pytest.approx(2.0, rel=1e-13)
    assert "plate.msh" in repr(domain)


def test_a_vtu_without_groups_has_one_part_named_by_the_domain(tmp_path):
    path = tmp_path / "cube.vtu"
    meshio.write(path, unit_cube_tets(2))
    domain = MeshDomain.read(path, name="wall")
    assert list(domain.parts) == ["wall"]
    assert domain.measure == pytest.approx(1.0, rel=1e-13)
    assert domain.boundary_measure == pytest.approx(6.0, rel=1e-13)


def test_interior_points_fall_in_cells_in_proportion_to_their_area():
    # Two triangles of areas 1 and 3 sharing an edge.
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 2.0]])
    domain = MeshDomain(meshio.Mesh(points, [("triangle", np.array([[0, 1, 2], [1, 3, 2]]))]))
    assert domain.measure == pytest.approx(4.0, rel=1e-14)
    n = 40_000
    samples = domain.sample_interior(n, seed=3)
    in_small = (samples[:, 0] >= 0) & (samples[:, 0] + samples[:, 1] / 2 <= 1 + 1e-12)
    share, sigma = in_small.mean(), math.sqrt(0.25 * 0.75 / n)
    assert abs(share - 0.25) < 4 * sigma
    np.testing.assert_array_equal(samples, domain.sample_interior(n, seed=3))
    assert not np.array_equal(samples[:10], domain.sample_interior(10, seed=4))
    sobol = domain.sample_interior(1024, seed=0, method="sobol")
    assert abs(np.mean(sobol[:, 0] + sobol[:, 1] / 2 <= 1) - 0.25) < 0.01
    assert domain.contains(sobol).all()


def test_uniform_points_in_a_tetrahedron_have_the_centroid_as_mean():
    tet = np.array([[0.0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 3]])
    domain = MeshDomain(meshio.Mesh(tet, [("tetra", np.array([[0, 1, 2, 3]]))]))
    samples = domain.sample_interior(50_000, seed=1)
    assert domain.contains(samples).all()
    # Each coordinate has variance <= 9/20 on this tetrahedron; 5 sigma of the mean.
    np.testing.assert_allclose(samples.mean(axis=0), tet.mean(axis=0), atol=5 * 0.7 / 224)


def test_plate_boundary_points_lie_on_their_part_with_outward_normals():
    domain = MeshDomain(plate())
    hole = domain.part("hole").sample(500, seed=2)
    facets = domain.part("hole").faces[0].facets
    distance = np.min(
        [facet_distance(hole.points, np.repeat(f[None], 500, axis=0)) for f in facets], axis=0
    )
    assert distance.max() < 1e-14
    radial = hole.points / np.linalg.norm(hole.points, axis=1, keepdims=True)
    # Outward from the plate is into the hole: against the radial direction (chords).
    assert np.einsum("nd,nd->n", hole.normals, radial).max() < -math.cos(math.pi / N_AROUND) + 1e-12
    np.testing.assert_allclose(np.linalg.norm(hole.normals, axis=1), 1.0, rtol=1e-14)
    left = domain.part("left").sample(100, seed=0)
    np.testing.assert_allclose(left.points[:, 0], -1.0, atol=1e-15)
    np.testing.assert_allclose(left.normals, np.tile([-1.0, 0.0], (100, 1)), atol=1e-15)
    assert domain.part("left").contains(left.points).all()
    assert not domain.part("left").contains(hole.points).any()
    assert domain.boundary.contains(hole.points).all()
    assert domain.contains(hole.points).all()


def test_cube_boundary_samples_are_on_faces_with_axis_normals():
    domain = MeshDomain(unit_cube_tets())
    samples = domain.boundary.sample(2000, seed=5, method="halton")
    on_face = (samples.points < 1e-14) | (samples.points > 1 - 1e-14)
    assert on_face.any(axis=1).all()
    assert np.all(np.abs(samples.normals).sum(axis=1) == 1.0)
    outward = np.einsum("nd,nd->n", samples.normals, samples.points - 0.5)
    np.testing.assert_allclose(outward, 0.5, atol=1e-14)
    # Each face holds a sixth of the points, up to the QMC error.
    per_face = np.abs(samples.normals).argmax(axis=1) * 2 + (samples.normals.sum(axis=1) > 0)
    assert np.abs(np.bincount(per_face, minlength=6) / 2000 - 1 / 6).max() < 0.02


def test_hexahedra_split_into_tetrahedra_keep_measure_and_boundary():
    domain = MeshDomain(box_hexahedra())
    assert domain.measure == pytest.approx(2.0, rel=1e-13)
    assert domain.boundary_measure == pytest.approx(10.0, rel=1e-13)
    samples = domain.boundary.sample(500, seed=0)
    assert domain.boundary.contains(samples.points).all()


@pytest.mark.parametrize("mesh", [unit_cube_tets, box_hexahedra])
def test_contains_agrees_with_the_box_and_honours_the_tolerance(mesh):
    domain = MeshDomain(mesh())
    upper = domain.bounds[1]
    points = np.random.default_rng(0).uniform(-0.3, upper + 0.3, (4000, 3))
    exact = np.all((points >= 0) & (points <= upper), axis=1)
    np.testing.assert_array_equal(domain.contains(points), exact)
    near = np.array([[0.5, 0.5, 1.0 + 1e-4], [0.5, 0.5, 1.0 - 1e-4], [0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(domain.contains(near, tol=2e-4), [True, True, True])
    np.testing.assert_array_equal(domain.contains(near, tol=-2e-4), [False, False, True])
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        domain.contains(np.zeros((2, 2)))


def test_mesh_domains_combine_with_primitives():
    domain = MeshDomain(unit_cube_tets(2)) - kp.Box((0.5, 0.5, 0.5), (1.5, 1.5, 1.5), name="cut")
    assert sorted(domain.parts) == ["boundary", "cut"]
    cut = domain.part("cut").sample(200, seed=0)
    assert np.all(np.isclose(cut.points, 0.5).any(axis=1))
    assert np.all(np.einsum("nd,nd->n", cut.normals, cut.points - 0.25) > 0)


def test_unusable_meshes_are_refused_with_the_reason(tmp_path):
    lines = meshio.Mesh(np.array([[0.0, 0, 0], [1, 0, 0]]), [("line", np.array([[0, 1]]))])
    with pytest.raises(MeshError, match=r"no cells a domain can be made of.*line"):
        MeshDomain(lines)
    curved = plate()
    curved.points[:, 2] = curved.points[:, 0] ** 2
    with pytest.raises(MeshError, match="only flat meshes"):
        MeshDomain(curved)
    with pytest.raises(MeshError, match=r"missing\.msh does not exist"):
        MeshDomain.read(tmp_path / "missing.msh")
    (tmp_path / "broken.vtu").write_text("not a mesh")
    with pytest.raises(MeshError, match=r"cannot read mesh .*broken\.vtu"):
        MeshDomain.read(tmp_path / "broken.vtu")


PLATE_PROBLEM = textwrap.dedent(
    '''
    """Laplace on a plate with a hole: lap(u) = 0, u = x y on every boundary part."""
    import pathlib

    import kanphys as kp
    from kanphys import lap

    plate = kp.MeshDomain.read(pathlib.Path(__file__).parent / "plate.msh")


    def exact(p):
        return p[:, 0] * p[:, 1]


    problem = kp.Problem(
        "plate",
        domain=plate,
        fields=["u"],
        equations={"laplace": lambda s: lap(s.u)},
        conditions=[
            kp.Dirichlet(name, on=plate.part(name), field="u", value=exact)
            for name in ("hole", "left", "right", "bottom", "top")
        ],
        exact={"u": exact},
    )
    plan = kp.Plan(stages=[kp.Adam(steps=3)], sampler=kp.Sobol(interior=64, boundary=32))
    '''
)


@pytest.fixture(scope="module")
def plate_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plate")
    meshio.write(folder / "plate.msh", plate("triangle"), file_format="gmsh22", binary=False)
    (folder / "plate.py").write_text(PLATE_PROBLEM)
    out = folder / "run"
    argv = ["run", str(folder / "plate.py"), "--out", str(out), "--no-progress", "--quick"]
    argv += ["--dtype", "float64"]
    assert main(argv) == 0
    return out


def model_at(run_dir, points: np.ndarray) -> np.ndarray:
    model = kp.Run.load(run_dir).model()
    with torch.no_grad():
        return model(torch.as_tensor(points, dtype=model.dtype))[:, 0].double().numpy()


def test_a_problem_on_a_mesh_trains_and_writes_its_fields_on_that_mesh(plate_run):
    source = plate("triangle")
    written = meshio.read(plate_run / "fields.vtu")
    np.testing.assert_array_equal(written.points[:, :2], source.points[:, :2])
    np.testing.assert_array_equal(written.cells[0].data, source.cells[0].data)
    exact = source.points[:, 0] * source.points[:, 1]
    np.testing.assert_allclose(written.point_data["u_exact"], exact, rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        written.point_data["u"], model_at(plate_run, source.points[:, :2]), atol=1e-12
    )


def test_export_onto_the_mesh_writes_point_and_cell_data(plate_run, tmp_path):
    mesh_file = plate_run.parent / "plate.msh"
    out = tmp_path / "plate.vtu"
    assert main(["export", str(plate_run), "--format", "vtu", "--mesh", str(mesh_file), "--out",
                 str(out)]) == 0  # fmt: skip
    result = pv.read(out)
    source = meshio.read(mesh_file)
    centroids = np.concatenate([source.points[c.data].mean(axis=1) for c in source.cells])
    assert result.n_cells == len(centroids)
    np.testing.assert_allclose(
        result.cell_data["u_exact"], centroids[:, 0] * centroids[:, 1], atol=1e-15
    )
    np.testing.assert_allclose(
        result.cell_data["u"], model_at(plate_run, centroids[:, :2]), atol=1e-12
    )
    assert result.cell_data["grad_u"].shape == (len(centroids), 3)
    assert set(result.point_data) >= {"u", "grad_u", "u_exact", "u_error", "residual_laplace"}
    # Without --mesh, the default export of a mesh domain is on its own mesh too.
    default = tmp_path / "default.vtu"
    assert main(["export", str(plate_run), "--format", "vtu", "--out", str(default)]) == 0
    assert pv.read(default).n_points == len(source.points)


HEAT_ON_MESH = textwrap.dedent(
    '''
    """Heat on a triangle mesh: u_t = lap(u), u = 0 on the boundary, u(x, 0) = x y."""
    import pathlib

    import kanphys as kp
    from kanphys import dt, lap

    space = kp.MeshDomain.read(pathlib.Path(__file__).parent / "plate.msh")
    domain = space * kp.TimeInterval(0.0, 0.5)
    problem = kp.Problem(
        "heat_plate",
        domain=domain,
        fields=["u"],
        equations={"heat": lambda s: dt(s.u) - lap(s.u)},
        conditions=[
            kp.Dirichlet("walls", on=domain.boundary, field="u", value=0.0),
            kp.Initial("start", field="u", value=lambda p: p[:, 0] * p[:, 1]),
        ],
    )
    plan = kp.Plan(stages=[kp.Adam(steps=2)], sampler=kp.Sobol(interior=64, boundary=32))
    '''
)


def test_a_time_dependent_run_writes_a_pvd_series_on_the_mesh(tmp_path):
    meshio.write(tmp_path / "plate.msh", plate("triangle"), file_format="gmsh22", binary=False)
    (tmp_path / "heat.py").write_text(HEAT_ON_MESH)
    out = tmp_path / "run"
    argv = ["run", str(tmp_path / "heat.py"), "--out", str(out), "--no-progress", "--quick"]
    assert main([*argv, "initial=16", "--dtype", "float64"]) == 0
    collection = ET.parse(out / "fields.pvd").getroot().find("Collection")
    steps = [(float(d.get("timestep")), d.get("file")) for d in collection]
    np.testing.assert_allclose([t for t, _ in steps], np.linspace(0.0, 0.5, 11), rtol=1e-15)
    last = pv.read(out / steps[-1][1])
    assert last.n_points == len(plate().points)
    points = np.column_stack([np.asarray(last.points)[:, :2], np.full(last.n_points, 0.5)])
    np.testing.assert_allclose(last.point_data["u"], model_at(out, points), atol=1e-12)
