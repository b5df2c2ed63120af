"""The model card: Hub metadata that validates offline, a body written from a real Trainer run, snippets that run."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from huggingface_hub import ModelCard
from huggingface_hub.repocard import metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from matplotlib.image import imread
from transformers import Trainer, TrainingArguments

from conftest import INTENTS, NER_TAGS, run_without_project, tiny_model
from multitask_bert import default_backbone_path, write_model_card
from multitask_bert.hub_card.card_validation import validate_model_card
from multitask_bert.hub_card.dataset_summary import count_entities, count_labels, summarize_dataset
from multitask_bert.hub_card.hyperparameters import describe_training
from multitask_bert.hub_card.loss_plot import save_loss_plot
from multitask_bert.hub_card.model_card import (
    CARD_INPUTS_FILE,
    LOSS_PLOT_FILE,
    PACKAGED_BASE_MODEL,
    build_model_card,
    hub_base_model,
)
from multitask_bert.training.cli import main as cli_main

TEXTS = ["wake me at 7", "set a timer for ten minutes", "cancel lunch with anna", "alarm at noon on friday"] * 4
# What an evaluation reported, as `Trainer.evaluate(metric_key_prefix=split)` names it: distinct values everywhere.
EVAL_RESULTS = {
    "validation": {
        "eval_loss": 2.5,
        "eval_intent_accuracy": 0.8125,
        "eval_entity_precision": 0.625,
        "eval_entity_recall": 0.5625,
        "eval_entity_f1": 0.5921,
        "eval_sentence_accuracy": 0.4375,
        "eval_entity_TIME_f1": 0.7143,
        "eval_entity_PERSON_f1": 0.3333,
        "eval_runtime": 0.01,
    },
    "test": {"test_intent_accuracy": 0.75, "test_entity_f1": 0.5102, "test_sentence_accuracy": 0.375},
}
EXPECTED_MODEL_INDEX = {
    ("validation", "Intent accuracy"): 0.8125,
    ("validation", "Entity precision"): 0.625,
    ("validation", "Entity recall"): 0.5625,
    ("validation", "Entity F1"): 0.5921,
    ("validation", "Sentence accuracy (intent and all entities right)"): 0.4375,
    ("test", "Intent accuracy"): 0.75,
    ("test", "Entity F1"): 0.5102,
    ("test", "Sentence accuracy (intent and all entities right)"): 0.375,
}
TRAIN_TAGS = [["O", "O", "B-TIME", "I-TIME"], ["B-TIME", "O", "O", "O"], ["O", "O", "B-PERSON"], ["B-TIME", "I-TIME"]]


def toy_dataset() -> DatasetDict:
    """Labelled data in the layout of multitask_bert.training.data; the last train example has no intent."""
    features = Features(
        {
            "tokens": Sequence(Value("string")),
            "intent": ClassLabel(names=[*INTENTS, "UNK"]),
            "ner_tags": Sequence(ClassLabel(names=[*NER_TAGS, "UNK"])),
        }
    )
    intents = ["set_alarm", "set_alarm", "set_timer", "set_alarm", -1]
    train = {
        "tokens": [["word"] * len(tags) for tags in [*TRAIN_TAGS, []]],
        "intent": [INTENTS.index(intent) if intent != -1 else -1 for intent in intents],
        "ner_tags": [[NER_TAGS.index(tag) for tag in tags] for tags in [*TRAIN_TAGS, []]],
    }
    test = {"tokens": [["word"], ["word"]], "intent": [0, 1], "ner_tags": [[1], [0]]}
    return DatasetDict(
        {"train": Dataset.from_dict(train, features=features), "test": Dataset.from_dict(test, features=features)}
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tokenizer):
    """A tiny model trained for a few steps by the stock Trainer (whose log history the card reads), then saved."""
    model_dir = tmp_path_factory.mktemp("trained")
    model = tiny_model(
        tasks={
            "intent": {"level": "sentence", "labels": [*INTENTS, "UNK"]},
            "ner": {"level": "token", "labels": [*NER_TAGS, "UNK"]},
        }
    )
    encoded = tokenizer(TEXTS, padding="max_length", max_length=12)
    generator = torch.Generator().manual_seed(0)
    ner_labels = [
        [int(torch.randint(len(NER_TAGS), (), generator=generator)) if keep else -100 for keep in mask]
        for mask in encoded["attention_mask"]
    ]
    dataset = Dataset.from_dict(
        {**encoded, "intent_labels": [i % len(INTENTS) for i in range(len(TEXTS))], "ner_labels": ner_labels}
    )
    args = TrainingArguments(
        str(model_dir),
        per_device_train_batch_size=4,
        num_train_epochs=2,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="no",
        report_to="none",
        label_names=["intent_labels", "ner_labels"],
        prediction_loss_only=True,
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset)
    trainer.train()
    trainer.save_model(model_dir)
    trainer.save_state()
    tokenizer.save_pretrained(model_dir)
    return {
        "model_dir": model_dir,
        "log_history": trainer.state.log_history,
        "hyperparameters": describe_training(trainer.args, trainer.state.global_step),
    }


def card_inputs(trained) -> dict:
    return dict(
        eval_results=EVAL_RESULTS,
        log_history=trained["log_history"],
        dataset_name="Toy alarms",
        dataset_summary=summarize_dataset(toy_dataset()),
        synthetic_data=True,
        hyperparameters=trained["hyperparameters"],
        base_model=hub_base_model(default_backbone_path()),
        snippet_examples=["wake me up at 6 tomorrow", 'cancel my "dentist" appointment'],
    )


@pytest.fixture
def model_dir(trained, tmp_path):
    """A fresh copy of the trained folder, so each test writes its own card."""
    return shutil.copytree(trained["model_dir"], tmp_path / "model")


def test_metadata_and_model_index_come_from_the_run(model_dir, trained):
    write_model_card(model_dir, **card_inputs(trained))

    metadata = metadata_load(model_dir / "README.md")
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "token-classification"
    required_tags = {"multitask", "token-classification", "text-classification", "sentence-similarity", "custom_code"}
    assert required_tags <= set(metadata["tags"])
    assert metadata["base_model"] == PACKAGED_BASE_MODEL
    assert (metadata["language"], metadata["license"]) == ("en", "apache-2.0")
    assert "widget" not in metadata  # the Hub's widgets do not run remote code

    model_name, results = model_index_to_eval_results(metadata["model-index"])
    assert model_name == "model"
    assert {(result.dataset_split, result.metric_name): result.metric_value for result in results} == (
        EXPECTED_MODEL_INDEX
    )
    assert {result.dataset_name for result in results} == {"Toy alarms"}
    task_of = {result.metric_name: result.task_type for result in results}
    assert task_of["Intent accuracy"] == "text-classification"
    assert task_of["Entity F1"] == "token-classification"
    validate_model_card(ModelCard.load(model_dir / "README.md"))


def test_body_lists_real_labels_counts_metrics_and_the_loss_curve(model_dir, trained):
    card = write_model_card(model_dir, **card_inputs(trained))
    body = card.text

    assert "| `set_alarm` | 3 | 1 |" in body and "| `set_timer` | 1 | 1 |" in body  # train and test counts
    assert "| `cancel_event` | 0 | 0 |" in body
    assert "| `TIME` | 3 | 1 |" in body and "| `PERSON` | 1 | 0 |" in body  # entity mentions, not tags
    assert "| train | 5 |" in body and "| test | 2 |" in body
    assert "`UNK`" in body and "| `UNK`" not in body  # explained once, never listed as a class
    assert "| `intent` | sentence | 3 |" in body and "| `ner` | token | 2 |" in body
    assert "| validation | 0.8125 | 0.6250 | 0.5625 | 0.5921 | 0.4375 |" in body
    assert "| test | 0.7500 | – | – | 0.5102 | 0.3750 |" in body
    assert "| `TIME` | 0.7143 |" in body and "| `PERSON` | 0.3333 |" in body
    assert f"- Learning rate: {trained['hyperparameters']['Learning rate']}" in body
    assert "- Learning rate: 5e-05 for the encoder and heads" in body
    assert "- Optimizer: AdamW (PyTorch" in body and "OptimizerNames" not in body
    assert "- Training length: 2 epochs (8 optimizer steps)" in body
    assert "must be truncated" not in body and "in overlapping windows" in body
    eval_losses = [entry["eval_loss"] for entry in trained["log_history"] if "eval_loss" in entry]
    assert len(eval_losses) == 2
    assert all(f"{loss:.4f}" in body for loss in eval_losses)  # the Trainer's results table
    assert "synthetic" in body and "Toy alarms" in body
    assert f"![Training and validation loss per step]({LOSS_PLOT_FILE})" in body
    height, width, _ = imread(model_dir / LOSS_PLOT_FILE).shape
    assert (width, height) == (600, 400)
    assert re.search(r"- transformers: \d+\.\d+", body)
    assert "@article{chen2019bert" in body


def test_card_command_rewrites_the_card_from_the_folder(model_dir, trained, capsys):
    write_model_card(model_dir, **card_inputs(trained))
    first = ModelCard.load(model_dir / "README.md")
    (model_dir / "README.md").unlink()
    (model_dir / LOSS_PLOT_FILE).unlink()

    assert cli_main(["card", str(model_dir), "--repo-id", "someone/alarm-model"]) == 0
    again = ModelCard.load(model_dir / "README.md")
    assert (model_dir / LOSS_PLOT_FILE).is_file()
    assert again.data.eval_results == first.data.eval_results
    assert again.data.to_dict()["model-index"][0]["name"] == "alarm-model"
    assert 'AutoModel.from_pretrained("someone/alarm-model", trust_remote_code=True)' in again.text
    assert json.loads((model_dir / CARD_INPUTS_FILE).read_text())["repo_id"] == "someone/alarm-model"


def test_card_command_uses_the_trainer_state_alone(model_dir, trained):
    """A folder straight out of `Trainer.save_model` + `save_state`: no card inputs, the log history is there."""
    assert not (model_dir / CARD_INPUTS_FILE).exists()
    assert cli_main(["card", str(model_dir)]) == 0
    card = ModelCard.load(model_dir / "README.md")
    assert (model_dir / LOSS_PLOT_FILE).is_file()
    assert "### Training results" in card.text and "No evaluation results were recorded" in card.text
    assert "model-index" not in card.data.to_dict()
    validate_model_card(card)


@pytest.mark.parametrize("head_pooling", [None, "attention"])
def test_architecture_says_what_the_sentence_heads_read(model_dir, trained, head_pooling):
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "sentence_head_pooling": head_pooling}))
    text = write_model_card(model_dir, **card_inputs(trained)).text
    own_pooling = "sentence-level heads read their own attention pooling of the token states"
    assert (own_pooling in " ".join(text.split())) == (head_pooling is not None)


@pytest.mark.parametrize(
    ("find", "replace", "problem"),
    [
        ("pipeline_tag: token-classification", "pipeline_tag: joint-intent-ner", "pipeline_tag"),
        ("value: 0.8125", "value: 81.25", "not in [0, 1]"),
        ("language: en", "language: English", "ISO 639"),
        (f"base_model: {PACKAGED_BASE_MODEL}", "base_model: my local folder", "not a Hub id"),
        ("    - type: accuracy\n      value: 0.8125\n", "    - value: 0.8125\n", "Invalid `model_index`"),
    ],
)
def test_validation_rejects_what_the_hub_would(model_dir, trained, find, replace, problem):
    text = str(build_model_card(model_dir, **card_inputs(trained)))
    assert find in text
    with pytest.raises(ValueError, match=re.escape(problem)):
        validate_model_card(text.replace(find, replace, 1))


def test_bad_inputs_are_named(model_dir, trained, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"eval_results\['test'\] has none of the metrics.*'test_acc'"):
        build_model_card(model_dir, eval_results={"test": {"test_acc": 0.9}})
    with pytest.raises(ValueError, match=r"dataset_summary\['train'\] has keys \['intents'\]"):
        build_model_card(model_dir, dataset_summary={"train": {"examples": 3, "intents": {"set_alarm": 3}}})
    assert cli_main(["card", str(tmp_path / "missing")]) == 2
    assert "has no config.json" in capsys.readouterr().err


def test_base_model_and_label_counting_helpers(tmp_path):
    assert hub_base_model(None) == PACKAGED_BASE_MODEL
    assert hub_base_model(default_backbone_path()) == PACKAGED_BASE_MODEL
    assert hub_base_model("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"
    assert hub_base_model(str(tmp_path)) is None
    assert count_entities(TRAIN_TAGS) == {"TIME": 3, "PERSON": 1}
    assert count_labels(["b", "a", "b"]) == {"b": 2, "a": 1}


def test_loss_plot_needs_a_logged_loss(tmp_path):
    assert not save_loss_plot([{"train_runtime": 1.0, "step": 4}], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    per_task_log = [{"loss": 2.0, "loss_intent": 1.2, "step": 2}, {"loss": 1.0, "loss_intent": 0.7, "step": 4}]
    assert save_loss_plot(per_task_log, tmp_path / "plot.png")
    assert imread(tmp_path / "plot.png").shape[:2] == (400, 600)


def test_usage_snippets_run_without_the_project(model_dir, trained, tmp_path):
    """Every python block of the card, run as written (repo id = the folder) where multitask_bert cannot be imported."""
    card = write_model_card(model_dir, **card_inputs(trained))
    snippets = re.findall(r"```python\n(.*?)```", card.text, flags=re.DOTALL)
    has_pipeline = (model_dir / "pipeline_multitask_bert.py").is_file()
    assert len(snippets) == (4 if has_pipeline else 2)
    result = run_without_project("\n".join(snippets), tmp_path)
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr  # runs without a prompt
    intent_line = next(line for line in result.stdout.splitlines() if line.startswith("intent:"))
    assert intent_line.removeprefix("intent: ") in INTENTS + ["UNK"]
    if has_pipeline:  # transformers' text-classification pipeline printed the intent head's three best labels
        assert len(re.findall(r"\{'label': '(?:" + "|".join(INTENTS) + r")', 'score'", result.stdout)) >= 3
    assert re.search(r"tensor\(\[\[1\.0000, [-\d.]+\],\s+\[[-\d.]+, 1\.0000\]\]\)", result.stdout)  # similarity
