"""XDMF 3 time series: one ``.xdmf`` (XML) and one ``.h5`` (HDF5) beside it, same stem.

The XML holds a Temporal collection of uniform grids, one per time, all pointing at the same
geometry and topology datasets; their attributes point at one dataset per field and time::

    /mesh/points            (M, 3) float64 (padded with zeros)
    /mesh/topology          (C, k) int64 for one cell type, or the XDMF "Mixed" stream
    /times                  (K,) float64
    /step_<k>/<name>        (M,) scalars or (M, 3) vectors at time k, attribute ``units``
                            when known (CF style, see kanphys.io.units)
    attributes on /: kanphys_problem, kanphys_metadata (JSON, with the ``units`` table)

``/times`` has the time coordinate's ``units`` when declared. The XML itself has no standard
place for units (and meshio's XDMF reader accepts nothing but the data item in an attribute).

A regular grid is written without its cells outside the domain (as ``.vtu``). Mixed meshes
drop their vertex cells (the fields live on the points anyway).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kanphys.io.files import atomic_path, write_text
from kanphys.io.units import set_units
from kanphys.io.vtk import pad3

if TYPE_CHECKING:
    from kanphys.io.export import Evaluation

__all__ = ["write_xdmf"]

TOPOLOGY = {
    "vertex": ("Polyvertex", 1),
    "line": ("Polyline", 2),
    "triangle": ("Triangle", 4),
    "quad": ("Quadrilateral", 5),
    "tetra": ("Tetrahedron", 6),
    "pyramid": ("Pyramid", 7),
    "wedge": ("Wedge", 8),
    "hexahedron": ("Hexahedron", 9),
}


def _topology(blocks) -> tuple[str, np.ndarray, dict[str, str]]:
    """XDMF topology type, its data and the Topology element's extra attributes."""
    blocks = [(kind, cells) for kind, cells in blocks if len(cells)]
    unknown = [kind for kind, _ in blocks if kind not in TOPOLOGY]
    if unknown:
        raise ValueError(f"XDMF export does not know the cell type(s) {', '.join(unknown)}")
    if len(blocks) == 1:
        kind, cells = blocks[0]
        extra = {"NumberOfElements": str(len(cells)), "NodesPerElement": str(cells.shape[1])}
        return TOPOLOGY[kind][0], cells, extra
    blocks = [(kind, cells) for kind, cells in blocks if kind != "vertex"]
    parts, count = [], 0
    for kind, cells in blocks:
        code = np.full((len(cells), 1), TOPOLOGY[kind][1])
        if kind == "line":
            code = np.hstack([code, np.full((len(cells), 1), 2)])
        parts.append(np.hstack([code, cells]).ravel())
        count += len(cells)
    return "Mixed", np.concatenate(parts).astype(np.int64), {"NumberOfElements": str(count)}


def _data_item(parent: ET.Element, h5_name: str, dataset: str, shape, dtype) -> None:
    number, precision = ("Float", "8") if np.dtype(dtype).kind == "f" else ("Int", "8")
    item = ET.SubElement(
        parent,
        "DataItem",
        Dimensions=" ".join(str(n) for n in shape),
        NumberType=number,
        Precision=precision,
        Format="HDF",
    )
    item.text = f"{h5_name}:{dataset}"


def write_xdmf(path: str | Path, evaluation: Evaluation) -> list[Path]:
    """Write ``<stem>.xdmf`` and ``<stem>.h5`` (the HDF5 first, each atomically)."""
    import h5py

    path = Path(path)
    h5_path = path.with_suffix(".h5")
    evaluation = evaluation.restricted()
    sites = evaluation.sites
    points = pad3(sites.points)
    kind, topology, extra = _topology(sites.cells)
    times = (
        evaluation.times
        if evaluation.times is not None
        else np.arange(len(evaluation.frames), dtype=np.float64)
    )
    with atomic_path(h5_path) as temporary, h5py.File(temporary, "w") as h5:
        h5.attrs["kanphys_problem"] = evaluation.problem
        metadata = {**evaluation.metadata, "units": evaluation.units_table()}
        h5.attrs["kanphys_metadata"] = json.dumps(metadata)
        h5.create_dataset("mesh/points", data=points)
        h5.create_dataset("mesh/topology", data=topology)
        set_units(h5.create_dataset("times", data=times), evaluation.time_unit or None)
        for k, frame in enumerate(evaluation.frames):
            for name, value in frame.items():
                dataset = h5.create_dataset(f"step_{k}/{name}", data=pad3(value))
                set_units(dataset, evaluation.units.get(name))

    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain")
    collection = ET.SubElement(
        domain, "Grid", Name="TimeSeries", GridType="Collection", CollectionType="Temporal"
    )
    h5_name = h5_path.name
    for k, (t, frame) in enumerate(zip(times, evaluation.frames, strict=True)):
        grid = ET.SubElement(collection, "Grid", Name=f"step_{k}", GridType="Uniform")
        ET.SubElement(grid, "Time", Value=repr(float(t)))
        geometry = ET.SubElement(grid, "Geometry", GeometryType="XYZ")
        _data_item(geometry, h5_name, "/mesh/points", points.shape, points.dtype)
        element = ET.SubElement(grid, "Topology", TopologyType=kind, **extra)
        _data_item(element, h5_name, "/mesh/topology", topology.shape, topology.dtype)
        for name, value in frame.items():
            value = pad3(value)
            attribute = ET.SubElement(
                grid,
                "Attribute",
                Name=name,
                AttributeType="Scalar" if value.ndim == 1 else "Vector",
                Center="Node",
            )
            _data_item(attribute, h5_name, f"/step_{k}/{name}", value.shape, value.dtype)
    ET.indent(root)
    text = '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    write_text(path, text)
    return [path, h5_path]
