"""Export a trained run for ParaView and h5py: where to evaluate, what to evaluate, and writing.

Where (:class:`Sites`): a regular grid over the domain (:func:`grid_sites`), the points of any
mesh meshio reads (:func:`mesh_sites`) or a point cloud from ``.csv`` / ``.npy``
(:func:`point_sites`). For a time-dependent problem the sites are spatial and the fields are
evaluated at several times (``times``); otherwise the sites hold every coordinate.

What (:class:`Evaluation`): the selected fields of :func:`kanphys.evaluate.evaluate_fields`
(``u``, ``grad_u``, ``u_exact``, ``u_error``, ``residual_<equation>``), one frame per time.

Writing: :func:`write` dispatches on the format (``vtu``, ``vti``, ``vts``, ``pvd``, ``xdmf``,
``vtkhdf``, ``h5``); every file is written atomically (a temporary file beside the target,
then ``os.replace``). :func:`export` does it all for a run directory (``kanphys export``).

``results.h5`` layout (format ``h5``), for h5py users::

    /coordinates          (M, g) float64, attribute ``names`` (coordinate names, time excluded
                          when the export is a time series)
    /cells/<type>         (C, k) int64 per cell block, meshio type names ("quad", "triangle",
                          "vertex" for a point cloud)
    /times                (K,) float64, only for a time series
    /fields/<name>        (M,) predicted field, or (K, M) for a time series
    /gradient/<name>      (M, d_space) spatial gradient, or (K, M, d_space)
    /exact/<name>         (M,) or (K, M) exact solution (when known)
    /error/<name>         (M,) or (K, M) prediction minus exact
    /residual/<equation>  (M,) or (K, M) equation residual
    /inside               (M,) bool, regular grids only: False where the point lies outside
                          the domain (its values are NaN)
    attributes on /: ``layout`` ("kanphys-results-1"), ``problem``, ``kind`` ("grid", "mesh"
    or "points"), ``metadata`` (JSON: metrics, config, versions, units), and for regular grids
    ``shape``, ``origin``, ``spacing`` (points are ordered with the first axis fastest)

Units (when the problem declares them, see :mod:`kanphys.io.units`) are attributes ``units``
on the datasets, CF style: a string on ``/fields``, ``/exact``, ``/error``, ``/residual``
datasets and on ``/times``; on ``/gradient/<name>`` a string, or one string per spatial
coordinate when their units differ; on ``/coordinates`` one string per column ("" where
undeclared).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kanphys.io.files import atomic_path
from kanphys.io.units import Unit, array_units, set_units

__all__ = [
    "EXTENSIONS",
    "Evaluation",
    "ExportError",
    "Sites",
    "add_cell_values",
    "available_fields",
    "default_sites",
    "evaluate",
    "export",
    "grid_sites",
    "mesh_sites",
    "parse_times",
    "point_sites",
    "sites_of_mesh",
    "write",
    "write_results_h5",
]

log = logging.getLogger(__name__)

EXTENSIONS = {
    "vtu": ".vtu",
    "vti": ".vti",
    "vts": ".vts",
    "pvd": ".pvd",
    "xdmf": ".xdmf",
    "vtkhdf": ".hdf",
    "h5": ".h5",
}
GRID_RESOLUTION = {1: 1001, 2: 101, 3: 41}
DEFAULT_STEPS = 11
LAYOUT = "kanphys-results-1"


class ExportError(ValueError):
    """A request that cannot be exported (the message names the problem)."""


@dataclass(frozen=True)
class Sites:
    """Points where fields are evaluated, with cells to show them.

    Attributes:
        kind: ``"grid"``, ``"mesh"`` or ``"points"``.
        points: ``(M, g)`` coordinates.
        cells: meshio-style cell blocks ``(type, (C, k) connectivity)``.
        shape: points per axis of a regular grid (points ordered with the first axis fastest).
        inside: regular grids: ``(M,)`` True where the point lies in the domain.
    """

    kind: str
    points: np.ndarray
    cells: tuple[tuple[str, np.ndarray], ...]
    shape: tuple[int, ...] | None = None
    inside: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def origin(self) -> np.ndarray:
        return self.points.min(axis=0) if len(self.points) else np.zeros(self.dim)

    @property
    def spacing(self) -> np.ndarray:
        lower, upper = self.points.min(axis=0), self.points.max(axis=0)
        return np.array(
            [
                (hi - lo) / (n - 1) if n > 1 else 1.0
                for lo, hi, n in zip(lower, upper, self.shape, strict=True)
            ]
        )

    @property
    def complete(self) -> bool:
        """Every point is inside the domain (always for meshes and point clouds)."""
        return self.inside is None or bool(self.inside.all())

    def unstructured(self) -> tuple[Sites, np.ndarray]:
        """These sites without the cells having a vertex outside the domain, and without the
        points no kept cell uses; with the indices of the kept points."""
        if self.complete:
            return self, np.arange(len(self.points))
        kept = []
        for kind, cells in self.cells:
            kept.append((kind, cells[self.inside[cells].all(axis=1)]))
        used = np.unique(np.concatenate([c.ravel() for _, c in kept]))
        renumber = np.full(len(self.points), -1, dtype=np.int64)
        renumber[used] = np.arange(used.size)
        blocks = tuple((kind, renumber[c]) for kind, c in kept)
        return Sites(self.kind, self.points[used], blocks), used


def grid_sites(domain, resolution: int | None = None) -> Sites:
    """A regular grid over the bounding box of ``domain`` (``resolution`` points per axis),
    points ordered with the first axis fastest (VTK order), ``inside`` marking the domain."""
    dim = domain.dim
    if dim not in GRID_RESOLUTION:
        raise ExportError(f"regular grids support 1 to 3 coordinates, the domain has {dim}")
    n = int(resolution or GRID_RESOLUTION[dim])
    if n < 2:
        raise ExportError(f"--resolution must be at least 2, got {n}")
    lower, upper = domain.bounds
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(lower, upper, strict=True)]
    mesh = np.meshgrid(*axes[::-1], indexing="ij")
    points = np.stack([m.ravel() for m in mesh[::-1]], axis=1)
    shape = (n,) * dim
    inside = np.asarray(domain.contains(points, tol=1e-9), dtype=bool)
    return Sites("grid", points, ((_CELL_TYPES[dim], _grid_cells(shape)),), shape, inside)


_CELL_TYPES = {1: "line", 2: "quad", 3: "hexahedron"}


def _grid_cells(shape: tuple[int, ...]) -> np.ndarray:
    """Cells of a structured grid, first axis fastest, in VTK vertex order."""
    index = np.arange(int(np.prod(shape))).reshape(shape[::-1]).T
    offsets = {1: [(0,), (1,)], 2: [(0, 0), (1, 0), (1, 1), (0, 1)]}
    if len(shape) == 3:
        offsets[3] = [(*o, 0) for o in offsets[2]] + [(*o, 1) for o in offsets[2]]
    vertices = []
    for offset in offsets[len(shape)]:
        window = index[tuple(slice(o, o + s - 1) for o, s in zip(offset, shape, strict=True))]
        vertices.append(window.T.reshape(-1))
    return np.stack(vertices, axis=1)


def _fit_columns(points: np.ndarray, dim: int, source: str, needed: str) -> np.ndarray:
    """Points with ``dim`` columns: extra columns are dropped when they are all zero."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] < dim or np.any(points[:, dim:] != 0):
        have = points.shape[1] if points.ndim == 2 else points.ndim
        columns = f"{have} coordinate columns" + (
            " (non-zero beyond the first " + str(dim) + ")" if points.shape[1] > dim else ""
        )
        raise ExportError(f"{source} has {columns}; the problem needs {dim} ({needed})")
    if not np.all(np.isfinite(points[:, :dim])):
        raise ExportError(f"{source} has non-finite coordinates")
    return points[:, :dim]


def mesh_sites(path: str | Path, dim: int, names: Sequence[str] = ()) -> Sites:
    """The points and cells of a mesh file meshio reads (``.msh``, ``.vtu``, ``.xdmf``, ...).

    Coordinate columns beyond ``dim`` must be zero (a 2-D mesh stored with z = 0) and are
    dropped.
    """
    from kanphys.geometry.mesh import MeshError, read_mesh

    path = Path(path)
    try:
        mesh = read_mesh(path)
    except MeshError as error:
        raise ExportError(str(error)) from error
    return sites_of_mesh(mesh, dim, f"mesh {path.name}", names)


def sites_of_mesh(mesh, dim: int, source: str = "mesh", names: Sequence[str] = ()) -> Sites:
    """The points and cell blocks of a ``meshio.Mesh`` (coordinates beyond ``dim`` must be 0)."""
    points = _fit_columns(mesh.points, dim, source, ", ".join(names) or "")
    cells = tuple((block.type, np.asarray(block.data, dtype=np.int64)) for block in mesh.cells)
    return Sites("mesh", points, cells)


def default_sites(space, resolution: int | None = None) -> Sites:
    """Where a run is shown by default: the domain's own mesh for a
    :class:`~kanphys.geometry.mesh.MeshDomain` (unless a ``resolution`` is asked for), else a
    regular grid over ``space``."""
    from kanphys.geometry.mesh import MeshDomain

    if isinstance(space, MeshDomain) and resolution is None:
        return sites_of_mesh(space.mesh, space.dim, repr(space), space.names)
    return grid_sites(space, resolution)


def add_cell_values(path: str | Path, problem, model, sites: Sites, **options: Any) -> Path:
    """Add the fields evaluated at the cell centroids of ``sites`` as cell data to the ``.vtu``
    at ``path`` (written from those sites), so values compare cell by cell with a
    finite-element result on the same mesh. ``options`` go to :func:`evaluate`."""
    import pyvista as pv

    from kanphys.io.vtk import pad3, set_unit

    blocks = [cells for _, cells in sites.cells if len(cells)]
    centroids = np.concatenate([_centroids(sites.points, cells) for cells in blocks])
    at_cells = evaluate(problem, model, Sites("points", centroids, ()), **options)
    dataset = pv.read(path)
    for name, value in at_cells.frames[0].items():
        dataset.cell_data[name] = pad3(value)
        set_unit(dataset.GetCellData(), name, at_cells.units.get(name))
    with atomic_path(path) as temporary:
        dataset.save(temporary, binary=True)
    return Path(path)


def _centroids(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Cell centroids ``(C, d)``, summed vertex by vertex (no ``(C, k, d)`` temporary)."""
    total = np.zeros((len(cells), points.shape[1]))
    for k in range(cells.shape[1]):
        total += points[cells[:, k]]
    return total / cells.shape[1]


def point_sites(path: str | Path, dim: int, names: Sequence[str] = ()) -> Sites:
    """A point cloud: ``.npy`` array ``(N, d)`` or ``.csv`` with ``d`` columns (a header row of
    names is skipped); shown as vertex cells."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"points file {path} does not exist")
    try:
        if path.suffix == ".npy":
            points = np.load(path, allow_pickle=False)
        elif path.suffix in (".csv", ".txt"):
            first = path.read_text().split("\n", 1)[0]
            skip = 1 if any(c.isalpha() and c not in "eE" for c in first) else 0
            points = np.loadtxt(path, delimiter="," if "," in first else None, skiprows=skip)
            points = points.reshape(-1, points.shape[-1] if points.ndim == 2 else 1)
        else:
            raise ExportError(f"points file {path.name}: expected .npy or .csv")
    except ValueError as error:
        if isinstance(error, ExportError):
            raise
        raise ExportError(f"cannot read points {path}: {error}") from error
    points = _fit_columns(points, dim, f"points file {path.name}", ", ".join(names))
    vertices = np.arange(len(points), dtype=np.int64)[:, None]
    return Sites("points", points, (("vertex", vertices),))


def parse_times(text: str) -> np.ndarray:
    """``"T0:T1:K"`` -> K equally spaced times from T0 to T1; ``"0.1,0.5"`` -> those times."""
    try:
        if ":" in text:
            t0, t1, k = text.split(":")
            count = int(k)
            if count < 1:
                raise ValueError
            return np.linspace(float(t0), float(t1), count)
        return np.array([float(t) for t in text.split(",")])
    except ValueError:
        raise ExportError(f"--times {text!r} is not T0:T1:K (K >= 1) nor t1,t2,...") from None


def available_fields(problem) -> list[str]:
    """The names :func:`evaluate` can export for ``problem``."""
    names = []
    for name in problem.fields:
        names += [name, f"grad_{name}"]
        if name in problem.exact:
            names += [f"{name}_exact", f"{name}_error"]
    return names + [f"residual_{name}" for name in problem.equations]


@dataclass(frozen=True)
class Evaluation:
    """Fields evaluated on sites, one frame per time (a single frame without ``times``)."""

    sites: Sites
    coordinates: tuple[str, ...]
    frames: tuple[dict[str, np.ndarray], ...]
    times: np.ndarray | None = None
    problem: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    units: Mapping[str, Unit] = field(default_factory=dict)
    coordinate_units: Mapping[str, str] = field(default_factory=dict)

    @property
    def time_unit(self) -> str:
        """The unit of the time coordinate (the declared coordinate not in ``coordinates``)."""
        others = [u for c, u in self.coordinate_units.items() if c not in self.coordinates]
        return others[0] if self.times is not None and others else ""

    def units_table(self) -> dict[str, Unit]:
        """Units of the coordinates and of the arrays written, for metadata files."""
        return {**self.coordinate_units, **self.units}

    def frame_items(self) -> Iterator[tuple[float | None, dict[str, np.ndarray]]]:
        times = self.times if self.times is not None else [None] * len(self.frames)
        yield from zip(times, self.frames, strict=True)

    def restricted(self) -> Evaluation:
        """The evaluation on :meth:`Sites.unstructured` (cells outside the domain removed)."""
        sites, used = self.sites.unstructured()
        if sites is self.sites:
            return self
        frames = tuple({k: v[used] for k, v in f.items()} for f in self.frames)
        return replace(self, sites=sites, frames=frames)


def evaluate(
    problem,
    model,
    sites: Sites,
    *,
    times: np.ndarray | None = None,
    fields: Sequence[str] | None = None,
    chunk: int = 8192,
    metadata: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate ``fields`` (default all of :func:`available_fields`) at the sites, at each of
    ``times`` (spatial sites of a time-dependent problem) or once (sites with every
    coordinate), ``chunk`` points at a time. Grid points outside the domain get NaN. The
    evaluation carries the units of its arrays (:func:`kanphys.io.units.array_units`)."""
    known = available_fields(problem)
    selected = list(fields) if fields else known
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise ExportError(
            f"unknown field(s) {', '.join(unknown)} for problem {problem.name!r}; "
            f"available: {', '.join(known)}"
        )
    time_index = problem.domain.time_index
    coordinates = tuple(problem.coordinates)
    if times is not None:
        if time_index is None:
            raise ExportError(f"problem {problem.name!r} has no time coordinate; drop --times")
        coordinates = tuple(c for i, c in enumerate(coordinates) if i != time_index)
    if sites.dim != len(coordinates):
        raise ExportError(
            f"sites have {sites.dim} coordinates, problem {problem.name!r} needs "
            f"{len(coordinates)} ({', '.join(coordinates)})"
        )
    residuals = any(name.startswith("residual_") for name in selected)
    if len(sites.points) == 0 or (sites.inside is not None and not sites.inside.any()):
        raise ExportError(f"no point of the {sites.kind} lies in the domain of {problem.name!r}")
    if chunk < 1:
        raise ExportError(f"chunk must be at least 1 point, got {chunk}")
    frames = [
        _frame(problem, model, sites, t, selected, chunk, residuals)
        for t in (times if times is not None else [None])
    ]
    return Evaluation(
        sites,
        coordinates,
        tuple(frames),
        None if times is None else np.asarray(times, dtype=np.float64),
        problem.name,
        dict(metadata or {}),
        array_units(problem, selected),
        {c: problem.units[c] for c in problem.coordinates if c in problem.units},
    )


def _frame(problem, model, sites: Sites, t, selected, chunk: int, residuals: bool) -> dict:
    """The ``selected`` arrays at the sites inside the domain (NaN at the others), at time
    ``t`` (None: the sites hold every coordinate). Each chunk is evaluated and written into
    arrays allocated once, so that the memory beyond the result grows with ``chunk``, not
    with the number of sites."""
    from kanphys.evaluate import evaluate_fields

    inside = sites.inside
    points = sites.points if inside is None else sites.points[inside]
    rows = None if inside is None else np.flatnonzero(inside)
    frame: dict[str, np.ndarray] = {}
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        if t is not None:
            part = np.insert(part, problem.domain.time_index, t, axis=1)
        values = evaluate_fields(problem, model, part, chunk=chunk, residuals=residuals)
        where = slice(start, start + chunk) if rows is None else rows[start : start + chunk]
        for name in selected:
            value = values[name]
            if name not in frame:
                frame[name] = np.full((len(sites.points), *value.shape[1:]), np.nan)
            frame[name][where] = value
    return frame


def write(path: str | Path, evaluation: Evaluation, format: str) -> list[Path]:
    """Write ``evaluation`` in ``format``; returns the files written (the main one first)."""
    from kanphys.io import vtk, vtkhdf, xdmf

    path = Path(path)
    series = evaluation.times is not None
    if format not in EXTENSIONS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(EXTENSIONS)}")
    if format in ("vti", "vts") and evaluation.sites.shape is None:
        raise ExportError(f"--format {format} needs a regular grid (not --mesh or --points)")
    if series and format in ("vtu", "vti", "vts", "vtkhdf"):
        raise ExportError(
            f"--format {format} holds one time; a time series (--times) needs --format pvd, "
            "xdmf or h5"
        )
    if format == "vtu":
        return vtk.write_vtu(path, evaluation)
    if format == "vti":
        return [vtk.write_vti(path, evaluation)]
    if format == "vts":
        return [vtk.write_vts(path, evaluation)]
    if format == "pvd":
        return vtk.write_pvd(path, evaluation)
    if format == "xdmf":
        return xdmf.write_xdmf(path, evaluation)
    if format == "vtkhdf":
        return [vtkhdf.write_vtkhdf(path, evaluation)]
    return [write_results_h5(path, evaluation)]


_GROUPS = (("grad_", "gradient"), ("residual_", "residual"))
_SUFFIXES = (("_exact", "exact"), ("_error", "error"))


def _group(name: str) -> tuple[str, str]:
    for prefix, group in _GROUPS:
        if name.startswith(prefix):
            return group, name[len(prefix) :]
    for suffix, group in _SUFFIXES:
        if name.endswith(suffix):
            return group, name[: -len(suffix)]
    return "fields", name


def write_results_h5(path: str | Path, evaluation: Evaluation) -> Path:
    """Write the documented ``results.h5`` layout (see the module docstring)."""
    import h5py

    sites = evaluation.sites
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as h5:
        h5.attrs["layout"] = LAYOUT
        h5.attrs["problem"] = evaluation.problem
        h5.attrs["kind"] = sites.kind
        h5.attrs["metadata"] = json.dumps(
            {**evaluation.metadata, "units": evaluation.units_table()}
        )
        coordinates = h5.create_dataset("coordinates", data=sites.points)
        coordinates.attrs["names"] = list(evaluation.coordinates)
        axis_units = [evaluation.coordinate_units.get(c, "") for c in evaluation.coordinates]
        if any(axis_units):
            coordinates.attrs["units"] = axis_units
        cells = h5.create_group("cells")
        for kind, block in sites.cells:
            name, n = kind, 1
            while name in cells:
                name, n = f"{kind}_{n}", n + 1
            cells.create_dataset(name, data=block)
        if sites.shape is not None:
            h5.attrs["shape"] = np.array(sites.shape)
            h5.attrs["origin"] = sites.origin
            h5.attrs["spacing"] = sites.spacing
            h5.create_dataset("inside", data=sites.inside)
        if evaluation.times is not None:
            times = h5.create_dataset("times", data=evaluation.times)
            if evaluation.time_unit:
                times.attrs["units"] = evaluation.time_unit
        for name in evaluation.frames[0]:
            stacked = [frame[name] for frame in evaluation.frames]
            data = np.stack(stacked) if evaluation.times is not None else stacked[0]
            group, key = _group(name)
            dataset = h5.require_group(group).create_dataset(key, data=data)
            set_units(dataset, evaluation.units.get(name))
    return Path(path)


def metadata_of(run) -> dict[str, Any]:
    """What a run records about itself: metrics, config and versions."""
    return {
        "metrics": run.metrics,
        "config": run.config,
        "versions": run.metrics.get("versions", {}),
    }


def export(
    run_dir: str | Path,
    format: str,
    *,
    out: str | Path | None = None,
    mesh: str | Path | None = None,
    points: str | Path | None = None,
    resolution: int | None = None,
    times: str | np.ndarray | None = None,
    fields: Sequence[str] | None = None,
    chunk: int = 8192,
) -> list[Path]:
    """Evaluate a run's model where asked and write it in ``format`` (``kanphys export``).

    Args:
        run_dir: a run directory (``kanphys run``).
        format: ``vtu``, ``vti``, ``vts``, ``pvd``, ``xdmf``, ``vtkhdf`` or ``h5``.
        out: the file to write (default ``RUN_DIR/export/<problem><extension>``, and
            ``RUN_DIR/export/results.h5`` for ``h5``).
        mesh: evaluate at the points of this mesh file (else a regular grid).
        points: evaluate at the points of this ``.csv`` / ``.npy`` file.
        resolution: grid points per axis.
        times: ``"T0:T1:K"`` or an array: spatial sites at these times (time-dependent
            problems; pvd, xdmf and h5 default to the problem's interval at 11 times).
        fields: names to write (default all; see :func:`available_fields`).
        chunk: points evaluated at a time; the memory evaluation needs beyond its result
            grows with it, not with the number of points (``kanphys bench export``).

    Returns:
        The files written, the main one first.
    """
    from kanphys.io.run import Run
    from kanphys.runner import load_problem_file

    if format not in EXTENSIONS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(EXTENSIONS)}")
    if mesh is not None and points is not None:
        raise ExportError("give --mesh or --points, not both")
    run = Run.load(run_dir)
    problem = load_problem_file(run.config["problem_file"]).problem
    domain = problem.domain
    time_index = domain.time_index
    if isinstance(times, str):
        times = parse_times(times)
    if times is not None and time_index is None:
        raise ExportError(f"problem {problem.name!r} has no time coordinate; drop --times")
    if times is None and time_index is not None and format in ("pvd", "xdmf"):
        times = np.linspace(domain.t0, domain.t1, DEFAULT_STEPS)
    names = list(problem.coordinates)
    if times is not None:
        names.pop(time_index)
    dim = len(names)
    if mesh is not None:
        sites = mesh_sites(mesh, dim, names)
    elif points is not None:
        sites = point_sites(points, dim, names)
    else:
        space = domain.space if times is not None else domain
        sites = default_sites(space, resolution)
        if sites.kind == "grid" and resolution is None:
            sites = grid_sites(space, run.config.get("resolution"))
    if sites.kind != "grid":
        lower, upper = (domain.space if times is not None else domain).bounds
        outside = ((sites.points < lower - 1e-9) | (sites.points > upper + 1e-9)).any(axis=1)
        if outside.any():
            log.warning(
                "%d of %d points lie outside the domain's bounding box; the model extrapolates",
                int(outside.sum()),
                len(outside),
            )
    model = run.model()
    evaluation = evaluate(
        problem,
        model,
        sites,
        times=times,
        fields=fields,
        chunk=chunk,
        metadata=metadata_of(run),
    )
    if out is not None:
        target = Path(out)
    elif format == "h5":
        target = Path(run_dir) / "export" / "results.h5"
    else:
        target = Path(run_dir) / "export" / f"{problem.name}{EXTENSIONS[format]}"
    written = write(target, evaluation, format)
    if sites.kind == "mesh" and format == "vtu":
        add_cell_values(written[0], problem, model, sites, fields=fields, chunk=chunk)
    log.info("wrote %s", ", ".join(map(str, written)))
    return written
