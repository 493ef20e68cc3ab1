"""``kanphys bench derivatives`` on a tiny shape: the records the issue asks for, the table."""

import json

import pytest

from kanphys.bench.derivatives import markdown_table, run_benchmark
from kanphys.bench.timing import round_robin
from kanphys.cli import main

KEYS = {"impl", "widths", "grid", "dtype", "n_points", "op", "median_ms", "peak_mb", "n_params"}


@pytest.fixture(scope="module")
def records():
    return run_benchmark(
        shapes=(((2, 3, 1), 3),),
        dtypes=("float64",),
        n_points=64,
        repeats=1,
        impls=("kanphys-fast", "kanphys-autograd", "mlp"),
        clock="cpu",
    )


def test_every_implementation_and_operation_is_timed(records):
    seen = {(r.impl, r.op) for r in records}
    impls = ("kanphys-fast", "kanphys-autograd", "mlp")
    assert seen == {(i, o) for i in impls for o in ("fwd_bwd", "laplacian_step")}
    for r in records:
        assert r.median_ms > 0 and r.peak_mb >= 0 and r.n_params > 0
        assert r.n_points == 64 and r.dtype == "float64"
    fast = next(r for r in records if r.impl == "kanphys-fast")
    mlp = next(r for r in records if r.impl == "mlp")
    assert fast.widths == [2, 3, 1] and fast.grid == 3 and mlp.grid is None
    assert abs(mlp.n_params - fast.n_params) <= 2  # a [2, w, 1] MLP has 4 w + 1 parameters


def test_markdown_table_has_one_row_per_shape_dtype_and_op(records):
    table = markdown_table(records).splitlines()
    assert len(table) == 2 + 2
    assert "autograd/fast" in table[0]


def test_clock_must_be_known():
    with pytest.raises(ValueError, match="clock"):
        round_robin({"a": lambda: None}, clock="sundial")


def test_command_writes_json_records_and_table(tmp_path, monkeypatch):
    import kanphys.bench.derivatives as bench

    monkeypatch.setattr(bench, "SHAPES", (((2, 3, 1), 3),))
    path = tmp_path / "d.json"
    argv = ["bench", "derivatives", "--quick", "--points", "32", "--repeats", "1", "--no-memory"]
    assert main([*argv, "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data and all(set(r) >= KEYS for r in data)
    assert "cpu time" in path.with_suffix(".md").read_text()
