"""The abstract `Domain`: a closed set of points with samplers, boundary parts and CSG operators."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from kanphys.geometry._faces import Face
from kanphys.geometry._sampling import collect
from kanphys.geometry.region import BoundaryRegion, InteriorRegion, Region

if TYPE_CHECKING:
    from kanphys.geometry.csg import Difference, Intersection, Union
    from kanphys.geometry.time import TimeDomain

_DEFAULT_NAMES = ("x", "y", "z")


class Domain(ABC):
    """A closed subset of R^d that can be sampled and combined.

    Concrete domains are frozen dataclasses. Points are float64 arrays of shape (N, d).
    `a | b`, `a & b` and `a - b` build `Union`, `Intersection` and `Difference`;
    `space * TimeInterval(t0, t1)` builds a `TimeDomain`.
    """

    # ----------------------------------------------------------------- abstract interface
    @property
    @abstractmethod
    def dim(self) -> int:
        """Ambient dimension d."""

    @property
    @abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounding box (lower, upper), each of shape (d,)."""

    @abstractmethod
    def contains(self, points: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        """Return a bool array (N,): True for interior and boundary points.

        Args:
            points: Shape (N, d).
            tol: The set is grown by `tol` before testing (a negative `tol` shrinks it, which
                tests for points strictly inside).

        Returns:
            Bool array of shape (N,).

        Raises:
            ValueError: If `points` does not have shape (N, d).
        """

    @property
    @abstractmethod
    def measure(self) -> float:
        """Length, area or volume."""

    @property
    @abstractmethod
    def boundary_measure(self) -> float:
        """Point count (1D), perimeter (2D) or surface area (3D) of the boundary."""

    @abstractmethod
    def _map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map unit-cube points u (n, d) to points (n, d) and a keep mask (n,).

        Primitives map measure-preservingly onto themselves and keep everything; other
        domains map onto their bounding box and keep the points they contain.
        """

    @abstractmethod
    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        """Faces of the primitives making up the domain, normals flipped where `hole`."""

    # ----------------------------------------------------------------- hooks with defaults
    def _boundary_keep(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Return (n,) bool: which face points (with outward normals) lie on the boundary."""
        return np.ones(len(points), dtype=bool)

    def _near_boundary(self, points: np.ndarray, tol: float) -> np.ndarray:
        """Return (n,) bool: points in the set grown by `tol` but not in the set shrunk by it."""
        return self.contains(points, tol) & ~self.contains(points, -tol)

    def _face_present(self, face: Face) -> bool:
        """Whether any of `face` survives on the boundary (always, for primitives)."""
        return True

    # ----------------------------------------------------------------- public API
    @property
    def names(self) -> tuple[str, ...]:
        """Coordinate names, ("x", "y", "z")[:d]."""
        return _DEFAULT_NAMES[: self.dim]

    @property
    def spatial_dim(self) -> int:
        """Number of spatial coordinates (d for a domain without time)."""
        return self.dim

    @property
    def time_index(self) -> int | None:
        """Column of the time coordinate, or None for a domain without time."""
        return None

    def sample_interior(self, n: int, *, seed: int = 0, method: str = "uniform") -> np.ndarray:
        """Draw exactly `n` points of the domain.

        Args:
            n: Number of points.
            seed: Seed of the generator (uniform) or of the scrambling (QMC methods).
            method: "uniform" (numpy Generator), "sobol", "halton" or "lhs" (scrambled
                `scipy.stats.qmc` engines).

        Returns:
            Points of shape (n, d).

        Raises:
            ValueError: If `n` or `method` is invalid.
            RuntimeError: If rejection sampling accepts almost nothing (empty domain).
        """
        points, _ = collect(n, self.dim, seed, method, self._draw_interior, "the interior")
        return points

    def _draw_interior(self, u: np.ndarray) -> tuple[np.ndarray, None, np.ndarray]:
        points, keep = self._map_unit(u)
        return points, None, keep

    @property
    def interior(self) -> Region:
        """The region whose samples are interior points (normals None)."""
        return InteriorRegion("interior", "interior", self)

    @property
    def boundary(self) -> Region:
        """The whole boundary, as a region with outward normals."""
        faces = tuple(f for f in self._leaf_faces(hole=False) if self._face_present(f))
        return BoundaryRegion("boundary", "boundary", self, faces)

    @property
    def parts(self) -> dict[str, Region]:
        """Named boundary parts; faces sharing a name form one part."""
        groups: dict[str, list[Face]] = {}
        for face in self._leaf_faces(hole=False):
            if self._face_present(face):
                groups.setdefault(face.name, []).append(face)
        return {
            name: BoundaryRegion(name, "boundary", self, tuple(faces))
            for name, faces in groups.items()
        }

    def part(self, name: str) -> Region:
        """Return the boundary part called `name`.

        Args:
            name: Part name.

        Returns:
            The part's region.

        Raises:
            ValueError: If there is no such part; the message lists the available names.
        """
        parts = self.parts
        if name not in parts:
            available = ", ".join(repr(p) for p in parts)
            raise ValueError(
                f"{type(self).__name__} has no boundary part {name!r}; available: {available}"
            )
        return parts[name]

    def _check_points(self, points: np.ndarray) -> np.ndarray:
        """Return `points` as float64 of shape (N, d).

        Raises:
            ValueError: If the shape is not (N, d).
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(
                f"{type(self).__name__}: points must have shape (N, {self.dim}), got {points.shape}"
            )
        return points

    # ----------------------------------------------------------------- operators
    def __or__(self, other: object) -> Union:
        from kanphys.geometry.csg import Union

        return Union(self, other) if isinstance(other, Domain) else NotImplemented

    def __and__(self, other: object) -> Intersection:
        from kanphys.geometry.csg import Intersection

        return Intersection(self, other) if isinstance(other, Domain) else NotImplemented

    def __sub__(self, other: object) -> Difference:
        from kanphys.geometry.csg import Difference

        return Difference(self, other) if isinstance(other, Domain) else NotImplemented

    def __mul__(self, other: object) -> TimeDomain:
        from kanphys.geometry.time import TimeDomain, TimeInterval

        if not isinstance(other, TimeInterval):
            return NotImplemented
        return TimeDomain(self, other.t0, other.t1)
