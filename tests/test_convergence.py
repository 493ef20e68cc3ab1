"""Every problem file's default plan reaches its documented accuracy (slow: pytest -m slow)."""

from pathlib import Path

import pytest

import kanphys as kp

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"

# Documented targets: the `Expected:` line of each problem file's docstring.
TARGETS = {"poisson2d.py": 1e-3, "heat1d.py": 1e-3}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_default_plan_reaches_the_documented_error(name, tmp_path):
    run = kp.run(PROBLEMS / name, kp.RunOptions(out=tmp_path / "run"))
    for field, error in run.metrics["rel_l2"].items():
        assert error <= TARGETS[name], f"{name}: rel_l2 of {field} is {error:.2e}"
