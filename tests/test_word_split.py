"""One rule splits texts into words for training and for the pipeline (`word_spans`: the tokenizer's own words), so
entity spans line up with any fast tokenizer, a RoBERTa-style byte-level BPE one included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import pipeline

from multitask_bert import load_jsonl
from multitask_bert.modeling.pipeline_multitask_bert import word_spans
from multitask_bert.training import cli

# Entities whose edges fall inside a WordPiece-style word for byte-level BPE ("9am" is "9" + "am", "Dr." is "Dr" + "."),
# on texts with accents and punctuation.
RECORDS = [
    ("remind me to call Dr. Müller tomorrow at 9am", "set_reminder", [("Dr. Müller", "PERSON"), ("9am", "TIME")]),
    ("wake me up at 7am, please", "set_alarm", [("7am", "TIME")]),
    ("don't cancel the budget meeting on friday", "cancel_event", [("budget meeting", "EVENT"), ("friday", "DATE")]),
    ("schedule lunch with Anna at noon in the lobby", "schedule", [("Anna", "PERSON"), ("noon", "TIME")]),
    ("call Anna at 9am", "set_reminder", [("Anna", "PERSON"), ("9am", "TIME")]),
    ("cancel lunch on friday, please", "cancel_event", [("friday", "DATE")]),
]


def record(text: str, intent: str, entities: list[tuple[str, str]]) -> dict:
    spans = []
    for value, label in entities:
        start = text.index(value)
        spans.append({"start": start, "end": start + len(value), "label": label})
    return {"text": text, "intent": intent, "entities": spans}


@pytest.fixture(scope="module")
def span_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("span_data")
    lines = "".join(json.dumps(record(*example), ensure_ascii=False) + "\n" for example in RECORDS)
    for split in ("train", "validation", "test"):
        (folder / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    return folder


@pytest.mark.parametrize("tokenizer_name", ["tokenizer", "byte_level_tokenizer"])
def test_training_words_are_the_tokenizers_words(request, tokenizer_name, span_data):
    tokenizer = request.getfixturevalue(tokenizer_name)
    dataset = load_jsonl(span_data, tokenizer)["train"]
    for text, tokens in zip(dataset["text"], dataset["tokens"], strict=True):
        encoding = tokenizer(text, add_special_tokens=False)
        assert tokens == [text[start:end] for start, end in word_spans(tokenizer, text)]
        assert len(tokens) == len({word_id for word_id in encoding.word_ids() if word_id is not None})


def test_byte_level_words_differ_from_wordpiece_words(tokenizer, byte_level_tokenizer):
    """The case the shared rule is for: the two tokenizers split the same text into different words."""
    text = RECORDS[0][0]
    assert word_spans(tokenizer, text) != word_spans(byte_level_tokenizer, text)


def test_byte_level_bpe_model_trained_then_piped_finds_the_trained_spans(
    tiny_roberta_backbone_dir, span_data, tmp_path
):
    output_dir = tmp_path / "model"
    argv = ["train", "--backbone", str(tiny_roberta_backbone_dir), "--data", str(span_data)]
    argv += ["--output-dir", str(output_dir), "--max-steps", "60", "--per-device-train-batch-size", "6"]
    argv += ["--learning-rate", "1e-2", "--head-learning-rate", "1e-2", "--layerwise-lr-decay", "1"]
    argv += ["--warmup-steps", "0", "--eval-strategy", "no", "--save-strategy", "no", "--disable-tqdm", "true"]
    argv += ["--classifier-dropout", "0", "--embedding-preservation-weight", "0"]
    assert cli.main(argv) == 0

    nlu = pipeline(model=str(output_dir), trust_remote_code=True)
    for text, intent, entities in RECORDS:
        prediction = nlu(text)
        assert prediction["intent"]["label"] == intent, text
        found = [(entity["word"], entity["entity_group"]) for entity in prediction["entities"]]
        assert found == entities, text
        for entity in prediction["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["word"]
