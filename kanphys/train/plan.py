"""How to train, as plain frozen dataclasses: optimiser stages, grid steps, sampling, weights."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = [
    "LBFGS",
    "LHS",
    "RAD",
    "RAR",
    "RBA",
    "Adam",
    "Causal",
    "Curriculum",
    "ExtendGrid",
    "GradNorm",
    "Halton",
    "Plan",
    "Sampler",
    "Sobol",
    "Uniform",
    "UpdateGrid",
    "apply_overrides",
]

SCHEDULES = ("constant", "exponential", "cosine")
ENGINES = ("auto", "autograd")


@dataclass(frozen=True)
class Adam:
    """Adam for ``steps`` steps; the learning rate moves from ``lr`` to ``lr_final``.

    Attributes:
        steps: number of optimiser steps.
        lr: initial learning rate.
        schedule: ``"constant"``, ``"exponential"`` (geometric decay) or ``"cosine"``.
        lr_final: learning rate reached at the last step (default ``lr / 10``).
        betas: Adam's moment coefficients.
    """

    steps: int = 1000
    lr: float = 1e-2
    schedule: str = "exponential"
    lr_final: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Adam: unknown schedule {self.schedule!r}; choose from {SCHEDULES}")
        if self.steps < 0 or self.lr <= 0:
            raise ValueError(f"Adam: need steps >= 0 and lr > 0, got {self.steps}, {self.lr}")

    def learning_rate(self, step: int) -> float:
        """The learning rate at ``step`` (0-based) of this stage: a pure function of the step."""
        final = self.lr / 10 if self.lr_final is None else self.lr_final
        progress = step / max(self.steps - 1, 1)
        if self.schedule == "exponential":
            return self.lr * (final / self.lr) ** progress
        if self.schedule == "cosine":
            return final + (self.lr - final) * 0.5 * (1 + math.cos(math.pi * progress))
        return self.lr


@dataclass(frozen=True)
class LBFGS:
    """L-BFGS with strong-Wolfe line search; one iteration per step.

    Attributes:
        steps: number of iterations.
        lr: step length scale (1 with a line search).
        history: number of stored curvature pairs.
        line_search: ``"strong_wolfe"`` or None.
        dtype: switch the model to this precision (``"float64"``) from this stage on.
        tolerance: stop when the gradient or the change falls below it.
    """

    steps: int = 500
    lr: float = 1.0
    history: int = 50
    line_search: str | None = "strong_wolfe"
    dtype: str | None = None
    tolerance: float = 1e-14

    def __post_init__(self) -> None:
        if self.dtype not in (None, "float32", "float64"):
            raise ValueError(
                f"LBFGS: dtype must be None, 'float32' or 'float64', got {self.dtype!r}"
            )


@dataclass(frozen=True)
class UpdateGrid:
    """Move every B-spline grid to the distribution of the current collocation points.

    The points are the interior collocation points in use, so after residual-based sampling
    (:class:`RAR`, :class:`RAD`) the grid follows the adaptive distribution.

    Attributes:
        grid_eps: weight of the uniform grid (None: the basis's own).
        carry: map the last Adam stage's moments onto the new coefficients, so that an Adam
            stage after this step continues with them (see ``kanphys.train.gridstate``).
            Off by default: restarting Adam measured better (docs/methods.md, evidence).
    """

    grid_eps: float | None = None
    carry: bool = False

    steps = 0


@dataclass(frozen=True)
class ExtendGrid:
    """Refine every B-spline grid to ``grid`` intervals, keeping the function.

    Attributes:
        grid: new number of intervals.
        carry: map the last Adam stage's moments onto the new coefficients (see
            :class:`UpdateGrid`; off by default).
    """

    grid: int
    carry: bool = False

    steps = 0


Stage = Adam | LBFGS | UpdateGrid | ExtendGrid


@dataclass(frozen=True)
class Sampler:
    """Collocation points: how many, drawn how, renewed how often.

    Attributes:
        method: ``"uniform"`` (pseudo-random), ``"sobol"``, ``"halton"`` or ``"lhs"``.
        interior: points for the equations.
        boundary: points per boundary condition.
        initial: points per initial condition.
            Other slices (such as a time domain's ``final``) get ``boundary`` points.
        resample_every: draw fresh points every this many Adam steps (0: never).
        points: per-condition point counts, overriding the above.
    """

    method: str = "sobol"
    interior: int = 2048
    boundary: int = 256
    initial: int = 256
    resample_every: int = 0
    points: Mapping[str, int] = field(default_factory=dict)

    def count(self, kind: str, name: str) -> int:
        """Number of points for a term of the given region kind."""
        if name in self.points:
            return self.points[name]
        counts = {"interior": self.interior, "boundary": self.boundary, "initial": self.initial}
        return counts.get(kind, self.boundary)


@dataclass(frozen=True)
class Sobol(Sampler):
    method: str = "sobol"


@dataclass(frozen=True)
class Halton(Sampler):
    method: str = "halton"


@dataclass(frozen=True)
class LHS(Sampler):
    method: str = "lhs"


@dataclass(frozen=True)
class Uniform(Sampler):
    method: str = "uniform"


@dataclass(frozen=True)
class RAR:
    """Residual-based adaptive refinement: add the points where the residual is largest.

    Every ``every`` Adam steps, ``candidates`` fresh points are drawn in the domain, the
    equations' residual norm is evaluated there and the ``add`` points with the largest one
    join the interior set (kept across resampling), up to ``max_points`` added in all.
    """

    every: int = 500
    candidates: int = 8192
    add: int = 64
    max_points: int = 4096

    def __post_init__(self) -> None:
        if min(self.every, self.candidates, self.add) < 1 or self.add > self.candidates:
            raise ValueError(f"RAR: need every, candidates, add >= 1 and add <= candidates: {self}")


@dataclass(frozen=True)
class RAD:
    """Residual-based adaptive distribution: resample the interior from the residual.

    Every ``every`` Adam steps the interior points are replaced by ``Sampler.interior`` points
    drawn without replacement from ``candidates`` fresh points with probability proportional
    to ``|r|^k / mean(|r|^k) + c`` (``r``: the equations' residual norm). Large ``c`` tends to
    uniform sampling, ``c = 0`` samples the residual alone.
    """

    every: int = 500
    candidates: int = 8192
    k: float = 1.0
    c: float = 1.0

    def __post_init__(self) -> None:
        if self.every < 1 or self.candidates < 1 or self.k < 0 or self.c < 0:
            raise ValueError(f"RAD: need every, candidates >= 1 and k, c >= 0: {self}")


@dataclass(frozen=True)
class GradNorm:
    """Loss balancing by gradient statistics, updated every ``every`` Adam steps.

    ``mode="max"`` is learning-rate annealing (Wang, Teng and Perdikaris 2021): each condition
    gets ``max|grad L_eq| / mean|grad L_i|`` (``L_eq``: the equations' loss, whose weight
    stays 1). ``mode="norm"`` gives every term ``sum_j |grad L_j| / |grad L_i|`` (2-norms).
    The new value is blended in: ``w <- alpha w + (1 - alpha) w_new``. Balancing weights
    multiply the plan's fixed ``weights``; they are frozen during L-BFGS stages.
    """

    every: int = 100
    alpha: float = 0.9
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "norm") or self.every < 1 or not 0 <= self.alpha < 1:
            raise ValueError(f"GradNorm: mode 'max' or 'norm', every >= 1, 0 <= alpha < 1: {self}")


@dataclass(frozen=True)
class RBA:
    """Pointwise residual-based attention (Anagnostopoulos et al. 2024).

    Each point of the listed terms (default: the equations) carries a weight
    ``lambda <- gamma lambda + eta |r| / max|r|`` updated after every Adam step (starting at
    1) and frozen during L-BFGS; the term's loss becomes ``mean((lambda r)^2)``. The weights
    restart at 1 when the term's points are redrawn.
    """

    gamma: float = 0.999
    eta: float = 0.01
    terms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(self.terms))
        if not 0 <= self.gamma < 1 or self.eta <= 0:
            raise ValueError(f"RBA: need 0 <= gamma < 1 and eta > 0: {self}")


@dataclass(frozen=True)
class Causal:
    """Causal weighting of the equations in time (Wang, Sankaran and Perdikaris 2024).

    The time interval is cut into ``chunks`` equal slices; slice ``i`` of the equations' loss
    is weighted by ``exp(-eps * sum_{j<i} L_j)`` (weights detached from the graph), so later
    times count only once earlier ones are resolved. Recomputed every Adam step; frozen at
    their last value during L-BFGS.
    """

    eps: float = 1.0
    chunks: int = 16

    def __post_init__(self) -> None:
        if self.eps < 0 or self.chunks < 1:
            raise ValueError(f"Causal: need eps >= 0 and chunks >= 1: {self}")


@dataclass(frozen=True)
class Curriculum:
    """Ramp a problem constant (``Problem.constants``) over the stages.

    Stage ``i`` of the plan uses ``values[i]``; stages past the end of ``values`` (or given
    None) use the problem's own value, so the last stages train the real problem.
    """

    constant: str
    values: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))

    def value(self, stage: int) -> float | None:
        """The constant's value in stage ``stage``, or None for the problem's own."""
        return self.values[stage] if stage < len(self.values) else None


@dataclass(frozen=True)
class Plan:
    """A training plan.

    Attributes:
        stages: optimiser stages and grid steps, run in order.
        sampler: collocation sampling.
        weights: loss weight per term name (default 1).
        checkpoint_every: write a checkpoint every this many steps (0: only at the end).
        engine: derivative engine: ``"auto"`` (closed-form for KANs, autograd otherwise) or
            ``"autograd"``.
        chunk_size: evaluate and backpropagate at most this many points of a term at a time,
            so memory stays bounded for large collocation sets.
        adaptive: residual-based sampling of the interior (:class:`RAR` or :class:`RAD`).
        balance: loss balancing between terms (:class:`GradNorm`).
        attention: pointwise residual-based attention weights (:class:`RBA`).
        causal: causal weighting in time of the equations (:class:`Causal`).
        curriculum: problem constants ramped over the stages (:class:`Curriculum`).
        regularize: an extra loss ``regularize.penalty(model, points)`` on the interior points,
            e.g. :class:`kanphys.symbolic.Sparsify` (L1 and entropy of the KAN's edges).
    """

    stages: tuple[Stage, ...] = (Adam(), LBFGS())
    sampler: Sampler = field(default_factory=Sobol)
    weights: Mapping[str, float] = field(default_factory=dict)
    checkpoint_every: int = 500
    engine: str = "auto"
    chunk_size: int = 16384
    adaptive: RAR | RAD | None = None
    balance: GradNorm | None = None
    attention: RBA | None = None
    causal: Causal | None = None
    curriculum: tuple[Curriculum, ...] = ()
    regularize: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "curriculum", tuple(self.curriculum))
        if self.engine not in ENGINES:
            raise ValueError(f"Plan: unknown engine {self.engine!r}; choose from {ENGINES}")
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "weights", dict(self.weights))
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise ValueError(
                    f"Plan: {stage!r} is not a stage (Adam, LBFGS, UpdateGrid, ExtendGrid)"
                )

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def quick(self) -> Plan:
        """A small version of this plan for smoke tests: few steps, few points."""

        def shrink(stage: Stage) -> Stage:
            if isinstance(stage, Adam):
                return replace(stage, steps=min(stage.steps, 30))
            if isinstance(stage, LBFGS):
                return replace(stage, steps=min(stage.steps, 5))
            return stage

        sampler = self.sampler
        small = {
            k: min(getattr(sampler, k), n)
            for k, n in (("interior", 256), ("boundary", 64), ("initial", 64))
        }
        points = {k: min(v, 64) for k, v in sampler.points.items()}
        sampler = replace(
            sampler, **small, points=points, resample_every=min(sampler.resample_every, 10)
        )
        return replace(
            self, stages=tuple(shrink(s) for s in self.stages), sampler=sampler, checkpoint_every=10
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (for ``config.json``)."""
        return {
            "stages": [{"type": type(s).__name__, **_fields(s)} for s in self.stages],
            "sampler": {"type": type(self.sampler).__name__, **_fields(self.sampler)},
            "weights": dict(self.weights),
            "checkpoint_every": self.checkpoint_every,
            "engine": self.engine,
            "chunk_size": self.chunk_size,
            **{
                name: None if option is None else {"type": type(option).__name__, **_fields(option)}
                for name in ("adaptive", "balance", "attention", "causal", "regularize")
                for option in [getattr(self, name)]
            },
            "curriculum": [_fields(c) for c in self.curriculum],
        }


def _fields(obj) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = dict(value) if isinstance(value, Mapping) else value
    return out


PLAN_SHORTCUTS = {
    "steps": "the first Adam stage's steps",
    "lr": "every Adam stage's learning rate",
    "lbfgs_steps": "every L-BFGS stage's steps",
    "checkpoint_every": "checkpoint cadence",
    "engine": "derivative engine (auto or autograd)",
    "method / interior / boundary / initial / resample_every": "the sampler",
    "weights.TERM": "the loss weight of a term",
    "adaptive.FIELD / balance.FIELD / attention.FIELD / causal.FIELD": "a method's setting",
    "model": "kan (default) or mlp: an MLP baseline of about the same size, same plan",
    "stages.I.FIELD": "any field of stage I",
}


def apply_overrides(plan: Plan, overrides: Mapping[str, Any]) -> Plan:
    """A plan with command-line overrides applied (see ``PLAN_SHORTCUTS`` for the keys).

    Raises:
        KeyError: for a key that is not a plan setting.
    """
    for key, value in overrides.items():
        plan = _apply(plan, key, value)
    return plan


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or float(value) < 0:
        raise ValueError(f"override {key}= needs a whole number >= 0, got {value!r}")
    return int(value)


def _apply(plan: Plan, key: str, value: Any) -> Plan:
    stages = list(plan.stages)
    if key == "steps":
        first = next((i for i, s in enumerate(stages) if isinstance(s, Adam)), None)
        if first is None:
            raise ValueError("override steps=: the plan has no Adam stage (use stages.I.steps=)")
        stages[first] = replace(stages[first], steps=_count(key, value))
    elif key in ("lr", "lbfgs_steps"):
        kind, name = (Adam, "lr") if key == "lr" else (LBFGS, "steps")
        stages = [replace(s, **{name: value}) if isinstance(s, kind) else s for s in stages]
    elif key in ("interior", "boundary", "initial", "resample_every"):
        return replace(plan, sampler=replace(plan.sampler, **{key: _count(key, value)}))
    elif key == "method":
        return replace(plan, sampler=replace(plan.sampler, method=str(value)))
    elif key == "checkpoint_every":
        return replace(plan, checkpoint_every=_count(key, value))
    elif key == "engine":
        return replace(plan, engine=str(value))
    elif key.startswith("weights."):
        return replace(plan, weights={**plan.weights, key.split(".", 1)[1]: float(value)})
    elif key.split(".")[0] in ("adaptive", "balance", "attention", "causal") and "." in key:
        name, setting = key.split(".", 1)
        option = getattr(plan, name)
        if option is None or setting not in {f.name for f in fields(option)}:
            raise KeyError(key)
        return replace(plan, **{name: replace(option, **{setting: value})})
    elif key.startswith("stages."):
        _, index, name = key.split(".", 2)
        if not index.isdigit() or int(index) >= len(stages):
            raise KeyError(key)
        stages[int(index)] = replace(stages[int(index)], **{name: value})
    else:
        raise KeyError(key)
    return replace(plan, stages=tuple(stages))
