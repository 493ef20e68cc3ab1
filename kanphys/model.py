"""The trained object: a network on normalised coordinates plus the problem's unknown parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from kanphys.kan.network import KAN, model_from_config

if TYPE_CHECKING:
    from kanphys.constraints import BoundConstraints

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
        constraints: hard constraints (:mod:`kanphys.constraints`) bound to the problem's
            coordinates and fields: a periodic input embedding and exact-value output
            transforms. They hold no parameters and are not part of the state dict.
    """

    def __init__(
        self,
        net: nn.Module,
        lower: Sequence[float],
        upper: Sequence[float],
        parameters: Mapping[str, float] | None = None,
        constraints: BoundConstraints | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.constraints = constraints
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
        if self.constraints is None:
            return self.net(self.normalize(x))
        return self.constraints.output(x, self.net(self.features(x)))

    def features(self, x: Tensor) -> Tensor:
        """The network's input for physical points ``x``: normalised, periodic ones embedded."""
        z = self.normalize(x)
        if self.constraints is None:
            return z
        return self.constraints.embed(x, z, self.bounds[0])

    def analytic_engine(self, points: Tensor, requests):
        """The closed-form derivative engine for this surrogate (a KAN's), constraints included:
        a periodic embedding seeds the input derivatives, output transforms enter by
        Leibniz's rule (see :mod:`kanphys.constraints`)."""
        from kanphys.constraints import ConstrainedEngine, EmbeddedEngine
        from kanphys.derivatives.analytic import AnalyticEngine

        if self.constraints is None:
            return AnalyticEngine(self, points, requests)
        if self.constraints.values:
            return ConstrainedEngine(self, points, requests)
        return EmbeddedEngine(self, points, requests)

    def with_net(self, net: nn.Module) -> Surrogate:
        """A new surrogate with another network and the same bounds and parameters."""
        lower, upper = self.bounds
        values = {name: p.item() for name, p in self.params.items()}
        new = Surrogate(net, lower.tolist(), upper.tolist(), values, self.constraints)
        return new.to(self.device)

    def update_grid(self, x: Tensor, grid_eps: float | None = None) -> Surrogate:
        """Grids adapted to the physical sample points ``x`` (KAN only); a new surrogate.

        ``grid_eps`` weighs the uniform grid against the sample quantiles (None: the
        basis's own).
        """
        return self.with_net(self._kan().update_grid(self.features(x), grid_eps))

    def extend_grid(self, grid: int, x: Tensor | None = None) -> Surrogate:
        """The same function on a finer grid (KAN only); a new surrogate.

        With physical sample points ``x`` the grids also grow to cover the layer inputs there.
        """
        normalized = None if x is None else self.features(x)
        return self.with_net(self._kan().extend_grid(grid, normalized))

    def config(self) -> dict:
        lower, upper = self.bounds
        return {
            "net": self.net.config(),
            "lower": lower.tolist(),
            "upper": upper.tolist(),
            "parameters": list(self.params),
            "constrained": self.constraints is not None,
            "constraints_from": None if self.constraints is None else self.constraints.source,
        }

    @classmethod
    def from_config(
        cls,
        config: Mapping,
        *,
        dtype=torch.float32,
        device=None,
        constraints: BoundConstraints | None = None,
    ) -> Surrogate:
        """An untrained surrogate of the described shape (load a state dict into it).

        Hard constraints are functions kept by the problem, not in the configuration: pass
        them bound to the problem, or they are read from the problem file that declared them
        (``constraints_from``, set by ``kanphys run``).

        Raises:
            ValueError: when the surrogate was built with hard constraints and they can be
                neither given nor found.
        """
        if config.get("constrained") and constraints is None and config.get("constraints_from"):
            from kanphys.runner import bind_constraints, load_problem_file

            problem = load_problem_file(config["constraints_from"]).problem
            constraints = replace(bind_constraints(problem), source=config["constraints_from"])
        if config.get("constrained") and constraints is None:
            raise ValueError(
                "this surrogate was trained with hard constraints; pass "
                "constraints=problem.constraints.bind(problem.coordinates, problem.fields)"
            )
        net = model_from_config(config["net"], dtype=dtype, device=device)
        values = dict.fromkeys(config["parameters"], 0.0)
        return cls(net, config["lower"], config["upper"], values, constraints)

    def _kan(self) -> KAN:
        if not isinstance(self.net, KAN):
            raise TypeError(
                f"grid operations need a KAN, this surrogate holds {type(self.net).__name__}"
            )
        return self.net
