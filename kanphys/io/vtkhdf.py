"""VTKHDF 1.0 writer (``.hdf``; ParaView >= 5.11 reads it with its VTKHDF reader).

A 3-D regular grid is written as ``ImageData``; a 1-D or 2-D grid (lines or quads), a mesh or a
point cloud as ``UnstructuredGrid``, since ParaView 5.11's reader hangs or crashes on ImageData
of 1-D and 2-D grids whatever the layout of its arrays::

    /VTKHDF                     attributes Version = [1, 0], Type = b"ImageData"
        WholeExtent, Origin, Spacing, Direction (attributes)
        PointData/<name>        (nz, ny, nx) or (nz, ny, nx, 3)
        CellData/vtkGhostType   blanked cells of a CSG domain (see kanphys.io.vtk)

    /VTKHDF                     attributes Version = [1, 0], Type = b"UnstructuredGrid"
        NumberOfPoints (1,), NumberOfCells (1,), NumberOfConnectivityIds (1,)
        Points (M, 3), Connectivity, Offsets (C + 1,), Types (C,) uint8
        PointData/<name>        (M,) or (M, 3); grids' blanked points and cells as above

Metadata: attributes ``kanphys_problem`` and ``kanphys_metadata`` (JSON, with the coordinates'
and arrays' ``units``) on the file's root.

Units (when the problem declares them, see :mod:`kanphys.io.units`): an attribute ``units``
on each ``PointData/<name>`` dataset (CF style: a string, or one string per component for a
gradient whose coordinates have different units), for h5py; and ``FieldData/units_<name>``,
a string array that VTK's reader turns into field data (stored as UTF-8 bytes under HDF5's
ASCII string type, the one VTK reads; ParaView 5.11 reads it for UnstructuredGrid files, not
for ImageData).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kanphys.io.files import atomic_path
from kanphys.io.units import set_units
from kanphys.io.vtk import HIDDENCELL, HIDDENPOINT, pad3

if TYPE_CHECKING:
    from kanphys.io.export import Evaluation

__all__ = ["VTK_CELL_TYPES", "write_vtkhdf"]

VTK_CELL_TYPES = {
    "vertex": 1,
    "line": 3,
    "triangle": 5,
    "quad": 9,
    "tetra": 10,
    "hexahedron": 12,
    "wedge": 13,
    "pyramid": 14,
    "line3": 21,
    "triangle6": 22,
    "quad8": 23,
    "tetra10": 24,
    "hexahedron20": 25,
}


def write_vtkhdf(path: str | Path, evaluation: Evaluation, frame: int = 0) -> Path:
    """Write one frame as a VTKHDF 1.0 file (ImageData for 3-D grids, else UnstructuredGrid)."""
    import h5py

    sites = evaluation.sites
    values = evaluation.frames[frame]
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as h5:
        h5.attrs["kanphys_problem"] = evaluation.problem
        metadata = {**evaluation.metadata, "units": evaluation.units_table()}
        h5.attrs["kanphys_metadata"] = json.dumps(metadata)
        root = h5.create_group("VTKHDF")
        root.attrs["Version"] = np.array([1, 0], dtype=np.int64)
        point_data = root.create_group("PointData")
        image = sites.shape is not None and len(sites.shape) == 3
        if image:
            _image_data(root, sites)
        else:  # ParaView 5.11's reader hangs or crashes on ImageData of 1-D and 2-D grids
            _unstructured(root, sites)
        dims = tuple(reversed(sites.shape)) if image else (len(sites.points),)
        for name, value in values.items():
            value = pad3(value)
            data = point_data.create_dataset(name, data=value.reshape(*dims, *value.shape[1:]))
            set_units(data, evaluation.units.get(name))
        _unit_field_data(root, {k: u for k, u in evaluation.units.items() if k in values})
        if sites.shape is not None and not sites.complete:
            inside = sites.inside
            point_data.create_dataset("inside", data=inside.astype(np.uint8).reshape(dims))
            ghost = np.where(inside, 0, HIDDENPOINT).astype(np.uint8).reshape(dims)
            point_data.create_dataset("vtkGhostType", data=ghost)
            hidden = ~inside[sites.cells[0][1]].all(axis=1)
            cell_dims = tuple(max(n - 1, 1) for n in dims) if image else (len(hidden),)
            cell_ghost = np.where(hidden, HIDDENCELL, 0).astype(np.uint8).reshape(cell_dims)
            root.create_group("CellData").create_dataset("vtkGhostType", data=cell_ghost)
    return Path(path)


def _unit_field_data(root, units) -> None:
    """``FieldData/units_<name>``: one string per array (per component when they differ),
    UTF-8 bytes typed as ASCII strings: VTK's reader fails on HDF5's UTF-8 string type."""
    import h5py

    if not units:
        return
    field_data = root.create_group("FieldData")
    for name, unit in units.items():
        text = [unit] if isinstance(unit, str) else list(unit)
        data = np.array([t.encode() for t in text], dtype=object)
        field_data.create_dataset(f"units_{name}", data=data, dtype=h5py.string_dtype("ascii"))


def _image_data(root, sites) -> None:
    root.attrs.create("Type", np.bytes_("ImageData"), dtype=h5_ascii(len("ImageData")))
    extent = []
    for n in (*sites.shape, *(1,) * (3 - len(sites.shape))):
        extent += [0, n - 1]
    root.attrs["WholeExtent"] = np.array(extent, dtype=np.int64)
    root.attrs["Origin"] = pad3(sites.origin[None])[0]
    spacing = np.ones(3)
    spacing[: sites.dim] = sites.spacing
    root.attrs["Spacing"] = spacing
    root.attrs["Direction"] = np.eye(3).ravel()


def _unstructured(root, sites) -> None:
    root.attrs.create("Type", np.bytes_("UnstructuredGrid"), dtype=h5_ascii(16))
    blocks = [(kind, cells) for kind, cells in sites.cells if len(cells)]
    unknown = [kind for kind, _ in blocks if kind not in VTK_CELL_TYPES]
    if unknown:
        raise ValueError(f"VTKHDF export does not know the cell type(s) {', '.join(unknown)}")
    connectivity = np.concatenate([c.ravel() for _, c in blocks] or [np.zeros(0, np.int64)])
    sizes = np.concatenate([np.full(len(c), c.shape[1]) for _, c in blocks] or [[]])
    types = np.concatenate([np.full(len(c), VTK_CELL_TYPES[k]) for k, c in blocks] or [[]])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    root.create_dataset("NumberOfPoints", data=np.array([len(sites.points)], dtype=np.int64))
    root.create_dataset("NumberOfCells", data=np.array([len(types)], dtype=np.int64))
    root.create_dataset(
        "NumberOfConnectivityIds", data=np.array([len(connectivity)], dtype=np.int64)
    )
    root.create_dataset("Points", data=pad3(sites.points))
    root.create_dataset("Connectivity", data=connectivity.astype(np.int64))
    root.create_dataset("Offsets", data=offsets)
    root.create_dataset("Types", data=types.astype(np.uint8))


def h5_ascii(length: int):
    """A fixed-length ASCII string type (VTK reads ``Type`` as a fixed-length string)."""
    import h5py

    return h5py.string_dtype("ascii", length)
