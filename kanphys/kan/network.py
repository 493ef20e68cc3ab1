"""KAN networks of any depth, their grid update and extension, and an MLP baseline."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

import torch
from torch import Tensor, nn

from kanphys.kan.basis import Basis, BSpline, basis_from_config
from kanphys.kan.layer import KANLayer

__all__ = ["KAN", "MLP", "adaptive_interior", "model_from_config", "refined_interior"]


def _check_widths(widths: Sequence[int], owner: str) -> list[int]:
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"{owner}: widths must list >= 2 positive layer sizes, got {widths}")
    return widths


class KAN(nn.Module):
    """A Kolmogorov-Arnold network ``widths[0] -> ... -> widths[-1]``.

    Args:
        widths: layer sizes, e.g. ``[2, 10, 1]``.
        basis: edge basis shared by all layers (default cubic B-spline on 5 intervals).
        base: base function on every edge (``"silu"``, ``"tanh"``, ``"identity"`` or None).
        noise_scale: spread of the initial spline coefficients.
        generator: random generator for the initial weights (None: torch's default).
        dtype: parameter dtype.
        device: parameter device.

    Inputs are expected in the grid range (``[-1, 1]`` by default); :class:`kanphys.Surrogate`
    normalises physical coordinates into it.
    """

    def __init__(
        self,
        widths: Sequence[int],
        basis: Basis | None = None,
        *,
        base: str | None = "silu",
        noise_scale: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> None:
        super().__init__()
        self.widths = _check_widths(widths, "KAN")
        self.base, self.noise_scale = base, noise_scale
        options = {"base": base, "noise_scale": noise_scale, "generator": generator}
        basis = BSpline() if basis is None else basis
        self.layers = nn.ModuleList(
            KANLayer(a, b, basis, **options, dtype=dtype, device=device)
            for a, b in zip(self.widths[:-1], self.widths[1:], strict=False)
        )

    @property
    def basis(self) -> Basis:
        return self.layers[0].basis

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, widths[0])`` to ``(N, widths[-1])``."""
        for layer in self.layers:
            x = layer(x)
        return x

    def layer_inputs(self, x: Tensor) -> list[Tensor]:
        """The input of every layer for network input ``x`` (no gradient)."""
        inputs = []
        with torch.no_grad():
            for layer in self.layers:
                inputs.append(x)
                x = layer(x)
        return inputs

    def update_grid(self, x: Tensor, grid_eps: float | None = None) -> KAN:
        """A new KAN whose grids follow the distribution of samples ``x`` ``(M, widths[0])``.

        Each layer's interior knots become ``eps * uniform + (1 - eps) * quantiles`` of its
        input samples, and the splines are refitted by least squares to the current ones, so
        the new model represents (nearly) the same function on the samples.
        """
        basis = self._bspline()
        eps = basis.grid_eps if grid_eps is None else grid_eps
        new = copy.deepcopy(self)
        inputs = x.detach()
        for index, layer in enumerate(self.layers):
            interior = adaptive_interior(inputs, basis.grid, eps)
            new.layers[index] = layer.refit(basis, interior, inputs)
            with torch.no_grad():
                inputs = new.layers[index](inputs)
        return new

    def extend_grid(
        self, grid: int, x: Tensor | None = None, samples_per_interval: int | None = None
    ) -> KAN:
        """A new KAN on a finer grid of ``grid`` intervals that represents the same function.

        New interior knots interpolate the old ones piecewise linearly, so when ``grid`` is a
        multiple of the old grid the new spline space contains the old one and the refit on the
        grid range is exact up to round-off. With samples ``x`` ``(M, widths[0])`` of the
        network input, each layer's grid also grows (uniformly) to cover the layer inputs that
        fall outside it, and the refit includes those inputs, so the function is kept where the
        network is actually evaluated.

        Args:
            grid: new number of intervals.
            x: optional samples of the network input.
            samples_per_interval: fitting points per new interval (default ``order + 2``).
        """
        basis = replace(self._bspline(), grid=grid)
        per = samples_per_interval or basis.order + 2
        new = copy.deepcopy(self)
        inputs = None if x is None else x.detach()
        for index, layer in enumerate(self.layers):
            interior = refined_interior(layer.interior_knots(), grid)
            if inputs is not None:
                interior = _cover(interior, inputs)
            samples = refined_interior(interior, grid * per).T
            if inputs is not None:
                samples = torch.cat([samples, inputs])
            new.layers[index] = layer.refit(basis, interior, samples.contiguous())
            if inputs is not None:
                with torch.no_grad():
                    inputs = new.layers[index](inputs)
        return new

    def config(self) -> dict:
        """A JSON-able description from which :func:`model_from_config` rebuilds the network."""
        options = {"base": self.base, "noise_scale": self.noise_scale}
        return {"type": "KAN", "widths": self.widths, "basis": self.basis.config(), **options}

    def _bspline(self) -> BSpline:
        if not isinstance(self.basis, BSpline):
            raise TypeError(f"grid update/extension needs a BSpline basis, not {self.basis}")
        return self.basis


def adaptive_interior(x: Tensor, grid: int, eps: float) -> Tensor:
    """Interior knots ``(n_in, grid + 1)`` blending a uniform grid and sample quantiles.

    Args:
        x: ``(M, n_in)`` samples.
        grid: number of intervals.
        eps: weight of the uniform grid (1: uniform over the sample range, 0: quantiles).
    """
    ordered = torch.sort(x.detach(), dim=0).values
    index = torch.linspace(0, ordered.shape[0] - 1, grid + 1, device=x.device).round().long()
    quantiles = ordered[index].T
    lo, hi = ordered[0].unsqueeze(1), ordered[-1].unsqueeze(1)
    pad = torch.clamp(1e-3 - (hi - lo), min=0) / 2
    lo, hi = lo - pad, hi + pad
    unit = torch.linspace(0, 1, grid + 1, dtype=x.dtype, device=x.device)
    uniform = lo + (hi - lo) * unit
    quantiles = torch.maximum(torch.minimum(quantiles, hi), lo)
    return eps * uniform + (1 - eps) * quantiles


def _cover(interior: Tensor, x: Tensor) -> Tensor:
    """Interior knots kept where they cover ``x`` ``(M, n_in)``, else uniform over the union."""
    lo = torch.minimum(interior[:, 0], x.min(dim=0).values)
    hi = torch.maximum(interior[:, -1], x.max(dim=0).values)
    grows = (lo < interior[:, 0]) | (hi > interior[:, -1])
    unit = torch.linspace(0, 1, interior.shape[1], dtype=interior.dtype, device=interior.device)
    uniform = lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * unit
    return torch.where(grows.unsqueeze(1), uniform, interior)


def refined_interior(interior: Tensor, grid: int) -> Tensor:
    """Interpolate interior knots ``(n_in, G + 1)`` at ``grid + 1`` evenly spaced positions."""
    old_grid = interior.shape[1] - 1
    position = torch.linspace(0, old_grid, grid + 1, dtype=interior.dtype, device=interior.device)
    left = torch.clamp(position.floor().long(), max=old_grid - 1)
    fraction = position - left.to(position.dtype)
    return interior[:, left] * (1 - fraction) + interior[:, left + 1] * fraction


class MLP(nn.Module):
    """A fully connected network with the same interface as :class:`KAN` (tanh by default).

    Args:
        widths: layer sizes, e.g. ``[2, 20, 20, 1]``.
        activation: ``"tanh"``, ``"silu"`` or ``"sin"``.
        generator: random generator for the Xavier initialisation.
        dtype: parameter dtype.
        device: parameter device.
    """

    ACTIVATIONS: ClassVar[dict] = {"tanh": torch.tanh, "silu": nn.functional.silu, "sin": torch.sin}

    def __init__(
        self,
        widths: Sequence[int],
        activation: str = "tanh",
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> None:
        super().__init__()
        if activation not in self.ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; choose from {list(self.ACTIVATIONS)}"
            )
        self.widths, self.activation = _check_widths(widths, "MLP"), activation
        self.linears = nn.ModuleList(
            nn.Linear(a, b, dtype=dtype, device=device)
            for a, b in zip(self.widths[:-1], self.widths[1:], strict=False)
        )
        for linear in self.linears:
            std = (2.0 / (linear.in_features + linear.out_features)) ** 0.5
            with torch.no_grad():
                draw = torch.randn(linear.weight.shape, generator=generator, dtype=dtype)
                linear.weight.copy_(draw * std)
                linear.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        act = self.ACTIVATIONS[self.activation]
        for linear in self.linears[:-1]:
            x = act(linear(x))
        return self.linears[-1](x)

    def config(self) -> dict:
        return {"type": "MLP", "widths": self.widths, "activation": self.activation}


def model_from_config(config: dict, *, dtype: torch.dtype = torch.float32, device=None):
    """Rebuild a :class:`KAN` or :class:`MLP` (untrained) from its :meth:`config`."""
    options = dict(config)
    kind = options.pop("type")
    if kind == "KAN":
        options["basis"] = basis_from_config(options["basis"])
        return KAN(dtype=dtype, device=device, **options)
    if kind == "MLP":
        return MLP(dtype=dtype, device=device, **options)
    raise ValueError(f"unknown model type {kind!r}; expected 'KAN' or 'MLP'")
