"""One table of a sweep's results: a row per run directory, a column per swept key and metric.

``kanphys collect DIR`` reads ``DIR/sweep.json`` (written by ``kanphys slurm submit``) for the
points and their keys, or, without it, every run directory below ``DIR`` (and their
``config.json`` overrides). Runs that have not finished are listed with their state, so a
sweep's table also shows what is missing. It writes ``DIR/sweep.csv`` and ``DIR/sweep.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kanphys.io.files import write_csv, write_text

__all__ = ["collect", "main", "markdown_table", "metric_columns"]

SCALARS = ("final_loss", "steps", "wall_time_s", "n_params")


def _runs(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(name, swept values)`` of every run of the sweep, in sweep order."""
    sweep = directory / "sweep.json"
    if sweep.is_file():
        points = json.loads(sweep.read_text())["points"]
        return [(p["run"], {k: v for k, v in p.items() if k != "run"}) for p in points]
    if (directory / "config.json").is_file():
        return [(".", {})]
    found = sorted(p.parent for p in directory.rglob("config.json"))
    if not found:
        raise FileNotFoundError(f"{directory} holds no run directories (no config.json)")
    runs = []
    for path in found:
        overrides = json.loads((path / "config.json").read_text()).get("overrides", {})
        runs.append((str(path.relative_to(directory)), overrides))
    return runs


def _state(path: Path) -> str:
    if (path / "metrics.json").is_file():
        return "done"
    if (path / "checkpoint.pt").is_file():
        return "stopped"
    return "started" if (path / "config.json").is_file() else "pending"


def metric_columns(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Flat metric columns: ``rel_l2_u``, ``max_abs_error_u``, ..., then :data:`SCALARS`."""
    out: dict[str, Any] = {}
    for group in ("rel_l2", "max_abs_error"):
        for field, value in (metrics.get(group) or {}).items():
            out[f"{group}_{field}"] = value
    for name in SCALARS:
        if name in metrics:
            out[name] = metrics[name]
    return out


def collect(directory: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and one row per run of the sweep (or run directories) under ``directory``.

    Raises:
        FileNotFoundError: when ``directory`` holds no sweep and no run directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    rows = []
    for name, swept in _runs(directory):
        path = directory / name
        metrics_file = path / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        rows.append({"run": name, **swept, "state": _state(path), **metric_columns(metrics)})
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns, rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured markdown table (floats to 4 significant digits)."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(directory: str | Path) -> tuple[Path, Path, str]:
    """Collect ``directory``; write ``sweep.csv`` and ``sweep.md`` beside the runs.

    Returns:
        The CSV path, the markdown path and the markdown text.
    """
    directory = Path(directory)
    columns, rows = collect(directory)
    table = markdown_table(columns, rows)
    csv_path, md_path = directory / "sweep.csv", directory / "sweep.md"
    write_csv(csv_path, columns, [[row.get(c, "") for c in columns] for row in rows])
    write_text(md_path, table)
    return csv_path, md_path, table
