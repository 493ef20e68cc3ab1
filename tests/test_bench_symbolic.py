"""``kanphys bench symbolic``: sympy's judgement of exact recovery, the Feynman samples, and a
quick run of the command on one formula (its JSON and Markdown)."""

import json

import numpy as np
import pytest

from kanphys.bench import symbolic
from kanphys.cli import main


def test_equivalent_accepts_identities_and_rejects_near_misses():
    names = ("x", "y")
    assert symbolic.equivalent("sin(pi*x)*sin(pi*y)", "sin(pi*y)*sin(pi*x)", names)
    assert symbolic.equivalent(
        "(cos(pi*(x - y)) - cos(pi*(x + y)))/2", "sin(pi*x)*sin(pi*y)", names
    )
    assert symbolic.equivalent("exp(sin(pi*x))*exp(y**2)", "exp(sin(pi*x) + y**2)", names)
    assert not symbolic.equivalent("1.0000001*x*y", "x*y", names)
    assert not symbolic.equivalent("sin(3.14159*x)", "sin(pi*x)", names)


def test_feynman_table_has_twenty_formulas_and_samples_match_them():
    assert len(symbolic.FEYNMAN) >= 20
    assert len({f.name for f in symbolic.FEYNMAN}) == len(symbolic.FEYNMAN)
    assert all(1 <= len(f.variables) <= 4 for f in symbolic.FEYNMAN)
    formula = next(f for f in symbolic.FEYNMAN if f.name == "I.14.4")
    x, y = symbolic.samples(formula, n=50)
    assert x.shape == (50, 2) and ((x >= 1) & (x <= 5)).all()
    np.testing.assert_allclose(y, x[:, 0] * x[:, 1] ** 2 / 2, rtol=1e-15)


def test_quick_command_recovers_a_product_and_writes_its_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(symbolic, "FEYNMAN", (symbolic.FEYNMAN[2],))  # I.12.1: mu*Nn
    monkeypatch.setattr(symbolic, "_pykan_available", lambda: False)
    path = tmp_path / "symbolic.json"
    argv = ["bench", "symbolic", "--quick", "--only", "feynman", "--json", str(path)]
    assert main(argv) == 0
    results = json.loads(path.read_text())
    (record,) = results["feynman"]
    assert record["name"] == "I.12.1" and "pykan" not in record
    assert record["kanphys"]["exact"] is True
    assert record["kanphys"]["test_rmse"] < 1e-10
    table = path.with_suffix(".md").read_text()
    assert "kanphys 1/1 (100%)" in table and "pykan not installed" in table


def test_unknown_part_is_named(tmp_path, capsys):
    argv = ["bench", "symbolic", "--only", "nonsense", "--json", str(tmp_path / "s.json")]
    assert main(argv) == 2
    assert "nonsense" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["x*y + 1e-3", "x*y*1.001"])
def test_judge_needs_a_small_error_before_asking_sympy(bad):
    x = np.random.default_rng(0).uniform(1, 5, (20, 2))
    y = x[:, 0] * x[:, 1]
    error = float(np.sqrt(np.mean((eval(bad, {"x": x[:, 0], "y": x[:, 1]}) - y) ** 2)))
    assert not symbolic._judge(bad, "x*y", ("x", "y"), error, y)
    assert symbolic._judge("y*x", "x*y", ("x", "y"), 0.0, y)


def test_snapping_turns_a_close_float_into_its_exact_constant():
    names = ("q", "r")
    found = "0.0795774681508687*q/r**2"  # 1/(4 pi) to 4e-8
    assert not symbolic.equivalent(found, "q/(4*pi*r**2)", names)
    assert symbolic.equivalent(symbolic.snap_floats(found, names), "q/(4*pi*r**2)", names)
    assert symbolic._judge(found, "q/(4*pi*r**2)", names, 1e-9, np.ones(3))
    assert not symbolic._judge("0.0796*q/r**2", "q/(4*pi*r**2)", names, 1e-9, np.ones(3))


def test_snapping_reads_variable_names_as_symbols():
    names = ("gamma", "pr", "rho")
    found = symbolic.snap_floats("1.0000000001*sqrt(gamma)*sqrt(pr)/sqrt(rho)", names)
    assert symbolic.equivalent(found, "sqrt(gamma*pr/rho)", names, positive=True)


def test_snapping_does_not_invent_constants():
    assert str(symbolic.snap_floats("0.31830988618379069*pi*x", ("x",))) == "x"
    assert str(symbolic.snap_floats("0.4142135623730951*x", ("x",))) == "0.414213562373095*x"
    assert symbolic.equivalent("sqrt(a)*sqrt(b)", "sqrt(a*b)", ("a", "b"), positive=True)
    assert not symbolic.equivalent("sqrt(a)*sqrt(b)", "sqrt(a*b)", ("a", "b"))
