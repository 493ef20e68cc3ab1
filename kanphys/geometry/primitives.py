"""Primitive domains: `Interval`, `Rectangle`, `Box` and `Disk`.

Primitives have exact measures and sample without rejection: interior points are the image of
unit-cube points under a measure-preserving map, so QMC sequences keep their low discrepancy.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from kanphys.geometry._faces import AxisFace, CircleFace, Face
from kanphys.geometry.domain import Domain


def _finite_tuple(owner: str, what: str, values: Sequence[float], size: int) -> tuple:
    """Return `values` as a tuple of `size` finite floats.

    Raises:
        ValueError: If the length is wrong or a value is not finite.
    """
    values = tuple(float(v) for v in np.ravel(np.asarray(values, dtype=np.float64)))
    if len(values) != size:
        raise ValueError(f"{owner}: {what} must have {size} coordinates, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{owner}: {what} {values} must be finite")
    return values


class _AxisAlignedBox(Domain):
    """Shared code of `Interval`, `Rectangle` and `Box` (closed boxes lower <= x <= upper)."""

    _face_names: ClassVar[tuple[tuple[str, str], ...]]
    name: str | None

    @property
    @abstractmethod
    def _corners(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(lower, upper) corners as tuples of length d."""

    def _validate_corners(self) -> None:
        lower, upper = self._corners
        if not all(lo < hi for lo, hi in zip(lower, upper, strict=True)):
            raise ValueError(
                f"{type(self).__name__}: lower corner {lower} must be below upper corner "
                f"{upper} in every coordinate"
            )

    @property
    def dim(self) -> int:
        return len(self._corners[0])

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self._corners
        return np.array(lower), np.array(upper)

    def contains(self, points: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        points = self._check_points(points)
        lower, upper = self.bounds
        return np.all((points >= lower - tol) & (points <= upper + tol), axis=1)

    @property
    def measure(self) -> float:
        lower, upper = self._corners
        return math.prod(hi - lo for lo, hi in zip(lower, upper, strict=True))

    @property
    def boundary_measure(self) -> float:
        return sum(face.measure for face in self._faces())

    def _map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self.bounds
        return lower + (upper - lower) * u, np.ones(len(u), dtype=bool)

    def _faces(self) -> tuple[AxisFace, ...]:
        lower, upper = self._corners
        faces = []
        for axis, (low_name, high_name) in enumerate(self._face_names):
            faces.append(AxisFace(low_name, axis, lower[axis], -1.0, lower, upper))
            faces.append(AxisFace(high_name, axis, upper[axis], 1.0, lower, upper))
        return tuple(faces)

    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        if not hole:
            return self._faces()
        hole_name = self.name or type(self).__name__.lower()
        return tuple(face.flipped(hole_name) for face in self._faces())


@dataclass(frozen=True)
class Interval(_AxisAlignedBox):
    """The closed interval [a, b].

    Boundary parts: "left" (x = a, normal -1) and "right" (x = b, normal +1). Boundary
    sampling splits the n points between the two ends as evenly as possible (left first).

    Attributes:
        a: Left end.
        b: Right end, b > a.
        name: Name of the whole boundary when the interval is subtracted (a hole);
            defaults to "interval".

    Raises:
        ValueError: If a >= b or an end is not finite.
    """

    _face_names: ClassVar = (("left", "right"),)

    a: float
    b: float
    name: str | None = None

    def __post_init__(self) -> None:
        a, b = _finite_tuple("Interval", "ends", (self.a, self.b), 2)
        if not a < b:
            raise ValueError(f"Interval: left end a={a} must be less than right end b={b}")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    @property
    def _corners(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (self.a,), (self.b,)


@dataclass(frozen=True)
class Rectangle(_AxisAlignedBox):
    """The closed rectangle [x0, x1] x [y0, y1].

    Boundary parts: "left" (x = x0), "right" (x = x1), "bottom" (y = y0), "top" (y = y1).

    Attributes:
        lower: (x0, y0).
        upper: (x1, y1), above `lower` in both coordinates.
        name: Name of the whole boundary when the rectangle is a hole; defaults to "rectangle".

    Raises:
        ValueError: If the corners are misordered, of the wrong length or not finite.
    """

    _face_names: ClassVar = (("left", "right"), ("bottom", "top"))

    lower: tuple[float, float]
    upper: tuple[float, float]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower", _finite_tuple("Rectangle", "lower", self.lower, 2))
        object.__setattr__(self, "upper", _finite_tuple("Rectangle", "upper", self.upper, 2))
        self._validate_corners()

    @property
    def _corners(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.lower, self.upper


@dataclass(frozen=True)
class Box(_AxisAlignedBox):
    """The closed box [x0, x1] x [y0, y1] x [z0, z1].

    Boundary parts: "left"/"right" (x = x0 / x1), "front"/"back" (y = y0 / y1),
    "bottom"/"top" (z = z0 / z1).

    Attributes:
        lower: (x0, y0, z0).
        upper: (x1, y1, z1), above `lower` in every coordinate.
        name: Name of the whole boundary when the box is a hole; defaults to "box".

    Raises:
        ValueError: If the corners are misordered, of the wrong length or not finite.
    """

    _face_names: ClassVar = (("left", "right"), ("front", "back"), ("bottom", "top"))

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower", _finite_tuple("Box", "lower", self.lower, 3))
        object.__setattr__(self, "upper", _finite_tuple("Box", "upper", self.upper, 3))
        self._validate_corners()

    @property
    def _corners(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.lower, self.upper


@dataclass(frozen=True)
class Disk(Domain):
    """The closed disk |p - center| <= radius in 2D.

    Its boundary is one part, the whole circle, named `name`. Interior points are mapped from
    the unit square by r = R sqrt(u), theta = 2 pi v (area preserving); boundary points use
    theta = 2 pi u.

    Attributes:
        center: (cx, cy).
        radius: R > 0.
        name: Name of the boundary part (also when the disk is a hole).

    Raises:
        ValueError: If the radius is not positive or a value is not finite.
    """

    center: tuple[float, float]
    radius: float
    name: str = "disk"

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _finite_tuple("Disk", "center", self.center, 2))
        (radius,) = _finite_tuple("Disk", "radius", (self.radius,), 1)
        if not radius > 0:
            raise ValueError(f"Disk: radius must be positive, got {radius}")
        object.__setattr__(self, "radius", radius)

    @property
    def dim(self) -> int:
        return 2

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        center = np.array(self.center)
        return center - self.radius, center + self.radius

    def contains(self, points: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        points = self._check_points(points)
        return np.linalg.norm(points - np.array(self.center), axis=1) <= self.radius + tol

    @property
    def measure(self) -> float:
        return math.pi * self.radius**2

    @property
    def boundary_measure(self) -> float:
        return 2.0 * math.pi * self.radius

    def _map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.radius * np.sqrt(u[:, 0])
        theta = 2.0 * math.pi * u[:, 1]
        radial = np.column_stack([np.cos(theta), np.sin(theta)])
        return np.array(self.center) + r[:, None] * radial, np.ones(len(u), dtype=bool)

    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        circle = CircleFace(self.name, self.center, self.radius)
        return (circle.flipped(self.name),) if hole else (circle,)
