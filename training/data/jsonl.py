"""Reader of JSON Lines with character-span entities: `{"text", "intent", "entities": [{"start", "end", "label"}]}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from .files import read_lines, split_files
from .labels import RawExample, build_dataset_dict, check_task_name
from .words import char_spans_to_bio, split_words

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".json")


# The default tasks' fields: `intent` is the sentence-level task `intent`, `entities` the token-level task `ner`.
DEFAULT_FIELDS = {"intent": ("sentence", "intent"), "entities": ("token", "ner")}


def _read_records(path: Path) -> list[tuple[dict, str]]:
    """The JSON objects of a file, each with where it is (`"<path>, line <n>"`)."""
    records = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        records.append((record, where))
    return records


# A string field with a different value in every one of at least this many train records is an identifier.
MIN_RECORDS_FOR_IDENTIFIER = 20


def _task_fields(records: list[tuple[dict, str]]) -> dict[str, tuple[str, str]]:
    """Field -> (level, task): `intent` and `entities` always; every other field whose values are strings is a
    sentence-level task, one whose values are lists (of character spans) a token-level task, named after the field.
    Fields holding neither (numbers, booleans, objects: metadata) are no tasks."""
    fields = dict(DEFAULT_FIELDS)
    first_seen: dict[str, str] = {}
    for record, where in records:
        for field, value in record.items():
            if field == "text" or field in DEFAULT_FIELDS or not isinstance(value, (str, list)):
                continue
            level = "sentence" if isinstance(value, str) else "token"
            if field in fields and fields[field][0] != level:
                raise ValueError(
                    f"{where}: field {field!r} is a {'label' if level == 'sentence' else 'span list'} here but "
                    f"was a {'label' if fields[field][0] == 'sentence' else 'span list'} at {first_seen[field]}."
                )
            if field not in fields:
                if field == "ner":
                    raise ValueError(f"{where}: field 'ner' cannot name a task: the spans of `ner` are `entities`.")
                check_task_name(field, level, where)
                fields[field], first_seen[field] = (level, field), where
    return fields


def _identifier_fields(train: list[tuple[dict, str]], fields: dict[str, tuple[str, str]]) -> list[str]:
    """Sentence-level fields (not the default `intent`) whose value differs in every train record, e.g. `"id"`."""
    found = []
    for field, (level, _) in fields.items():
        values = [record[field] for record, _ in train if isinstance(record.get(field), str)]
        if field not in DEFAULT_FIELDS and level == "sentence" and len(values) >= MIN_RECORDS_FOR_IDENTIFIER:
            if len(set(values)) == len(values):
                found.append(field)
    return found


def _example(
    record: dict, where: str, fields: dict[str, tuple[str, str]], tokenizer: PreTrainedTokenizerBase | None, expand
) -> tuple[RawExample, int]:
    """One record as a `RawExample`, and how many of its spans were widened to whole words."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: empty utterance (missing or empty 'text').")
    words = split_words(text, tokenizer)
    if not words:
        raise ValueError(f"{where}: empty utterance (the tokenizer reads no word in {text!r}).")
    example = RawExample(text, [word for word, _ in words], {}, {}, where)
    widened = 0
    for field, (level, task) in fields.items():
        value = record.get(field)
        if level == "sentence":
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{where}: {field!r} must be a non-empty string or null; got {value!r}.")
            example.labels[task] = value and value.strip()
        elif value is None:
            example.tags[task] = []
        elif not isinstance(value, list):
            raise ValueError(f"{where}: {field!r} must be a list or null.")
        else:
            example.tags[task], count = char_spans_to_bio(text, words, value, where, expand)
            widened += count
    return example, widened


def load_jsonl(
    path_or_dir: str | Path | Mapping[str, str | Path],
    tokenizer: PreTrainedTokenizerBase | None = None,
    alignment: str = "strict",
    label_lists: Mapping[str, list[str]] | None = None,
    out_of_scope: Mapping[str, str] | None = None,
) -> DatasetDict:
    """
    Load JSON Lines with character-span entities: `{"text": ..., "intent": ..., "entities": [{"start", "end",
    "label"}]}` (`end` exclusive). A missing/null `intent` means no intent, a missing/null `entities` no entity
    annotation (an empty list: annotated, no entities).

    Any number of tasks: every other string-valued field is a sentence-level task named after the field (e.g.
    `"sentiment": "positive"`), and every other field that holds a list of character spans a token-level task named
    after the field (e.g. `"acts": [{"start", "end", "label"}]`); `entities` is the token-level task `ner`. A record
    may leave any task out (missing or null). Metadata is no task: fields holding numbers, booleans or objects, and
    string fields with a different value in every train record (at least 20 of them, e.g. an `"id"`), are left out
    (the latter with a warning).

    Words are the words of the model's `tokenizer` (default: the packaged backbone's), split by the rule the
    pipeline uses too (`split_words`), and each span becomes B-/I- tags on the words it covers. A span that starts
    or ends inside a word raises a `ValueError` with `alignment="strict"` (default); `alignment="expand"` widens it
    to whole words, with a warning.

    `path_or_dir` is a folder of `train.jsonl`, `validation.jsonl` (or `dev.jsonl`), `test.jsonl`, one file (the
    train split) or a `{split: file}` mapping.
    """
    if alignment not in ("strict", "expand"):
        raise ValueError(f"alignment must be 'strict' or 'expand', got {alignment!r}.")
    files = split_files(path_or_dir, JSONL_SUFFIXES)
    records = {split: _read_records(path) for split, path in files.items()}
    fields = _task_fields([record for split_records in records.values() for record in split_records])
    for field in _identifier_fields(records.get("train", []), fields):
        logger.warning(
            "%s: field %r has a different value in every train record: an identifier, not a task; it is left out.",
            files["train"],
            field,
        )
        del fields[field]
    splits = {}
    for split, split_records in records.items():
        splits[split], widened = [], 0
        for record, where in split_records:
            example, count = _example(record, where, fields, tokenizer, alignment == "expand")
            splits[split].append(example)
            widened += count
        if widened:
            logger.warning("%s: widened %d entity spans that cut through words to whole words.", files[split], widened)
    sentence_tasks = [task for level, task in fields.values() if level == "sentence"]
    token_tasks = [task for level, task in fields.values() if level == "token"]
    return build_dataset_dict(
        splits, label_lists, str(path_or_dir), sentence_tasks, token_tasks, out_of_scope=out_of_scope
    )


def read_examples(path: str | Path, task: str) -> tuple[list[str], list[str]]:
    """Labelled utterances of a sentence-level `task` from a JSONL file (`{"text": ..., "<task>": label}` per line),
    for `MultiTaskBertModel.add_examples`; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    texts, labels = [], []
    for record, where in _read_records(path):
        text, label = record.get("text"), record.get(task)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: needs a non-empty `text` string.")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where}: needs the label of {task!r} as a non-empty string (field `{task}`).")
        texts.append(text)
        labels.append(label.strip())
    if not texts:
        raise ValueError(f'{path} holds no examples (one JSON object per line: {{"text": ..., "{task}": ...}}).')
    return texts, labels
