"""Writing formulas: LaTeX, a Python module (numpy and torch), JSON, edge figures, VTK.

``formula.json`` holds ``expression`` (the sympy string of the first output's formula, input
names as symbols), ``expressions`` (every output), ``inputs``, ``outputs`` and ``constants``
(the floating-point numbers left in the formula). :func:`load_formula` reads it back as a
:class:`~kanphys.symbolic.formula.FormulaModel`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kanphys.io.files import atomic_path, write_json, write_text
from kanphys.symbolic.formula import FormulaModel

__all__ = [
    "edge_figure",
    "formula_json",
    "latex",
    "load_formula",
    "python_source",
    "write_formula_fields",
]


def _check_closed(model: FormulaModel, what: str) -> None:
    if model.numeric:
        raise ValueError(
            f"{what} needs every edge in closed form; numeric edges: {sorted(model.numeric)}"
        )


def latex(model: FormulaModel) -> str:
    """One ``output = ...`` LaTeX equation per line."""
    import sympy

    lines = [
        f"{sympy.latex(sympy.Symbol(name))} = {sympy.latex(expr)}"
        for name, expr in zip(model.outputs, model.sympy(), strict=True)
    ]
    return "\n".join(lines) + "\n"


def python_source(model: FormulaModel) -> str:
    """A Python module defining ``formula(inputs...)`` (numpy) and ``formula_torch`` (torch).

    Both return one array per output (a tuple when there are several outputs).
    """
    from sympy.printing.numpy import NumPyPrinter
    from sympy.printing.pytorch import TorchPrinter

    _check_closed(model, "a Python export")
    expressions = model.sympy()
    arguments = ", ".join(model.inputs)
    numpy_code = [NumPyPrinter().doprint(e) for e in expressions]
    torch_code = [TorchPrinter().doprint(e) for e in expressions]
    outputs = ", ".join(model.outputs)
    lines = [
        f'"""{outputs} in terms of {arguments}: a formula read from a KAN by kanphys."""',
        "",
        "import numpy",
        "",
        f"INPUTS = {list(model.inputs)!r}",
        f"OUTPUTS = {list(model.outputs)!r}",
        "",
        "",
        f"def formula({arguments}):",
        '    """numpy: arrays (or floats) in, one array per output out."""',
        f"    return {_returned(numpy_code)}",
        "",
        "",
        f"def formula_torch({arguments}):",
        '    """torch: tensors in (differentiable), one tensor per output out."""',
        "    import torch",
        "",
        f"    return {_returned(torch_code)}",
        "",
    ]
    return "\n".join(lines)


def _returned(code: Sequence[str]) -> str:
    return code[0] if len(code) == 1 else "(" + ", ".join(code) + ")"


def formula_json(model: FormulaModel, extra: dict | None = None) -> dict:
    """The formula as JSON-able data (see the module docstring)."""
    import sympy

    expressions = model.sympy()
    constants = sorted({float(f) for e in expressions for f in e.atoms(sympy.Float)})
    return {
        "expression": str(expressions[0]),
        "expressions": {n: str(e) for n, e in zip(model.outputs, expressions, strict=True)},
        "inputs": list(model.inputs),
        "outputs": list(model.outputs),
        "constants": constants,
        "latex": {n: sympy.latex(e) for n, e in zip(model.outputs, expressions, strict=True)},
        **(extra or {}),
    }


def load_formula(path: str | Path, *, dtype=torch.float64, device=None) -> FormulaModel:
    """The :class:`FormulaModel` of a ``formula.json`` (constants trainable again)."""
    import sympy

    path = Path(path)
    if path.is_dir():
        path = path / "formula.json"
    if not path.is_file():
        raise FileNotFoundError(f"no formula file {path}")
    content = json.loads(path.read_text())
    for key in ("expressions", "inputs", "outputs"):
        if key not in content:
            raise ValueError(f"{path}: missing key {key!r}")
    symbols = {name: sympy.Symbol(name, real=True) for name in content["inputs"]}
    expressions = [
        sympy.sympify(content["expressions"][name], locals=symbols) for name in content["outputs"]
    ]
    return FormulaModel.from_expressions(
        expressions,
        content["inputs"],
        outputs=content["outputs"],
        parameters=content.get("parameters"),
        dtype=dtype,
        device=device,
    )


def write_python(path: str | Path, model: FormulaModel) -> None:
    write_text(path, python_source(model))


def write_formula_files(
    folder: str | Path, model: FormulaModel, extra: dict | None = None
) -> list[Path]:
    """Write ``formula.tex``, ``formula.py`` and ``formula.json`` into ``folder``."""
    folder = Path(folder)
    write_text(folder / "formula.tex", latex(model))
    write_python(folder / "formula.py", model)
    write_json(folder / "formula.json", formula_json(model, extra))
    return [folder / name for name in ("formula.tex", "formula.py", "formula.json")]


def edge_figure(path: str | Path, edges: Sequence, library) -> Path:
    """One panel per edge: the network's edge (dots) and its chosen fit (line)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = max(len(edges), 1)
    columns = min(n, 4)
    rows = -(-n // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.4 * rows), squeeze=False)
    for axis in axes.flat[n:]:
        axis.axis("off")
    for axis, report in zip(axes.flat, edges, strict=False):
        fit = report.chosen
        axis.plot(report.x, report.y, ".", markersize=2, color="0.5", label="network")
        fitted = _fitted(fit, report.x, library)
        if fitted is not None:
            axis.plot(report.x, fitted, "-", color="C3", linewidth=1, label=fit.name)
        layer, i, j = report.edge
        axis.set_title(f"layer {layer}: {i}->{j}  {fit.name}  1-R2={1 - fit.r2:.1e}", fontsize=8)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(figure)
    return Path(path)


def _fitted(fit, x: np.ndarray, library) -> np.ndarray | None:
    if fit.name == "0":
        return np.full_like(x, fit.d)
    if fit.name not in library:
        return None
    t = torch.as_tensor(fit.a * x + fit.b)
    with torch.no_grad():
        return (fit.c * library[fit.name].torch_function(t) + fit.d).numpy()


def write_formula_fields(
    problem,
    model: FormulaModel,
    path: str | Path,
    format: str = "vtu",
    *,
    resolution: int | None = None,
    metadata: dict | None = None,
) -> list[Path]:
    """Evaluate the formula like a trained model on a regular grid and write it for ParaView
    (formats of ``kanphys export``: vtu, vti, vts, vtkhdf, h5)."""
    from kanphys.io.export import evaluate, grid_sites, write

    sites = grid_sites(problem.domain, resolution)
    evaluation = evaluate(problem, model, sites, metadata=metadata)
    return write(path, evaluation, format)
