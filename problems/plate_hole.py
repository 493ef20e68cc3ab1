"""Plate with a circular hole under uniaxial tension: plane-stress linear elasticity.

    div sigma = 0,   sigma = E/(1 - nu^2) [[e_xx + nu e_yy, (1 - nu) e_xy],
                                           [(1 - nu) e_xy, e_yy + nu e_xx]]
    e = (grad u + grad u^T) / 2,   E = 1, nu = 0.3

on the quarter plate [0, 1]^2 minus the disk of radius a = 0.2 at the origin (the rest follows
by symmetry). Conditions: symmetry on x = 0 (u_x = 0, sigma_xy = 0) and on y = 0 (u_y = 0,
sigma_xy = 0); the hole is traction-free; on x = 1 and y = 1 the tractions sigma n of Kirsch's
solution for a remote tension S = 1 along x.
Reference: Kirsch's closed-form stresses and displacements (kanphys.reference.Kirsch), so the
finite plate carries exactly Kirsch's field. Fields: the displacements ux, uy.
The symmetry values hold exactly (hard constraints u_x = x N_x, u_y = y N_y).
Model: KAN [2, 8, 8, 2], cubic B-splines on 5 intervals extended to 10 and 20; Adam, then
L-BFGS in float64 with 200 curvature pairs.
Published anchor: KINN strong form 6.3e-3 (relative L2). Target: rel_l2 of the displacement
<= 5e-3.
Expected: displacement error about 4e-3 in about 17 minutes on one CPU core.
Run: kanphys run problems/plate_hole.py
"""

import kanphys as kp
from kanphys import d
from kanphys.reference import Kirsch

KIRSCH = Kirsch(tension=1.0, radius=0.2, young=1.0, poisson=0.3)
NU = KIRSCH.poisson
C = KIRSCH.young / (1 - NU**2)
plate = kp.Rectangle((0.0, 0.0), (1.0, 1.0))
domain = plate - kp.Disk((0.0, 0.0), KIRSCH.radius, "hole")


def stress(s):
    """Plane-stress sigma_xx, sigma_yy, sigma_xy of the displacement fields."""
    exx, eyy = d(s.ux, "x"), d(s.uy, "y")
    shear = d(s.ux, "y") + d(s.uy, "x")
    return C * (exx + NU * eyy), C * (eyy + NU * exx), C * (1 - NU) / 2 * shear


def equilibrium_x(s):
    return C * (d(s.ux, "x", "x") + NU * d(s.uy, "x", "y")) + C * (1 - NU) / 2 * (
        d(s.ux, "y", "y") + d(s.uy, "x", "y")
    )


def equilibrium_y(s):
    return C * (d(s.uy, "y", "y") + NU * d(s.ux, "x", "y")) + C * (1 - NU) / 2 * (
        d(s.uy, "x", "x") + d(s.ux, "x", "y")
    )


def traction(component):
    """sigma(u) n - sigma_Kirsch n, one component (0: x, 1: y), on a boundary."""

    def residual(s):
        sxx, syy, sxy = stress(s)
        kxx, kyy, kxy = KIRSCH.stress(s.points[:, :1], s.points[:, 1:])
        nx, ny = s.normals[:, :1], s.normals[:, 1:]
        if component == 0:
            return (sxx - kxx) * nx + (sxy - kxy) * ny
        return (sxy - kxy) * nx + (syy - kyy) * ny

    return residual


def shear(s):
    return stress(s)[2]


def coordinate(index):
    """x (index 0) or y (1): zero on the symmetry line where that displacement vanishes."""
    return lambda p: p[:, index]


def exact(index):
    return lambda p: KIRSCH.displacement(p[:, 0], p[:, 1])[index]


problem = kp.Problem(
    "plate_hole",
    domain=domain,
    fields=["ux", "uy"],
    equations={"equilibrium_x": equilibrium_x, "equilibrium_y": equilibrium_y},
    conditions=[
        kp.Dirichlet("left_ux", on=domain.part("left"), field="ux", value=0.0),
        kp.Condition("left_shear", on=domain.part("left"), residual=shear),
        kp.Dirichlet("bottom_uy", on=domain.part("bottom"), field="uy", value=0.0),
        kp.Condition("bottom_shear", on=domain.part("bottom"), residual=shear),
        kp.Condition("hole_tx", on=domain.part("hole"), residual=traction(0)),
        kp.Condition("hole_ty", on=domain.part("hole"), residual=traction(1)),
        kp.Condition("right_tx", on=domain.part("right"), residual=traction(0)),
        kp.Condition("right_ty", on=domain.part("right"), residual=traction(1)),
        kp.Condition("top_tx", on=domain.part("top"), residual=traction(0)),
        kp.Condition("top_ty", on=domain.part("top"), residual=traction(1)),
    ],
    exact={"ux": exact(0), "uy": exact(1)},
    constraints=kp.Constraints(
        values=[kp.HardValue("ux", 0.0, coordinate(0)), kp.HardValue("uy", 0.0, coordinate(1))]
    ),
    description="plane-stress plate with a hole under tension (Kirsch), quarter model",
    units={
        "x": "m",
        "y": "m",
        "ux": "m",
        "uy": "m",
        "equilibrium_x": "Pa/m",
        "equilibrium_y": "Pa/m",
    },
)


def model(grid: int = 5, width: int = 8):
    return kp.KAN([2, width, width, 2], basis=kp.BSpline(grid=grid, order=3))


plan = kp.Plan(
    stages=[
        kp.Adam(steps=3000, lr=1e-2, lr_final=1e-3),
        kp.LBFGS(steps=500, dtype="float64", history=200),
        kp.ExtendGrid(grid=10),
        kp.LBFGS(steps=800, history=200),
        kp.ExtendGrid(grid=20),
        kp.LBFGS(steps=3000, history=200),
    ],
    sampler=kp.Sobol(interior=4096, boundary=256),
    weights={"left_ux": 10.0, "bottom_uy": 10.0},
)

if __name__ == "__main__":
    from kanphys.cli import main

    raise SystemExit(main(["run", __file__, *__import__("sys").argv[1:]]))
