"""Space-time domains: `TimeInterval` and `TimeDomain` (space x [t0, t1])."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kanphys.geometry._faces import Face, TimeFace
from kanphys.geometry.domain import Domain
from kanphys.geometry.region import Region, TimeSliceRegion


def _check_times(owner: str, t0: float, t1: float) -> tuple[float, float]:
    """Return (t0, t1) as floats.

    Raises:
        ValueError: If a time is not finite or t0 >= t1.
    """
    t0, t1 = float(t0), float(t1)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"{owner}: times must be finite, got t0={t0}, t1={t1}")
    if not t0 < t1:
        raise ValueError(f"{owner}: start time t0={t0} must be less than end time t1={t1}")
    return t0, t1


@dataclass(frozen=True)
class TimeInterval:
    """The time interval [t0, t1]; `space * TimeInterval(t0, t1)` gives a `TimeDomain`.

    Attributes:
        t0: Start time.
        t1: End time, t1 > t0.

    Raises:
        ValueError: If t0 >= t1 or a time is not finite.
    """

    t0: float
    t1: float

    def __post_init__(self) -> None:
        t0, t1 = _check_times("TimeInterval", self.t0, self.t1)
        object.__setattr__(self, "t0", t0)
        object.__setattr__(self, "t1", t1)

    @property
    def duration(self) -> float:
        """t1 - t0."""
        return self.t1 - self.t0


@dataclass(frozen=True)
class TimeDomain(Domain):
    """The space-time cylinder space x [t0, t1]; coordinates are ordered (space..., t).

    `boundary` and `parts` are the lateral boundary (each spatial part x [t0, t1], same names,
    normals (n_space, 0)); the time slices are the separate regions `initial` and `final`.

    Attributes:
        space: Spatial domain (not itself a TimeDomain).
        t0: Start time.
        t1: End time, t1 > t0.

    Raises:
        ValueError: If t0 >= t1, a time is not finite, or `space` is not a spatial Domain.
    """

    space: Domain
    t0: float
    t1: float

    def __post_init__(self) -> None:
        if not isinstance(self.space, Domain) or self.space.time_index is not None:
            raise ValueError("TimeDomain: space must be a Domain without a time coordinate")
        t0, t1 = _check_times("TimeDomain", self.t0, self.t1)
        object.__setattr__(self, "t0", t0)
        object.__setattr__(self, "t1", t1)

    @property
    def dim(self) -> int:
        return self.space.dim + 1

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.space.names, "t")

    @property
    def spatial_dim(self) -> int:
        return self.space.dim

    @property
    def time_index(self) -> int:
        return self.dim - 1

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self.space.bounds
        return np.append(lower, self.t0), np.append(upper, self.t1)

    def contains(self, points: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        points = self._check_points(points)
        return self.space.contains(points[:, :-1], tol) & self._in_time(points, tol)

    def _in_time(self, points: np.ndarray, tol: float) -> np.ndarray:
        t = points[:, -1]
        return (t >= self.t0 - tol) & (t <= self.t1 + tol)

    @property
    def measure(self) -> float:
        """Spatial measure times duration (an estimate if the space's measure is)."""
        return self.space.measure * (self.t1 - self.t0)

    @property
    def boundary_measure(self) -> float:
        """Measure of the lateral boundary: spatial boundary measure times duration."""
        return self.space.boundary_measure * (self.t1 - self.t0)

    def _map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, keep = self.space._map_unit(u[:, :-1])
        t = self.t0 + (self.t1 - self.t0) * u[:, -1:]
        return np.hstack([points, t]), keep

    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        return tuple(TimeFace(f, self.t0, self.t1) for f in self.space._leaf_faces(hole))

    def _boundary_keep(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        return self.space._boundary_keep(points[:, :-1], normals[:, :-1])

    def _near_boundary(self, points: np.ndarray, tol: float) -> np.ndarray:
        return self.space._near_boundary(points[:, :-1], tol) & self._in_time(points, tol)

    def _face_present(self, face: Face) -> bool:
        return self.space._face_present(face.space_face)

    @property
    def initial(self) -> Region:
        """The slice t = t0 (kind "initial"); normals (0, ..., 0, -1)."""
        return TimeSliceRegion("initial", "initial", self, self.t0, -1.0)

    @property
    def final(self) -> Region:
        """The slice t = t1 (kind "final"); normals (0, ..., 0, +1)."""
        return TimeSliceRegion("final", "final", self, self.t1, 1.0)
