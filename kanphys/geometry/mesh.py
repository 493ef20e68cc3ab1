"""Domains from meshes: `MeshDomain` (any mesh meshio reads) and `plate_with_hole_mesh`.

A mesh domain is the union of its cells: triangles and quadrilaterals in 2D; tetrahedra,
hexahedra and wedges in 3D (quadrilaterals, hexahedra and wedges are split into simplices
for sampling and point location). Its boundary is made of the cell facets that belong to one
cell only. Facets covered by a lower-dimensional cell carrying a Gmsh physical group (cell
data ``gmsh:physical``, names from the mesh's ``field_data``) form a boundary part of that
name; the other facets form the part named by the domain's `name` ("boundary").

Interior points are mapped from the unit cube measure-preservingly: the first coordinate picks
a simplex in proportion to its measure (and is rescaled to serve as a local coordinate), the
others are folded into the simplex, so uniform and quasi-random points stay uniform.
Boundary points are drawn the same way on the boundary facets, with outward unit normals.

Example:
    >>> from kanphys.geometry.mesh import MeshDomain, plate_with_hole_mesh
    >>> plate = MeshDomain(plate_with_hole_mesh(radius=0.3, n_around=32, n_radial=6))
    >>> sorted(plate.parts)
    ['bottom', 'hole', 'left', 'right', 'top']
    >>> plate.sample_interior(100, seed=1).shape
    (100, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kanphys.geometry._faces import Face, _pick
from kanphys.geometry.domain import Domain

if TYPE_CHECKING:
    import meshio

__all__ = ["MeshDomain", "MeshError", "plate_with_hole_mesh", "read_mesh"]

# Cell type -> (topological dimension, simplices as local vertex tuples).
SIMPLICES: dict[str, tuple[int, tuple[tuple[int, ...], ...]]] = {
    "triangle": (2, ((0, 1, 2),)),
    "quad": (2, ((0, 1, 2), (0, 2, 3))),
    "tetra": (3, ((0, 1, 2, 3),)),
    "hexahedron": (
        3,
        ((0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6), (0, 5, 1, 6)),
    ),
    "wedge": (3, ((0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5))),
}
# Cell type -> facets as local vertex tuples, in cyclic order (polygons in 3D).
FACETS: dict[str, tuple[tuple[int, ...], ...]] = {
    "triangle": ((0, 1), (1, 2), (2, 0)),
    "quad": ((0, 1), (1, 2), (2, 3), (3, 0)),
    "tetra": ((0, 1, 2), (0, 1, 3), (1, 2, 3), (0, 2, 3)),
    "hexahedron": (
        (0, 1, 2, 3),
        (4, 5, 6, 7),
        (0, 1, 5, 4),
        (1, 2, 6, 5),
        (2, 3, 7, 6),
        (3, 0, 4, 7),
    ),
    "wedge": ((0, 1, 2), (3, 4, 5), (0, 1, 4, 3), (1, 2, 5, 4), (2, 0, 3, 5)),
}
# Lower-dimensional cells that can label boundary facets.
LABEL_CELLS = {"line": 2, "triangle": 3, "quad": 3}
_CHUNK = 4096
_BARYCENTRIC_TOL = 1e-10


class MeshError(ValueError):
    """A mesh that cannot serve as a domain (the message names the file and the problem)."""


def read_mesh(path: str | Path) -> meshio.Mesh:
    """A mesh file read with meshio (``.msh``, ``.vtu``, ``.xdmf``, ...).

    Raises:
        MeshError: naming the file if it is missing or meshio cannot read it.
    """
    import meshio

    path = Path(path)
    if not path.is_file():
        raise MeshError(f"mesh file {path} does not exist")
    try:
        return meshio.read(path)
    except (Exception, SystemExit) as error:  # meshio raises many kinds, or exits
        raise MeshError(f"cannot read mesh {path}: {error}") from error


# ----------------------------------------------------------------------------- simplices
def simplex_measures(simplices: np.ndarray) -> np.ndarray:
    """Length/area/volume of each simplex (F, k+1, d) of any k <= d, shape (F,)."""
    edges = simplices[:, 1:] - simplices[:, :1]
    gram = np.einsum("fid,fjd->fij", edges, edges)
    k = edges.shape[1]
    return np.sqrt(np.clip(np.linalg.det(gram), 0.0, None)) / math.factorial(k)


def fold_simplex(u: np.ndarray) -> np.ndarray:
    """Map unit-cube points (n, k), k in {1, 2, 3}, onto the standard k-simplex, uniformly.

    Returns:
        Weights (n, k) of the edge vectors v1 - v0, ..., vk - v0 (folds of the cube, after
        Rocchini and Cignoni 2000 for k = 3).
    """
    u = np.array(u, dtype=np.float64)
    if u.shape[1] == 1:
        return u
    s, t = u[:, 0].copy(), u[:, 1].copy()
    flip = s + t > 1.0
    s[flip], t[flip] = 1.0 - s[flip], 1.0 - t[flip]
    if u.shape[1] == 2:
        return np.column_stack([s, t])
    w = u[:, 2].copy()
    first = t + w > 1.0
    second = ~first & (s + t + w > 1.0)
    t_old, w_old, s_old = t.copy(), w.copy(), s.copy()
    t[first], w[first] = 1.0 - w_old[first], 1.0 - s_old[first] - t_old[first]
    s[second], w[second] = 1.0 - t_old[second] - w_old[second], (s_old + t_old + w_old)[second] - 1
    return np.column_stack([s, t, w])


def map_simplices(simplices: np.ndarray, measures: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Map unit-cube points u (n, k) onto a union of k-simplices (F, k+1, d), uniformly.

    Returns:
        Points (n, d) and the index (n,) of the simplex each lies in.
    """
    index, first = _pick(measures / measures.sum(), u[:, 0])
    weights = fold_simplex(np.column_stack([first, u[:, 1:]]))
    chosen = simplices[index]
    edges = chosen[:, 1:] - chosen[:, :1]
    return chosen[:, 0] + np.einsum("nk,nkd->nd", weights, edges), index


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distance from points (n, d) to segments [a, b] (n, d)."""
    ab = b - a
    length2 = np.einsum("nd,nd->n", ab, ab)
    s = np.clip(np.einsum("nd,nd->n", points - a, ab) / np.where(length2 > 0, length2, 1), 0, 1)
    return np.linalg.norm(points - a - s[:, None] * ab, axis=1)


def _triangle_distance(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Row-wise distance from points (n, 3) to triangles (n, 3, 3)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    height = np.einsum("nd,nd->n", points - a, normal)
    projected = points - height[:, None] * normal
    weights = _barycentric(projected, tri)
    inside = np.all(weights >= -_BARYCENTRIC_TOL, axis=1)
    edges = np.minimum.reduce(
        [
            _segment_distance(points, a, b),
            _segment_distance(points, b, c),
            _segment_distance(points, c, a),
        ]
    )
    return np.where(inside, np.abs(height), edges)


def _barycentric(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Barycentric weights (n, k+1) of points (n, d) in k-simplices (n, k+1, d) (least squares
    for k < d)."""
    edges = simplices[:, 1:] - simplices[:, :1]  # (n, k, d)
    gram = np.einsum("nid,njd->nij", edges, edges)
    rhs = np.einsum("nid,nd->ni", edges, points - simplices[:, 0])
    local = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return np.column_stack([1.0 - local.sum(axis=1), local])


def facet_distance(points: np.ndarray, facets: np.ndarray) -> np.ndarray:
    """Row-wise distance from points (n, d) to facets (n, d, d): segments in 2D, triangles in 3D."""
    if facets.shape[1] == 2:
        return _segment_distance(points, facets[:, 0], facets[:, 1])
    return _triangle_distance(points, facets)


class _SimplexIndex:
    """A k-d tree over simplex centroids that finds the simplices near given points."""

    def __init__(self, simplices: np.ndarray) -> None:
        self.simplices = simplices
        centroids = simplices.mean(axis=1)
        self.radius = float(np.max(np.linalg.norm(simplices - centroids[:, None], axis=2)))
        from scipy.spatial import cKDTree  # imported on use: scipy.spatial is slow to import

        self.tree = cKDTree(centroids)

    def pairs(self, points: np.ndarray, grow: float) -> tuple[np.ndarray, np.ndarray]:
        """(point, simplex) index pairs whose distance might be below `grow`."""
        lists = self.tree.query_ball_point(points, self.radius * (1 + 1e-9) + grow)
        counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        rows = np.repeat(np.arange(len(points)), counts)
        columns = np.fromiter((j for x in lists for j in x), dtype=np.int64, count=counts.sum())
        return rows, columns


# ----------------------------------------------------------------------------- faces
@dataclass(frozen=True, eq=False)
class FacetFace:
    """A named set of boundary facet simplices with outward unit normals (a `Face`).

    Attributes:
        name: Boundary part name.
        facets: Facet simplices, shape (F, d, d) (segments in 2D, triangles in 3D).
        normals: Outward unit normals, shape (F, d).
    """

    name: str
    facets: np.ndarray = field(repr=False)
    normals: np.ndarray = field(repr=False)

    @property
    def dim(self) -> int:
        return self.facets.shape[2]

    @cached_property
    def _measures(self) -> np.ndarray:
        return simplex_measures(self.facets)

    @property
    def measure(self) -> float:
        """Total length (2D) or area (3D) of the facets."""
        return float(self._measures.sum())

    @cached_property
    def _index(self) -> _SimplexIndex:
        return _SimplexIndex(self.facets)

    def map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map u (n, d-1) onto the facets in proportion to their measures; points and normals."""
        points, index = map_simplices(self.facets, self._measures, u)
        return points, self.normals[index]

    def on(self, points: np.ndarray, tol: float) -> np.ndarray:
        """Return (n,) bool: points within `tol` of a facet."""
        return within(self._index, points, abs(tol))

    def flipped(self, name: str) -> FacetFace:
        """Return the facets renamed to `name` with their normals reversed."""
        return replace(self, name=name, normals=-self.normals)


def within(index: _SimplexIndex, points: np.ndarray, tol: float) -> np.ndarray:
    """Return (n,) bool: points within distance `tol` of one of the indexed facets."""
    near = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), _CHUNK):
        chunk = points[start : start + _CHUNK]
        rows, columns = index.pairs(chunk, tol)
        close = facet_distance(chunk[rows], index.simplices[columns]) <= tol
        near[start : start + _CHUNK][rows[close]] = True
    return near


# ----------------------------------------------------------------------------- the domain
@dataclass(frozen=True, eq=False)
class MeshDomain(Domain):
    """The union of the cells of a mesh, with boundary parts from Gmsh physical groups.

    Build it from a `meshio.Mesh` or with `MeshDomain.read(path)`. A 2D mesh stored with three
    coordinates (z = 0, as Gmsh and VTK do) is used as 2D.

    Attributes:
        mesh: The mesh (meshio), kept so that results can be written back onto it.
        name: Name of the boundary part made of the facets without a physical group.
        source: The file the mesh was read from, if any.

    Raises:
        MeshError: If the mesh has no 2D or 3D cells, has non-planar 2D coordinates, or has
            degenerate cells.
    """

    mesh: meshio.Mesh = field(repr=False)
    name: str = "boundary"
    source: Path | None = None

    def __post_init__(self) -> None:
        _ = self._volume  # validate eagerly, so a bad mesh fails where it is declared

    @classmethod
    def read(cls, path: str | Path, *, name: str = "boundary") -> MeshDomain:
        """Read a mesh file with meshio (``.msh``, ``.vtu``, ``.xdmf``, ...).

        Raises:
            MeshError: If the file is missing or unreadable, or its mesh is unusable.
        """
        path = Path(path)
        return cls(read_mesh(path), name=name, source=path.resolve())

    def __repr__(self) -> str:
        where = f" from {self.source.name}" if self.source else ""
        kinds = ", ".join(f"{len(c)} {t}" for t, c in self.cells)
        return f"MeshDomain({kinds}{where}, parts {sorted(self.parts)})"

    # ------------------------------------------------------------- mesh structure
    @property
    def _what(self) -> str:
        return f"mesh {self.source.name}" if self.source else "mesh"

    @cached_property
    def _volume(self) -> dict[str, Any]:
        """Cells of the top dimension, points, simplices and their measures."""
        blocks = [(b.type, np.asarray(b.data, dtype=np.int64)) for b in self.mesh.cells]
        dims = [SIMPLICES[t][0] for t, c in blocks if t in SIMPLICES and len(c)]
        if not dims:
            kinds = ", ".join(sorted({t for t, _ in blocks})) or "none"
            raise MeshError(
                f"{self._what} has no cells a domain can be made of (triangle, quad, tetra, "
                f"hexahedron, wedge); its cells: {kinds}"
            )
        dim = max(dims)
        cells = tuple((t, c) for t, c in blocks if t in SIMPLICES and SIMPLICES[t][0] == dim)
        points = self._coordinates(dim)
        simplices = np.concatenate(
            [points[c[:, list(s)]] for t, c in cells for s in SIMPLICES[t][1]]
        )
        measures = simplex_measures(simplices)
        if np.any(measures <= 1e-14 * np.max(measures)):
            raise MeshError(f"{self._what} has {int(np.sum(measures <= 0))} degenerate cells")
        return {
            "dim": dim,
            "cells": cells,
            "points": points,
            "simplices": simplices,
            "measures": measures,
        }

    def _coordinates(self, dim: int) -> np.ndarray:
        points = np.asarray(self.mesh.points, dtype=np.float64)
        extra = points[:, dim:]
        if extra.size and np.ptp(extra, axis=0).max() > 1e-12 * max(np.ptp(points), 1.0):
            raise MeshError(
                f"{self._what} has {dim}-D cells but its coordinates vary in column "
                f"{dim + 1}; only flat meshes (z constant) are supported"
            )
        return points[:, :dim]

    @property
    def points(self) -> np.ndarray:
        """Mesh vertices, shape (P, d)."""
        return self._volume["points"]

    @property
    def cells(self) -> tuple[tuple[str, np.ndarray], ...]:
        """Cell blocks of the top dimension: (meshio type, (C, k) connectivity)."""
        return self._volume["cells"]

    @cached_property
    def _simplex_index(self) -> _SimplexIndex:
        return _SimplexIndex(self._volume["simplices"])

    @cached_property
    def _faces(self) -> tuple[FacetFace, ...]:
        """Boundary facets split into simplices, grouped into named parts."""
        groups = self._boundary_facet_groups
        pieces = [self._facet_simplices(facets, owners) for facets, owners in groups]
        labels = np.concatenate(
            [self._facet_labels(g[0], p[2]) for g, p in zip(groups, pieces, strict=True)]
        )
        simplices = np.concatenate([p[0] for p in pieces])
        normals = np.concatenate([p[1] for p in pieces])
        return tuple(
            FacetFace(str(label), simplices[labels == label], normals[labels == label])
            for label in dict.fromkeys(labels.tolist())
        )

    @cached_property
    def _boundary_facet_groups(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per facet size: facets used by one cell only (F, k) and their cells' centroids."""
        groups: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for cell_type, cells in self.cells:
            centroids = self.points[cells].mean(axis=1)
            for local in FACETS[cell_type]:
                groups.setdefault(len(local), []).append((cells[:, list(local)], centroids))
        out = []
        for members in groups.values():
            facets = np.concatenate([f for f, _ in members])
            owners = np.concatenate([o for _, o in members])
            _, first, counts = np.unique(
                np.sort(facets, axis=1), axis=0, return_index=True, return_counts=True
            )
            once = first[counts == 1]
            out.append((facets[once], owners[once]))
        if not sum(len(f) for f, _ in out):
            raise MeshError(f"{self._what} has no boundary facets")
        return out

    @cached_property
    def _labelled(self) -> dict[tuple[int, ...], str]:
        """Sorted vertex tuples of boundary cells with a Gmsh physical group -> group name."""
        names = {int(tag): name for name, (tag, *_) in self.mesh.field_data.items()}
        tags = self.mesh.cell_data.get("gmsh:physical")
        lookup: dict[tuple[int, ...], str] = {}
        if tags is None:
            return lookup
        for block, block_tags in zip(self.mesh.cells, tags, strict=True):
            if LABEL_CELLS.get(block.type) != self.dim:
                continue
            keys = np.sort(np.asarray(block.data), axis=1).tolist()
            for key, tag in zip(keys, np.asarray(block_tags).tolist(), strict=True):
                lookup[tuple(key)] = names.get(int(tag), f"tag{tag}")
        return lookup

    def _facet_labels(self, facets: np.ndarray, repeat: int) -> np.ndarray:
        """Part name of each facet (F, k), each repeated for its `repeat` simplices."""
        keys = np.sort(facets, axis=1).tolist()
        labels = np.array([self._labelled.get(tuple(k), self.name) for k in keys], dtype=object)
        return np.repeat(labels, repeat)

    def _facet_simplices(
        self, facets: np.ndarray, owners: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Split facets (F, k) into simplices (fans) with outward unit normals.

        Returns:
            Simplices (F * m, d, d), normals (F * m, d) and m, the simplices per facet.
        """
        corners = self.points[facets]  # (F, k, d)
        if facets.shape[1] == 2:
            pieces = corners[:, None]
            tangent = corners[:, 1] - corners[:, 0]
            normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
        else:
            fans = [[0, i, i + 1] for i in range(1, facets.shape[1] - 1)]
            pieces = corners[:, fans]  # (F, m, 3, 3)
            edges = pieces[:, :, 1:] - pieces[:, :, :1]
            normal = np.cross(edges[:, :, 0], edges[:, :, 1]).sum(axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        outward = np.einsum("fd,fd->f", normal, corners.mean(axis=1) - owners)
        normal *= np.where(outward < 0, -1.0, 1.0)[:, None]
        m = pieces.shape[1]
        simplices = pieces.reshape(-1, *pieces.shape[2:])
        return simplices, np.repeat(normal, m, axis=0), m

    # ------------------------------------------------------------- Domain interface
    @property
    def dim(self) -> int:
        return self._volume["dim"]

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        used = np.unique(np.concatenate([c.ravel() for _, c in self.cells]))
        return self.points[used].min(axis=0), self.points[used].max(axis=0)

    @property
    def measure(self) -> float:
        """Sum of the cell measures (exact for simplices and planar-faced cells)."""
        return float(self._volume["measures"].sum())

    @property
    def boundary_measure(self) -> float:
        return float(sum(face.measure for face in self._faces))

    def contains(self, points: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        points = self._check_points(points)
        inside = np.zeros(len(points), dtype=bool)
        for start in range(0, len(points), _CHUNK):
            inside[start : start + _CHUNK] = self._in_cells(points[start : start + _CHUNK])
        if tol > 0:
            return inside | self._near_facets(points, tol)
        if tol < 0:
            return inside & ~self._near_facets(points, -tol)
        return inside

    def _in_cells(self, points: np.ndarray) -> np.ndarray:
        rows, columns = self._simplex_index.pairs(points, 0.0)
        weights = _barycentric(points[rows], self._volume["simplices"][columns])
        hit = np.all(weights >= -_BARYCENTRIC_TOL, axis=1)
        inside = np.zeros(len(points), dtype=bool)
        inside[rows[hit]] = True
        return inside

    @cached_property
    def _boundary_index(self) -> _SimplexIndex:
        return _SimplexIndex(np.concatenate([face.facets for face in self._faces]))

    def _near_facets(self, points: np.ndarray, tol: float) -> np.ndarray:
        return within(self._boundary_index, points, tol)

    def _near_boundary(self, points: np.ndarray, tol: float) -> np.ndarray:
        return self._near_facets(points, abs(tol))

    def _map_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        volume = self._volume
        points, _ = map_simplices(volume["simplices"], volume["measures"], u)
        return points, np.ones(len(u), dtype=bool)

    @cached_property
    def _hole_faces(self) -> tuple[FacetFace, ...]:
        return tuple(face.flipped(self.name) for face in self._faces)

    def _leaf_faces(self, hole: bool) -> tuple[Face, ...]:
        return self._hole_faces if hole else self._faces


# ----------------------------------------------------------------------------- a test mesh
def plate_with_hole_mesh(
    *,
    half_width: float = 1.0,
    radius: float = 0.3,
    n_around: int = 64,
    n_radial: int = 12,
    cell_type: str = "quad",
) -> meshio.Mesh:
    """A structured mesh of the square [-w, w]^2 minus the disk of `radius` at the origin.

    Rings of `n_around` points blend the hole's circle into the square; boundary lines carry
    Gmsh physical groups "hole", "left", "right", "bottom" and "top", so the mesh round-trips
    through ``.msh`` files with named parts.

    Args:
        half_width: w, half the side of the square.
        radius: Radius of the hole, 0 < radius < w.
        n_around: Points per ring, a multiple of 8 (so the square's corners are vertices).
        n_radial: Cells between the hole and the square.
        cell_type: "quad" or "triangle" (each quad split in two).

    Returns:
        A meshio mesh with 2D cells, "line" boundary cells, cell data ``gmsh:physical`` and
        ``gmsh:geometrical``, and ``field_data`` naming the groups.

    Raises:
        ValueError: If an argument is out of range.
    """
    import meshio

    if not 0 < radius < half_width or n_around % 8 or n_around < 8 or n_radial < 1:
        raise ValueError(
            "plate_with_hole_mesh: need 0 < radius < half_width, n_around a positive multiple "
            f"of 8 and n_radial >= 1; got radius={radius}, half_width={half_width}, "
            f"n_around={n_around}, n_radial={n_radial}"
        )
    if cell_type not in ("quad", "triangle"):
        raise ValueError(
            f"plate_with_hole_mesh: cell_type must be 'quad' or 'triangle', got {cell_type!r}"
        )
    theta = 2 * np.pi * np.arange(n_around) / n_around + np.pi / 4
    direction = np.column_stack([np.cos(theta), np.sin(theta)])
    outer = half_width * direction / np.abs(direction).max(axis=1, keepdims=True)
    blend = np.linspace(0.0, 1.0, n_radial + 1)[:, None, None]
    points = ((1 - blend) * radius * direction + blend * outer).reshape(-1, 2)
    ring = np.arange(n_around)
    index = np.arange(len(points)).reshape(n_radial + 1, n_around)
    quads = np.stack(
        [
            index[:-1, ring],
            index[1:, ring],
            index[1:, (ring + 1) % n_around],
            index[:-1, (ring + 1) % n_around],
        ],
        axis=-1,
    ).reshape(-1, 4)
    cells = quads if cell_type == "quad" else quads[:, [0, 1, 2, 0, 2, 3]].reshape(-1, 3)
    hole = np.column_stack([index[0, (ring + 1) % n_around], index[0, ring]])
    edges = np.column_stack([index[-1, ring], index[-1, (ring + 1) % n_around]])
    middle = points[edges].mean(axis=1)
    groups = {"hole": 1, "left": 2, "right": 3, "bottom": 4, "top": 5}
    side = np.select(
        [
            middle[:, 0] <= -half_width * (1 - 1e-9),
            middle[:, 0] >= half_width * (1 - 1e-9),
            middle[:, 1] <= -half_width * (1 - 1e-9),
        ],
        [groups["left"], groups["right"], groups["bottom"]],
        groups["top"],
    )
    lines = np.concatenate([hole, edges])
    tags = np.concatenate([np.full(len(hole), groups["hole"]), side])
    return meshio.Mesh(
        np.column_stack([points, np.zeros(len(points))]),
        [(cell_type, cells), ("line", lines)],
        cell_data={
            "gmsh:physical": [np.full(len(cells), 6), tags],
            "gmsh:geometrical": [np.full(len(cells), 6), tags],
        },
        field_data={**{k: np.array([v, 1]) for k, v in groups.items()}, "plate": np.array([6, 2])},
    )
