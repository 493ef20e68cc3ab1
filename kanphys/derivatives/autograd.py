"""The general derivative engine: nested first-order autograd with a per-evaluation cache."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["AutogradEngine", "partial"]


def partial(expr: Tensor, points: Tensor, index: tuple[int, ...]) -> Tensor:
    """Partial derivative of ``expr`` ``(N, 1)`` by the coordinates ``index`` of ``points``.

    Args:
        expr: ``(N, 1)`` or ``(N,)`` values computed from ``points`` (which require grad).
        points: ``(N, d)`` coordinates.
        index: coordinate indices to differentiate by, in order (repeats for higher orders).

    Returns:
        ``(N, 1)`` derivative (zeros where ``expr`` does not depend on the coordinate).
    """
    if not expr.requires_grad and points.requires_grad and not torch.is_grad_enabled():
        raise RuntimeError("differentiating an expression needs gradients enabled")
    result = expr.reshape(-1, 1)
    for axis in index:
        result = _gradient(result, points)[:, axis : axis + 1]
    return result


def _gradient(values: Tensor, points: Tensor) -> Tensor:
    if not values.requires_grad:
        return torch.zeros_like(points)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(
            values, points, torch.ones_like(values), create_graph=True, allow_unused=True
        )
    return torch.zeros_like(points) if grad is None else grad


class AutogradEngine:
    """Values and derivatives of a model's outputs at fixed points, computed on request.

    Gradients are cached by (output, multi-index prefix), so ``u_xx`` and ``u_xy`` share one
    first-order pass and the Laplacian costs one gradient per coordinate. The cache lives as long
    as the engine, which is one evaluation (one loss term of one step).

    Args:
        model: maps ``(N, d)`` points to ``(N, m)`` outputs.
        points: ``(N, d)`` coordinates; a copy that requires grad is used.
    """

    def __init__(self, model: nn.Module, points: Tensor) -> None:
        self.points = points.detach().requires_grad_(True)
        with torch.enable_grad():
            self.values = model(self.points)
        self._gradients: dict[tuple[int, tuple[int, ...]], Tensor] = {}

    def derivative(self, output: int, index: tuple[int, ...]) -> Tensor:
        """``d^k u_output / dx_index`` as ``(N, 1)``; ``index=()`` gives the value."""
        key = tuple(sorted(index))
        if not key:
            return self.values[:, output : output + 1]
        return self.gradient(output, key[:-1])[:, key[-1] : key[-1] + 1]

    def gradient(self, output: int, prefix: tuple[int, ...]) -> Tensor:
        """The full gradient ``(N, d)`` of the derivative ``prefix`` of an output."""
        key = (output, prefix)
        if key not in self._gradients:
            self._gradients[key] = _gradient(self.derivative(output, prefix), self.points)
        return self._gradients[key]
