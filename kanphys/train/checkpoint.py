"""Atomic checkpoint files that load with ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]

FORMAT = 1


def save_checkpoint(path: str | Path, content: dict[str, Any]) -> None:
    """Write ``content`` to ``path`` atomically: a killed writer never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save({"format": FORMAT, **content}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location=None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    content = torch.load(path, map_location=map_location, weights_only=True)
    if content.get("format") != FORMAT:
        raise ValueError(f"{path}: not a kanphys checkpoint of format {FORMAT}")
    return content
