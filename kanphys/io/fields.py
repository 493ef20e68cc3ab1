"""Solution fields on an evaluation grid, as VTK unstructured grid and HDF5 (h5py).

``fields.h5`` layout::

    /coordinates          (M, d) float64, attribute ``names`` (coordinate names)
    /cells                (C, k) int64, attribute ``cell_type`` (VTK name, e.g. "quad")
    /fields/<name>        (M,) predicted field
    /gradient/<name>      (M, d_space) spatial gradient of the field
    /exact/<name>         (M,) exact or reference solution (when known)
    /error/<name>         (M,) prediction minus exact
    /residual/<equation>  (M,) equation residual
    attributes on /: ``problem``, ``metadata`` (JSON: metrics, config, versions, units)

Units the problem declares (see :mod:`kanphys.io.units`) are CF-style attributes ``units`` on
the datasets (on ``/coordinates`` one string per column, "" where undeclared), and VTK's
``UNITS_LABEL`` information key on the arrays of ``fields.vtu`` (see :mod:`kanphys.io.vtk`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kanphys.evaluate import EvaluationGrid
from kanphys.io.files import atomic_path
from kanphys.io.units import Unit, set_units

__all__ = ["write_fields_h5", "write_fields_vtu"]


def _padded(array: np.ndarray, width: int = 3) -> np.ndarray:
    """Columns padded with zeros to ``width`` (VTK points and vectors are 3-D)."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 or array.shape[1] >= width:
        return array
    return np.hstack([array, np.zeros((array.shape[0], width - array.shape[1]))])


def write_fields_vtu(
    path: str | Path,
    grid: EvaluationGrid,
    values: Mapping[str, np.ndarray],
    units: Mapping[str, Unit] | None = None,
) -> None:
    """Write point data on the grid's cells as a ``.vtu`` file (vectors padded to 3
    components), each array with its unit from ``units`` as VTK's ``UNITS_LABEL``."""
    import meshio
    import pyvista as pv

    from kanphys.io.vtk import set_unit

    dataset = pv.from_meshio(meshio.Mesh(_padded(grid.points), [(grid.cell_type, grid.cells)]))
    for name, value in values.items():
        dataset.point_data[name] = _padded(value)
        set_unit(dataset.GetPointData(), name, (units or {}).get(name))
    with atomic_path(path) as temporary:
        dataset.save(temporary, binary=True)


GROUPS = (("grad_", "gradient"), ("residual_", "residual"))
SUFFIXES = (("_exact", "exact"), ("_error", "error"))


def _group(name: str, fields: Sequence[str]) -> tuple[str, str]:
    for prefix, group in GROUPS:
        if name.startswith(prefix):
            return group, name[len(prefix) :]
    for suffix, group in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in fields:
            return group, name[: -len(suffix)]
    return "fields", name


def write_fields_h5(
    path: str | Path,
    grid: EvaluationGrid,
    values: Mapping[str, np.ndarray],
    *,
    coordinates: Sequence[str],
    fields: Sequence[str],
    problem: str,
    metadata: Mapping[str, Any],
    units: Mapping[str, Unit] | None = None,
) -> None:
    """Write the documented ``fields.h5`` layout (see the module docstring); ``units`` by
    coordinate and array name."""
    import h5py

    units = dict(units or {})
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as h5:
        h5.attrs["problem"] = problem
        h5.attrs["metadata"] = json.dumps(metadata)
        points = h5.create_dataset("coordinates", data=grid.points)
        points.attrs["names"] = list(coordinates)
        if any(name in units for name in coordinates):
            points.attrs["units"] = [str(units.get(name, "")) for name in coordinates]
        h5.create_dataset("cells", data=grid.cells).attrs["cell_type"] = grid.cell_type
        for name, value in values.items():
            group, key = _group(name, fields)
            dataset = h5.require_group(group).create_dataset(key, data=value)
            set_units(dataset, units.get(name))
