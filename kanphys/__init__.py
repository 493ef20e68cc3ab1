"""kanphys: physics-informed Kolmogorov-Arnold networks.

Declare a PDE problem (:class:`Problem` on a :class:`~kanphys.geometry.Domain`), train a
:class:`KAN` surrogate on its residuals (:class:`Plan`, :class:`Trainer`, ``kanphys run``), and
read the run directory back (:class:`Run`).
"""

__version__ = "0.1.0"

from kanphys.constraints import Constraints, HardValue
from kanphys.derivatives import d, div, dn, dt, grad, lap
from kanphys.geometry import (
    Box,
    Difference,
    Disk,
    Domain,
    Intersection,
    Interval,
    MeshDomain,
    Rectangle,
    Region,
    TimeDomain,
    TimeInterval,
    Union,
)
from kanphys.io.run import Run
from kanphys.kan import KAN, MLP, BSpline, Chebyshev, KANLayer
from kanphys.model import Surrogate
from kanphys.problem import (
    Condition,
    Data,
    Dirichlet,
    Initial,
    InitialRate,
    Neumann,
    Parameter,
    Periodic,
    Problem,
    ProblemError,
    Robin,
)
from kanphys.runner import RunOptions, load_problem_file, run, solve
from kanphys.symbolic.sparsify import Sparsify
from kanphys.train.loss import TrainingError
from kanphys.train.plan import (
    LBFGS,
    LHS,
    RAD,
    RAR,
    RBA,
    Adam,
    Causal,
    Curriculum,
    ExtendGrid,
    GradNorm,
    Halton,
    Plan,
    Sampler,
    Sobol,
    Uniform,
    UpdateGrid,
)
from kanphys.train.trainer import Preempted, Trainer

__all__ = [
    "KAN",
    "LBFGS",
    "LHS",
    "MLP",
    "RAD",
    "RAR",
    "RBA",
    "Adam",
    "BSpline",
    "Box",
    "Causal",
    "Chebyshev",
    "Condition",
    "Constraints",
    "Curriculum",
    "Data",
    "Difference",
    "Dirichlet",
    "Disk",
    "Domain",
    "ExtendGrid",
    "GradNorm",
    "Halton",
    "HardValue",
    "Initial",
    "InitialRate",
    "Intersection",
    "Interval",
    "KANLayer",
    "MeshDomain",
    "Neumann",
    "Parameter",
    "Periodic",
    "Plan",
    "Preempted",
    "Problem",
    "ProblemError",
    "Rectangle",
    "Region",
    "Robin",
    "Run",
    "RunOptions",
    "Sampler",
    "Sobol",
    "Sparsify",
    "Surrogate",
    "TimeDomain",
    "TimeInterval",
    "Trainer",
    "TrainingError",
    "Uniform",
    "Union",
    "UpdateGrid",
    "__version__",
    "d",
    "div",
    "dn",
    "dt",
    "grad",
    "lap",
    "load_problem_file",
    "run",
    "solve",
]
