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
from .labels import RawExample, build_dataset_dict, check_task_name
from .words import split_words

logger = logging.getLogger(__name__)

LEVELS = ("sentence", "token")


def _names_of(feature: Any) -> ClassLabel | None:
    return feature if isinstance(feature, ClassLabel) else None


def _task_columns(
    intent_column: str | None, ner_column: str | None, task_columns: Mapping[str, Mapping[str, str]] | None, source: str
) -> dict[str, tuple[str, str]]:
    """Column -> (task, level), from the two default tasks' columns and `task_columns`."""
    columns = {}
    if intent_column:
        columns[intent_column] = ("intent", "sentence")
    if ner_column:
        columns[ner_column] = ("ner", "token")
    for column, spec in (task_columns or {}).items():
        if not isinstance(spec, Mapping) or set(spec) != {"task", "level"} or spec["level"] not in LEVELS:
            raise ValueError(
                f"{source}: task_columns[{column!r}] must be {{'task': NAME, 'level': 'sentence' or 'token'}}; "
                f"got {spec!r}."
            )
        check_task_name(spec["task"], spec["level"], f"{source}: task_columns[{column!r}]")
        columns[column] = (spec["task"], spec["level"])
    tasks = [task for task, _ in columns.values()]
    if len(tasks) != len(set(tasks)):
        raise ValueError(f"{source}: two columns name the same task: {sorted(columns.values())}.")
    return columns


def load_hf_dataset(
    name_or_path: str | Path | DatasetDict | Dataset,
    tokens_column: str | None = None,
    text_column: str | None = None,
    intent_column: str | None = None,
    ner_column: str | None = None,
    label_lists: Mapping[str, list[str]] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    task_columns: Mapping[str, Mapping[str, str]] | None = None,
    out_of_scope: Mapping[str, str] | None = None,
    **load_kwargs,
) -> DatasetDict:
    """
    Bring any `datasets` dataset (a Hub id, a local folder or files via `load_dataset`, a `save_to_disk` folder, or
    a `Dataset`/`DatasetDict` object) into this layout. Label and tag columns may be `ClassLabel`s or strings; tags
    must be BIO. Without a words or text column, the columns `tokens` and `text` are used where present; without any
    task column, `intent` and `ner_tags`. Without `tokens_column`, words come from splitting `text_column` with
    `tokenizer` (`split_words`; default: the packaged backbone's); tag columns need `tokens_column`. `load_kwargs`
    go to `datasets.load_dataset` (e.g. `data_files`, `revision`).

    `intent_column` and `ner_column` name the columns of the default tasks; `task_columns` maps any other column to
    a task and its level, e.g. `{"label": {"task": "sentiment", "level": "sentence"}, "pos_tags": {"task": "pos",
    "level": "token"}}`. The columns `intent` and `ner_tags` stay the default tasks' unless named otherwise or
    mapped in `task_columns`.
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

    available = next(iter(loaded.values())).column_names
    if not (tokens_column or text_column):
        tokens_column, text_column = (name if name in available else None for name in ("tokens", "text"))
        if not (tokens_column or text_column):
            raise ValueError(f"{source}: name the columns to use (tokens_column=... etc.); columns: {available}.")
    if not (intent_column or ner_column):
        # The default tasks' columns, unless `task_columns` maps them or names a default task itself.
        taken = set(task_columns or {}) | {
            spec.get("task") for spec in (task_columns or {}).values() if isinstance(spec, Mapping)
        }
        intent_column, ner_column = (
            column if column in available and not {column, task} & taken else None
            for column, task in (("intent", "intent"), ("ner_tags", "ner"))
        )
    tasks = _task_columns(intent_column, ner_column, task_columns, source)
    tag_columns = [column for column, (_, level) in tasks.items() if level == "token"]
    if tag_columns and not tokens_column:
        raise ValueError(f"{source}: tag columns {tag_columns} hold one tag per word; each needs `tokens_column` too.")
    sentence_tasks = ["intent", *(task for task, level in tasks.values() if level == "sentence" and task != "intent")]
    token_tasks = ["ner", *(task for task, level in tasks.values() if level == "token" and task != "ner")]

    splits = {}
    for split_name, dataset in loaded.items():
        if split_name not in SPLIT_NAMES:
            logger.warning("%s: ignoring split %r (not train, validation/dev or test).", source, split_name)
            continue
        used = [name for name in (tokens_column, text_column, *tasks) if name]
        missing = [name for name in used if name not in dataset.column_names]
        if missing:
            raise ValueError(f"{source}, {split_name} split: no column {missing}; columns: {dataset.column_names}.")
        names = {
            column: _names_of(dataset.features[column] if level == "sentence" else dataset.features[column].feature)
            for column, (_, level) in tasks.items()
        }
        repairs = BioRepairs(f"{source}, {split_name} split")
        examples = []
        for row_index, row in enumerate(dataset.select_columns(used)):
            where = f"{source}, {split_name} split, row {row_index}"
            text = row[text_column] if text_column else None
            tokens = list(row[tokens_column]) if tokens_column else None
            if tokens is None:
                tokens = [word for word, _ in split_words(text or "", tokenizer)]
            if not tokens:
                raise ValueError(f"{where}: empty utterance.")
            text = text if text is not None else " ".join(tokens)
            example = RawExample(text, tokens, {}, {}, where)
            for column, (task, level) in tasks.items():
                value = row[column]
                if level == "sentence":
                    if isinstance(value, int) and value < 0:  # `datasets`' "no label"
                        value = None
                    elif value is not None and names[column] is not None:
                        value = names[column].int2str(value)
                    example.labels[task] = None if value is None else str(value)
                    continue
                tags = list(value or [])
                if names[column] is not None:
                    tags = [names[column].int2str(tag) for tag in tags]
                if tags and len(tags) != len(tokens):
                    raise ValueError(f"{where}: {len(tags)} tags for {len(tokens)} words in {column!r}.")
                example.tags[task] = repairs.check(
                    [str(tag) for tag in tags], lambda position, where=where: f"{where}, word {position + 1}"
                )
            examples.append(example)
        repairs.report()
        splits[SPLIT_NAMES[split_name]] = examples
    return build_dataset_dict(splits, label_lists, source, sentence_tasks, token_tasks, out_of_scope=out_of_scope)
