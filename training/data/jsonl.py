"""Reader of JSON Lines with character-span entities: `{"text", "intent", "entities": [{"start", "end", "label"}]}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from .files import read_lines, split_files
from .labels import RawExample, build_dataset_dict
from .words import char_spans_to_bio, split_words

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".json")


def _parse_jsonl(path: Path, tokenizer: PreTrainedTokenizerBase | None, expand: bool) -> list[RawExample]:
    examples = []
    widened = 0
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
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: empty utterance (missing or empty 'text').")
        intent = record.get("intent")
        if intent is not None and (not isinstance(intent, str) or not intent.strip()):
            raise ValueError(f"{where}: 'intent' must be a non-empty string or null; got {intent!r}.")
        words = split_words(text, tokenizer)
        if not words:
            raise ValueError(f"{where}: empty utterance (the tokenizer reads no word in {text!r}).")
        tags: list[str] = []
        entities = record.get("entities")
        if entities is not None:
            if not isinstance(entities, list):
                raise ValueError(f"{where}: 'entities' must be a list or null.")
            tags, count = char_spans_to_bio(text, words, entities, where, expand)
            widened += count
        examples.append(RawExample(text, [word for word, _ in words], intent and intent.strip(), tags, where))
    if widened:
        logger.warning("%s: widened %d entity spans that cut through words to whole words.", path, widened)
    return examples


def load_jsonl(
    path_or_dir: str | Path | Mapping[str, str | Path],
    tokenizer: PreTrainedTokenizerBase | None = None,
    alignment: str = "strict",
    label_lists: Mapping[str, list[str]] | None = None,
) -> DatasetDict:
    """
    Load JSON Lines with character-span entities: `{"text": ..., "intent": ..., "entities": [{"start", "end",
    "label"}]}` (`end` exclusive). A missing/null `intent` means no intent, a missing/null `entities` no entity
    annotation (an empty list: annotated, no entities).

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
    splits = {split: _parse_jsonl(path, tokenizer, alignment == "expand") for split, path in files.items()}
    return build_dataset_dict(splits, label_lists, str(path_or_dir))
