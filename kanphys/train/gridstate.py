"""Carry Adam's moments over a grid update or extension.

A grid step refits every spline's coefficients by least squares, a linear map ``c' = A c`` per
edge input. Adam's moments are statistics of the gradient, which transforms the other way:
the loss is unchanged on the old spline space, ``L(c) = L'(A c)``, so ``A^T g' = g`` and the
gradient in the new coefficients is ``g' = G g`` with ``G = pinv(A^T)`` (on a twice finer
grid each basis function is about half as wide, and so is its gradient). The first moment is
mapped as ``m' = G m``, the second as a root mean square, ``v' = (G sqrt(v))^2``. Parameters
whose shape did not change (the scales, unknown parameters) keep their moments; the step
count is kept, so the bias correction does not restart.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["carry_adam_state", "coefficient_map", "gradient_map"]


def coefficient_map(old: nn.Module, new: nn.Module, per_interval: int = 4) -> Tensor:
    """The least-squares map ``(n_in, size_new, size_old)`` from a KAN layer's coefficients to
    those of its refitted copy ``new``, on samples spanning the new grid range."""
    interior = new.interior_knots()
    lo, hi = interior[:, 0], interior[:, -1]
    n = per_interval * new.coef.shape[1]
    unit = torch.linspace(0, 1, n, dtype=old.knots.dtype, device=old.knots.device)
    samples = (lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * unit).T.contiguous()
    b_old = old.basis.evaluate(samples, old.knots).permute(1, 0, 2).double().cpu()
    b_new = new.basis.evaluate(samples, new.knots).permute(1, 0, 2).double().cpu()
    return torch.linalg.lstsq(b_new, b_old, driver="gelsd").solution


def gradient_map(old: nn.Module, new: nn.Module) -> Tensor:
    """``G = pinv(A^T)`` ``(n_in, size_new, size_old)``: gradients by the old coefficients to
    gradients by the new ones (``A``: :func:`coefficient_map`)."""
    return torch.linalg.pinv(coefficient_map(old, new).transpose(1, 2))


def carry_adam_state(old: nn.Module, new: nn.Module, state: dict) -> dict:
    """An Adam ``state_dict`` for ``new``'s parameters from the one of ``old``'s.

    Args:
        old: the model before the grid step.
        new: the model after it (same parameter names; spline coefficients resized).
        state: ``torch.optim.Adam(old.parameters()).state_dict()``.
    """
    old_params = dict(old.named_parameters())
    layers = {name: module for name, module in old.named_modules()}
    new_layers = {name: module for name, module in new.named_modules()}
    carried = {}
    for index, (name, param) in enumerate(new.named_parameters()):
        old_index = list(old_params).index(name) if name in old_params else None
        moments = state["state"].get(old_index)
        if moments is None:
            continue
        if old_params[name].shape == param.shape:
            carried[index] = {k: v.clone() for k, v in moments.items()}
        elif name.endswith(".coef"):
            owner = name.removesuffix(".coef")
            mapping = gradient_map(layers[owner], new_layers[owner]).to(param)
            mean = mapping @ moments["exp_avg"].to(param)
            rms = mapping @ moments["exp_avg_sq"].to(param).clamp(min=0).sqrt()
            carried[index] = {
                "step": moments["step"].clone(),
                "exp_avg": mean,
                "exp_avg_sq": rms.square(),
            }
    groups = [dict(group) for group in state["param_groups"]]
    groups[0]["params"] = list(range(len(list(new.parameters()))))
    return {"state": carried, "param_groups": groups[:1]}
