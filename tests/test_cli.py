"""The three entry points as a user runs them."""
import importlib
import json

import pandas as pd
import pytest

from tests.helpers import ROOT, run_cli, tiny_dbof_flags


def _one_error_line(process) -> str:
    assert process.returncode == 1, process.stderr[-2000:]
    assert "Traceback" not in process.stderr
    lines = [line for line in process.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, process.stderr[-2000:]
    return lines[0]


def test_train_eval_inference_from_the_command_line(synthetic_data, tmp_path):
    run = tmp_path / "run"
    trained = run_cli("train.py", *tiny_dbof_flags(synthetic_data, run), "--max_steps=6", "--steps_per_epoch=3")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "final_loss" in trained.stdout
    # Written to a pipe: plain lines, no progress bar redrawn; none of TensorFlow's start-up log lines.
    assert "\r" not in trained.stdout and "\x1b[" not in trained.stdout
    assert [line for line in trained.stdout.splitlines() if line.startswith("3/3 - ")], trained.stdout
    assert not [line for line in trained.stderr.splitlines() if _tensorflow_noise(line)], trained.stderr[-3000:]
    # The same command again: the run is finished, said so, its results printed (not final_loss nan).
    again = run_cli("train.py", *tiny_dbof_flags(synthetic_data, run), "--max_steps=6", "--steps_per_epoch=3")
    assert again.returncode == 0 and "nothing to train" in again.stdout, again.stdout[-3000:]
    assert _row(again.stdout, "final_loss") == _row(trained.stdout, "final_loss") != "nan"

    # eval/inference take the features and label space from the run's config.json.
    evaluated = run_cli("eval.py", f"--train_dir={run}", f"--eval_data_pattern={synthetic_data.frame_validate}",
                        "--segment_labels")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert 0.0 <= json.loads((run / "eval.json").read_text())["segment_map_at_k"] <= 1.0

    csv = tmp_path / "submission.csv"
    inferred = run_cli("inference.py", f"--train_dir={run}", f"--input_data_pattern={synthetic_data.frame_test}",
                       "--segment_labels", "--top_k=50", f"--output_file={csv}")
    assert inferred.returncode == 0, inferred.stderr[-3000:]
    table = pd.read_csv(csv)
    assert len(table) == 1000 and table["Segments"].dropna().str.split().map(len).max() == 50


def _row(stdout: str, name: str) -> str:
    """The value of a `name  value` row of a printed table."""
    return next(line.split()[-1] for line in stdout.splitlines() if line.split()[:1] == [name])


def _tensorflow_noise(line: str) -> bool:
    """TensorFlow's C++ start-up log lines (absl format 'I0000 00:00:...', 'E0000 ...') and their preamble."""
    return line[:1] in "IWEF" and line[1:5].isdigit() or "absl::InitializeLog" in line


def test_help_lists_the_project_flags():
    shown = run_cli("train.py", "--help", timeout=120)   # absl's --help exits 1 after printing
    for flag in ("--train_data_pattern", "--eval_every_steps", "--[no]keep_best_checkpoint", "--[no]tf_verbose"):
        assert flag in shown.stdout, flag
    assert not [line for line in shown.stderr.splitlines() if _tensorflow_noise(line)], shown.stderr


def test_the_console_scripts_name_the_scripts_entry_functions():
    tomllib = pytest.importorskip("tomllib")   # Python >= 3.11
    with open(ROOT / "pyproject.toml", "rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    assert sorted(scripts) == ["yt8m-eval", "yt8m-inference", "yt8m-train"]
    for script in ("train", "eval", "inference"):   # each script and its command start the same function
        target = scripts[f"yt8m-{script}"]
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))
        assert f"startup.{function}()" in (ROOT / f"{script}.py").read_text(), script


def test_no_matching_files_is_one_line_and_exit_1(tmp_path):
    process = run_cli("train.py", f"--train_data_pattern={tmp_path}/nothing*.tfrecord", f"--train_dir={tmp_path}/r")
    assert "no files match --train_data_pattern" in _one_error_line(process)


def test_missing_checkpoint_is_one_line_and_exit_1(synthetic_data, tmp_path):
    process = run_cli("inference.py", f"--train_dir={tmp_path}/empty", f"--input_data_pattern={synthetic_data.frame_test}",
                      "--frame_features", "--segment_labels", f"--output_file={tmp_path}/s.csv")
    assert "no model.keras under --train_dir" in _one_error_line(process)
    assert not (tmp_path / "s.csv").exists()
