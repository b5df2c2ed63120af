"""Reader of any `datasets` dataset (Hub id, local files, `save_to_disk` folder or object) with named columns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from .bio import BioRepairs
from .files import SPLIT_NAMES
from .labels import RawExample, build_dataset_dict
from .words import split_words

logger = logging.getLogger(__name__)


def _names_of(feature: Any) -> ClassLabel | None:
    return feature if isinstance(feature, ClassLabel) else None


def load_hf_dataset(
    name_or_path: str | Path | DatasetDict | Dataset,
    tokens_column: str | None = None,
    text_column: str | None = None,
    intent_column: str | None = None,
    ner_column: str | None = None,
    label_lists: Mapping[str, list[str]] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    **load_kwargs,
) -> DatasetDict:
    """
    Bring any `datasets` dataset (a Hub id, a local folder or files via `load_dataset`, a `save_to_disk` folder, or a
    `Dataset`/`DatasetDict` object) into this layout. Intent and tag columns may be `ClassLabel`s or strings; tags
    must be BIO. Without any column names, the columns `tokens`, `text`, `intent` and `ner_tags` are used where
    present. Without `tokens_column`, words come from splitting `text_column` with `tokenizer` (`split_words`;
    default: the packaged backbone's); `ner_column` needs `tokens_column`. `load_kwargs` go to
    `datasets.load_dataset` (e.g. `data_files`, `revision`).
    """
    if isinstance(name_or_path, (Dataset, DatasetDict)):
        loaded = name_or_path
    elif Path(name_or_path).is_dir() and any(
        (Path(name_or_path) / marker).is_file() for marker in ("dataset_dict.json", "state.json")
    ):
        loaded = datasets.load_from_disk(str(name_or_path))
    else:
        loaded = datasets.load_dataset(str(name_or_path), **load_kwargs)
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({load_kwargs.get("split", "train"): loaded})
    source = str(name_or_path) if not isinstance(name_or_path, (Dataset, DatasetDict)) else "dataset"

    columns = {"tokens": tokens_column, "text": text_column, "intent": intent_column, "ner": ner_column}
    available = next(iter(loaded.values())).column_names
    if not any(columns.values()):
        defaults = {"tokens": "tokens", "text": "text", "intent": "intent", "ner": "ner_tags"}
        columns = {role: name if name in available else None for role, name in defaults.items()}
        if not (columns["tokens"] or columns["text"]):
            raise ValueError(f"{source}: name the columns to use (tokens_column=... etc.); columns: {available}.")
    if not (columns["tokens"] or columns["text"]):
        raise ValueError(f"{source}: give `tokens_column` or `text_column`.")
    if columns["ner"] and not columns["tokens"]:
        raise ValueError(f"{source}: `ner_column` holds one tag per word, so it needs `tokens_column` too.")

    splits = {}
    for split_name, dataset in loaded.items():
        if split_name not in SPLIT_NAMES:
            logger.warning("%s: ignoring split %r (not train, validation/dev or test).", source, split_name)
            continue
        missing = [name for name in columns.values() if name and name not in dataset.column_names]
        if missing:
            raise ValueError(f"{source}, {split_name} split: no column {missing}; columns: {dataset.column_names}.")
        intent_names = _names_of(dataset.features[columns["intent"]]) if columns["intent"] else None
        ner_feature = dataset.features[columns["ner"]] if columns["ner"] else None
        ner_names = _names_of(getattr(ner_feature, "feature", None))
        repairs = BioRepairs(f"{source}, {split_name} split")
        examples = []
        for row_index, row in enumerate(dataset.select_columns([name for name in columns.values() if name])):
            where = f"{source}, {split_name} split, row {row_index}"
            text = row[columns["text"]] if columns["text"] else None
            tokens = list(row[columns["tokens"]]) if columns["tokens"] else None
            if tokens is None:
                tokens = [word for word, _ in split_words(text or "", tokenizer)]
            if not tokens:
                raise ValueError(f"{where}: empty utterance.")
            text = text if text is not None else " ".join(tokens)
            intent = row[columns["intent"]] if columns["intent"] else None
            if intent is not None and intent_names is not None:
                intent = intent_names.int2str(intent) if intent >= 0 else None
            tags = list(row[columns["ner"]] or []) if columns["ner"] else []
            if ner_names is not None:
                tags = [ner_names.int2str(tag) for tag in tags]
            if tags and len(tags) != len(tokens):
                raise ValueError(f"{where}: {len(tags)} tags for {len(tokens)} words.")
            tags = repairs.check(
                [str(tag) for tag in tags], lambda position, where=where: f"{where}, word {position + 1}"
            )
            labels = {"intent": None if intent is None else str(intent)}
            examples.append(RawExample(text, tokens, labels, {"ner": tags}, where))
        repairs.report()
        splits[SPLIT_NAMES[split_name]] = examples
    return build_dataset_dict(splits, label_lists, source)
