"""One KAN layer: every edge i -> j carries phi_ji(x) = w_b * b(x) + w_s * sum_k c_k B_k(x)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kanphys.kan.basis import Basis, BSpline, extend_knots, snap_uniform

__all__ = ["BASE_FUNCTIONS", "KANLayer"]

BASE_FUNCTIONS = {"silu": nn.functional.silu, "tanh": torch.tanh, "identity": lambda x: x}


class KANLayer(nn.Module):
    """A layer of ``n_in * n_out`` learnable univariate edge functions.

    The forward pass contracts the basis values ``(N, n_in * size)`` with the scaled coefficients
    ``(n_in * size, n_out)`` in one matrix product, so no ``(N, n_in, n_out)`` tensor is formed.

    Args:
        n_in: input width.
        n_out: output width.
        basis: the edge basis (:class:`BSpline` or :class:`Chebyshev`).
        base: name of the base function b (``"silu"``, ``"tanh"``, ``"identity"``) or None.
        noise_scale: spread of the initial spline coefficients.
        generator: random generator for the initial weights (None: torch's default).
        dtype: parameter dtype.
        device: parameter device.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        basis: Basis,
        *,
        base: str | None = "silu",
        noise_scale: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> None:
        super().__init__()
        if base is not None and base not in BASE_FUNCTIONS:
            raise ValueError(f"unknown base function {base!r}; choose from {list(BASE_FUNCTIONS)}")
        self.n_in, self.n_out, self.basis, self.base = n_in, n_out, basis, base
        options = {"dtype": dtype, "device": device}
        self.register_buffer("knots", basis.initial_knots(n_in, dtype, device))
        scale = 1.0 / n_in**0.5
        uniform = torch.rand((n_in, basis.size, n_out), generator=generator, dtype=dtype)
        self.coef = nn.Parameter(((2 * uniform - 1) * noise_scale).to(device))
        self.scale_spline = nn.Parameter(torch.full((n_in, n_out), scale, **options))
        if base is None:
            self.register_parameter("scale_base", None)
        else:
            uniform = torch.rand((n_in, n_out), generator=generator, dtype=dtype)
            self.scale_base = nn.Parameter(((2 * uniform - 1) * scale).to(device))

    def _apply(self, fn, recurse=True):
        """``.to()``, ``.double()``, ...: uniform knots stay exactly uniform in a finer dtype
        (float32 knots cast to float64 are uniform only to float32 round-off)."""
        before = self.knots.dtype
        super()._apply(fn, recurse)
        if self.knots.dtype != before and self.knots.is_floating_point():
            self.knots = snap_uniform(self.knots, before)
        return self

    def basis_values(self, x: Tensor) -> Tensor:
        """Basis values ``(N, n_in, size)`` of the layer input ``x`` ``(N, n_in)``."""
        return self.basis.evaluate(x, self.knots)

    def effective_coef(self) -> Tensor:
        """Coefficients scaled by ``w_s``, shape ``(n_in, size, n_out)``."""
        return self.coef * self.scale_spline.unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, n_in)`` to ``(N, n_out)``."""
        values = self.basis_values(x).reshape(x.shape[0], -1)
        out = values @ self.effective_coef().reshape(-1, self.n_out)
        if self.base is not None:
            out = out + BASE_FUNCTIONS[self.base](x) @ self.scale_base
        return out

    def edge_values(self, x: Tensor) -> Tensor:
        """Every edge function at ``x``: ``(N, n_in, n_out)`` (for plots and symbolic fitting)."""
        out = torch.einsum("nis,iso->nio", self.basis_values(x), self.effective_coef())
        if self.base is not None:
            out = out + BASE_FUNCTIONS[self.base](x).unsqueeze(-1) * self.scale_base
        return out

    def spline_values(self, x: Tensor) -> Tensor:
        """The spline part of every edge, unscaled by ``w_s``: ``(n_in, N, n_out)``."""
        return torch.einsum("nis,iso->ino", self.basis_values(x), self.coef)

    def interior_knots(self) -> Tensor:
        """Knots ``(n_in, G + 1)`` spanning the grid range of each input (B-spline only)."""
        order = self._bspline().order
        return self.knots[:, order : self.knots.shape[1] - order]

    def refit(self, basis: BSpline, interior: Tensor, x: Tensor) -> KANLayer:
        """A copy of this layer on new knots, fitted to this layer's splines at samples ``x``.

        The spline coefficients solve a least-squares problem per input on ``x`` ``(M, n_in)``;
        base weights and ``w_s`` are kept. Solved in float64 on the CPU (with a minimum-norm
        solution where samples leave basis functions undetermined).

        Args:
            basis: the new basis description (its grid must match ``interior``).
            interior: ``(n_in, basis.grid + 1)`` new interior knots.
            x: ``(M, n_in)`` samples of the layer input.

        Returns:
            A new layer with the same dtype and device.
        """
        self._bspline()
        target = self.spline_values(x).detach()
        knots = extend_knots(interior.to(self.knots), basis.order)
        design = basis.evaluate(x.detach(), knots).permute(1, 0, 2)
        solution = torch.linalg.lstsq(
            design.double().cpu(), target.double().cpu(), driver="gelsd"
        ).solution
        new = KANLayer(
            self.n_in,
            self.n_out,
            basis,
            base=self.base,
            dtype=self.knots.dtype,
            generator=torch.Generator(),
        )
        new.to(self.knots.device)
        with torch.no_grad():
            new.knots.copy_(knots)
            new.coef.copy_(solution.to(self.coef))
            new.scale_spline.copy_(self.scale_spline)
            if self.base is not None:
                new.scale_base.copy_(self.scale_base)
        return new

    def _bspline(self) -> BSpline:
        if not isinstance(self.basis, BSpline):
            raise TypeError(f"grid operations need a BSpline basis, this layer has {self.basis}")
        return self.basis

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}, basis={self.basis}, base={self.base}"
