"""The trained object: a network on normalised coordinates plus the problem's unknown parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from kanphys.kan.network import KAN, model_from_config

__all__ = ["Surrogate"]


class Surrogate(nn.Module):
    """Maps physical coordinates ``(N, d)`` to field values ``(N, m)``.

    Coordinates are normalised from the domain's bounding box to ``[-1, 1]^d`` before the network
    sees them. Unknown scalar parameters of an inverse problem are trained with the network and
    live in :attr:`params`.

    Args:
        net: a :class:`~kanphys.KAN` or :class:`~kanphys.MLP` with ``d`` inputs and ``m`` outputs.
        lower: ``(d,)`` lower corner of the domain's bounding box.
        upper: ``(d,)`` upper corner.
        parameters: initial values of the unknown scalar parameters, by name.
    """

    def __init__(
        self,
        net: nn.Module,
        lower: Sequence[float],
        upper: Sequence[float],
        parameters: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        reference = next(net.parameters())
        options = {"dtype": reference.dtype, "device": reference.device}
        lower, upper = torch.as_tensor(lower, **options), torch.as_tensor(upper, **options)
        if lower.shape != upper.shape or not bool((upper > lower).all()):
            raise ValueError(
                f"Surrogate: bounds {lower.tolist()} .. {upper.tolist()} are not a box"
            )
        self.register_buffer("center", (upper + lower) / 2)
        self.register_buffer("inv_half_width", 2 / (upper - lower))
        self.params = nn.ParameterDict(
            {
                name: nn.Parameter(torch.tensor(float(v), **options))
                for name, v in (parameters or {}).items()
            }
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.center.dtype

    @property
    def device(self) -> torch.device:
        return self.center.device

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        half = 1 / self.inv_half_width
        return self.center - half, self.center + half

    def normalize(self, x: Tensor) -> Tensor:
        """Physical ``(N, d)`` coordinates to the network's ``[-1, 1]^d``."""
        return (x - self.center) * self.inv_half_width

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != self.dtype or x.device != self.device:
            raise ValueError(
                f"points are {x.dtype} on {x.device}, the model is {self.dtype} on {self.device}"
            )
        if x.ndim != 2 or x.shape[1] != self.center.shape[0]:
            raise ValueError(
                f"points must have shape (N, {self.center.shape[0]}), got {tuple(x.shape)}"
            )
        return self.net(self.normalize(x))

    def with_net(self, net: nn.Module) -> Surrogate:
        """A new surrogate with another network and the same bounds and parameters."""
        lower, upper = self.bounds
        values = {name: p.item() for name, p in self.params.items()}
        new = Surrogate(net, lower.tolist(), upper.tolist(), values)
        return new.to(self.device)

    def update_grid(self, x: Tensor) -> Surrogate:
        """Grids adapted to the physical sample points ``x`` (KAN only); a new surrogate."""
        return self.with_net(self._kan().update_grid(self.normalize(x)))

    def extend_grid(self, grid: int, x: Tensor | None = None) -> Surrogate:
        """The same function on a finer grid (KAN only); a new surrogate.

        With physical sample points ``x`` the grids also grow to cover the layer inputs there.
        """
        normalized = None if x is None else self.normalize(x)
        return self.with_net(self._kan().extend_grid(grid, normalized))

    def config(self) -> dict:
        lower, upper = self.bounds
        return {
            "net": self.net.config(),
            "lower": lower.tolist(),
            "upper": upper.tolist(),
            "parameters": list(self.params),
        }

    @classmethod
    def from_config(cls, config: Mapping, *, dtype=torch.float32, device=None) -> Surrogate:
        """An untrained surrogate of the described shape (load a state dict into it)."""
        net = model_from_config(config["net"], dtype=dtype, device=device)
        values = dict.fromkeys(config["parameters"], 0.0)
        return cls(net, config["lower"], config["upper"], values)

    def _kan(self) -> KAN:
        if not isinstance(self.net, KAN):
            raise TypeError(
                f"grid operations need a KAN, this surrogate holds {type(self.net).__name__}"
            )
        return self.net
