"""CSG: union, intersection and difference; rejection sampling, restricted boundaries, parts."""

import math

import numpy as np
import pytest

from kanphys.geometry import (
    SAMPLING_METHODS,
    Box,
    Difference,
    Disk,
    Intersection,
    Interval,
    Rectangle,
    Union,
)

EPS = 1e-7
SQUARE = Rectangle((0.0, 0.0), (1.0, 1.0))
HOLES = [Disk((cx, cy), 0.1, name="hole") for cx in (0.25, 0.75) for cy in (0.25, 0.75)]


def plate_with_holes():
    plate = SQUARE
    for hole in HOLES:
        plate = plate - hole
    return plate


DOMAINS = {
    "plate": plate_with_holes(),
    "two_disks": Disk((0.0, 0.0), 1.0) | Disk((1.5, 0.0), 1.0),
    "quarter_disk": SQUARE & Disk((0.0, 0.0), 1.0),
    "lens": Disk((0.0, 0.0), 1.0) & Disk((1.0, 0.0), 1.0, name="other"),
    "nested": (SQUARE - Disk((0.5, 0.5), 0.3)) | Disk((0.5, 0.5), 0.1, name="core"),
}


def assert_outward(domain, points, normals):
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    assert not domain.contains(points + EPS * normals, tol=0.0).any()
    assert domain.contains(points - EPS * normals, tol=0.0).all()


def on_any_primitive_boundary(points, primitives):
    """Distance of each point to the nearest primitive boundary (rectangles and circles)."""
    distances = []
    for shape in primitives:
        if isinstance(shape, Disk):
            r = np.linalg.norm(points - np.array(shape.center), axis=1)
            distances.append(np.abs(r - shape.radius))
        else:
            lower, upper = shape.bounds
            side = np.abs(np.hstack([points - lower, points - upper]))
            distances.append(np.min(side, axis=1))
    return np.min(distances, axis=0)


def test_operators_build_csg_classes():
    disk = Disk((0.5, 0.5), 0.2)
    assert SQUARE | disk == Union(SQUARE, disk)
    assert SQUARE & disk == Intersection(SQUARE, disk)
    assert SQUARE - disk == Difference(SQUARE, disk)


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", DOMAINS)
def test_interior_samples_are_inside_with_exact_count(key, method):
    domain = DOMAINS[key]
    points = domain.sample_interior(1001, seed=3, method=method)
    assert points.shape == (1001, 2)
    assert domain.contains(points).all()


def test_interior_of_plate_avoids_holes():
    points = DOMAINS["plate"].sample_interior(5000, seed=0)
    for hole in HOLES:
        assert np.all(np.linalg.norm(points - np.array(hole.center), axis=1) >= hole.radius)


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", DOMAINS)
def test_boundary_samples_lie_on_boundary_with_outward_normals(key, method):
    domain = DOMAINS[key]
    samples = domain.boundary.sample(800, seed=1, method=method)
    assert samples.points.shape == samples.normals.shape == (800, 2)
    assert domain.boundary.contains(samples.points).all()
    assert_outward(domain, samples.points, samples.normals)


def test_plate_boundary_points_are_on_sides_or_circles():
    samples = DOMAINS["plate"].boundary.sample(2000, seed=7, method="sobol")
    assert np.max(on_any_primitive_boundary(samples.points, [SQUARE, *HOLES])) < 1e-12


def test_hole_normals_point_into_the_hole():
    plate = DOMAINS["plate"]
    samples = plate.part("hole").sample(1000, seed=2, method="halton")
    inside_a_hole = np.zeros(1000, dtype=bool)
    distance = np.full(1000, np.inf)
    for hole in HOLES:
        offset = samples.points - np.array(hole.center)
        r = np.linalg.norm(offset, axis=1)
        distance = np.minimum(distance, np.abs(r - hole.radius))
        inside_a_hole |= hole.contains(samples.points + EPS * samples.normals, tol=0.0)
        near = r < 0.2
        np.testing.assert_allclose(samples.normals[near], -offset[near] / r[near, None], atol=1e-12)
    assert np.max(distance) < 1e-12
    assert inside_a_hole.all()
    assert_outward(plate, samples.points, samples.normals)


def test_same_named_parts_merge_and_sides_keep_names():
    plate = DOMAINS["plate"]
    assert list(plate.parts) == ["left", "right", "bottom", "top", "hole"]
    points = plate.part("hole").sample(4000, seed=0, method="sobol").points
    nearest = np.argmin([np.linalg.norm(points - np.array(h.center), axis=1) for h in HOLES], 0)
    np.testing.assert_allclose(np.bincount(nearest, minlength=4) / 4000, 0.25, atol=0.01)


def test_unnamed_rectangle_hole_gets_class_name():
    frame = Rectangle((0.0, 0.0), (3.0, 3.0)) - Rectangle((1.0, 1.0), (2.0, 2.0))
    assert list(frame.parts) == ["left", "right", "bottom", "top", "rectangle"]
    samples = frame.part("rectangle").sample(400, seed=0)
    assert np.all((samples.points >= 1.0) & (samples.points <= 2.0))
    assert_outward(frame, samples.points, samples.normals)


def test_parts_restricted_to_the_result_boundary():
    quarter = DOMAINS["quarter_disk"]
    assert set(quarter.parts) == {"left", "bottom", "disk"}
    arc = quarter.part("disk").sample(500, seed=0, method="sobol").points
    assert np.all(arc >= -1e-15)
    assert np.max(np.abs(np.linalg.norm(arc, axis=1) - 1.0)) < 1e-12
    outside_arc = np.array([[-1.0, 0.0], [0.0, -1.0]])
    assert not quarter.part("disk").contains(outside_arc).any()
    assert quarter.part("disk").contains(np.array([[math.sqrt(0.5), math.sqrt(0.5)]])).all()


def test_union_drops_boundary_inside_the_other_operand():
    union = DOMAINS["two_disks"]
    points = union.boundary.sample(3000, seed=5).points
    left = np.linalg.norm(points, axis=1)
    right = np.linalg.norm(points - np.array([1.5, 0.0]), axis=1)
    assert np.all(np.minimum(np.abs(left - 1.0), np.abs(right - 1.0)) < 1e-12)
    assert np.all((left >= 1.0 - 1e-12) & (right >= 1.0 - 1e-12))
    assert not union.boundary.contains(np.array([[0.75, 0.0], [1.0, 0.0]])).any()


def test_hole_fraction_of_boundary_samples_is_proportional_to_length():
    domain = SQUARE - Disk((0.5, 0.5), 0.25, name="hole")
    hole_length = 2 * math.pi * 0.25
    expected = hole_length / (4.0 + hole_length)
    n = 4000
    for method, tol in (("uniform", 5 * math.sqrt(expected * (1 - expected) / n)), ("sobol", 0.01)):
        points = domain.boundary.sample(n, seed=9, method=method).points
        fraction = domain.part("hole").contains(points).mean()
        assert abs(fraction - expected) < tol, method


def test_measures_are_estimated_within_tolerance():
    plate = DOMAINS["plate"]
    assert plate.measure == pytest.approx(1.0 - 4 * math.pi * 0.01, rel=2e-3)
    assert plate.boundary_measure == pytest.approx(4.0 + 4 * 2 * math.pi * 0.1, rel=2e-3)
    single = SQUARE - Disk((0.5, 0.5), 0.3)
    assert single.measure == pytest.approx(1.0 - math.pi * 0.09, rel=2e-3)
    quarter = DOMAINS["quarter_disk"]
    assert quarter.measure == pytest.approx(math.pi / 4, rel=2e-3)
    assert quarter.boundary_measure == pytest.approx(2.0 + math.pi / 2, rel=2e-3)


def test_bounds():
    lower, upper = DOMAINS["two_disks"].bounds
    np.testing.assert_allclose(lower, [-1.0, -1.0])
    np.testing.assert_allclose(upper, [2.5, 1.0])
    lower, upper = DOMAINS["quarter_disk"].bounds
    np.testing.assert_allclose(lower, [0.0, 0.0])
    np.testing.assert_allclose(upper, [1.0, 1.0])
    lower, upper = DOMAINS["plate"].bounds
    np.testing.assert_allclose(upper, [1.0, 1.0])


def test_difference_is_closed_and_contains_hole_boundary():
    domain = SQUARE - Disk((0.5, 0.5), 0.25)
    points = np.array([[0.75, 0.5], [0.5, 0.5], [0.1, 0.1], [0.74, 0.5]])
    np.testing.assert_array_equal(domain.contains(points), [True, False, True, False])


def test_box_csg_in_3d():
    cube = Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    slab = Box((0.25, -1.0, -1.0), (0.75, 2.0, 2.0), name="slot")
    cut = cube - slab
    points = cut.sample_interior(500, seed=0, method="sobol")
    assert cut.contains(points).all()
    assert np.all((points[:, 0] <= 0.25) | (points[:, 0] >= 0.75))
    assert cut.measure == pytest.approx(0.5, rel=2e-3)
    slot = cut.part("slot").sample(300, seed=1)
    assert np.all(np.isin(slot.points[:, 0], [0.25, 0.75]))
    np.testing.assert_array_equal(slot.normals[:, 0], np.where(slot.points[:, 0] == 0.25, 1, -1))
    assert_outward_3d = cut.contains(slot.points + EPS * slot.normals, tol=0.0)
    assert not assert_outward_3d.any()
    inter = cube & Box((0.5, 0.5, 0.5), (2.0, 2.0, 2.0))
    assert inter.measure == pytest.approx(0.125, rel=2e-3)
    assert inter.boundary_measure == pytest.approx(1.5, rel=2e-3)


def test_interval_csg_boundary_points():
    domain = Interval(0.0, 1.0) - Interval(0.5, 2.0, name="cut")
    samples = domain.boundary.sample(4, seed=0)
    np.testing.assert_array_equal(np.sort(samples.points[:, 0]), [0.0, 0.0, 0.5, 0.5])
    assert list(domain.parts) == ["left", "cut"]
    np.testing.assert_array_equal(domain.part("cut").sample(2).normals, [[1.0], [1.0]])


def test_dimension_mismatch_is_rejected():
    with pytest.raises(ValueError, match=r"Union: operands have different dimensions \(2 and 3\)"):
        _ = SQUARE | Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"Difference: operands have different dimensions"):
        _ = SQUARE - Interval(0.0, 1.0)


def test_disjoint_intersection_is_rejected():
    with pytest.raises(ValueError, match="Intersection: the operands' bounding boxes do not"):
        _ = SQUARE & Rectangle((2.0, 2.0), (3.0, 3.0))


def test_empty_result_stops_with_runtime_error():
    empty = Disk((0.0, 0.0), 1.0) & Rectangle((0.8, 0.8), (1.0, 1.0))
    with pytest.raises(RuntimeError, match="the set is empty or far smaller"):
        empty.sample_interior(10, seed=0)


def test_non_domain_operand_is_a_type_error():
    with pytest.raises(TypeError):
        _ = SQUARE | 3
