"""Sampling options: reproducibility, methods, counts, and the regions' common interface."""

import numpy as np
import pytest

from kanphys.geometry import (
    SAMPLING_METHODS,
    Box,
    Disk,
    Interval,
    Rectangle,
    Region,
    Samples,
    TimeInterval,
)

DOMAINS = {
    "interval": Interval(0.0, 1.0),
    "box": Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "plate": Rectangle((0.0, 0.0), (1.0, 1.0)) - Disk((0.5, 0.5), 0.2, name="hole"),
    "heat": Disk((0.0, 0.0), 1.0) * TimeInterval(0.0, 1.0),
}


def regions(domain):
    found = [domain.interior, domain.boundary, *domain.parts.values()]
    return [*found, domain.initial] if domain.time_index is not None else found


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("key", DOMAINS)
def test_same_seed_identical_different_seed_differs(key, method):
    for region in regions(DOMAINS[key]):
        first = region.sample(64, seed=7, method=method)
        again = region.sample(64, seed=7, method=method)
        other = region.sample(64, seed=8, method=method)
        np.testing.assert_array_equal(first.points, again.points)
        if region.kind != "boundary" or region.dim > 1:  # 1D boundaries are fixed end points
            assert not np.allclose(first.points, other.points), region.name


@pytest.mark.parametrize("key", DOMAINS)
def test_methods_give_different_point_sets(key):
    domain = DOMAINS[key]
    sets = [domain.sample_interior(32, seed=0, method=m) for m in SAMPLING_METHODS]
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not np.allclose(sets[i], sets[j])


def test_sobol_interior_has_low_discrepancy():
    points = DOMAINS["box"].sample_interior(1024, seed=0, method="sobol")
    octants = (points > 0.5).astype(int) @ np.array([1, 2, 4])
    np.testing.assert_array_equal(np.bincount(octants, minlength=8), [128] * 8)


@pytest.mark.parametrize("key", DOMAINS)
def test_region_interface(key):
    domain = DOMAINS[key]
    for region in regions(domain):
        assert isinstance(region, Region)
        assert region.domain == domain
        assert region.dim == domain.dim
        samples = region.sample(17, seed=1, method="lhs")
        assert isinstance(samples, Samples)
        assert len(samples) == 17
        assert samples.points.shape == (17, domain.dim)
        assert region.contains(samples.points).all()
        if region.kind == "interior":
            assert samples.normals is None
        else:
            assert samples.normals.shape == (17, domain.dim)
    assert domain.interior.kind == "interior"
    assert domain.boundary.kind == "boundary"
    assert all(part.kind == "boundary" for part in domain.parts.values())


def test_zero_points():
    assert DOMAINS["plate"].sample_interior(0).shape == (0, 2)
    assert DOMAINS["plate"].boundary.sample(0, method="sobol").normals.shape == (0, 2)


def test_unknown_method_names_the_choices():
    message = r"unknown sampling method 'grid'; choose one of 'uniform', 'sobol', 'halton', 'lhs'"
    with pytest.raises(ValueError, match=message):
        DOMAINS["box"].sample_interior(10, method="grid")
    with pytest.raises(ValueError, match=message):
        DOMAINS["plate"].boundary.sample(10, method="grid")
    with pytest.raises(ValueError, match=message):
        DOMAINS["heat"].initial.sample(10, method="grid")


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_bad_point_counts(n):
    with pytest.raises(ValueError, match="number of points must be a non-negative integer"):
        DOMAINS["interval"].sample_interior(n)


def test_unknown_part_in_csg_and_time_domains():
    with pytest.raises(ValueError, match=r"no boundary part 'inlet'; available: .*'hole'"):
        DOMAINS["plate"].part("inlet")
    message = "TimeDomain has no boundary part 'left'; available: 'disk'"
    with pytest.raises(ValueError, match=message):
        DOMAINS["heat"].part("left")
