"""The ``kanphys`` command: run (in-process and as ``python -m kanphys``), overrides, refusing a
non-empty output directory, preemption by SIGTERM and resume, info, and exit codes."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import kanphys as kp
from kanphys.cli import EXIT_PREEMPTED, main

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
CHEAP = ["lbfgs_steps=1", "interior=32", "boundary=16"]  # no assumption on the stage layout


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_python_m_kanphys_run_writes_a_run_directory(tmp_path):
    command = [
        sys.executable,
        "-m",
        "kanphys",
        "run",
        str(PROBLEMS_DIR / "poisson2d.py"),
        *CHEAP,
        "--quick",
        "--out",
        "run",
        "--resolution",
        "11",
        "--no-progress",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing else in the cwd
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    stages = json.loads((tmp_path / "run" / "config.json").read_text())["plan"]["stages"]
    steps = sum(s["steps"] for s in stages if s["type"] in ("Adam", "LBFGS"))
    assert metrics["problem"] == "poisson2d"
    assert metrics["steps"] == steps
    assert metrics["n_eval_points"] == 121
    assert f"rel_l2 {metrics['rel_l2']}" in done.stdout and f"steps {steps}" in done.stdout


def test_overrides_reach_the_plan_and_the_model(problem_file, tmp_path):
    out = tmp_path / "run"
    overrides = ["steps=3", "lbfgs_steps=1", "grid=7", "width=2", "weights.ends=5"]
    assert main(["run", str(problem_file), *overrides, "--out", str(out), "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    adam, lbfgs = config["plan"]["stages"]
    assert (adam["type"], adam["steps"], lbfgs["type"], lbfgs["steps"]) == ("Adam", 3, "LBFGS", 1)
    assert config["plan"]["weights"] == {"ends": 5.0}
    assert config["model"]["net"]["basis"]["grid"] == 7
    assert config["model"]["net"]["widths"] == [1, 2, 1]
    run = kp.Run.load(out)
    assert run.metrics["steps"] == 4
    net = run.model().net
    assert (net.basis.grid, net.widths) == (7, [1, 2, 1])
    history = run.history()
    assert history["step"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(
        history["loss"], history["loss_poisson"] + 5 * history["loss_ends"], rtol=1e-6
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_option_sets_the_precision_of_the_run(dtype, problem_file, tmp_path):
    out = tmp_path / "run"
    assert (
        main(["run", str(problem_file), "--dtype", dtype, "--out", str(out), "--no-progress"]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dtype"] == dtype
    assert metrics["steps"] == 15
    assert torch.load(out / "checkpoint.pt", weights_only=True)["dtype"] == dtype
    assert kp.Run.load(out).model().dtype == getattr(torch, dtype)


def test_unknown_override_exits_with_code_2_naming_it(problem_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(problem_file), "stepz=3", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "unknown override 'stepz'" in error
    assert "lbfgs_steps" in error  # it lists what is known
    assert not out.exists()


def test_override_of_the_wrong_type_exits_with_code_2(problem_file, tmp_path, capsys):
    assert main(["run", str(problem_file), "steps=many", "--out", str(tmp_path / "run")]) == 2
    assert "many" in capsys.readouterr().err


def test_out_pointing_to_a_non_empty_directory_is_refused_and_left_untouched(
    problem_file, tmp_path, capsys
):
    out = tmp_path / "previous"
    out.mkdir()
    (out / "notes.txt").write_text("results of last week\n")
    (out / "metrics.json").write_text('{"rel_l2": {"u": 0.001}}\n')
    before = files_of(out)
    assert main(["run", str(problem_file), "--out", str(out), "--no-progress"]) == 2
    assert f"{out} exists and is not empty" in capsys.readouterr().err
    assert files_of(out) == before


def test_out_pointing_to_an_empty_directory_is_used(problem_file, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["run", str(problem_file), "steps=1", "lbfgs_steps=0", "--out", str(out)]) == 0
    assert (out / "metrics.json").is_file()


def test_missing_problem_file_exits_with_code_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nowhere.py"), "--out", str(tmp_path / "run")]) == 2
    assert "nowhere.py" in capsys.readouterr().err


def test_resume_of_a_directory_without_a_run_exits_with_code_2(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a kanphys run directory" in capsys.readouterr().err


def test_info_prints_versions_and_threads(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert torch.__version__ in out
    assert f"threads    {torch.get_num_threads()} " in out
    assert kp.__version__ in out


def wait_for(condition, process, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_sigterm_preempts_a_run_and_resume_continues_it(problem_file, tmp_path, capsys):
    """SIGTERM while step 1 runs: exit 75 with a checkpoint; ``resume`` finishes the run, whose
    history continues the step count and equals an uninterrupted run's."""
    hold, waiting = problem_file.with_name("hold"), problem_file.with_name("waiting")
    hold.touch()  # the problem's equation waits while this exists (see conftest)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "kanphys", "run", str(problem_file), "--out", str(out)]
    child = subprocess.Popen(
        [*command, "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(waiting.exists, child)  # training is inside step 1, signal handlers are set
        child.send_signal(signal.SIGTERM)
        hold.unlink()
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == EXIT_PREEMPTED, stderr
    assert "kanphys resume" in stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["position"]["global_step"] == 1
    assert not (out / "metrics.json").exists()

    assert main(["resume", str(out), "--no-progress"]) == 0
    resumed = kp.Run.load(out)
    assert resumed.metrics["steps"] == 15
    history = resumed.history()
    assert history["step"].tolist() == list(range(1, 16))
    assert history["stage"].tolist() == [0] * 12 + [1] * 3

    reference_dir = tmp_path / "reference"
    assert main(["run", str(problem_file), "--out", str(reference_dir), "--no-progress"]) == 0
    reference = kp.Run.load(reference_dir).history()
    for column in ("loss", "loss_poisson", "loss_ends", "lr"):
        np.testing.assert_array_equal(history[column], reference[column], err_msg=column)

    # resuming a finished run changes nothing
    assert main(["resume", str(out), "--no-progress"]) == 0
    assert kp.Run.load(out).history()["step"].tolist() == list(range(1, 16))
    capsys.readouterr()


# ------------------------------------------------------------------------ known rough edges
def test_overrides_after_options_are_accepted(problem_file, tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(problem_file), "--out", str(out), "--no-progress", "steps=1"]) == 0


def test_override_of_a_missing_stage_exits_with_code_2(problem_file, tmp_path):
    assert main(["run", str(problem_file), "stages.9.steps=1", "--out", str(tmp_path / "r")]) == 2


def test_malformed_override_exits_with_code_2(problem_file, tmp_path):
    assert main(["run", str(problem_file), "steps", "--out", str(tmp_path / "run")]) == 2
