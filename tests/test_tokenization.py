"""Tokenization (`tokenize_dataset`), the multi-task data collator and length-grouped Trainer batches."""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from transformers import Trainer, TrainingArguments

from conftest import tiny_model
from data_helpers import DATA_LOGGER, FIXTURES, write
from multitask_bert.training.data import (
    IGNORE_INDEX,
    NO_LABEL,
    UNK,
    MultiTaskDataCollator,
    load_jsonl,
    task_label_lists,
    tokenize_dataset,
)


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
