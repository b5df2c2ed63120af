"""Data loading (JointBERT, CoNLL, JSONL, `datasets`), the embedded synthetic set, tokenization and batching."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from transformers import Trainer, TrainingArguments

from conftest import REPO_ROOT, SHARED_DATA, tiny_model
from multitask_bert.training.data import (
    IGNORE_INDEX,
    NO_LABEL,
    UNK,
    MultiTaskDataCollator,
    combine_datasets,
    default_data_dir,
    load_conll,
    load_data,
    load_default_dataset,
    load_hf_dataset,
    load_jointbert,
    load_jsonl,
    task_label_lists,
    task_levels,
    tokenize_dataset,
)

FIXTURES = Path(__file__).parent / "fixtures"
DATA_LOGGER = "multitask_bert.training.data"


def load_generator():
    """`scripts/generate_embedded_data.py`, the generator of the embedded data (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "generate_embedded_data", REPO_ROOT / "scripts" / "generate_embedded_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decoded(dataset: Dataset) -> list[dict]:
    """Rows with label names instead of ids (`None` for no intent)."""
    intents = dataset.features["intent"]
    tags = dataset.features["ner_tags"].feature
    return [
        {
            "tokens": row["tokens"],
            "intent": None if row["intent"] == NO_LABEL else intents.int2str(row["intent"]),
            "ner_tags": [tags.int2str(tag) for tag in row["ner_tags"]],
        }
        for row in dataset
    ]


def assert_layout(dataset_dict: DatasetDict) -> None:
    """The common contract: known splits, the four columns, identical features, O first and UNK last."""
    assert set(dataset_dict) <= {"train", "validation", "test"}
    features = [dataset.features for dataset in dataset_dict.values()]
    assert all(feature == features[0] for feature in features)
    assert list(features[0]) == ["text", "tokens", "intent", "ner_tags"]
    assert isinstance(features[0]["intent"], ClassLabel)
    assert isinstance(features[0]["ner_tags"].feature, ClassLabel)
    assert features[0]["intent"].names[-1] == UNK
    ner_names = features[0]["ner_tags"].feature.names
    assert ner_names[0] == "O" and ner_names[-1] == UNK


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_jointbert(root: Path, splits: dict[str, tuple[str, str | None, str | None]]) -> Path:
    for split, (seq_in, seq_out, label) in splits.items():
        write(root / split / "seq.in", seq_in)
        if seq_out is not None:
            write(root / split / "seq.out", seq_out)
        if label is not None:
            write(root / split / "label", label)
    return root


# --- JointBERT ----------------------------------------------------------------------------------------------------

# Hand-written, written at test time: files named seq.in/seq.out are never tracked, so that benchmark data cannot
# slip into the repository unnoticed. Line 1 of train has an I- tag after O; ATIS-style `#` intents; a trailing space.
JOINTBERT_FIXTURE = {
    "train": (
        "wake me up at 7 am\nset a timer for ten minutes \nremind me to call john tomorrow\n"
        "flights from new york to denver and their fares\n",
        "O O O O I-TIME I-TIME\nO O O O B-DURATION I-DURATION\nO O O O B-PERSON B-DATE\n"
        "O O B-fromloc I-fromloc O B-toloc O O O\n",
        "set_alarm\nset_timer\nset_reminder\nflight#airfare\n",
    ),
    "dev": (
        "alarm at 6 pm\nset a timer for 5 minutes\n",
        "O O B-TIME I-TIME\nO O O O B-DURATION I-DURATION\n",
        "set_alarm\nset_timer\n",
    ),
    "test": (
        "cancel my alarm at 8 am\nbook a table at noon\n",
        "O O O O B-TIME I-TIME\nO O B-restaurant O B-TIME\n",
        "cancel_event\nset_alarm\n",
    ),
}


@pytest.fixture
def fixtures(tmp_path) -> Path:
    """The fixture folders, with the JointBERT one written beside the tracked CoNLL and JSONL ones."""
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    write_jointbert(tmp_path / "fixtures" / "jointbert", JOINTBERT_FIXTURE)
    return tmp_path / "fixtures"


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


# --- CoNLL --------------------------------------------------------------------------------------------------------


def test_conll_fixture(caplog):
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        dataset = load_conll(FIXTURES / "conll")
    assert_layout(dataset)
    train = decoded(dataset["train"])
    assert dataset["train"][0]["text"] == "Wake me at 7am!"  # from "# text = ..."
    assert train[0] == {
        "tokens": ["Wake", "me", "at", "7am", "!"],
        "intent": "set_alarm",
        "ner_tags": 3 * ["O"] + ["B-TIME", "O"],
    }
    # tag from the last column, the POS column in between is skipped
    assert train[1]["ner_tags"] == ["O", "B-PERSON", "I-PERSON", "O", "B-DATE"]
    assert dataset["train"][1]["text"] == "meet Sarah Connor on Friday"
    # NER-only sentence: no intent comment -> -1; I-LOCATION after O repaired
    assert dataset["train"][2]["intent"] == NO_LABEL
    assert train[2]["ner_tags"] == ["B-PERSON", "O", "O", "B-LOCATION", "I-LOCATION"]
    assert "train.conll: repaired 1 I- tags" in caplog.text and "train.conll, line 21" in caplog.text
    assert decoded(dataset["test"])[1] == {
        "tokens": ["timer", "for", "ten", "minutes"],
        "intent": UNK,
        "ner_tags": ["O", "O", UNK, UNK],
    }


def test_conll_intents_from_side_file(tmp_path):
    data = write(tmp_path / "train.txt", "wake O\nme O\n\ncall O\nSam B-PERSON\n")
    write(tmp_path / "train.intent", "set_alarm\nmake_call\n")
    assert decoded(load_conll(tmp_path)["train"])[1]["intent"] == "make_call"  # found next to the data file
    other = write(tmp_path / "labels.txt", "a\nb\n")
    assert decoded(load_conll(data, intent_files=other)["train"])[0]["intent"] == "a"
    write(tmp_path / "short.txt", "a\n")
    with pytest.raises(ValueError, match=r"short.txt has 1 lines for 2 sentences"):
        load_conll(data, intent_files=tmp_path / "short.txt")


def test_conll_side_file_contradicting_comment(tmp_path):
    data = write(tmp_path / "train.conll", "# intent = a\nwake O\n")
    write(tmp_path / "train.intent", "b\n")
    with pytest.raises(ValueError, match=r"train.intent, line 1: intent 'b' contradicts"):
        load_conll(data)


def test_conll_intent_only_sentences(tmp_path):
    data = write(tmp_path / "train.conll", "# intent = greet\nhello\nthere\n\n# intent = bye\nbye\n")
    dataset = load_conll(data)
    assert dataset["train"]["ner_tags"] == [[], []]
    assert task_label_lists(dataset) == {"intent": ["bye", "greet", UNK]}


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("wake O\nme\nup O\n", 2, "tag count differs from word count"),
        ("wake O\n\n# intent = a\n\nok O\n", 3, "empty utterance"),
        ("wake O\nme X-foo\n", 2, "'X-foo' is not BIO"),
        ("wake O\nme B-\n", 2, "'B-' is not BIO"),
    ],
)
def test_conll_errors_name_file_and_line(tmp_path, content, line, message):
    data = write(tmp_path / "train.conll", content)
    with pytest.raises(ValueError, match=message) as error:
        load_conll(data)
    assert f"{data}, line {line}" in str(error.value)


# --- JSONL --------------------------------------------------------------------------------------------------------


def test_jsonl_fixture(caplog):
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        dataset = load_jsonl(FIXTURES / "jsonl")
    assert_layout(dataset)
    assert set(dataset) == {"train", "validation"}  # dev.jsonl -> validation
    train = decoded(dataset["train"])
    assert train[0]["tokens"] == ["Wake", "me", "up", "at", "7", ":", "30", "am", "tomorrow", ",", "please"]
    assert train[0]["ner_tags"] == ["O"] * 4 + ["B-TIME", "I-TIME", "I-TIME", "I-TIME", "B-DATE", "O", "O"]
    assert train[1]["tokens"] == ["meet", "Zoë", "Müller", "on", "Friday", "?"]  # double space, accents, "Friday?"
    assert train[1]["ner_tags"] == ["O", "B-PERSON", "I-PERSON", "O", "B-DATE", "O"]
    assert train[2]["ner_tags"] == ["O"] * 6  # "entities": [] -> annotated, nothing found
    assert train[3]["ner_tags"] == [] and train[3]["intent"] == "set_timer"  # no "entities" -> no NER annotation
    assert train[4]["intent"] is None and train[4]["ner_tags"] == ["O", "O", "B-PERSON", "O", "B-LOCATION"]
    assert train[4]["tokens"][2] == "Anastazja"
    assert dataset["train"][1]["text"] == "meet  Zoë Müller on Friday?"
    validation = decoded(dataset["validation"])
    assert validation[1] == {"tokens": ["cancel", "my", "3", "pm"], "intent": UNK, "ner_tags": ["O", "O", UNK, UNK]}
    assert "HOUR" in caplog.text


def test_jsonl_span_inside_word(tmp_path, caplog):
    data = write(
        tmp_path / "train.jsonl", '{"text": "meet at 7pm", "entities": [{"start": 8, "end": 9, "label": "HOUR"}]}\n'
    )
    with pytest.raises(ValueError, match=r"train.jsonl, line 1: entity HOUR '7' \[8, 9\) starts or ends inside a word"):
        load_jsonl(data)
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        dataset = load_jsonl(data, alignment="expand")
    assert decoded(dataset["train"])[0]["ner_tags"] == ["O", "O", "B-HOUR"]
    assert "widened 1 entity spans" in caplog.text


def test_jsonl_span_whitespace_is_trimmed(tmp_path):
    data = write(
        tmp_path / "train.jsonl", '{"text": "at 7 pm ok", "entities": [{"start": 2, "end": 8, "label": "TIME"}]}\n'
    )
    assert decoded(load_jsonl(data)["train"])[0]["ner_tags"] == ["O", "B-TIME", "I-TIME", "O"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "  ", "intent": "a"}', "empty utterance"),
        ('{"intent": "a"}', "empty utterance"),
        ('{"text": "a b", "entities": [{"start": 0, "end": 9, "label": "X"}]}', r"not inside the text"),
        (
            '{"text": "a b", "entities": [{"start": 0, "end": 3, "label": "X"}, {"start": 2, "end": 3, "label": "Y"}]}',
            "overlaps another entity",
        ),
        ('{"text": "a b", "entities": [{"start": 0, "end": 1}]}', "needs 'start', 'end' and 'label'"),
        ('{"text": "a b", "entities": [{"start": 0, "end": 1, "label": "X Y"}]}', "without spaces"),
        ('{"text": "a b", "intent": 3}', "'intent' must be a non-empty string"),
        ('{"text": "a b",', "invalid JSON"),
        ('["a b"]', "expected a JSON object"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    data = write(tmp_path / "train.jsonl", '{"text": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as error:
        load_jsonl(data)
    assert f"{data}, line 2" in str(error.value)


def test_jsonl_folder_without_split_files(tmp_path):
    write(tmp_path / "notes.jsonl", '{"text": "a"}\n')
    with pytest.raises(ValueError, match="has no split files"):
        load_jsonl(tmp_path)


def test_jsonl_words_are_the_tokenizers(tmp_path, byte_level_tokenizer):
    data = write(
        tmp_path / "train.jsonl", '{"text": "at 7:30pm!", "entities": [{"start": 3, "end": 9, "label": "T"}]}\n'
    )
    assert decoded(load_jsonl(data)["train"])[0] == {
        "tokens": ["at", "7", ":", "30pm", "!"],
        "intent": None,
        "ner_tags": ["O", "B-T", "I-T", "I-T", "O"],
    }
    assert decoded(load_jsonl(data, byte_level_tokenizer)["train"])[0] == {
        "tokens": ["at", "7", ":", "30", "pm", "!"],
        "intent": None,
        "ner_tags": ["O", "B-T", "I-T", "I-T", "I-T", "O"],
    }


def test_jsonl_text_without_words_is_an_empty_utterance(tmp_path):
    data = write(tmp_path / "train.jsonl", '{"text": "\\u200b\\u200b", "intent": "greet"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl, line 1: empty utterance"):
        load_jsonl(data)


# --- datasets (Hub ids, local files, save_to_disk folders, objects) ---------------------------------------------------


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


# --- tokenization and batching --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jsonl_dataset():
    return load_jsonl(FIXTURES / "jsonl")


def test_tokenize_first_subtoken_round_trip(tokenizer, jsonl_dataset):
    encoded = tokenize_dataset(jsonl_dataset, tokenizer)
    for dataset in encoded.values():
        assert {"input_ids", "attention_mask", "token_type_ids", "intent_labels", "ner_labels", "length"} <= set(
            dataset.column_names
        )
        for row in dataset:
            word_ids = tokenizer(row["tokens"], is_split_into_words=True).word_ids()
            assert len(row["ner_labels"]) == len(row["input_ids"]) == row["length"] == len(word_ids)
            labelled = [position for position, label in enumerate(row["ner_labels"]) if label != IGNORE_INDEX]
            if not row["ner_tags"]:
                assert labelled == []
                continue
            first_subtokens = [
                position
                for position, word in enumerate(word_ids)
                if word is not None and (position == 0 or word_ids[position - 1] != word)
            ]
            assert labelled == first_subtokens
            # mapping the labels back through word_ids gives the word tags again
            assert [row["ner_labels"][position] for position in labelled] == row["ner_tags"]
            assert [word_ids[position] for position in labelled] == list(range(len(row["tokens"])))
            assert row["intent_labels"] == (IGNORE_INDEX if row["intent"] == NO_LABEL else row["intent"])
    assert encoded["train"][4]["intent_labels"] == IGNORE_INDEX  # the example without an intent
    assert encoded["train"][4]["ner_labels"].count(IGNORE_INDEX) > 2  # "Anastazja" has several sub-tokens


def test_tokenize_label_all_subtokens(tokenizer):
    names = ["O", "B-PERSON", "I-PERSON", UNK]
    features = Features(
        {
            "text": Value("string"),
            "tokens": Sequence(Value("string")),
            "intent": ClassLabel(names=["a", UNK]),
            "ner_tags": Sequence(ClassLabel(names=names)),
        }
    )
    words = ["meet", "Zbigniewski", "Wojciechowski", "today"]
    rows = {"text": [" ".join(words)], "tokens": [words], "intent": [0], "ner_tags": [[0, 1, 2, 0]]}
    dataset = DatasetDict({"train": Dataset.from_dict(rows, features=features)})
    row = tokenize_dataset(dataset, tokenizer, label_all_subtokens=True)["train"][0]
    word_ids = tokenizer(words, is_split_into_words=True).word_ids()
    assert word_ids.count(1) > 1 and word_ids.count(2) > 1  # the names split into several sub-tokens
    expected = []
    for position, word in enumerate(word_ids):
        if word is None:
            expected.append(IGNORE_INDEX)
        elif word == 1:  # B-PERSON on the first sub-token, I-PERSON on the rest
            expected.append(1 if word_ids[position - 1] != 1 else 2)
        else:
            expected.append([0, 1, 2, 0][word])
    assert row["ner_labels"] == expected


def test_tokenize_warns_about_truncation(tokenizer, jsonl_dataset, caplog):
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        encoded = tokenize_dataset(jsonl_dataset, tokenizer, max_length=6)
    assert max(encoded["train"]["length"]) == 6
    # 4 tokens besides [CLS]/[SEP]: rows keep 4 of 11, 4 of 6, 4 of 6, 3 of 3, 3 of 5 words ("Anastazja" is 4 tokens)
    assert "train split: truncation to 6 tokens cut 13 words from 4 examples" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        tokenize_dataset(jsonl_dataset, tokenizer)
    assert "truncation" not in caplog.text


def test_collator_pads_labels_with_ignore_index(tokenizer, jsonl_dataset):
    encoded = tokenize_dataset(jsonl_dataset, tokenizer)["train"]
    features = [encoded[index] for index in range(4)]  # keeps text/tokens/length columns: the collator drops them
    batch = MultiTaskDataCollator(tokenizer)(features)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "intent_labels", "ner_labels"}
    longest = max(len(feature["input_ids"]) for feature in features)
    assert batch["input_ids"].shape == batch["ner_labels"].shape == (4, longest)
    for row, feature in enumerate(features):
        size = len(feature["input_ids"])
        assert batch["ner_labels"][row, :size].tolist() == feature["ner_labels"]
        assert (batch["ner_labels"][row, size:] == IGNORE_INDEX).all()
        assert batch["attention_mask"][row].sum() == size
    assert batch["intent_labels"].tolist() == [feature["intent_labels"] for feature in features]
    assert batch["ner_labels"].dtype == torch.long


def test_collator_left_padding(tokenizer, jsonl_dataset):
    left = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, padding_side="left")
    encoded = tokenize_dataset(jsonl_dataset, left)["train"]
    features = [encoded[2], encoded[0]]
    batch = MultiTaskDataCollator(left, pad_to_multiple_of=8)(features)
    assert batch["input_ids"].shape[1] % 8 == 0
    pad = batch["input_ids"].shape[1] - len(features[0]["input_ids"])
    assert batch["ner_labels"][0, :pad].tolist() == [IGNORE_INDEX] * pad
    assert batch["ner_labels"][0, pad:].tolist() == features[0]["ner_labels"]


def test_one_task_sets_get_only_their_labels(tokenizer, tmp_path):
    data = write(
        tmp_path / "train.jsonl", '{"text": "wake me at 7", "intent": "alarm"}\n{"text": "hi", "intent": "greet"}\n'
    )
    dataset = load_jsonl(data)
    encoded = tokenize_dataset(dataset, tokenizer)["train"]
    assert "ner_labels" not in encoded.column_names and encoded["intent_labels"] == [0, 1]
    batch = MultiTaskDataCollator(tokenizer)([encoded[0], encoded[1]])
    model = tiny_model(tasks={"intent": {"level": "sentence", "labels": task_label_lists(dataset)["intent"]}})
    assert torch.isfinite(model(**batch).loss)


@pytest.mark.parametrize("remove_unused_columns", [True, False])
def test_trainer_group_by_length_batches(tokenizer, jsonl_dataset, tmp_path, remove_unused_columns):
    labels = task_label_lists(jsonl_dataset)
    model = tiny_model(
        tasks={
            "intent": {"level": "sentence", "labels": labels["intent"]},
            "ner": {"level": "token", "labels": labels["ner"]},
        }
    )
    encoded = tokenize_dataset(jsonl_dataset, tokenizer)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        train_sampling_strategy="group_by_length",
        remove_unused_columns=remove_unused_columns,
        report_to=[],
        use_cpu=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=encoded["train"], data_collator=MultiTaskDataCollator(tokenizer)
    )
    batches = list(trainer.get_train_dataloader())
    assert sum(len(batch["input_ids"]) for batch in batches) == len(encoded["train"])
    for batch in batches:
        assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "intent_labels", "ner_labels"}
        output = model(**batch)
        assert torch.isfinite(output.loss)


# --- any number of tasks ----------------------------------------------------------------------------------------------


def test_jsonl_fields_are_tasks(tokenizer):
    dataset = load_jsonl(FIXTURES / "four_tasks", tokenizer)
    assert list(dataset["train"].features) == ["text", "tokens", "intent", "mood", "ner_tags", "acts_tags"]
    assert task_levels(dataset["train"].features) == {
        "intent": "sentence",
        "mood": "sentence",
        "ner": "token",
        "acts": "token",
    }
    labels = task_label_lists(dataset)
    assert labels["mood"] == ["annoyed", "calm", UNK]
    assert labels["acts"] == ["O", "B-POLITE", "I-POLITE", "B-REQUEST", "I-REQUEST", UNK]
    train = dataset["train"]
    assert train["mood"][4] == NO_LABEL and train["acts_tags"][5] == []  # partial labels
    acts = train.features["acts_tags"].feature
    assert [acts.int2str(tag) for tag in train["acts_tags"][2]] == ["B-POLITE", "B-REQUEST", "I-REQUEST", "O", "O"]

    encoded = tokenize_dataset(dataset, tokenizer)["train"]
    assert {"intent_labels", "mood_labels", "ner_labels", "acts_labels"} <= set(encoded.column_names)
    assert encoded["mood_labels"][4] == IGNORE_INDEX and set(encoded["acts_labels"][5]) == {IGNORE_INDEX}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"text": "a", "mood": "ok"}\n{"text": "b", "mood": 3}', r"line 2: 'mood' must be a non-empty string"),
        ('{"text": "a", "mood": "ok"}\n{"text": "b", "mood": []}', r"line 2: field 'mood' is a span list here but"),
        ('{"text": "a"}\n{"text": "b", "intent": "UNK"}', r"line 2: the intent label 'UNK' is reserved"),
        ('{"text": "a", "sentiment-score": "ok"}', r"line 1: 'sentiment-score' cannot name a task"),
        ('{"text": "a b", "acts": [{"start": 0, "end": 9, "label": "X"}]}', r"line 1: entity span \[0, 9\)"),
    ],
)
def test_jsonl_task_fields_errors_name_file_and_line(tmp_path, lines, message):
    data = write(tmp_path / "train.jsonl", lines + "\n")
    with pytest.raises(ValueError, match=message):
        load_jsonl(data)


def test_jsonl_metadata_fields_are_no_tasks(tokenizer, tmp_path, caplog):
    records = [
        {"text": f"wake me at {hour}", "intent": "set_alarm", "id": f"rec-{hour}", "count": hour, "ok": True}
        for hour in range(1, 25)
    ]
    records[0]["mood"] = "calm"  # a task that one record labels: kept
    data = write(tmp_path / "train.jsonl", "\n".join(json.dumps(record) for record in records) + "\n")
    dataset = load_jsonl(data, tokenizer)
    assert task_levels(dataset["train"].features) == {"intent": "sentence", "mood": "sentence", "ner": "token"}
    assert "'id' has a different value in every train record" in caplog.text
    few = write(tmp_path / "few" / "train.jsonl", "\n".join(json.dumps(record) for record in records[:5]) + "\n")
    assert "id" in task_levels(load_jsonl(few, tokenizer)["train"].features)  # too few records to tell


def test_combine_keeps_every_task_of_every_set(tokenizer, tmp_path):
    four = load_jsonl(FIXTURES / "four_tasks", tokenizer)
    write(tmp_path / "train.jsonl", '{"text": "hi there", "intent": "greet", "entities": []}\n')
    combined = combine_datasets(four, load_jsonl(tmp_path, tokenizer))["train"]
    assert task_levels(combined.features) == task_levels(four["train"].features)
    assert combined.features["intent"].names[:2] == ["cancel_event", "greet"]
    assert combined["mood"][-1] == NO_LABEL and combined["acts_tags"][-1] == []
