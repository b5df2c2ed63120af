"""A transformers user's habits just work (issue 25): `--debug` after the subcommand, `--do_train`/`--do_eval`/
`--do_predict`, `--report_to` loggers and where their logs go, `--push_to_hub` at the end of `train`,
`--model_name_or_path` given a plain encoder, boolean options with values, `export MODEL OUT_DIR`, and progress bars
that the usual switches silence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_push import hub_env
from transformers.debug_utils import DebugOption
from transformers.utils import logging as transformers_logging

from conftest import embedded_data_slice, tiny_model
from hub_server import HubTestServer
from multitask_bert.training import cli
from multitask_bert.training.cli import export as export_command
from multitask_bert.training.cli import train as train_command
from multitask_bert.training.onnx.quantization import compare_models
from multitask_bert.training.sts_benchmark import sts_benchmark_spearman

COMMAND = str(Path(sys.executable).parent / "multitask-bert")
FAST = ["--max-steps", "2", "--per-device-train-batch-size", "8", "--disable-tqdm", "true", "--save-strategy", "no"]
# Stands in for tensorboardX where TensorBoard is not installed: transformers' TensorBoardCallback falls back to it.
FAKE_TENSORBOARDX = """
from pathlib import Path


class SummaryWriter:
    def __init__(self, log_dir=None, **kwargs):
        self.events = Path(log_dir) / "events.out.tfevents.fake"
        self.events.parent.mkdir(parents=True, exist_ok=True)
        self.events.write_text("")

    def add_scalar(self, tag, value, step=None):
        with self.events.open("a") as events:
            events.write(f"{tag} {value} {step}\\n")

    def add_text(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass
"""


@pytest.fixture
def hub():
    with HubTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return embedded_data_slice(tmp_path_factory.mktemp("small_data"), {"train": 16, "validation": 8, "test": 8})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("habits") / "model"
    tiny_model().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


# --debug


def test_debug_shows_the_traceback_before_or_after_the_subcommand(tmp_path, capsys):
    missing = str(tmp_path / "no_such_data")
    assert cli.main(["train", "--data", missing]) == 2
    assert last_error(capsys).startswith("multitask-bert train: error: ")
    for argv in (["--debug", "train"], ["train", "--debug"]):
        with pytest.raises(cli.USER_ERRORS):
            cli.main([*argv, "--data", missing])
    with pytest.raises(cli.USER_ERRORS):
        cli.main(["train", "--data", missing, "--debug"])


def test_trainers_own_debug_option_still_reaches_training_arguments(tmp_path, monkeypatch):
    seen = []

    def stop_after_parsing(training_args, output_dir):
        seen.append(training_args)
        raise ValueError("stop")

    monkeypatch.setattr(train_command, "take_over_hub_push", stop_after_parsing)
    argv = ["train", "--output-dir", str(tmp_path / "out"), "--debug", "underflow_overflow"]
    assert cli.main(argv) == 2  # transformers' feature, not the traceback switch
    with pytest.raises(ValueError, match="stop"):
        cli.main([*argv, "--debug"])  # both
    assert [args.debug for args in seen] == [[DebugOption.UNDERFLOW_OVERFLOW]] * 2


# --do_train, --do_eval, --do_predict; --model_name_or_path with a plain encoder


def test_do_train_false_is_refused(tmp_path, capsys):
    assert cli.main(["train", "--do_train", "false", "--output-dir", str(tmp_path / "out")]) == 2
    assert "--do_train false: `train` always trains" in last_error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_plain_encoder_given_as_model_name_or_path_is_the_backbone_and_do_eval_do_predict_choose_the_scores(
    tmp_path, tiny_backbone_dir, small_data, caplog
):
    """As run_ner.py takes `--model_name_or_path bert-base-uncased`: a new model on that encoder (here with
    `--do_eval false`: no evaluation during or after training); the model it writes then continues through the same
    flag (with `--do_predict false`: validation scores only)."""
    trained = tmp_path / "trained"
    common = ["--data", str(small_data), *FAST]
    argv = ["train", "--model_name_or_path", str(tiny_backbone_dir), "--output-dir", str(trained), "--do_eval", "false"]
    with caplog.at_level("INFO"):
        assert cli.main([*argv, *common]) == 0
    assert f"{tiny_backbone_dir} is not a multitask-bert model: training a new model on it" in caplog.text
    config = json.loads((trained / "config.json").read_text())
    assert config["model_type"] == "multitask_bert" and config["encoder"]["hidden_size"] == 32
    assert set(json.loads((trained / "eval_results.json").read_text())) == {"test"}
    log_history = json.loads((trained / "model_card_inputs.json").read_text())["log_history"]
    assert not any(key.startswith(("eval_", "validation_")) for entry in log_history for key in entry)

    caplog.clear()
    continued = tmp_path / "continued"
    argv = ["train", "--model-name-or-path", str(trained), "--output-dir", str(continued), "--do-predict", "false"]
    with caplog.at_level("INFO"):
        assert cli.main([*argv, *common]) == 0
    assert "is not a multitask-bert model" not in caplog.text
    assert set(json.loads((continued / "eval_results.json").read_text())) == {"validation"}
    assert transformers_logging.is_progress_bar_enabled()  # `--disable-tqdm true` switched them off for its run only


def test_other_mistakes_in_model_name_or_path_are_one_line(tmp_path, tiny_backbone_dir, capsys):
    (tmp_path / "empty").mkdir()
    for folder, extra, message in (
        (tmp_path / "empty", [], "has no config.json: it is neither a multitask-bert model nor an encoder"),
        (tiny_backbone_dir, ["--backbone", "other/encoder"], "is a plain encoder, not a multitask-bert model to"),
    ):
        argv = ["train", "--model_name_or_path", str(folder), *extra, "--output-dir", str(tmp_path / "out")]
        assert cli.main(argv) == 2
        assert message in last_error(capsys)


# --report_to


@pytest.mark.parametrize(
    ("logger", "modules"), [("tensorboard", ["tensorboard", "tensorboardX"]), ("wandb", ["wandb"])]
)
def test_a_missing_logger_package_is_one_line_naming_what_to_install(tmp_path, monkeypatch, capsys, logger, modules):
    for module in modules:  # transformers finds them with importlib.util.find_spec, which answers None for these
        monkeypatch.setitem(sys.modules, module, None)
    assert cli.main(["train", "--report_to", logger, "--output-dir", str(tmp_path / "out")]) == 2
    assert last_error(capsys) == (
        f"multitask-bert train: error: `report_to` {logger} needs the {logger} package: `pip install {logger}`"
        + (" (or `pip install 'multitask-bert[tensorboard]'`)." if logger == "tensorboard" else ".")
    )


# --push_to_hub, with TensorBoard logs; push --include-logs


def test_push_to_hub_publishes_the_finished_folder_with_its_card_and_logs(hub, tmp_path, tiny_backbone_dir, small_data):
    fake = tmp_path / "fake_packages" / "tensorboardX"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_TENSORBOARDX)
    python_path = os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))
    env = hub_env(hub, tmp_path / "hf_home", "hf_pushtoken", PYTHONPATH=python_path, OMP_NUM_THREADS="1")
    output_dir = tmp_path / "habits"
    argv = ["--backbone", str(tiny_backbone_dir), "--data", str(small_data), "--output-dir", str(output_dir), *FAST]
    argv += ["--save-strategy", "steps", "--save-steps", "1", "--report_to", "tensorboard"]
    argv += ["--push_to_hub", "true", "--hub_model_id", "test-user/habits", "--hub_private_repo", "true"]
    command = [COMMAND, "train", *argv]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Pushed" in result.stdout

    assert list(output_dir.glob("runs/*/events.out.tfevents*")), "the TensorBoard logs stay in the model folder"
    assert not (output_dir / "checkpoints").exists()
    assert list(hub.repos) == ["test-user/habits"]  # no repo of the Trainer's own (named after checkpoints/)
    assert hub.repos["test-user/habits"].private
    files = hub.files("test-user/habits")
    assert files["model.safetensors"] == (output_dir / "model.safetensors").read_bytes()
    assert 'AutoModel.from_pretrained("test-user/habits", trust_remote_code=True)' in files["README.md"].decode()
    assert any(path.startswith("runs/") for path in files)  # `--report_to tensorboard`: the Hub's metrics tab
    assert not any(path.startswith(("checkpoint", "training_args")) for path in files)

    for repo_id, extra, with_logs in (("test-user/no-logs", [], False), ("test-user/logs", ["--include-logs"], True)):
        pushed = subprocess.run(
            [COMMAND, "push", str(output_dir), repo_id, *extra], env=env, capture_output=True, text=True, timeout=300
        )
        assert pushed.returncode == 0, pushed.stderr
        assert any(path.startswith("runs/") for path in hub.files(repo_id)) == with_logs


def test_push_to_hub_without_a_token_fails_before_training(hub, tmp_path, small_data):
    output_dir = tmp_path / "out"
    command = [COMMAND, "train", "--data", str(small_data)]
    command += ["--output-dir", str(output_dir), "--push_to_hub", "true"]
    env = hub_env(hub, tmp_path / "empty_hf_home", token=None)
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "hf auth login" in result.stderr.strip().splitlines()[-1]
    assert not output_dir.exists() and hub.repos == {}


def test_push_to_hub_refuses_a_token_on_the_command_line(tmp_path, capsys):
    argv = ["train", "--push_to_hub", "true", "--hub_token", "hf_secret", "--output-dir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    error = last_error(capsys)
    assert "--hub_token: the token comes from HF_TOKEN or `hf auth login` only" in error and "hf_secret" not in error


# predict --embedding true|false; export MODEL OUT_DIR


def test_predict_embedding_takes_a_value(model_dir, capsys):
    for value, embedded in (["true"], True), (["false"], False), ([], True):
        assert cli.main(["predict", str(model_dir), "wake me", "--embedding", *value]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [line["text"] for line in lines] == ["wake me"]
        assert ("sentence_embedding" in lines[0]) == embedded


def test_export_takes_the_output_folder_as_a_positional(model_dir, tmp_path, capsys):
    assert cli.main(["export", str(model_dir), str(tmp_path / "onnx")]) == 0
    assert f"wrote {tmp_path / 'onnx' / 'model.onnx'}" in capsys.readouterr().out
    assert (tmp_path / "onnx" / "model.onnx").is_file() and (tmp_path / "onnx" / "config.json").is_file()


def test_export_output_folder_options(model_dir, tmp_path, monkeypatch, capsys):
    written = []

    def record(model, output_dir, *args):
        written.append(str(output_dir))
        return SimpleNamespace(onnx_path=Path(output_dir) / "model.onnx", max_abs_diff={}, int8_path=None)

    monkeypatch.setattr(export_command, "export_onnx", record)
    for option in ("--onnx", "--output-dir", "--output_dir"):
        assert cli.main(["export", str(model_dir), option, "out"]) == 0
    assert written == ["out"] * 3
    assert cli.main(["export", str(model_dir), "out", "--onnx", "out"]) == 0
    for argv, message in (([], "no output folder"), (["a", "--onnx", "b"], "two output folders: a and --onnx b")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["export", str(model_dir), *argv])
        assert exit_info.value.code == 2 and message in last_error(capsys)
    assert written == ["out"] * 4


# Progress bars


def test_predict_file_shows_progress_on_stderr_unless_switched_off(model_dir, tmp_path):
    texts = tmp_path / "texts.txt"
    expected = [f"wake me at {hour}" for hour in range(40)]
    texts.write_text("".join(f"{text}\n" for text in expected), encoding="utf-8")
    command = [COMMAND, "predict", str(model_dir), "--file", str(texts)]
    for switch, shown in (({}, True), ({"HF_HUB_DISABLE_PROGRESS_BARS": "1"}, False)):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **switch}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == expected
        assert ("predict: 100%" in result.stderr and "40/40" in result.stderr) == shown, result.stderr


def test_int8_comparison_and_sts_scoring_show_progress_unless_switched_off(
    tokenizer, tiny_backbone_dir, tmp_path, capsys
):
    model, texts = tiny_model(), ["wake me at 7", "call Anna", "set a timer"]
    sts = tmp_path / "sts.tsv"
    rows = ["x\ty\t5.0\ta cat\ta cat", "x\ty\t0.0\ta cat\tthe stock market", "x\ty\t2.5\tcall Anna\tphone Anna"]
    sts.write_text("genre\tsource\tscore\tsentence1\tsentence2\n" + "\n".join(rows) + "\n", encoding="utf-8")
    compare_models(model, model, tokenizer, texts, batch_size=2)
    sts_benchmark_spearman(tiny_backbone_dir, sts)
    shown = capsys.readouterr().err
    assert "fp32: 100%" in shown and "int8: 100%" in shown and "3/3" in shown and "Batches" in shown

    sts_benchmark_spearman(tiny_backbone_dir, sts, show_progress=False)  # `train --disable_tqdm true`
    assert "Batches" not in capsys.readouterr().err
    transformers_logging.disable_progress_bar()
    try:
        compare_models(model, model, tokenizer, texts, batch_size=2)
        sts_benchmark_spearman(tiny_backbone_dir, sts)
    finally:
        transformers_logging.enable_progress_bar()
    silenced = capsys.readouterr().err
    assert "100%" not in silenced and "Batches" not in silenced


def test_train_disable_tqdm_silences_the_bars_of_every_step(tmp_path, tiny_backbone_dir, small_data):
    """`--disable-tqdm true` switches off the Trainer's bars and ours (the teacher-embedding pass, ...) alike."""
    fast = [arg for arg in FAST if arg not in ("--disable-tqdm", "true")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for switch, shown in (([], True), (["--disable-tqdm", "true"], False)):
        output_dir = tmp_path / f"model-{shown}"
        command = [COMMAND, "train", "--backbone", str(tiny_backbone_dir), "--data", str(small_data), *fast]
        command += ["--output-dir", str(output_dir), *switch]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert ("Teacher embeddings: 100%" in result.stderr) == shown, result.stderr[-2000:]
        assert ("%|" in result.stderr) == shown, result.stderr[-2000:]  # any tqdm bar: transformers', datasets'
        assert ("Tokenizing train" in result.stderr) == shown, result.stderr[-2000:]
