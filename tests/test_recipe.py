"""The recipe `train` applies to what its command line leaves unset: a training length set by the size of the train
split, a CRF on token tasks, the checkpoint chosen on validation (none left in the folder); given options win."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_cli import assert_one_error_line, run_cli

from conftest import embedded_data_slice, tiny_model
from multitask_bert.training.cli.train import RECIPE_HELP
from multitask_bert.training.recipe import MAX_EPOCHS, MIN_EPOCHS, recipe_epochs, selection_metric

QUIET = ["--disable-tqdm", "true", "--bf16", "false", "--per-device-train-batch-size", "8"]


@pytest.mark.parametrize(
    ("train_examples", "demo_data", "epochs"),
    [
        (48, False, MAX_EPOCHS),  # tiny data: the most epochs
        (4478, False, 20),  # ATIS: 140 steps an epoch, 20 epochs = 2800 steps
        (6000, False, 15),  # 188 steps an epoch: 15 epochs reach 2800 steps
        (13084, False, 10),  # SNIPS: 409 steps an epoch, at least 10 epochs
        (200_000, False, MIN_EPOCHS),
        (2660, True, 3),  # the embedded demo data: the quick main job
    ],
)
def test_training_length_grows_with_the_train_split_in_steps(train_examples, demo_data, epochs):
    assert recipe_epochs(train_examples, 32, demo_data) == epochs


def test_checkpoint_metric_is_sentence_accuracy_for_joint_data_else_the_task_score():
    config = tiny_model().config
    assert selection_metric(config, ["intent", "ner"]) == "sentence_accuracy"
    assert selection_metric(config, ["intent"]) == "intent_accuracy"
    assert selection_metric(config, ["ner"]) == "entity_f1"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return embedded_data_slice(tmp_path_factory.mktemp("recipe_data"), {"train": 48, "validation": 24, "test": 8})


def train(tmp_path: Path, data: Path, backbone: Path | None, name: str, *options: str) -> Path:
    out = tmp_path / name
    model = ["--backbone", str(backbone)] if backbone else []
    result = run_cli("train", "--data", str(data), *model, "--output-dir", str(out), *QUIET, *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def card_inputs(model_dir: Path) -> dict:
    return json.loads((model_dir / "model_card_inputs.json").read_text())


def test_unset_options_get_the_recipe_and_given_ones_win(tmp_path, small_data, tiny_backbone_dir):
    recipe = train(tmp_path, small_data, tiny_backbone_dir, "recipe")
    assert json.loads((recipe / "config.json").read_text())["use_crf"] is True
    hyperparameters = card_inputs(recipe)["hyperparameters"]
    assert hyperparameters["Training length"].startswith(f"{recipe_epochs(48, 8)} epochs (")
    assert hyperparameters["Checkpoint"].startswith("the one with the best validation sentence_accuracy (step ")
    assert not (recipe / "checkpoints").exists()

    given = train(tmp_path, small_data, tiny_backbone_dir, "given", "--use-crf", "false", "--num-train-epochs", "2",
                  "--load-best-model-at-end", "false")  # fmt: skip
    assert json.loads((given / "config.json").read_text())["use_crf"] is False
    hyperparameters = card_inputs(given)["hyperparameters"]
    assert hyperparameters["Training length"].startswith("2 epochs (") and "Checkpoint" not in hyperparameters

    # Continuing a trained model keeps its architecture: the recipe's CRF is no option of a new model given.
    continued = train(tmp_path, small_data, None, "continued", "--model-name-or-path", str(given),
                      "--max-steps", "2")  # fmt: skip
    assert json.loads((continued / "config.json").read_text())["use_crf"] is False


def test_without_a_validation_split_the_last_checkpoint_stays(tmp_path, small_data, tiny_backbone_dir):
    out = train(tmp_path, small_data, tiny_backbone_dir, "no_eval", "--do-eval", "false", "--max-steps", "6")
    assert "Checkpoint" not in card_inputs(out)["hyperparameters"]
    assert not (out / "checkpoints").exists()


def evaluations(model_dir: Path, metric: str) -> list[tuple[int, float]]:
    return [(entry["step"], entry[f"eval_{metric}"]) for entry in card_inputs(model_dir)["log_history"]
            if f"eval_{metric}" in entry]  # fmt: skip


def test_the_best_validation_epoch_is_the_saved_model(tmp_path, small_data, tiny_backbone_dir):
    """Over 6 epochs the tiny model's validation intent accuracy peaks before the end: the saved model is that epoch's
    (its final validation score is the peak, the card names its step), not the last one's."""
    options = ("--num-train-epochs", "6", "--learning-rate", "1e-3", "--seed", "0", "--metric-for-best-model",
               "intent_accuracy")  # fmt: skip
    best = train(tmp_path, small_data, tiny_backbone_dir, "best", *options)
    scores = evaluations(best, "intent_accuracy")
    best_step, best_score = max(scores, key=lambda pair: (pair[1], -pair[0]))
    assert scores[-1][1] < best_score, f"the fixture no longer peaks before the last epoch: {scores}"
    final = json.loads((best / "eval_results.json").read_text())["validation"]["intent_accuracy"]
    assert final == pytest.approx(best_score)
    assert card_inputs(best)["hyperparameters"]["Checkpoint"].endswith(f"intent_accuracy (step {best_step})")
    assert not (best / "checkpoints").exists()

    last = train(tmp_path, small_data, tiny_backbone_dir, "last", *options, "--load-best-model-at-end", "false")
    assert evaluations(last, "intent_accuracy") == scores
    final_of_last = json.loads((last / "eval_results.json").read_text())["validation"]["intent_accuracy"]
    assert final_of_last == pytest.approx(scores[-1][1])


def test_early_stopping_stops_when_validation_stops_improving(tmp_path, small_data, tiny_backbone_dir):
    out = train(tmp_path, small_data, tiny_backbone_dir, "early", "--num-train-epochs", "20", "--learning-rate",
                "1e-3", "--early-stopping-patience", "1", "--metric-for-best-model", "intent_accuracy")  # fmt: skip
    scores = [score for _, score in evaluations(out, "intent_accuracy")]
    assert 2 <= len(scores) < 20
    assert scores[-1] <= max(scores[:-1])  # it stopped at the first evaluation that did not improve


def test_early_stopping_without_validation_is_one_error_line(tmp_path, small_data, tiny_backbone_dir):
    result = run_cli("train", "--data", str(small_data), "--backbone", str(tiny_backbone_dir), "--output-dir",
                     str(tmp_path / "out"), *QUIET, "--do-eval", "false", "--early-stopping-patience", "2",
                     cwd=tmp_path)  # fmt: skip
    assert_one_error_line(result, "train", re.escape("early_stopping_patience"))
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_metric_the_evaluation_lacks_is_one_error_line(tmp_path, small_data, tiny_backbone_dir):
    result = run_cli("train", "--data", str(small_data), "--backbone", str(tiny_backbone_dir), "--output-dir",
                     str(tmp_path / "out"), *QUIET, "--num-train-epochs", "1", "--metric-for-best-model", "intent_acc",
                     cwd=tmp_path)  # fmt: skip
    last = assert_one_error_line(result, "train", re.escape("'eval_intent_acc'"))
    assert "eval_intent_accuracy" in last  # the metrics there are
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_help_says_what_the_recipe_sets(tmp_path):
    result = run_cli("train", "--help", cwd=tmp_path)
    help_text = "".join(result.stdout.split())  # argparse wraps lines, at hyphens too
    for text in RECIPE_HELP.values():
        assert "".join(text.split()) in help_text
