"""Regions: the sampleable sets that boundary and initial conditions are declared on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kanphys.geometry._faces import Face, map_faces
from kanphys.geometry._sampling import check_method, collect

if TYPE_CHECKING:
    from kanphys.geometry.domain import Domain
    from kanphys.geometry.time import TimeDomain


@dataclass(frozen=True, eq=False)
class Samples:
    """Points drawn from a region.

    Attributes:
        points: Shape (n, d), float64.
        normals: Outward unit normals, shape (n, d), for boundary regions; None otherwise.
    """

    points: np.ndarray
    normals: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class Region(ABC):
    """A named, sampleable subset of a domain.

    Attributes:
        name: "interior", "boundary", "initial", "final" or a boundary part name.
        kind: "interior", "boundary", "initial" (the slice t = t0 of a time domain) or
            "final" (the slice t = t1).
        domain: The domain the region belongs to.
    """

    name: str
    kind: str
    domain: Domain

    @property
    def dim(self) -> int:
        """Ambient dimension d (that of the domain)."""
        return self.domain.dim

    @abstractmethod
    def sample(self, n: int, *, seed: int = 0, method: str = "uniform") -> Samples:
        """Draw exactly `n` points of the region.

        Args:
            n: Number of points.
            seed: Seed; the same seed gives identical points.
            method: "uniform", "sobol", "halton" or "lhs".

        Returns:
            Samples with points (n, d) and, for boundary regions, normals (n, d).

        Raises:
            ValueError: If `n` or `method` is invalid.
            RuntimeError: If the region is (nearly) empty and rejection sampling gives up.
        """

    @abstractmethod
    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Return a bool array (N,): True where the points lie on the region (within `tol`).

        Args:
            points: Shape (N, d).
            tol: Absolute distance tolerance.

        Returns:
            Bool array of shape (N,).

        Raises:
            ValueError: If `points` does not have shape (N, d).
        """


@dataclass(frozen=True)
class InteriorRegion(Region):
    """The whole domain (closed); samples have no normals."""

    def sample(self, n: int, *, seed: int = 0, method: str = "uniform") -> Samples:
        return Samples(self.domain.sample_interior(n, seed=seed, method=method))

    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        return self.domain.contains(points, tol)


@dataclass(frozen=True)
class BoundaryRegion(Region):
    """A union of boundary faces of primitives, restricted to the domain's boundary.

    Attributes:
        faces: The primitives' faces (normals already flipped for holes) the region is cut from.
    """

    faces: tuple[Face, ...] = field(default=(), repr=False)

    def sample(self, n: int, *, seed: int = 0, method: str = "uniform") -> Samples:
        check_method(method)
        if not self.faces:
            raise RuntimeError(f"boundary region {self.name!r} is empty")
        points, normals = collect(
            n, self.dim - 1, seed, method, self._draw, f"boundary region {self.name!r}"
        )
        return Samples(points, normals)

    def _draw(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points, normals = map_faces(self.faces, u)
        return points, normals, self.domain._boundary_keep(points, normals)

    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        points = self.domain._check_points(points)
        on_face = np.zeros(len(points), dtype=bool)
        for face in self.faces:
            on_face |= face.on(points, tol)
        return on_face & self.domain._near_boundary(points, tol)


@dataclass(frozen=True)
class TimeSliceRegion(Region):
    """The spatial domain at a fixed time; normals are (0, ..., 0, sign).

    Attributes:
        t: The time of the slice.
        sign: -1.0 for the initial slice (normal pointing back in time), +1.0 for the final one.
    """

    domain: TimeDomain
    t: float = 0.0
    sign: float = -1.0

    def sample(self, n: int, *, seed: int = 0, method: str = "uniform") -> Samples:
        space = self.domain.space.sample_interior(n, seed=seed, method=method)
        points = np.hstack([space, np.full((len(space), 1), self.t)])
        normals = np.zeros_like(points)
        normals[:, -1] = self.sign
        return Samples(points, normals)

    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        points = self.domain._check_points(points)
        at_t = np.abs(points[:, -1] - self.t) <= tol
        return at_t & self.domain.space.contains(points[:, :-1], tol)
