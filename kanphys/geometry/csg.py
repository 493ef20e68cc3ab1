"""Constructive solid geometry: `Union`, `Intersection` and `Difference` of two domains.

Interior points are drawn by rejection from the bounding box. Boundary points are drawn from
the operands' primitive faces (in proportion to the faces' measures) and kept when they lie on
the boundary of the result, which is decided by probing: a face point p with outward normal n
is kept when p is in the result, p - delta n is in it and p + delta n is not (delta = 1e-8
times the bounding-box diagonal). Faces of a subtracted operand have their normals flipped, so
they point into the hole, i.e. out of the result, and are renamed to the operand's `name`.

`measure` and `boundary_measure` are randomised quasi-Monte Carlo estimates with a fixed
internal seed (2**16 scrambled Sobol' points for the volume, 2**12 per face for the boundary):
deterministic, with a relative error around 1e-3 for shapes that fill a fair share of their
bounding box.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kanphys.geometry._faces import Face
from kanphys.geometry._sampling import unit_points
from kanphys.geometry.domain import Domain

_ESTIMATE_SEED = 20240611
_VOLUME_POINTS = 1 << 16
_FACE_POINTS = 1 << 12
_PROBE_SCALE = 1e-8


@dataclass(frozen=True)
class _Csg(Domain):
    """Shared code of the boolean combinations of two domains of equal dimension."""

    left: Domain
    right: Domain

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for operand in (self.left, self.right):
            if not isinstance(operand, Domain):
                raise ValueError(f"{owner}: operands must be Domains, got {type(operand).__name__}")
            if operand.time_index is not None:
                raise ValueError(
                    f"{owner}: CSG of time domains is not supported; combine the spatial "
                    "domains first, then multiply by a TimeInterval"
                )
        if self.left.dim != self.right.dim:
            raise ValueError(
                f"{owner}: operands have different dimensions ({self.left.dim} and "
                f"{self.right.dim})"
            )

    @abstractmethod
    def _combine(self, in_left: np.ndarray, in_right: np.ndarray) -> np.ndarray:
        """Combine the operands' memberships, each an (N,) bool array."""

    @property
    def dim(self) -> int:
        return self.left.dim

    def contains(self, points: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        points = self._check_points(points)
        return self._combine(self.left.contains(points, tol), self._right_contains(points, tol))

    def _right_contains(self, points: np.ndarray, tol: float) -> np.ndarray:
        return self.right.contains(points, tol)

    def _map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self.bounds
        points = lower + (upper - lower) * u
        return points, self.contains(points)

    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        return self.left._leaf_faces(hole) + self.right._leaf_faces(hole)

    @property
    def _probe(self) -> float:
        lower, upper = self.bounds
        return _PROBE_SCALE * float(np.linalg.norm(upper - lower))

    def _boundary_keep(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        step = self._probe * normals
        on_set = self.contains(points, 1e-4 * self._probe)
        return on_set & self.contains(points - step, 0.0) & ~self.contains(points + step, 0.0)

    @cached_property
    def measure(self) -> float:
        """Quasi-Monte Carlo estimate (fixed seed, 2**16 Sobol' points in the bounding box)."""
        lower, upper = self.bounds
        u = unit_points(_VOLUME_POINTS, self.dim, _ESTIMATE_SEED, "sobol")
        _, inside = self._map_unit(u)
        return float(np.prod(upper - lower) * np.mean(inside))

    @cached_property
    def _face_fractions(self) -> dict[Face, float]:
        """Estimated fraction of each leaf face that lies on the boundary."""
        return {face: self._kept_fraction(face) for face in self._leaf_faces(hole=False)}

    def _kept_fraction(self, face: Face) -> float:
        u = unit_points(_FACE_POINTS, self.dim - 1, _ESTIMATE_SEED, "sobol")
        points, normals = face.map_unit(u)
        return float(np.mean(self._boundary_keep(points, normals)))

    @property
    def boundary_measure(self) -> float:
        """Quasi-Monte Carlo estimate: sum of face measures times their kept fractions."""
        return float(sum(face.measure * frac for face, frac in self._face_fractions.items()))

    def _face_present(self, face: Face) -> bool:
        return self._face_fractions.get(face, 1.0) > 0.0


@dataclass(frozen=True)
class Union(_Csg):
    """Points in `left` or in `right` (built by `left | right`).

    Attributes:
        left: First operand.
        right: Second operand, of the same dimension.

    Raises:
        ValueError: If the dimensions differ or an operand is a time domain.
    """

    def _combine(self, in_left: np.ndarray, in_right: np.ndarray) -> np.ndarray:
        return in_left | in_right

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Hull of the operands' bounding boxes."""
        (lo_a, hi_a), (lo_b, hi_b) = self.left.bounds, self.right.bounds
        return np.minimum(lo_a, lo_b), np.maximum(hi_a, hi_b)


@dataclass(frozen=True)
class Intersection(_Csg):
    """Points in both `left` and `right` (built by `left & right`).

    Attributes:
        left: First operand.
        right: Second operand, of the same dimension.

    Raises:
        ValueError: If the dimensions differ, an operand is a time domain, or the operands'
            bounding boxes do not overlap (the intersection would be empty).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        lower, upper = self.bounds
        if np.any(lower > upper):
            raise ValueError(
                "Intersection: the operands' bounding boxes do not overlap, so the "
                "intersection is empty"
            )

    def _combine(self, in_left: np.ndarray, in_right: np.ndarray) -> np.ndarray:
        return in_left & in_right

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Overlap of the operands' bounding boxes."""
        (lo_a, hi_a), (lo_b, hi_b) = self.left.bounds, self.right.bounds
        return np.maximum(lo_a, lo_b), np.minimum(hi_a, hi_b)


@dataclass(frozen=True)
class Difference(_Csg):
    """Points in `left` and not strictly inside `right` (built by `left - right`).

    The result is closed: points on the boundary of `right` belong to it. The faces of `right`
    have their normals flipped (pointing into the hole) and are named by `right`'s `name`.

    Attributes:
        left: Domain to cut from.
        right: Domain cut out, of the same dimension.

    Raises:
        ValueError: If the dimensions differ or an operand is a time domain.
    """

    def _combine(self, in_left: np.ndarray, in_right: np.ndarray) -> np.ndarray:
        return in_left & ~in_right

    def _right_contains(self, points: np.ndarray, tol: float) -> np.ndarray:
        return self.right.contains(points, -tol)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The bounding box of `left`."""
        return self.left.bounds

    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        return self.left._leaf_faces(hole) + self.right._leaf_faces(not hole)
