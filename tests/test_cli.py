"""`multitask-bert` as a tool: user errors are one `error:` line and exit status 2, no abbreviated options, one flag
style, a non-empty output folder is refused, and the folder `train` writes holds only what is published."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, embedded_data_slice
from multitask_bert.training import cli
from multitask_bert.training.cli.train import TRAIN_DEFAULTS

BIN = Path(sys.executable).parent
FAST = ["--max-steps", "2", "--per-device-train-batch-size", "8", "--disable-tqdm", "true", "--save-steps", "1"]


def run_cli(*argv: str, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cwd / "hf_home"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(BIN / "multitask-bert"), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        preexec_fn=None if umask is None else lambda: os.umask(umask),
    )


def assert_one_error_line(result: subprocess.CompletedProcess, command: str, pattern: str) -> str:
    """Exit status 2, no traceback, and the last stderr line is `multitask-bert COMMAND: error: ...` matching."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"multitask-bert {command}: error: "), result.stderr
    assert re.search(pattern, last), last
    return last


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return embedded_data_slice(tmp_path_factory.mktemp("small_data"), {"train": 16, "validation": 8, "test": 8})


@pytest.mark.parametrize(
    ("command", "argv", "unknown"),
    [
        ("train", ["--num-train-epoch", "1"], "--num-train-epoch 1"),  # abbreviation of --num-train-epochs
        ("evaluate", ["model", "--batch", "8"], "--batch 8"),
        ("predict", ["model", "--top", "2", "hi"], "--top"),
        ("export", ["model", "--onnx", "out", "--quant", "int8"], "--quant"),
        ("card", ["model", "--repo", "a/b"], "--repo"),
        ("push", ["model", "a/b", "--priv"], "--priv"),
    ],
)
def test_abbreviated_or_misspelt_options_are_refused_with_usage(tmp_path, command, argv, unknown):
    result = run_cli(command, *argv, cwd=tmp_path)
    assert_one_error_line(result, command, re.escape(unknown))
    assert result.stderr.startswith(f"usage: multitask-bert {command}")


def test_missing_data_folder_is_one_line(tmp_path):
    result = run_cli("train", "--data", str(tmp_path / "no_such_data"), "--output-dir", "out", cwd=tmp_path)
    assert_one_error_line(result, "train", re.escape(str(tmp_path / "no_such_data")))
    assert not (tmp_path / "out").exists()


def test_bad_data_names_file_and_line(tmp_path, tiny_backbone_dir):
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "seq.in").write_text("wake me at 7\nset a timer\n")
    (data / "seq.out").write_text("O O O B-TIME\nO O\n")
    (data / "label").write_text("a\nb\n")
    result = run_cli("train", "--data", str(tmp_path / "data"), "--backbone", str(tiny_backbone_dir), cwd=tmp_path)
    assert_one_error_line(result, "train", re.escape(f"{data / 'seq.out'}, line 2: 2 tags for 3 words"))


def test_a_bad_sts_file_or_weight_is_one_line_before_training(tmp_path, tiny_backbone_dir, small_data):
    sts = tmp_path / "sts.tsv"
    sts.write_text("genre\tsource\tscore\tsentence1\tsentence2\nx\ty\thigh\ta\tb\n", encoding="utf-8")
    common = ["--data", str(small_data), "--backbone", str(tiny_backbone_dir), "--output-dir", "out"]
    result = run_cli("train", *common, "--sts-benchmark", str(sts), cwd=tmp_path)
    assert_one_error_line(result, "train", re.escape(f"{sts}, line 2: the score 'high' is not a number"))
    result = run_cli("train", *common, "--embedding-preservation-weight", "-1", cwd=tmp_path)
    assert_one_error_line(result, "train", "`embedding_preservation_weight` must be >= 0, got -1.0")
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_evaluate_a_missing_folder_fails_at_once_and_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "no_such_model")
    started = time.monotonic()
    result = run_cli("evaluate", missing, cwd=tmp_path)
    assert time.monotonic() - started < 60  # no Hub retries (about 30 s before)
    assert_one_error_line(result, "evaluate", f"{re.escape(missing)}: no such folder, and not a Hub repo id")
    assert len(result.stderr.strip().splitlines()) == 1

    debug = run_cli("--debug", "evaluate", missing, cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_train_refuses_a_non_empty_output_folder(tmp_path, small_data, tiny_backbone_dir):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("mine")
    argv = ["train", "--data", str(small_data), "--backbone", str(tiny_backbone_dir), "--output-dir", str(output_dir)]
    result = run_cli(*argv, *FAST, cwd=tmp_path)
    assert_one_error_line(result, "train", f"{re.escape(str(output_dir))} is not empty.*--overwrite-output-dir")
    assert [path.name for path in output_dir.iterdir()] == ["notes.txt"]


def test_train_writes_a_clean_folder_with_the_usual_permissions(tmp_path, small_data, tiny_backbone_dir):
    """With --overwrite-output-dir it writes into a used folder; checkpoints (saved every step here) are gone at the
    end, and the files are readable by all under umask 022 (model.safetensors was 0600); no pin_memory warning."""
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("mine")
    argv = ["train", "--data", str(small_data), "--backbone", str(tiny_backbone_dir), "--output-dir", str(output_dir)]
    result = run_cli(*argv, *FAST, "--overwrite-output-dir", cwd=tmp_path, umask=0o022)
    assert result.returncode == 0, result.stderr
    assert "pin_memory" not in result.stderr
    names = {path.name for path in output_dir.iterdir()}
    assert "model.safetensors" in names and "eval_results.json" in names
    assert not any(name.startswith("checkpoint") for name in names), names
    for path in output_dir.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_every_subcommand_takes_both_flag_spellings_and_says_so(capsys):
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        help_text = capsys.readouterr().out
        assert cli.FLAG_STYLE.split(";")[0].split()[-1] in " ".join(help_text.split()), command
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", help_text)) - {"--help"}
        for option in options:
            other = "--" + (option[2:].replace("-", "_") if "-" in option[2:] else option[2:].replace("_", "-"))
            assert other in options, f"{command}: {option} without {other}"


def test_evaluate_help_is_about_evaluation(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Tasks to train" not in help_text and "--tasks" not in help_text
    assert help_text.count("(default: test)") == 1


def test_default_output_folders_are_ignored_by_git():
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert f"/{TRAIN_DEFAULTS['output_dir']}/" in ignored
    assert "/model-onnx/" in ignored  # README's export example
