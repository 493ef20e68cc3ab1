"""Figures of a run directory (``kanphys plot RUN_DIR``), written as PNG and PDF.

* ``network``: the KAN as a diagram, every learned edge function drawn on its edge, line
  width and opacity by the edge's importance (the spread of its output over the domain);
* ``edges_layer<k>``: every edge function of layer k as its own curve, on the range of inputs
  the layer sees over the domain;
* ``loss``: the loss history per term (``history.csv``), log scale;
* ``solution``: the solution, the exact solution and the error for 1D and 2D problems (maps
  over space and time for 1D + time; maps at the final time for 2D + time);
* ``render``: an off-screen PyVista render of the exported field on the domain's default sites
  (its own mesh for a mesh domain, else a regular grid) for 2D and 3D domains.

Everything is drawn with matplotlib's Agg backend on a private figure (no global state is
touched, nothing is shown).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kanphys.io.files import atomic_path

__all__ = [
    "FORMATS",
    "catalogue_figure",
    "edge_curves",
    "edge_importance",
    "plot_run",
    "write_png",
]

log = logging.getLogger(__name__)
FORMATS = ("png", "pdf")
N_CURVE = 101  # points per edge curve
N_SAMPLES = 2048  # domain points that set each edge's input range and importance


def _figure(width: float, height: float, layout: str | None = "constrained"):
    """A matplotlib figure on the Agg canvas, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, folder: Path, name: str, formats: Sequence[str]) -> list[Path]:
    written = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=fmt, dpi=120)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- edges
def _kan_of(model):
    net = getattr(model, "net", model)
    layers = getattr(net, "layers", None)
    if layers is None or not all(hasattr(layer, "edge_values") for layer in layers):
        return None
    return net


def edge_curves(model, points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every edge function of a KAN surrogate on the inputs its layer sees at ``points``.

    Args:
        model: a :class:`~kanphys.Surrogate` around a :class:`~kanphys.KAN`.
        points: physical points ``(N, d)`` of the domain.

    Returns:
        Per layer: inputs ``(N_CURVE, n_in)`` (evenly spaced over each input's observed range)
        and edge values ``(N_CURVE, n_in, n_out)``.
    """
    net = _kan_of(model)
    x = torch.as_tensor(points, dtype=model.dtype, device=model.device)
    with torch.no_grad():
        inputs = net.layer_inputs(model.features(x))
        curves = []
        for layer, seen in zip(net.layers, inputs, strict=True):
            lower, upper = seen.min(dim=0).values, seen.max(dim=0).values
            t = torch.linspace(0, 1, N_CURVE, dtype=seen.dtype, device=seen.device)[:, None]
            grid = lower + (upper - lower) * t
            curves.append((_numpy(grid), _numpy(layer.edge_values(grid))))
    return curves


def edge_importance(model, points: np.ndarray) -> list[np.ndarray]:
    """Standard deviation of every edge's output over ``points``, ``(n_in, n_out)`` per layer,
    divided by the largest in the network (so the most important edge has 1)."""
    net = _kan_of(model)
    x = torch.as_tensor(points, dtype=model.dtype, device=model.device)
    with torch.no_grad():
        inputs = net.layer_inputs(model.features(x))
        spread = [
            _numpy(layer.edge_values(seen).std(dim=0))
            for layer, seen in zip(net.layers, inputs, strict=True)
        ]
    largest = max(float(s.max()) for s in spread) or 1.0
    return [s / largest for s in spread]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float64).cpu().numpy()


def _node_positions(widths: Sequence[int]) -> list[np.ndarray]:
    """x positions in [0, 1] of the nodes of each layer (layer k at height k)."""
    return [(np.arange(w) + 0.5) / w for w in widths]


def network_figure(model, points: np.ndarray, names: Sequence[str], fields: Sequence[str]):
    """The KAN diagram: nodes at heights 0, 1, ...; between two layers one row of boxes, one
    per edge, each showing its edge function and joined to the edge's two nodes."""
    net = _kan_of(model)
    widths = net.widths
    curves, importance = edge_curves(model, points), edge_importance(model, points)
    slots = max(a * b for a, b in itertools.pairwise(widths))
    figure = _figure(max(6.0, 0.45 * slots), 2.8 * (len(widths) - 1) + 1.0, layout=None)
    axes = figure.add_axes((0.02, 0.02, 0.96, 0.9))
    axes.set_axis_off()
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(-0.25, len(widths) - 0.75)
    nodes = _node_positions(widths)
    for k, (grid, values) in enumerate(curves):
        n_in, n_out = values.shape[1], values.shape[2]
        size = min(0.8 / (n_in * n_out), 0.15)
        for i, j in np.ndindex(n_in, n_out):
            weight = float(importance[k][i, j])
            alpha = 0.15 + 0.85 * weight
            slot = ((i * n_out + j + 0.5) / (n_in * n_out), k + 0.5)
            line = {"color": "k", "lw": 0.3 + 3 * weight, "alpha": alpha}
            axes.plot([nodes[k][i], slot[0]], [k, slot[1] - 0.15], **line)
            axes.plot([slot[0], nodes[k + 1][j]], [slot[1] + 0.15, k + 1], **line)
            _inset_curve(axes, slot, size, grid[:, i], values[:, i, j], alpha)
    for k, xs in enumerate(nodes):
        axes.scatter(xs, np.full(len(xs), k), s=40, color="tab:blue", zorder=3)
    for x, name in zip(nodes[0], names, strict=False):
        axes.annotate(name, (x, 0), xytext=(0, -14), textcoords="offset points", ha="center")
    for x, name in zip(nodes[-1], fields, strict=False):
        axes.annotate(name, (x, len(widths) - 1), xytext=(0, 8), textcoords="offset points",
                      ha="center")  # fmt: skip
    axes.set_title(f"KAN {widths}: edge functions, width by importance")
    return figure


def _inset_curve(axes, centre, size: float, x, y, alpha: float) -> None:
    """Draw the curve (x, y) in a small box of width ``size`` centred at ``centre``."""
    box = axes.inset_axes(
        [centre[0] - size / 2, centre[1] - 0.15, size, 0.3], transform=axes.transData
    )
    box.plot(x, y, color="tab:red", lw=1.0, alpha=alpha)
    box.set_xticks([])
    box.set_yticks([])
    for spine in box.spines.values():
        spine.set_alpha(0.3 + 0.7 * alpha)
    box.patch.set_alpha(0.0)


def edges_figures(model, points: np.ndarray) -> list:
    """One figure per layer: each edge function as a curve (rows: outputs, columns: inputs)."""
    figures = []
    for k, (grid, values) in enumerate(edge_curves(model, points)):
        n_in, n_out = values.shape[1], values.shape[2]
        figure = _figure(1.6 * n_in + 0.5, max(1.2 * n_out + 0.6, 2.7))
        subplots = figure.subplots(n_out, n_in, squeeze=False)
        for i, j in np.ndindex(n_in, n_out):
            axes = subplots[j, i]
            axes.plot(grid[:, i], values[:, i, j], color="tab:red", lw=1.0)
            axes.tick_params(labelsize=6, length=2)
            axes.locator_params(nbins=3)
            axes.set_title(f"phi[{k}]({i}->{j})", fontsize=7)
        figure.suptitle(f"layer {k}: edge functions")
        figures.append(figure)
    return figures


# ----------------------------------------------------------------------------- losses
def loss_figure(history: dict[str, np.ndarray]):
    """Total loss and every ``loss_<term>`` column of ``history.csv`` against the step."""
    figure = _figure(6.5, 4.0)
    axes = figure.add_subplot()
    _draw_losses(axes, history)
    axes.legend(fontsize=8)
    axes.set_title("loss history per term")
    return figure


_TAB20_EXTRA = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2"]


def _draw_losses(axes, history: dict[str, np.ndarray], stages: bool = False) -> None:
    """The ``loss`` and ``loss_<term>`` columns against the step, log scale; with ``stages``
    a faint vertical line where the plan's stage changes (a grid step or a new optimiser)."""
    step = history.get("step", np.arange(len(next(iter(history.values())))))
    names = [name for name in history if name == "loss" or name.startswith("loss_")]
    if len(names) > 10:  # more lines than the default colour cycle has colours
        from matplotlib import colormaps

        axes.set_prop_cycle(color=list(colormaps["tab10"].colors) + _TAB20_EXTRA)
    largest = max((np.nanmax(history[n], initial=0.0) for n in names), default=0.0)
    for name in names:
        values = history[name]
        if largest > 0 and np.nanmax(values, initial=0.0) < 1e-12 * largest:
            axes.plot([], [], lw=1.0, label=f"{name} (~0: exact)")  # a hard constraint
            continue
        positive = np.where(values > 0, values, np.nan)
        axes.plot(step, positive, lw=2.0 if name == "loss" else 1.0, label=name)
    if stages and "stage" in history and len(step) > 1:
        changes = np.flatnonzero(np.diff(history["stage"]) != 0)
        for index in changes:
            axes.axvline(step[index], color="0.6", lw=0.6, ls=":")
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")


# ----------------------------------------------------------------------------- fields
def solution_figure(problem, model, resolution: int | None = None):
    """Solution, exact solution and error: curves (1D), maps (2D, 1D + time), or maps at the
    final time (2D + time). Returns None for other dimensions."""
    drawn = _field_values(problem, model, resolution)
    if drawn is None:
        return None
    sites, evaluation, title = drawn
    values = evaluation.frames[-1]
    rows = [name for name in problem.fields]
    columns = [c for c in ("", "_exact", "_error") if any(f"{r}{c}" in values for r in rows)]
    figure = _figure(4.2 * len(columns), 3.4 * len(rows))
    subplots = figure.subplots(len(rows), len(columns), squeeze=False)
    for r, field in enumerate(rows):
        for c, suffix in enumerate(columns):
            axes, name = subplots[r, c], f"{field}{suffix}"
            if name not in values:
                axes.set_axis_off()
                continue
            _draw(axes, figure, sites, values[name], evaluation.coordinates, suffix == "_error")
            axes.set_title(f"{name}{title}")
    return figure


def catalogue_figure(
    problem,
    model,
    history: dict[str, np.ndarray] | None,
    title: str = "",
    resolution: int | None = None,
):
    """One compact figure of a trained problem for the problem catalogue: per field (rows)
    the solution and its error against the exact or reference solution (maps over space, or
    over space and time for 1D + time), and beside them the loss history per term (dotted
    lines where the plan's stage changes).

    Args:
        problem: the problem (its ``exact`` solutions give the error column).
        model: the trained surrogate.
        history: columns of ``history.csv`` (``Run.history()``); None: no loss panel.
        title: the figure's title (e.g. model, budget and measured error).
        resolution: grid points per axis (default 101 for maps, 1001 for curves).

    Returns:
        The figure, or None for domains of more than two dimensions.
    """
    drawn = _field_values(problem, model, resolution)
    if drawn is None:
        return None
    sites, evaluation, suffix = drawn
    values, rows = evaluation.frames[-1], list(problem.fields)
    figure = _figure(11.0, max(2.5 * len(rows), 3.2))
    layout = figure.add_gridspec(len(rows), 3, width_ratios=(1.0, 1.0, 1.2))
    for r, field in enumerate(rows):
        for c, name in enumerate((field, f"{field}_error")):
            axes = figure.add_subplot(layout[r, c])
            if name not in values:
                axes.set_axis_off()
                continue
            _draw(axes, figure, sites, values[name], evaluation.coordinates, c == 1)
            largest = np.nanmax(np.abs(values[name]))
            label = f"{field}{suffix}" if c == 0 else f"{field} error (max {largest:.1e})"
            axes.set_title(label, fontsize=9)
    if history is not None:
        axes = figure.add_subplot(layout[:, 2])
        _draw_losses(axes, history, stages=True)
        terms = sum(name.startswith("loss") for name in history)
        axes.legend(fontsize=6, ncol=2 if terms > 6 else 1)
        axes.set_title("loss history", fontsize=9)
    for axes in figure.axes:  # the maps, their colour bars and the losses
        axes.tick_params(labelsize=7)
        axes.xaxis.label.set_size(8)
        axes.yaxis.label.set_size(8)
        axes.yaxis.get_offset_text().set_fontsize(7)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def write_png(figure, path: str | Path, dpi: int = 100, max_bytes: int | None = None) -> Path:
    """Save ``figure`` as a PNG at ``dpi`` (atomically); return the path.

    With ``max_bytes``, a file that would be larger is reduced to a palette of 256 colours
    (median cut, no dithering): a third of the size or less for colour maps, with faint
    banding.
    """
    from io import BytesIO

    from PIL import Image

    path = Path(path)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    content = buffer.getvalue()
    if max_bytes is not None and len(content) > max_bytes:
        image = Image.open(buffer).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        buffer = BytesIO()
        image.save(buffer, format="png", optimize=True)
        content = buffer.getvalue()
    with atomic_path(path) as temporary:
        temporary.write_bytes(content)
    return path


def _field_values(problem, model, resolution: int | None):
    """(sites, evaluation, title suffix) of every field, exact solution and error on a grid
    of the domain (the final time of a 2D + time problem); None above two dimensions."""
    from kanphys.io.export import evaluate, grid_sites

    domain = problem.domain
    space_dim = domain.spatial_dim
    timed = domain.time_index is not None
    if space_dim > 2 or (timed and space_dim not in (1, 2)):
        return None
    if timed and space_dim == 2:
        sites = grid_sites(domain.space, resolution or 101)
        evaluation = evaluate(
            problem, model, sites, times=np.array([domain.t1]), fields=_names(problem)
        )
        return sites, evaluation, f" at t = {domain.t1:g}"
    sites = grid_sites(domain, resolution or (1001 if domain.dim == 1 else 101))
    return sites, evaluate(problem, model, sites, fields=_names(problem)), ""


def _names(problem) -> list[str]:
    names = list(problem.fields)
    for field in problem.fields:
        if field in problem.exact:
            names += [f"{field}_exact", f"{field}_error"]
    return names


def _draw(axes, figure, sites, value: np.ndarray, coordinates, diverging: bool) -> None:
    """A curve for one coordinate, a colour map for two (NaN outside the domain)."""
    if sites.dim == 1:
        axes.plot(sites.points[:, 0], value, lw=1.2)
        axes.set_xlabel(coordinates[0])
        return
    nx, ny = sites.shape
    image = value.reshape(ny, nx)
    lower, upper = sites.points.min(axis=0), sites.points.max(axis=0)
    limit = np.nanmax(np.abs(image)) if diverging else None
    options = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit} if diverging else {}
    mappable = axes.imshow(
        image,
        origin="lower",
        extent=(lower[0], upper[0], lower[1], upper[1]),
        aspect="auto",
        **options,
    )
    figure.colorbar(mappable, ax=axes)
    axes.set_xlabel(coordinates[0])
    axes.set_ylabel(coordinates[1])


def render_figure(problem, model, field: str, window: tuple[int, int] = (900, 700)):
    """An off-screen PyVista render of ``field`` on the domain's default sites (2D and 3D
    spatial domains; the final time for time-dependent ones). Returns (image, figure) or None."""
    import pyvista as pv

    from kanphys.io.export import default_sites, evaluate
    from kanphys.io.vtk import to_pyvista

    domain = problem.domain
    timed = domain.time_index is not None
    space = domain.space if timed else domain
    if space.dim not in (2, 3):
        return None
    sites = default_sites(space, 31 if space.dim == 3 else None)
    times = np.array([domain.t1]) if timed else None
    evaluation = evaluate(problem, model, sites, times=times, fields=[field])
    dataset = to_pyvista(evaluation, 0, "vtu")
    plotter = pv.Plotter(off_screen=True, window_size=window)
    try:
        plotter.add_mesh(dataset, scalars=field, cmap="viridis", show_edges=sites.kind == "mesh")
        if space.dim == 2:
            plotter.view_xy()
        else:
            plotter.view_isometric()
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
    figure = _figure(window[0] / 150, window[1] / 150)
    axes = figure.add_subplot()
    axes.imshow(image)
    axes.set_axis_off()
    suffix = f" at t = {domain.t1:g}" if timed else ""
    axes.set_title(f"{field}{suffix} (PyVista)")
    return image, figure


# ----------------------------------------------------------------------------- the command
def plot_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    formats: Sequence[str] = FORMATS,
    render: bool = True,
) -> list[Path]:
    """Write every figure of a run (see the module docstring) as ``formats``.

    Args:
        run_dir: a run directory (``kanphys run``).
        out: folder for the figures (default ``RUN_DIR/plots``).
        formats: file formats, any of matplotlib's (default PNG and PDF).
        render: also make the PyVista render (2D and 3D domains).

    Returns:
        The files written.

    Raises:
        ValueError: If a format is not one matplotlib writes.
    """
    from kanphys.io.run import Run
    from kanphys.runner import load_problem_file

    unknown = [f for f in formats if f not in ("png", "pdf", "svg")]
    if unknown:
        raise ValueError(f"unknown plot format(s) {', '.join(unknown)}; choose png, pdf or svg")
    run = Run.load(run_dir)
    problem = load_problem_file(run.config["problem_file"]).problem
    model = run.model()
    folder = Path(out) if out is not None else Path(run_dir) / "plots"
    points = problem.domain.sample_interior(N_SAMPLES, seed=0, method="sobol")
    written: list[Path] = []
    if _kan_of(model) is not None:
        figure = network_figure(model, points, problem.coordinates, problem.fields)
        written += _save(figure, folder, "network", formats)
        for k, figure in enumerate(edges_figures(model, points)):
            written += _save(figure, folder, f"edges_layer{k}", formats)
    if (Path(run_dir) / "history.csv").is_file():
        written += _save(loss_figure(run.history()), folder, "loss", formats)
    figure = solution_figure(problem, model)
    if figure is not None:
        written += _save(figure, folder, "solution", formats)
    if render:
        rendered = render_figure(problem, model, problem.fields[0])
        if rendered is not None:
            written += _save(rendered[1], folder, "render", formats)
    log.info("wrote %d figures to %s", len(written), folder)
    return written
