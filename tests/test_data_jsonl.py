"""Loading JSONL files: character-offset entity spans, any number of task fields, errors."""

from __future__ import annotations

import json
import logging

import pytest

from data_helpers import DATA_LOGGER, FIXTURES, assert_layout, decoded, write
from multitask_bert.training.data import (
    IGNORE_INDEX,
    NO_LABEL,
    UNK,
    load_jsonl,
    task_label_lists,
    task_levels,
    tokenize_dataset,
)


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
