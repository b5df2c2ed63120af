"""Faults and scale-out of `multitask-bert train`, on CPU with a tiny backbone: a run killed by SIGKILL and resumed from
its last checkpoint ends bit-identical to an uninterrupted run; two processes (torchrun, accelerate launch) match one
process at the same global batch; the seed fixes everything, the heads' initialisation included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from multitask_bert.training import cli
from multitask_bert.training.data import default_data_dir, split_words

BIN = Path(sys.executable).parent  # where this environment's `multitask-bert` console script is
SPLIT_SIZES = {"train": 48, "validation": 16, "test": 16}
MAX_STEPS = 40
TRAIN_WORDS = 8
SAVE_STEPS = 5
TIMING_KEYS = {"runtime", "samples_per_second", "steps_per_second"}


@pytest.fixture(scope="module")
def small_data_dir(tmp_path_factory) -> Path:
    """
    The first examples of each split of the embedded data; in train only fully annotated ones of 8 words, so every
    batch of 4 has as many tagged words as any other and 2 processes' mean NER losses average to 1 process's mean.
    """
    folder = tmp_path_factory.mktemp("small_data")
    for split, size in SPLIT_SIZES.items():
        lines = (default_data_dir() / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        if split == "train":
            records = [json.loads(line) for line in lines]
            lines = [
                line
                for line, record in zip(lines, records, strict=True)
                if record.get("intent")
                and record.get("entities") is not None
                and len(split_words(record["text"])) == TRAIN_WORDS
            ]
        (folder / f"{split}.jsonl").write_text("".join(lines[:size]), encoding="utf-8")
    return folder


def train_argv(backbone: Path, data: Path, output_dir: Path, *overrides: str) -> list[str]:
    """The arguments of every run here (later `overrides` win): 40 steps of 8 examples, a checkpoint every 5, no
    dropout in the heads (the tiny backbone has none) and no CRF (its sequence loss, tens of nats, sums in another order
    over 2 processes: 1e-4 apart) so that runs over different process counts compare closely."""
    return [
        "train",
        *("--backbone", str(backbone), "--data", str(data), "--output_dir", str(output_dir)),
        *("--max_steps", str(MAX_STEPS), "--per_device_train_batch_size", "8", "--learning_rate", "1e-3"),
        *("--save_strategy", "steps", "--save_steps", str(SAVE_STEPS), "--save_total_limit", "100"),
        *("--eval_strategy", "no", "--classifier_dropout", "0", "--logging_steps", "5", "--seed", "7"),
        *("--use_cpu", "--disable_tqdm", "true", "--log_level", "info", "--use_crf", "false"),
        *overrides,
    ]


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "OMP_NUM_THREADS": "1",  # 2 cores: one thread per process
        "TOKENIZERS_PARALLELISM": "false",
    }


def run(command: list[str], tmp_path: Path) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env(tmp_path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def results_without_timings(output_dir: Path) -> dict[str, dict[str, float]]:
    results = json.loads((output_dir / "eval_results.json").read_text())
    return {split: {k: v for k, v in metrics.items() if k not in TIMING_KEYS} for split, metrics in results.items()}


def training_losses(output_dir: Path) -> list[float]:
    """The logged training losses, as the model card inputs keep them."""
    log_history = json.loads((output_dir / "model_card_inputs.json").read_text())["log_history"]
    return [entry["loss"] for entry in log_history if "loss" in entry]


def assert_same_weights(found: Path, expected: Path) -> None:
    found_weights, expected_weights = load_file(found), load_file(expected)
    assert found_weights.keys() == expected_weights.keys()
    for name, value in expected_weights.items():
        assert torch.equal(found_weights[name], value), f"{name} differs"


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory, tiny_backbone_dir, small_data_dir) -> Path:
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    output_dir = tmp_path / "out"
    argv = train_argv(tiny_backbone_dir, small_data_dir, output_dir, "--keep_checkpoints", "true")
    log = run([str(BIN / "multitask-bert"), *argv], tmp_path)
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in log
    return output_dir


def test_a_killed_run_resumes_to_the_uninterrupted_result(
    uninterrupted_run, tiny_backbone_dir, small_data_dir, tmp_path
):
    output_dir = tmp_path / "out"
    command = [str(BIN / "multitask-bert"), *train_argv(tiny_backbone_dir, small_data_dir, output_dir)]
    checkpoints = output_dir / "checkpoints"
    first_checkpoint = checkpoints / f"checkpoint-{SAVE_STEPS}" / "trainer_state.json"
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=cli_env(tmp_path), cwd=tmp_path)
        deadline = time.monotonic() + 240
        while not first_checkpoint.is_file():
            assert process.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
    # The trainer writes trainer_state.json last, so a checkpoint that has one is complete.
    complete = sorted(
        int(state.parent.name.split("-")[1]) for state in checkpoints.glob("checkpoint-*/trainer_state.json")
    )
    assert complete[-1] < MAX_STEPS, f"the run got to step {complete[-1]} of {MAX_STEPS} before the kill"
    assert not (output_dir / "model.safetensors").exists() and not (output_dir / "eval_results.json").exists()
    last_checkpoint = checkpoints / f"checkpoint-{complete[-1]}"
    # Determinism: another process, same seed and data, bit-identical weights at the same step.
    assert_same_weights(
        last_checkpoint / "model.safetensors",
        uninterrupted_run / "checkpoints" / last_checkpoint.name / "model.safetensors",
    )

    run([*command, "--resume_from_checkpoint", str(last_checkpoint)], tmp_path)
    assert not checkpoints.exists(), "a finished run removes its checkpoints unless --keep-checkpoints"
    assert_same_weights(output_dir / "model.safetensors", uninterrupted_run / "model.safetensors")
    assert results_without_timings(output_dir) == results_without_timings(uninterrupted_run)


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--no-python"],
    # On CPU, `--multi_gpu` is accelerate's multi-process (torch.distributed, gloo) launcher; `--use_cpu` keeps the
    # Trainer off GPUs. (`accelerate launch --cpu` starts a single process.)
    "accelerate": [
        *(sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"),
        *("--num_machines", "1"),
        *("--mixed_precision", "no", "--dynamo_backend", "no", "--no_python"),
    ],
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_two_processes_match_one_at_the_same_global_batch(
    uninterrupted_run, tiny_backbone_dir, small_data_dir, tmp_path, launcher
):
    output_dir = tmp_path / "out"
    halves = ("--per_device_train_batch_size", "4", "--save_strategy", "no")
    command = [*LAUNCHERS[launcher], str(BIN / "multitask-bert")]
    log = run([*command, *train_argv(tiny_backbone_dir, small_data_dir, output_dir, *halves)], tmp_path)
    assert "Instantaneous batch size per device = 4" in log
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in log
    # The first logged loss (mean of steps 1-5) shows both runs train on the same examples per step ...
    curve, expected_curve = training_losses(output_dir), training_losses(uninterrupted_run)
    assert len(curve) == len(expected_curve) == MAX_STEPS // 5
    assert curve[0] == pytest.approx(expected_curve[0], rel=1e-4)
    # ... after which rounding differences (2 gradients summed instead of 1 batch) grow through Adam, which moves
    # even near-zero gradient components by about the learning rate: losses then agree to about 1%, not bitwise.
    assert curve == pytest.approx(expected_curve, rel=2e-2)
    distributed, single = results_without_timings(output_dir), results_without_timings(uninterrupted_run)
    assert distributed.keys() == single.keys() == {"validation", "test"}
    for split, expected in single.items():
        for name in ("loss", "loss_intent", "loss_ner"):
            assert distributed[split][name] == pytest.approx(expected[name], rel=2e-2), (split, name)


def test_the_seed_fixes_the_initial_heads(tiny_backbone_dir, small_data_dir, tmp_path, capsys):
    """With learning rates 0 the saved heads are the initial ones: equal for equal seeds, different otherwise."""

    def initial_heads(seed: int) -> dict[str, torch.Tensor]:
        output_dir = tmp_path / f"seed-{seed}-{len(list(tmp_path.iterdir()))}"
        frozen = ("--max_steps", "1", "--learning_rate", "0", "--head_learning_rate", "0", "--seed", str(seed))
        assert (
            cli.main(train_argv(tiny_backbone_dir, small_data_dir, output_dir, *frozen, "--save_strategy", "no")) == 0
        )
        capsys.readouterr()
        return {name: value for name, value in load_file(output_dir / "model.safetensors").items() if "heads" in name}

    first, again, other = initial_heads(1), initial_heads(1), initial_heads(2)
    assert first.keys() == {"heads.intent.weight", "heads.intent.bias", "heads.ner.weight", "heads.ner.bias"}
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not torch.equal(first["heads.intent.weight"], other["heads.intent.weight"])
