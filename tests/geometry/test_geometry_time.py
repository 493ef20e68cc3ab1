"""Space-time domains: interior, lateral boundary, named parts, initial and final slices."""

import numpy as np
import pytest

from kanphys.geometry import (
    SAMPLING_METHODS,
    Disk,
    Interval,
    Rectangle,
    TimeDomain,
    TimeInterval,
)

T0, T1 = 0.5, 2.0
PLATE = Rectangle((0.0, 0.0), (1.0, 1.0)) - Disk((0.5, 0.5), 0.2, name="hole")
SPACES = {
    "interval": Interval(-1.0, 1.0),
    "rectangle": Rectangle((0.0, 0.0), (2.0, 1.0)),
    "disk": Disk((0.0, 0.0), 1.0),
    "plate": PLATE,
}


def space_time(key):
    return SPACES[key] * TimeInterval(T0, T1)


def test_product_builds_time_domain():
    domain = space_time("rectangle")
    assert domain == TimeDomain(SPACES["rectangle"], T0, T1)
    assert domain.dim == 3
    assert domain.names == ("x", "y", "t")
    assert domain.spatial_dim == 2
    assert domain.time_index == 2
    assert space_time("interval").names == ("x", "t")
    lower, upper = domain.bounds
    np.testing.assert_allclose(lower, [0.0, 0.0, T0])
    np.testing.assert_allclose(upper, [2.0, 1.0, T1])


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", SPACES)
def test_interior_samples_are_inside(key, method):
    domain = space_time(key)
    points = domain.sample_interior(513, seed=4, method=method)
    assert points.shape == (513, domain.dim)
    assert domain.contains(points).all()
    assert SPACES[key].contains(points[:, :-1]).all()
    assert abs(points[:, -1].mean() - (T0 + T1) / 2) < 0.1


def test_time_coordinate_is_uniform():
    t = space_time("plate").sample_interior(4096, seed=0, method="sobol")[:, -1]
    histogram, _ = np.histogram(t, bins=4, range=(T0, T1))
    np.testing.assert_allclose(histogram / 4096, 0.25, atol=0.01)


@pytest.mark.parametrize("key", SPACES)
def test_initial_and_final_slices(key):
    domain = space_time(key)
    initial = domain.initial.sample(300, seed=1, method="halton")
    assert domain.initial.kind == "initial"
    assert domain.initial.name == "initial"
    assert np.all(initial.points[:, -1] == T0)
    assert SPACES[key].contains(initial.points[:, :-1]).all()
    expected = np.zeros(domain.dim)
    expected[-1] = -1.0
    assert np.all(initial.normals == expected)
    assert domain.initial.contains(initial.points).all()
    assert not domain.final.contains(initial.points).any()
    final = domain.final.sample(10, seed=1)
    assert np.all(final.points[:, -1] == T1)
    assert np.all(final.normals[:, -1] == 1.0)


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", SPACES)
def test_lateral_boundary(key, method):
    domain, space = space_time(key), SPACES[key]
    samples = domain.boundary.sample(400, seed=2, method=method)
    t = samples.points[:, -1]
    assert samples.points.shape == (400, domain.dim)
    assert np.all((t >= T0) & (t <= T1))
    assert np.all(samples.normals[:, -1] == 0.0)
    assert space.boundary.contains(samples.points[:, :-1]).all()
    assert domain.boundary.contains(samples.points).all()
    spatial = samples.points[:, :-1]
    normals = samples.normals[:, :-1]
    assert not space.contains(spatial + 1e-7 * normals, tol=0.0).any()
    assert space.contains(spatial - 1e-7 * normals, tol=0.0).all()


@pytest.mark.parametrize("key", SPACES)
def test_parts_are_spatial_parts_times_time(key):
    domain, space = space_time(key), SPACES[key]
    assert list(domain.parts) == list(space.parts)
    for name in space.parts:
        points = domain.part(name).sample(50, seed=3).points
        assert space.part(name).contains(points[:, :-1]).all()
        assert np.all((points[:, -1] >= T0) & (points[:, -1] <= T1))


def test_hole_part_in_space_time_points_into_hole():
    samples = space_time("plate").part("hole").sample(200, seed=0, method="sobol")
    offset = samples.points[:, :2] - 0.5
    np.testing.assert_allclose(np.linalg.norm(offset, axis=1), 0.2, atol=1e-12)
    np.testing.assert_allclose(samples.normals[:, :2], -offset / 0.2, atol=1e-12)


def test_measures():
    domain = space_time("rectangle")
    assert domain.measure == pytest.approx(2.0 * (T1 - T0))
    assert domain.boundary_measure == pytest.approx(6.0 * (T1 - T0))


def test_bad_times_and_nested_time():
    with pytest.raises(ValueError, match=r"TimeInterval: start time t0=1\.0 must be less than"):
        TimeInterval(1.0, 1.0)
    with pytest.raises(ValueError, match="TimeDomain: space must be a Domain without a time"):
        TimeDomain(space_time("interval"), 0.0, 1.0)
    with pytest.raises(ValueError, match="CSG of time domains is not supported"):
        _ = space_time("rectangle") | space_time("rectangle")
