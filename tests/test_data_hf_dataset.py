"""Loading `datasets` data (Hub ids, local files, save_to_disk folders, objects) and mapping columns to tasks."""

from __future__ import annotations

import json
import logging
import re

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, IterableDataset, IterableDatasetDict, Sequence, Value

from data_helpers import DATA_LOGGER, assert_layout, decoded, write
from multitask_bert.training.data import (
    NO_LABEL,
    UNK,
    load_data,
    load_hf_dataset,
    load_jsonl,
    task_label_lists,
    task_levels,
)


def hf_style_dataset() -> DatasetDict:
    """A CoNLL-2003-like dataset: ClassLabel intents and tags under other column names."""
    features = Features(
        {
            "words": Sequence(Value("string")),
            "label": ClassLabel(names=["greet", "book"]),
            "tags": Sequence(ClassLabel(names=["O", "B-CITY", "I-CITY"])),
        }
    )
    train = {"words": [["hi"], ["book", "new", "york"]], "label": [0, 1], "tags": [[0], [0, 1, 2]]}
    test = {"words": [["to", "paris"]], "label": [-1], "tags": [[0, 2]]}
    return DatasetDict(
        {"train": Dataset.from_dict(train, features=features), "test": Dataset.from_dict(test, features=features)}
    )


def test_hf_dataset_classlabel_columns_from_disk(tmp_path, caplog):
    hf_style_dataset().save_to_disk(tmp_path / "saved")
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        dataset = load_hf_dataset(tmp_path / "saved", tokens_column="words", intent_column="label", ner_column="tags")
    assert_layout(dataset)
    assert decoded(dataset["train"])[1] == {
        "tokens": ["book", "new", "york"],
        "intent": "book",
        "ner_tags": ["O", "B-CITY", "I-CITY"],
    }
    assert dataset["train"][1]["text"] == "book new york"
    assert decoded(dataset["test"])[0] == {"tokens": ["to", "paris"], "intent": None, "ner_tags": ["O", "B-CITY"]}
    assert "repaired 1 I- tags" in caplog.text
    detected = load_data(tmp_path / "saved", tokens_column="words", intent_column="label", ner_column="tags")
    assert {split: rows.to_dict() for split, rows in detected.items()} == {
        split: rows.to_dict() for split, rows in dataset.items()
    }


def test_hf_dataset_string_columns_and_text_only():
    rows = Dataset.from_dict({"utterance": ["Wake me at 7!", "hello"], "goal": ["alarm", "greet"]})
    dataset = load_hf_dataset(DatasetDict({"train": rows}), text_column="utterance", intent_column="goal")
    assert dataset["train"][0]["tokens"] == ["Wake", "me", "at", "7", "!"]
    assert dataset["train"]["ner_tags"] == [[], []]
    assert task_label_lists(dataset) == {"intent": ["alarm", "greet", UNK]}


def test_hf_dataset_columns_map_to_any_tasks():
    features = Features(
        {
            "words": Sequence(Value("string")),
            "label": ClassLabel(names=["neg", "pos"]),
            "register": Value("string"),
            "pos_tags": Sequence(ClassLabel(names=["O", "B-NOUN", "I-NOUN"])),
        }
    )
    rows = {"words": [["good", "tea"], ["cold", "soup"]], "label": [1, 0], "register": ["casual", None]}
    rows["pos_tags"] = [[0, 1], [0, 1]]
    task_columns = {
        "label": {"task": "sentiment", "level": "sentence"},
        "register": {"task": "register", "level": "sentence"},
        "pos_tags": {"task": "pos", "level": "token"},
    }
    dataset = load_hf_dataset(
        DatasetDict({"train": Dataset.from_dict(rows, features=features)}),
        tokens_column="words",
        task_columns=task_columns,
    )
    train = dataset["train"]
    assert task_levels(train.features) == {
        "intent": "sentence",
        "sentiment": "sentence",
        "register": "sentence",
        "ner": "token",
        "pos": "token",
    }
    assert task_label_lists(dataset) == {
        "sentiment": ["neg", "pos", UNK],
        "register": ["casual", UNK],
        "pos": ["O", "B-NOUN", "I-NOUN", UNK],
    }
    assert train["register"] == [0, NO_LABEL] and train["pos_tags"] == [[0, 1], [0, 1]]
    with pytest.raises(ValueError, match=r"task_columns\['label'\] must be"):
        load_hf_dataset(dataset, tokens_column="tokens", task_columns={"label": {"task": "x", "level": "word"}})


def test_hf_dataset_keeps_the_default_columns_beside_mapped_ones_and_plain_minus_one_is_no_label():
    rows = {
        "tokens": [["wake", "me"], ["call", "Anna"]],
        "intent": ["alarm", "call"],
        "ner_tags": [["O", "O"], ["O", "B-PERSON"]],
        "stars": [5, -1],
    }
    stars = {"stars": {"task": "stars", "level": "sentence"}}
    dataset = load_hf_dataset(DatasetDict({"train": Dataset.from_dict(rows)}), task_columns=stars)
    train = dataset["train"]
    assert task_levels(train.features) == {"intent": "sentence", "stars": "sentence", "ner": "token"}
    assert task_label_lists(dataset)["intent"] == ["alarm", "call", UNK] and train["stars"][1] == NO_LABEL
    assert task_label_lists(dataset)["stars"] == ["5", UNK]
    remapped = load_hf_dataset(
        DatasetDict({"train": Dataset.from_dict(rows)}), task_columns={"intent": {"task": "topic", "level": "sentence"}}
    )
    assert task_label_lists(remapped)["topic"] == ["alarm", "call", UNK] and "intent" not in task_label_lists(remapped)


@pytest.mark.parametrize(
    ("task", "level", "problem"),
    [
        ("text", "sentence", "'text' cannot name a task"),
        ("entities", "token", "'entities' cannot name a task"),
        ("sentence", "sentence", "'sentence' cannot name a task"),
        ("pos_tags", "token", "'pos_tags' cannot name a task"),
        ("intent", "token", "'intent' is the default sentence-level task"),
    ],
)
def test_task_names_that_would_clash_are_refused_for_every_format(tmp_path, task, level, problem):
    rows = {"tokens": [["wake", "me"]], "label": ["x"]}
    with pytest.raises(ValueError, match=re.escape(problem)):
        load_hf_dataset(Dataset.from_dict(rows), task_columns={"label": {"task": task, "level": level}})
    value = '"x"' if level == "sentence" else "[]"
    data = write(tmp_path / "train.jsonl", f'{{"text": "wake me", "{task}": {value}}}\n')
    if task not in ("text", "entities", "intent"):  # those are fields of the default layout
        with pytest.raises(ValueError, match=r"line 1: " + re.escape(problem)):
            load_jsonl(data)


def test_hf_dataset_json_files_via_load_dataset(tmp_path):
    rows = [{"tokens": ["wake", "me"], "ner_tags": ["O", "O"], "intent": "alarm"}]
    write(tmp_path / "train.jsonl", "\n".join(json.dumps(row) for row in rows) + "\n")
    direct = load_hf_dataset("json", data_files={"train": str(tmp_path / "train.jsonl")}, cache_dir=str(tmp_path / "c"))
    assert decoded(direct["train"]) == [{"tokens": ["wake", "me"], "intent": "alarm", "ner_tags": ["O", "O"]}]


def test_hf_dataset_errors():
    dataset = hf_style_dataset()
    with pytest.raises(ValueError, match=r"no column \['nope'\]"):
        load_hf_dataset(dataset, tokens_column="words", intent_column="nope")
    with pytest.raises(ValueError, match="needs `tokens_column`"):
        load_hf_dataset(dataset, text_column="words", ner_column="tags")
    with pytest.raises(ValueError, match="name the columns"):
        load_hf_dataset(dataset)
    bad = Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [["O"]]})
    with pytest.raises(ValueError, match=r"train split, row 0: 1 tags for 2 words"):
        load_hf_dataset(DatasetDict({"train": bad}))


def jsonl_rows(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


STRING_ROWS = [
    {"tokens": ["wake", "me", "at", "7"], "intent": "alarm", "ner_tags": ["O", "O", "O", "B-TIME"]},
    {"tokens": ["call", "Anna"], "intent": "call", "ner_tags": ["O", "I-PERSON"]},
    {"tokens": ["hello"], "intent": "greet", "ner_tags": ["O"]},
]


def test_hf_dataset_goes_through_datasets_map_into_its_arrow_cache(tmp_path):
    files = {"train": jsonl_rows(tmp_path, STRING_ROWS)}
    dataset = load_hf_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    train = dataset["train"]
    assert train.cache_files and all(str(tmp_path / "cache") in entry["filename"] for entry in train.cache_files)
    assert decoded(train)[1] == {"tokens": ["call", "Anna"], "intent": "call", "ner_tags": ["O", "B-PERSON"]}


def test_streamed_data_is_read_lazily_with_the_given_vocabularies(tmp_path, caplog):
    files = {"train": jsonl_rows(tmp_path, STRING_ROWS)}
    eager = load_hf_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    label_lists = task_label_lists(eager)
    streamed = load_hf_dataset("json", data_files=files, streaming=True, label_lists=label_lists)
    assert isinstance(streamed, IterableDatasetDict) and isinstance(streamed["train"], IterableDataset)
    assert streamed["train"].features == eager["train"].features
    assert list(streamed["train"]) == list(eager["train"])
    with pytest.raises(ValueError, match=r"streamed data cannot be read for its intent labels.*`label_lists`"):
        load_hf_dataset("json", data_files=files, streaming=True)
    bad = load_hf_dataset(
        "json",
        data_files={"train": jsonl_rows(tmp_path, [{"tokens": ["a", "b"], "ner_tags": ["O"]}])},
        streaming=True,
        label_lists={"intent": [], "ner": ["O"]},
    )
    with pytest.raises(ValueError, match=r"train split, row 0: 1 tags for 2 words"):
        next(iter(bad["train"]))


def test_streamed_classlabel_columns_give_their_own_names():
    streamed = {split: rows.to_iterable_dataset() for split, rows in hf_style_dataset().items()}
    dataset = load_hf_dataset(
        IterableDatasetDict(streamed), tokens_column="words", intent_column="label", ner_column="tags"
    )
    assert task_label_lists(dataset) == {"intent": ["book", "greet", UNK], "ner": ["O", "B-CITY", "I-CITY", UNK]}
    assert [row["tokens"] for row in dataset["train"]] == [["hi"], ["book", "new", "york"]]


def test_hf_dataset_vocabularies_come_from_the_rows_a_filtered_dataset_shows():
    rows = Dataset.from_dict(
        {"tokens": [["a"], ["b"], ["c"]], "intent": ["x", "y", "z"], "ner_tags": [["O"], ["B-Q"], ["O"]]}
    )
    kept = rows.filter(lambda row: row["intent"] != "y")
    dataset = load_hf_dataset(DatasetDict({"train": kept}))
    assert task_label_lists(dataset) == {"intent": ["x", "z", UNK], "ner": ["O", UNK]}  # no `y`, no `Q` entity
    assert decoded(dataset["train"]) == [
        {"tokens": ["a"], "intent": "x", "ner_tags": ["O"]},
        {"tokens": ["c"], "intent": "z", "ner_tags": ["O"]},
    ]


def test_hf_dataset_refuses_a_label_named_unk_by_name():
    rows = Dataset.from_dict({"tokens": [["a"], ["b"]], "intent": ["x", "UNK"]})
    with pytest.raises(ValueError, match=r"train split: the intent label 'UNK' \(column 'intent'\) is reserved"):
        load_hf_dataset(DatasetDict({"train": rows}))
