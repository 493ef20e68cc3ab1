"""VTK XML writers (through pyvista): ``.vtu``, ``.vti``, ``.vts`` and ``.pvd`` time series.

Points and vector fields (gradients) are padded with zeros to 3 components. ``.vti`` and
``.vts`` files carry field data ``kanphys_problem`` and ``kanphys_metadata`` (JSON: metrics,
config, versions); ``.vtu`` files and ``.pvd`` collections, which meshio must be able to read
(it reads no string arrays), have them in ``<stem>.metadata.json`` beside them. A frame of a
time series has field data ``TimeValue``.

Units (when the problem declares them, see :mod:`kanphys.io.units`): every point and cell
array with a unit carries VTK's own information key ``vtkDataArray.UNITS_LABEL`` (written in
the XML as ``<InformationKey name="UNITS_LABEL">``; VTK, pvpython and PyVista read it back,
meshio skips it); ``.vti`` and ``.vts`` files also carry field data ``units_<name>``, a string
array holding the unit (one string per component for a gradient whose coordinates have
different units), visible in ParaView's Information panel and spreadsheet view. ``.vtu`` and
``.pvd`` files have them as ``"units"`` in ``<stem>.metadata.json`` (meshio reads no string
arrays).

Regular grids of a domain that does not fill its bounding box (a CSG domain) keep every point
in ``.vti`` / ``.vts``: values outside the domain are NaN, the point array ``inside`` is 0
there, and the ghost arrays ``vtkGhostType`` mark the points outside as hidden (HIDDENPOINT)
and the cells with a vertex outside as hidden (HIDDENCELL), so ParaView does not draw them.
``.vtu`` removes those cells instead.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kanphys.io.files import atomic_path, write_text
from kanphys.io.units import Unit, label

if TYPE_CHECKING:
    from kanphys.io.export import Evaluation

__all__ = [
    "array_unit",
    "set_unit",
    "sidecar",
    "string_array",
    "to_pyvista",
    "write_pvd",
    "write_vti",
    "write_vts",
    "write_vtu",
]

HIDDENPOINT = 2  # vtkDataSetAttributes::HIDDENPOINT
HIDDENCELL = 32  # vtkDataSetAttributes::HIDDENCELL


def pad3(array: np.ndarray) -> np.ndarray:
    """Columns padded with zeros to 3 (VTK points and vectors are 3-D); 1-D arrays unchanged."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 or array.shape[1] >= 3:
        return array
    return np.hstack([array, np.zeros((array.shape[0], 3 - array.shape[1]))])


def set_unit(data, name: str, unit: Unit | None) -> None:
    """Set ``UNITS_LABEL`` on the array ``name`` of VTK point or cell data (a per-component
    unit as one string, components joined by ", "); nothing for None."""
    if unit is None:
        return
    from vtkmodules.vtkCommonCore import vtkDataArray

    data.GetArray(name).GetInformation().Set(vtkDataArray.UNITS_LABEL(), label(unit))


def string_array(name: str, text: str | Sequence[str]):
    """A ``vtkStringArray`` (PyVista refuses non-ASCII text such as "°C"; VTK stores UTF-8)."""
    from vtkmodules.vtkCommonCore import vtkStringArray

    array = vtkStringArray()
    array.SetName(name)
    for value in [text] if isinstance(text, str) else text:
        array.InsertNextValue(value)
    return array


def array_unit(data, name: str) -> str | None:
    """The ``UNITS_LABEL`` of the array ``name`` of VTK point or cell data (None if unset)."""
    from vtkmodules.vtkCommonCore import vtkDataArray

    information = data.GetArray(name).GetInformation()
    return information.Get(vtkDataArray.UNITS_LABEL()) if information is not None else None


def _dimensions(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (*shape, *(1,) * (3 - len(shape)))


def to_pyvista(evaluation: Evaluation, frame: int = 0, kind: str = "vtu"):
    """One frame as a pyvista dataset: ``vtu`` UnstructuredGrid (cells outside the domain
    removed), ``vti`` ImageData or ``vts`` StructuredGrid (regular grids)."""
    import meshio
    import pyvista as pv

    if kind == "vtu":
        evaluation = evaluation.restricted()
    sites = evaluation.sites
    if kind == "vtu":
        blocks = [(cell_type, cells) for cell_type, cells in sites.cells if len(cells)]
        dataset = pv.from_meshio(meshio.Mesh(pad3(sites.points), blocks))
    elif kind == "vti":
        dataset = pv.ImageData(
            dimensions=_dimensions(sites.shape),
            spacing=tuple(pad3(sites.spacing[None])[0]),
            origin=tuple(pad3(sites.origin[None])[0]),
        )
    elif kind == "vts":
        dims = _dimensions(sites.shape)
        xyz = pad3(sites.points).reshape(*dims[::-1], 3)
        dataset = pv.StructuredGrid(*(xyz[..., i].T for i in range(3)))
    else:
        raise ValueError(f"unknown VTK kind {kind!r}")
    values = evaluation.frames[frame]
    for name, value in values.items():
        dataset.point_data[name] = pad3(value)
        set_unit(dataset.GetPointData(), name, evaluation.units.get(name))
    if kind != "vtu" and not sites.complete:
        inside = sites.inside
        dataset.point_data["inside"] = inside.astype(np.uint8)
        dataset.point_data["vtkGhostType"] = np.where(inside, 0, HIDDENPOINT).astype(np.uint8)
        hidden = ~inside[sites.cells[0][1]].all(axis=1)
        dataset.cell_data["vtkGhostType"] = np.where(hidden, HIDDENCELL, 0).astype(np.uint8)
    if kind != "vtu":  # meshio cannot read string arrays: .vtu gets a JSON sidecar instead
        dataset.field_data["kanphys_problem"] = [evaluation.problem]
        dataset.field_data["kanphys_metadata"] = [json.dumps(evaluation.metadata)]
        for name, unit in evaluation.units.items():
            if name in values:
                dataset.GetFieldData().AddArray(string_array(f"units_{name}", unit))
    if evaluation.times is not None:
        dataset.field_data["TimeValue"] = np.array([evaluation.times[frame]])
    return dataset


def _save(path: str | Path, dataset) -> Path:
    with atomic_path(path) as temporary:
        dataset.save(temporary, binary=True)
    return Path(path)


def sidecar(path: str | Path) -> Path:
    """The JSON metadata file beside ``path``: ``<stem>.metadata.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.metadata.json")


def write_sidecar(path: str | Path, evaluation: Evaluation) -> Path:
    """Write ``{"problem": ..., "units": ..., **metadata}`` beside ``path`` (atomically);
    ``units`` holds the coordinates' and the arrays' units (lists for per-component units)."""
    target = sidecar(path)
    units = {k: u if isinstance(u, str) else list(u) for k, u in evaluation.units_table().items()}
    content = {"problem": evaluation.problem, "units": units, **evaluation.metadata}
    write_text(target, json.dumps(content, indent=2) + "\n")
    return target


def write_vtu(path: str | Path, evaluation: Evaluation, frame: int = 0) -> list[Path]:
    """An UnstructuredGrid ``.vtu`` (meshes, point clouds, grids without outside cells), and
    its metadata in ``<stem>.metadata.json`` beside it."""
    return [_save(path, to_pyvista(evaluation, frame, "vtu")), write_sidecar(path, evaluation)]


def write_vti(path: str | Path, evaluation: Evaluation, frame: int = 0) -> Path:
    """An ImageData ``.vti`` of a regular grid (outside points blanked, see the module doc)."""
    return _save(path, to_pyvista(evaluation, frame, "vti"))


def write_vts(path: str | Path, evaluation: Evaluation, frame: int = 0) -> Path:
    """A StructuredGrid ``.vts`` of a regular grid (outside points blanked)."""
    return _save(path, to_pyvista(evaluation, frame, "vts"))


def write_pvd(path: str | Path, evaluation: Evaluation) -> list[Path]:
    """A ``.pvd`` collection with one file per time in the folder ``<stem>/`` beside it:
    ``.vti`` for a regular grid filling the domain, else ``.vtu``. The pieces are written
    first and the ``.pvd`` last, each atomically."""
    path = Path(path)
    kind = "vti" if evaluation.sites.shape is not None and evaluation.sites.complete else "vtu"
    folder = path.parent / path.stem
    written = []
    root = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    collection = ET.SubElement(root, "Collection")
    for k, (t, _) in enumerate(evaluation.frame_items()):
        piece = folder / f"{path.stem}_{k:04d}.{kind}"
        _save(piece, to_pyvista(evaluation, k, kind))
        written.append(piece)
        timestep = repr(float(t)) if t is not None else str(k)
        ET.SubElement(
            collection,
            "DataSet",
            timestep=timestep,
            group="",
            part="0",
            file=piece.relative_to(path.parent).as_posix(),
        )
    ET.indent(root)
    write_text(path, '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
    return [path, *written, write_sidecar(path, evaluation)]
