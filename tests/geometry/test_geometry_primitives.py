"""Primitives: interior and boundary sampling, parts, normals, measures and validation."""

import math

import numpy as np
import pytest

from kanphys.geometry import SAMPLING_METHODS, Box, Disk, Interval, Rectangle

EPS = 1e-7

PRIMITIVES = {
    "interval": Interval(-1.0, 2.0),
    "rectangle": Rectangle((0.0, -1.0), (2.0, 1.0)),
    "box": Box((0.0, 0.0, 0.0), (1.0, 2.0, 3.0)),
    "disk": Disk((0.5, -0.5), 0.75),
}


def assert_outward(domain, points, normals):
    """Unit normals, p + eps n outside and p - eps n inside the domain."""
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    assert not domain.contains(points + EPS * normals, tol=0.0).any()
    assert domain.contains(points - EPS * normals, tol=0.0).all()


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", PRIMITIVES)
def test_interior_samples_are_inside_with_exact_count(key, method):
    domain = PRIMITIVES[key]
    points = domain.sample_interior(777, seed=5, method=method)
    assert points.shape == (777, domain.dim)
    assert points.dtype == np.float64
    assert domain.contains(points).all()


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", PRIMITIVES)
def test_boundary_samples_are_on_boundary_with_outward_normals(key, method):
    domain = PRIMITIVES[key]
    samples = domain.boundary.sample(600, seed=2, method=method)
    assert samples.points.shape == samples.normals.shape == (600, domain.dim)
    assert domain.boundary.contains(samples.points, tol=1e-12).all()
    assert_outward(domain, samples.points, samples.normals)


def test_rectangle_boundary_points_lie_exactly_on_sides():
    rect = PRIMITIVES["rectangle"]
    points = rect.boundary.sample(1000, seed=1).points
    lower, upper = rect.bounds
    distance = np.min(np.abs(np.hstack([points - lower, points - upper])), axis=1)
    assert np.max(distance) < 1e-12
    assert rect.contains(points).all()


def test_circle_points_are_at_radius():
    disk = PRIMITIVES["disk"]
    samples = disk.boundary.sample(500, seed=4, method="halton")
    offsets = samples.points - np.array(disk.center)
    radius = np.linalg.norm(offsets, axis=1)
    assert np.max(np.abs(radius - disk.radius)) < 1e-12
    np.testing.assert_allclose(samples.normals, offsets / radius[:, None], atol=1e-12)


@pytest.mark.parametrize(
    ("name", "axis", "value", "sign"),
    [("left", 0, 0.0, -1), ("right", 0, 2.0, 1), ("bottom", 1, -1.0, -1), ("top", 1, 1.0, 1)],
)
def test_rectangle_part_samples_only_that_side(name, axis, value, sign):
    rect = PRIMITIVES["rectangle"]
    samples = rect.part(name).sample(200, seed=3, method="sobol")
    assert np.all(samples.points[:, axis] == value)
    expected = np.zeros(2)
    expected[axis] = sign
    assert np.all(samples.normals == expected)
    assert rect.part(name).contains(samples.points).all()
    others = [rect.part(other) for other in rect.parts if other != name]
    assert not any(region.contains(samples.points).any() for region in others)


@pytest.mark.parametrize(
    ("name", "axis", "value"),
    [
        ("left", 0, 0.0),
        ("right", 0, 1.0),
        ("front", 1, 0.0),
        ("back", 1, 2.0),
        ("bottom", 2, 0.0),
        ("top", 2, 3.0),
    ],
)
def test_box_part_samples_only_that_face(name, axis, value):
    box = PRIMITIVES["box"]
    points = box.part(name).sample(100, seed=0, method="lhs").points
    assert np.all(points[:, axis] == value)
    assert box.contains(points).all()


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_rectangle_boundary_split_is_proportional_to_side_length(method):
    rect = Rectangle((0.0, 0.0), (2.0, 1.0))
    n = 6000
    points = rect.boundary.sample(n, seed=11, method=method).points
    counts = {name: rect.part(name).contains(points).sum() for name in rect.parts}
    expected = {"left": n / 6, "right": n / 6, "bottom": n / 3, "top": n / 3}
    for name, count in counts.items():
        sd = math.sqrt(n * (expected[name] / n) * (1 - expected[name] / n))
        assert abs(count - expected[name]) < 5 * sd, (name, count)


def test_box_boundary_split_is_proportional_to_face_area():
    box = PRIMITIVES["box"]  # face areas: x faces 6, y faces 3, z faces 2 (total 22)
    n = 22_000
    points = box.boundary.sample(n, seed=0, method="sobol").points
    expected = {"left": 6, "right": 6, "front": 3, "back": 3, "bottom": 2, "top": 2}
    for name, area in expected.items():
        count = box.part(name).contains(points).sum()
        assert abs(count - n * area / 22) < 0.01 * n, (name, count)


@pytest.mark.parametrize(("n", "left"), [(4, 2), (5, 3), (1, 1), (0, 0)])
def test_interval_boundary_split_is_even_and_deterministic(n, left):
    samples = Interval(-1.0, 2.0).boundary.sample(n, seed=123, method="uniform")
    assert samples.points.shape == (n, 1)
    assert np.sum(samples.points[:, 0] == -1.0) == left
    assert np.sum(samples.points[:, 0] == 2.0) == n - left
    np.testing.assert_array_equal(samples.normals[:, 0], np.where(samples.points[:, 0] < 0, -1, 1))


def test_interval_parts():
    interval = Interval(-1.0, 2.0)
    assert list(interval.parts) == ["left", "right"]
    samples = interval.part("right").sample(3)
    np.testing.assert_array_equal(samples.points, [[2.0]] * 3)
    np.testing.assert_array_equal(samples.normals, [[1.0]] * 3)


@pytest.mark.parametrize(("method", "tol"), [("uniform", 0.035), ("sobol", 0.005)])
def test_disk_interior_is_uniform_in_area(method, tol):
    disk = Disk((1.0, 2.0), 2.0)
    points = disk.sample_interior(4096, seed=8, method=method)
    inner = np.linalg.norm(points - np.array(disk.center), axis=1) < 1.0
    assert abs(inner.mean() - 0.25) < tol


def test_exact_measures():
    rect = Rectangle((0.0, -1.0), (2.0, 0.5))
    assert rect.measure == pytest.approx(3.0, rel=1e-15)
    assert rect.boundary_measure == pytest.approx(7.0, rel=1e-15)
    disk = Disk((0.0, 0.0), 1.5)
    assert disk.measure == pytest.approx(math.pi * 1.5**2, rel=1e-15)
    assert disk.boundary_measure == pytest.approx(3.0 * math.pi, rel=1e-15)
    box = PRIMITIVES["box"]
    assert box.measure == pytest.approx(6.0)
    assert box.boundary_measure == pytest.approx(22.0)
    assert Interval(-1.0, 2.0).measure == pytest.approx(3.0)


def test_bounds_names_and_dims():
    lower, upper = PRIMITIVES["disk"].bounds
    np.testing.assert_allclose(lower, [-0.25, -1.25])
    np.testing.assert_allclose(upper, [1.25, 0.25])
    assert PRIMITIVES["interval"].names == ("x",)
    assert PRIMITIVES["rectangle"].names == ("x", "y")
    assert PRIMITIVES["box"].names == ("x", "y", "z")
    assert PRIMITIVES["box"].spatial_dim == 3
    assert PRIMITIVES["box"].time_index is None


def test_contains_is_closed_and_tol_shrinks():
    rect = Rectangle((0.0, 0.0), (1.0, 1.0))
    points = np.array([[0.0, 0.5], [1.0, 1.0], [0.5, 0.5], [1.1, 0.5]])
    np.testing.assert_array_equal(rect.contains(points), [True, True, True, False])
    np.testing.assert_array_equal(rect.contains(points, tol=-1e-9), [False, False, True, False])


def test_bad_rectangle_corners():
    with pytest.raises(
        ValueError,
        match=r"Rectangle: lower corner \(1\.0, 0\.0\) must be below upper corner \(0\.0, 1\.0\)",
    ):
        Rectangle((1.0, 0.0), (0.0, 1.0))


def test_bad_box_corners_and_lengths():
    with pytest.raises(ValueError, match=r"Box: lower corner .* in every coordinate"):
        Box((0.0, 0.0, 1.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="Rectangle: upper must have 2 coordinates, got 3"):
        Rectangle((0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="must be finite"):
        Rectangle((0.0, np.nan), (1.0, 1.0))


def test_bad_interval_and_disk():
    with pytest.raises(ValueError, match=r"Interval: left end a=2\.0 must be less than"):
        Interval(2.0, 1.0)
    with pytest.raises(ValueError, match=r"Disk: radius must be positive, got -1\.0"):
        Disk((0.0, 0.0), -1.0)


def test_unknown_part_name_lists_available_parts():
    with pytest.raises(
        ValueError,
        match="Rectangle has no boundary part 'inlet'; available: 'left', 'right', 'bottom', 'top'",
    ):
        PRIMITIVES["rectangle"].part("inlet")


def test_points_of_wrong_shape_are_rejected():
    with pytest.raises(ValueError, match=r"Disk: points must have shape \(N, 2\), got \(4, 3\)"):
        PRIMITIVES["disk"].contains(np.zeros((4, 3)))
