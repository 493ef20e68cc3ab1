"""Boundary pieces ("faces") of the primitive domains.

A face maps unit-cube points of its own dimension onto itself, with outward unit normals, and
tells whether points lie on it. Faces carry the name of the boundary part they belong to.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kanphys.geometry._sampling import split_counts


class Face(Protocol):
    """What the samplers need from a boundary piece."""

    name: str

    @property
    def dim(self) -> int: ...

    @property
    def measure(self) -> float: ...

    def map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def on(self, points: np.ndarray, tol: float) -> np.ndarray: ...

    def flipped(self, name: str) -> Face: ...


@dataclass(frozen=True)
class AxisFace:
    """The face {x[axis] = value} of an axis-aligned box.

    Attributes:
        name: Boundary part name.
        axis: Coordinate held fixed.
        value: Its value on the face.
        sign: +1.0 or -1.0, the outward normal is sign * e_axis.
        lower: Lower corner of the box, length d.
        upper: Upper corner of the box, length d.
    """

    name: str
    axis: int
    value: float
    sign: float
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.lower)

    @property
    def _free(self) -> list[int]:
        return [j for j in range(self.dim) if j != self.axis]

    @property
    def measure(self) -> float:
        """Length/area of the face (1.0 for the end point of an interval)."""
        return math.prod(self.upper[j] - self.lower[j] for j in self._free)

    def map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map u (n, d-1) to points (n, d) on the face and normals (n, d)."""
        lo, hi = np.array(self.lower), np.array(self.upper)
        points = np.empty((len(u), self.dim))
        points[:, self.axis] = self.value
        points[:, self._free] = lo[self._free] + (hi - lo)[self._free] * u
        normals = np.zeros_like(points)
        normals[:, self.axis] = self.sign
        return points, normals

    def on(self, points: np.ndarray, tol: float) -> np.ndarray:
        """Return (n,) bool: points within `tol` of the face."""
        free = points[:, self._free]
        inside = np.all((free >= np.array(self.lower)[self._free] - tol), axis=1)
        inside &= np.all((free <= np.array(self.upper)[self._free] + tol), axis=1)
        return inside & (np.abs(points[:, self.axis] - self.value) <= tol)

    def flipped(self, name: str) -> AxisFace:
        """Return the face renamed to `name` with its normal reversed."""
        return dataclasses.replace(self, name=name, sign=-self.sign)


@dataclass(frozen=True)
class CircleFace:
    """A full circle; the normal is sign * (p - center) / radius."""

    name: str
    center: tuple[float, float]
    radius: float
    sign: float = 1.0

    @property
    def dim(self) -> int:
        return 2

    @property
    def measure(self) -> float:
        return 2.0 * math.pi * self.radius

    def map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map u (n, 1) to angles 2 pi u; return points (n, 2) and normals (n, 2)."""
        theta = 2.0 * math.pi * u[:, 0]
        radial = np.column_stack([np.cos(theta), np.sin(theta)])
        return np.array(self.center) + self.radius * radial, self.sign * radial

    def on(self, points: np.ndarray, tol: float) -> np.ndarray:
        """Return (n,) bool: points within `tol` of the circle."""
        r = np.linalg.norm(points - np.array(self.center), axis=1)
        return np.abs(r - self.radius) <= tol

    def flipped(self, name: str) -> CircleFace:
        """Return the circle renamed to `name` with its normal reversed."""
        return dataclasses.replace(self, name=name, sign=-self.sign)


@dataclass(frozen=True)
class TimeFace:
    """A spatial face times the time interval [t0, t1]; normals have a zero time component."""

    space_face: Face
    t0: float
    t1: float

    @property
    def name(self) -> str:
        return self.space_face.name

    @property
    def dim(self) -> int:
        return self.space_face.dim + 1

    @property
    def measure(self) -> float:
        return self.space_face.measure * (self.t1 - self.t0)

    def map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map u (n, k+1): the first k columns to the spatial face, the last one to time."""
        points, normals = self.space_face.map_unit(u[:, :-1])
        t = self.t0 + (self.t1 - self.t0) * u[:, -1:]
        return np.hstack([points, t]), np.hstack([normals, np.zeros_like(t)])

    def on(self, points: np.ndarray, tol: float) -> np.ndarray:
        """Return (n,) bool: spatial part on the face and time within [t0, t1] (+- tol)."""
        t = points[:, -1]
        in_time = (t >= self.t0 - tol) & (t <= self.t1 + tol)
        return self.space_face.on(points[:, :-1], tol) & in_time

    def flipped(self, name: str) -> TimeFace:
        """Return the face with its spatial part renamed and its normal reversed."""
        return dataclasses.replace(self, space_face=self.space_face.flipped(name))


def map_faces(faces: tuple[Face, ...], u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map unit points onto a union of faces, in proportion to the faces' measures.

    With k >= 1 columns the first column picks the face (by cumulative measure) and is then
    rescaled to [0, 1] to serve as the face's first local coordinate, so a low-discrepancy
    sequence stays low-discrepancy on every face. With k = 0 (end points of intervals) the
    points are split between the faces by proportional integer counts, in blocks.

    Args:
        faces: Faces of equal ambient dimension d, not all of zero measure.
        u: Unit-cube points, shape (n, k) with k = d - 1.

    Returns:
        points (n, d) and outward unit normals (n, d).
    """
    weights = np.array([face.measure for face in faces], dtype=float)
    weights /= weights.sum()
    if u.shape[1] == 0:
        index = np.repeat(np.arange(len(faces)), split_counts(len(u), weights))
        local = u
    else:
        index, first = _pick(weights, u[:, 0])
        local = np.column_stack([first, u[:, 1:]])
    points = np.empty((len(u), faces[0].dim))
    normals = np.empty_like(points)
    for i, face in enumerate(faces):
        rows = index == i
        points[rows], normals[rows] = face.map_unit(local[rows])
    return points, normals


def _pick(weights: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the face index of each s in [0, 1) and s rescaled within that face's slot."""
    ends = np.cumsum(weights)
    index = np.minimum(np.searchsorted(ends, s, side="right"), len(weights) - 1)
    start = ends[index] - weights[index]
    return index, np.clip((s - start) / weights[index], 0.0, 1.0)
