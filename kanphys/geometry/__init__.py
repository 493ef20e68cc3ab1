"""Geometry for physics-informed training: domains, their boundaries, and point samplers.

Example:
    >>> from kanphys.geometry import Disk, Rectangle, TimeInterval
    >>> plate = Rectangle((0.0, 0.0), (1.0, 1.0)) - Disk((0.5, 0.5), 0.2, name="hole")
    >>> sorted(plate.parts)
    ['bottom', 'hole', 'left', 'right', 'top']
    >>> plate.sample_interior(128, seed=1, method="sobol").shape
    (128, 2)
    >>> hole = plate.part("hole").sample(64)
    >>> hole.points.shape, hole.normals.shape
    ((64, 2), (64, 2))
    >>> heat = plate * TimeInterval(0.0, 1.0)
    >>> heat.names, float(heat.initial.sample(10).points[0, 2])
    (('x', 'y', 't'), 0.0)
"""

from kanphys.geometry._sampling import SAMPLING_METHODS
from kanphys.geometry.csg import Difference, Intersection, Union
from kanphys.geometry.domain import Domain
from kanphys.geometry.mesh import MeshDomain, MeshError, plate_with_hole_mesh
from kanphys.geometry.primitives import Box, Disk, Interval, Rectangle
from kanphys.geometry.region import Region, Samples
from kanphys.geometry.time import TimeDomain, TimeInterval

__all__ = [
    "SAMPLING_METHODS",
    "Box",
    "Difference",
    "Disk",
    "Domain",
    "Intersection",
    "Interval",
    "MeshDomain",
    "MeshError",
    "Rectangle",
    "Region",
    "Samples",
    "TimeDomain",
    "TimeInterval",
    "Union",
    "plate_with_hole_mesh",
]
