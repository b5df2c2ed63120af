"""Loading CoNLL files: tags, `# intent =` comments, intent side files, errors."""

from __future__ import annotations

import logging

import pytest

from data_helpers import DATA_LOGGER, FIXTURES, assert_layout, decoded, write
from multitask_bert.training.data import NO_LABEL, UNK, load_conll, task_label_lists


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
