"""The run directory: what a finished (or interrupted) training leaves for the scientist.

::

    RUN_DIR/
      config.json     how the run was made (problem file, overrides, seed, plan, model)
      problem.txt     the problem, printed
      checkpoint.pt   latest checkpoint (torch.load(..., weights_only=True))
      history.csv     one row per step: losses per term, learning rate, time
      metrics.json    errors against the exact solution, time, steps, sizes, versions, units
      fields.vtu      fields, exact solution, errors, residuals on the evaluation grid (with units)
      fields.h5       the same in HDF5 (layout in kanphys.io.fields)
      fields.pvd      time-dependent problems: a ParaView series (fields/, one file per time)
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kanphys.model import Surrogate
from kanphys.train.checkpoint import load_checkpoint

__all__ = ["Run"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Run:
    """A run directory read back: its files and a model that evaluates anywhere."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> Run:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a kanphys run directory (no config.json)")
        metrics_file = path / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        return cls(path, json.loads((path / "config.json").read_text()), metrics)

    def model(self, device=None) -> Surrogate:
        """The trained surrogate from the latest checkpoint, in evaluation mode."""
        content = load_checkpoint(self.path / "checkpoint.pt", map_location=device)
        model = Surrogate.from_config(
            content["model_config"], dtype=DTYPES[content["dtype"]], device=device
        )
        model.load_state_dict(content["model"])
        return model.eval()

    def history(self) -> dict[str, np.ndarray]:
        """Columns of ``history.csv`` as float arrays."""
        with open(self.path / "history.csv", newline="") as stream:
            rows = list(csv.reader(stream))
        data = np.array(rows[1:], dtype=np.float64).reshape(-1, len(rows[0]))
        return {name: data[:, i] for i, name in enumerate(rows[0])}
