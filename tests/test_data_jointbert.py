"""Loading JointBERT folders (seq.in / seq.out / label), and the readers' common errors."""

from __future__ import annotations

import logging

import pytest

from data_helpers import DATA_LOGGER, assert_layout, decoded, write, write_jointbert
from multitask_bert.training.data import UNK, load_conll, load_jointbert, load_jsonl, task_label_lists


def test_jointbert_fixture(caplog, fixtures):
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        dataset = load_jointbert(fixtures / "jointbert")
    assert_layout(dataset)
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 4, "validation": 2, "test": 2}
    train = decoded(dataset["train"])
    # the I-TIME after O on line 1 is repaired to B-TIME, with a count naming the file
    assert train[0]["ner_tags"] == ["O", "O", "O", "O", "B-TIME", "I-TIME"]
    assert "train/seq.out: repaired 1 I- tags" in caplog.text
    # trailing space: split on whitespace, text kept as written
    assert train[1]["tokens"] == ["set", "a", "timer", "for", "ten", "minutes"]
    assert dataset["train"][1]["text"] == "set a timer for ten minutes "
    # ATIS-style multi-intent is one class
    assert train[3]["intent"] == "flight#airfare"
    assert "flight#airfare" in dataset["train"].features["intent"].names
    # test labels unseen in train become UNK
    test = decoded(dataset["test"])
    assert test[0]["intent"] == UNK
    assert test[1]["ner_tags"] == ["O", "O", UNK, "O", "B-TIME"]
    assert "cancel_event" in caplog.text and "B-restaurant" in caplog.text
    # every seen type gets both B- and I-, vocabulary in a fixed order
    assert task_label_lists(dataset)["ner"] == [
        "O",
        "B-DATE",
        "I-DATE",
        "B-DURATION",
        "I-DURATION",
        "B-PERSON",
        "I-PERSON",
        "B-TIME",
        "I-TIME",
        "B-fromloc",
        "I-fromloc",
        "B-toloc",
        "I-toloc",
        UNK,
    ]


def test_jointbert_intent_only_when_no_seq_out(tmp_path):
    root = write_jointbert(tmp_path, {"train": ("hi there\nbye now\n", None, "greet\nbye\n")})
    dataset = load_jointbert(root)
    assert dataset["train"]["ner_tags"] == [[], []]
    assert task_label_lists(dataset) == {"intent": ["bye", "greet", UNK]}


@pytest.mark.parametrize(
    ("splits", "bad_file", "message"),
    [
        ({"train": ("wake me up\n", "O O\n", "a\n")}, "train/seq.out, line 1", "2 tags for 3 words"),
        ({"train": ("wake me\n\n", "O O\nO\n", "a\nb\n")}, "train/seq.in, line 2", "empty utterance"),
        ({"train": ("a b\nc d\n", "O O\nX-foo O\n", "a\nb\n")}, "train/seq.out, line 2", "'X-foo' is not BIO"),
        ({"train": ("a b\n", "O O\n", "a\n"), "test": ("c d\n", None, "a\n")}, "test/seq.out", "Missing split file"),
        ({"train": ("a b\nc d\n", "O O\nO O\n", "a\n")}, "train/label, line 2", "has 1 lines"),
        ({"train": ("a b\nc d\n", "O O\nO O\n", "a\n\n")}, "train/label, line 2", "empty intent"),
    ],
)
def test_jointbert_errors_name_file_and_line(tmp_path, splits, bad_file, message):
    root = write_jointbert(tmp_path / "set", splits)
    with pytest.raises(ValueError, match=message) as error:
        load_jointbert(root)
    assert str(root / bad_file) in str(error.value)


def test_non_utf8_names_the_line(tmp_path):
    root = write_jointbert(tmp_path / "set", {"train": ("ok fine\n", "O O\n", "a\n")})
    write(root / "train" / "seq.in", b"ok fine\ncaf\xe9 time\n")
    write(root / "train" / "seq.out", "O O\nO O\n")
    write(root / "train" / "label", "a\nb\n")
    with pytest.raises(ValueError, match=r"seq.in, line 2: not valid UTF-8"):
        load_jointbert(root)
    conll = write(tmp_path / "train.conll", b"wake O\n\nr\xc3\xa9veil O\nm\xff O\n")
    with pytest.raises(ValueError, match=r"train.conll, line 4: not valid UTF-8"):
        load_conll(conll)
    jsonl = write(tmp_path / "train.jsonl", b'{"text": "a"}\n{"text": "\xfe"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl, line 2: not valid UTF-8"):
        load_jsonl(jsonl)


def test_missing_train_split_needs_label_lists(tmp_path):
    root = write_jointbert(tmp_path / "set", {"test": ("wake me\n", "O O\n", "a\n")})
    with pytest.raises(ValueError, match="no train split"):
        load_jointbert(root)
    dataset = load_jointbert(root, label_lists={"intent": ["a", "b"], "ner": ["O", "B-X", "I-X"]})
    assert dataset["test"].features["intent"].names == ["a", "b", UNK]
    assert dataset["test"][0]["intent"] == 0
