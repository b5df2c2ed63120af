"""`load_data` format detection, combining data sets, the default (embedded synthetic) data, benchmark sets."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import REPO_ROOT, SHARED_DATA
from data_helpers import FIXTURES, assert_layout, decoded, write
from multitask_bert.training.data import (
    NO_LABEL,
    UNK,
    combine_datasets,
    default_data_dir,
    load_conll,
    load_data,
    load_default_dataset,
    load_jointbert,
    load_jsonl,
    task_label_lists,
    task_levels,
)


def load_generator():
    """`scripts/generate_embedded_data.py`, the generator of the embedded data (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "generate_embedded_data", REPO_ROOT / "scripts" / "generate_embedded_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- detection, combining, default data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "loader"),
    [("jointbert", load_jointbert), ("conll", load_conll), ("jsonl", load_jsonl), ("jsonl/train.jsonl", load_jsonl)],
)
def test_load_data_detects_the_format(path, loader, fixtures):
    detected = load_data(fixtures / path)
    expected = loader(fixtures / path)
    assert set(detected) == set(expected)
    for split in expected:
        assert detected[split].to_dict() == expected[split].to_dict()
        assert detected[split].features == expected[split].features


def test_load_data_routes_token_jsonl_to_datasets(tmp_path):
    write(tmp_path / "train.jsonl", json.dumps({"tokens": ["hi", "Bo"], "ner_tags": ["O", "B-PER"]}) + "\n")
    dataset = load_data(tmp_path, cache_dir=str(tmp_path / "cache"))
    assert decoded(dataset["train"]) == [{"tokens": ["hi", "Bo"], "intent": None, "ner_tags": ["O", "B-PER"]}]


def test_combine_intent_only_and_ner_only_sets(tmp_path):
    intents = load_jsonl(write(tmp_path / "a" / "train.jsonl", '{"text": "wake me", "intent": "set_alarm"}\n'))
    entities = load_conll(FIXTURES / "conll")
    assert task_label_lists(intents) == {"intent": ["set_alarm", UNK]}
    combined = combine_datasets(intents, entities)
    assert_layout(combined)
    assert combined["train"].features["intent"].names == ["schedule_meeting", "set_alarm", UNK]
    assert len(combined["train"]) == 1 + len(entities["train"])
    # ids are remapped by name: decoding before and after gives the same rows
    assert decoded(combined["train"]) == decoded(intents["train"]) + decoded(entities["train"])
    assert decoded(combined["test"]) == decoded(entities["test"])


def test_combine_keeps_every_task_of_every_set(tokenizer, tmp_path):
    four = load_jsonl(FIXTURES / "four_tasks", tokenizer)
    write(tmp_path / "train.jsonl", '{"text": "hi there", "intent": "greet", "entities": []}\n')
    combined = combine_datasets(four, load_jsonl(tmp_path, tokenizer))["train"]
    assert task_levels(combined.features) == task_levels(four["train"].features)
    assert combined.features["intent"].names[:2] == ["cancel_event", "greet"]
    assert combined["mood"][-1] == NO_LABEL and combined["acts_tags"][-1] == []


def test_task_label_lists_leaves_out_unannotated_tasks():
    dataset = load_conll(FIXTURES / "conll")
    ner_only = dataset.map(lambda row: {"intent": NO_LABEL})
    assert set(task_label_lists(dataset)) == {"intent", "ner"}
    assert set(task_label_lists(ner_only)) == {"ner"}


def test_default_dataset():
    dataset = load_default_dataset()
    assert_layout(dataset)
    sizes = {split: len(rows) for split, rows in dataset.items()}
    assert set(sizes) == {"train", "validation", "test"} and 3000 <= sum(sizes.values()) <= 4000
    labels = task_label_lists(dataset)
    required = {"set_alarm", "set_timer", "set_reminder", "schedule_meeting", "schedule_appointment"}
    assert required | {"cancel_event", "list_events"} <= set(labels["intent"])
    entity_types = {name[2:] for name in labels["ner"] if name.startswith("B-")}
    assert {"DATE", "TIME", "DURATION", "PERSON", "LOCATION", "EVENT"} <= entity_types
    for split in dataset.values():
        assert UNK not in {label for row in decoded(split) for label in [row["intent"], *row["ner_tags"]]}
        assert max(len(tokens) for tokens in split["tokens"]) < 30
        assert min(split["intent"]) >= 0 and all(split["ner_tags"])
    assert sum(path.stat().st_size for path in default_data_dir().iterdir()) < 1_000_000


def test_synthetic_splits_are_disjoint_in_templates():
    synthetic_data = load_generator()
    examples = synthetic_data.generate_examples()
    templates = {split: {record["template"] for record in records} for split, records in examples.items()}
    assert not templates["train"] & templates["validation"]
    assert not templates["train"] & templates["test"]
    assert not templates["validation"] & templates["test"]
    for split, used in templates.items():  # every intent has phrasings of its own in every split
        assert {template.split("/")[0] for template in used} == set(synthetic_data.TEMPLATES), split
    texts = [record["text"].lower() for records in examples.values() for record in records]
    assert len(texts) == len(set(texts))
    assert max(len(text.split()) for text in texts) < 25


def test_synthetic_regeneration_is_byte_identical(tmp_path):
    synthetic_data = load_generator()
    written = synthetic_data.write_dataset(tmp_path)
    assert {path.name for path in written.values()} == {"train.jsonl", "validation.jsonl", "test.jsonl", "DATA_CARD.md"}
    for path in written.values():
        assert path.read_bytes() == (default_data_dir() / path.name).read_bytes(), path.name
    other_seed = synthetic_data.write_dataset(tmp_path / "other", seed=synthetic_data.DEFAULT_SEED + 1)
    assert other_seed["train"].read_bytes() != written["train"].read_bytes()


# --- real benchmarks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sizes"), [("atis", (4478, 500, 893)), ("snips", (13084, 700, 700))])
def test_benchmark_sets_load_with_published_sizes(name, sizes):
    if not (SHARED_DATA / name).is_dir():
        pytest.skip(f"{SHARED_DATA / name} is absent (benchmark data is not part of the repository)")
    dataset = load_data(SHARED_DATA / name)
    assert_layout(dataset)
    assert (len(dataset["train"]), len(dataset["validation"]), len(dataset["test"])) == sizes
    rows = decoded(dataset["test"])
    assert all(len(row["tokens"]) == len(row["ner_tags"]) and row["intent"] for row in rows)
    if name == "atis":  # the test split has intents and tags never seen in train
        assert any(row["intent"] == UNK for row in rows) and any(UNK in row["ner_tags"] for row in rows)
        assert any("#" in intent for intent in dataset["train"].features["intent"].names)
