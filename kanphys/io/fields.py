"""Solution fields on an evaluation grid, as VTK unstructured grid (meshio) and HDF5 (h5py).

``fields.h5`` layout::

    /coordinates          (M, d) float64, attribute ``names`` (coordinate names)
    /cells                (C, k) int64, attribute ``cell_type`` (VTK name, e.g. "quad")
    /fields/<name>        (M,) predicted field
    /gradient/<name>      (M, d_space) spatial gradient of the field
    /exact/<name>         (M,) exact or reference solution (when known)
    /error/<name>         (M,) prediction minus exact
    /residual/<equation>  (M,) equation residual
    attributes on /: ``problem``, ``metadata`` (JSON: metrics, config, versions)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kanphys.evaluate import EvaluationGrid
from kanphys.io.files import atomic_path

__all__ = ["write_fields_h5", "write_fields_vtu"]


def _padded(array: np.ndarray, width: int = 3) -> np.ndarray:
    """Columns padded with zeros to ``width`` (VTK points and vectors are 3-D)."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 or array.shape[1] >= width:
        return array
    return np.hstack([array, np.zeros((array.shape[0], width - array.shape[1]))])


def write_fields_vtu(
    path: str | Path, grid: EvaluationGrid, values: Mapping[str, np.ndarray]
) -> None:
    """Write point data on the grid's cells as a ``.vtu`` file (vectors padded to 3 components)."""
    import meshio

    point_data = {name: _padded(v) for name, v in values.items()}
    mesh = meshio.Mesh(_padded(grid.points), [(grid.cell_type, grid.cells)], point_data=point_data)
    with atomic_path(path) as temporary:
        meshio.write(temporary, mesh, file_format="vtu")


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
) -> None:
    """Write the documented ``fields.h5`` layout (see the module docstring)."""
    import h5py

    with atomic_path(path) as temporary, h5py.File(temporary, "w") as h5:
        h5.attrs["problem"] = problem
        h5.attrs["metadata"] = json.dumps(metadata)
        h5.create_dataset("coordinates", data=grid.points).attrs["names"] = list(coordinates)
        h5.create_dataset("cells", data=grid.cells).attrs["cell_type"] = grid.cell_type
        for name, value in values.items():
            group, key = _group(name, fields)
            h5.require_group(group).create_dataset(key, data=value)
