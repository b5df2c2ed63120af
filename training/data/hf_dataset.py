"""Reader of any `datasets` dataset (Hub id, local files, `save_to_disk` folder or object) with named columns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, DatasetDict, IterableDataset, IterableDatasetDict
from transformers import PreTrainedTokenizerBase

from .bio import BioRepairs
from .files import SPLIT_NAMES
from .labels import (
    NO_LABEL,
    OUT_OF_SCOPE_SUFFIX,
    TAGS_SUFFIX,
    UNK,
    bio_tag_names,
    check_out_of_scope_labels,
    check_task_name,
    checked_label_lists,
    data_features,
    out_of_scope_column,
    tags_column,
)
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
    name_or_path: str | Path | DatasetDict | Dataset | IterableDatasetDict | IterableDataset,
    tokens_column: str | None = None,
    text_column: str | None = None,
    intent_column: str | None = None,
    ner_column: str | None = None,
    label_lists: Mapping[str, list[str]] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    task_columns: Mapping[str, Mapping[str, str]] | None = None,
    out_of_scope: Mapping[str, str] | None = None,
    **load_kwargs,
) -> DatasetDict | IterableDatasetDict:
    """
    Bring any `datasets` dataset (a Hub id, a local folder or files via `load_dataset`, a `save_to_disk` folder, or
    a `Dataset`/`DatasetDict` object, or their streamed `Iterable*` kinds) into this layout. Label and tag columns may
    be `ClassLabel`s or strings; tags must be BIO. Without a words or text column, the columns `tokens` and `text`
    are used where present; without any task column, `intent` and `ner_tags`. Without `tokens_column`, words come
    from splitting `text_column` with `tokenizer` (`split_words`; default: the packaged backbone's); tag columns need
    `tokens_column`. `load_kwargs` go to `datasets.load_dataset` (e.g. `data_files`, `revision`, `streaming=True`).

    `intent_column` and `ner_column` name the columns of the default tasks; `task_columns` maps any other column to
    a task and its level, e.g. `{"label": {"task": "sentiment", "level": "sentence"}, "pos_tags": {"task": "pos",
    "level": "token"}}`. The columns `intent` and `ner_tags` stay the default tasks' unless named otherwise or
    mapped in `task_columns`.

    The rows go through `Dataset.map` (Arrow, written to the dataset's cache), so memory does not grow with the
    data; the label vocabularies come from the train split's distinct values. Streamed data is converted lazily as
    training reads it: its vocabularies are `label_lists` or its `ClassLabel` names, and a bad row fails when read.
    """
    loaded = _load(name_or_path, load_kwargs)
    streamed = isinstance(next(iter(loaded.values())), IterableDataset)
    source = str(name_or_path) if isinstance(name_or_path, (str, Path)) else "dataset"
    splits = {}
    for split_name, dataset in loaded.items():
        if split_name not in SPLIT_NAMES:
            logger.warning("%s: ignoring split %r (not train, validation/dev or test).", source, split_name)
            continue
        if dataset.features is None:  # a stream that does not declare its features: read them off its first rows
            dataset = dataset._resolve_features()
        splits[SPLIT_NAMES[split_name]] = dataset

    available = next(iter(splits.values())).column_names
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
    used = [name for name in (tokens_column, text_column, *tasks) if name]
    for split, dataset in splits.items():
        missing = [name for name in used if name not in dataset.column_names]
        if missing:
            raise ValueError(f"{source}, {split} split: no column {missing}; columns: {dataset.column_names}.")

    out_of_scope = dict(out_of_scope or {})
    check_out_of_scope_labels(out_of_scope, sentence_tasks, label_lists, source)
    if label_lists is None:
        if "train" not in splits:
            raise ValueError(f"{source}: no train split to take the label vocabulary from; pass `label_lists`.")
        vocabulary = {task: ["O"] if task in token_tasks else [] for task in [*sentence_tasks, *token_tasks]}
        vocabulary = checked_label_lists(
            {**vocabulary, **_train_vocabulary(splits["train"], tasks, out_of_scope, source)}, token_tasks
        )
    else:
        given = {task: ["O"] if task in token_tasks else [] for task in [*sentence_tasks, *token_tasks]}
        vocabulary = checked_label_lists({**given, **label_lists}, token_tasks)
    if label_lists is None and not streamed:
        _check_out_of_scope_present(splits, tasks, out_of_scope, source)
    features = data_features(
        {task: vocabulary[task] for task in sentence_tasks},
        {task: vocabulary[task] for task in token_tasks},
        out_of_scope,
    )
    converted = {}
    for split, dataset in splits.items():
        converter = _RowConverter(
            dataset, tasks, tokens_column, text_column, features, out_of_scope, tokenizer, f"{source}, {split} split"
        )
        options = {} if streamed else {"desc": f"Reading {split}", "load_from_cache_file": False}
        converted[split] = dataset.select_columns(used).map(
            converter, batched=True, with_indices=True, remove_columns=used, features=features, **options
        )
        if not streamed:
            converter.report()
    return IterableDatasetDict(converted) if streamed else DatasetDict(converted)


def _load(name_or_path, load_kwargs: dict) -> dict:
    """The splits of a `datasets` object, `save_to_disk` folder or `load_dataset` source, as a dict."""
    if isinstance(name_or_path, (Dataset, DatasetDict, IterableDataset, IterableDatasetDict)):
        loaded = name_or_path
    elif Path(name_or_path).is_dir() and any(
        (Path(name_or_path) / marker).is_file() for marker in ("dataset_dict.json", "state.json")
    ):
        loaded = datasets.load_from_disk(str(name_or_path))
    else:
        loaded = datasets.load_dataset(str(name_or_path), **load_kwargs)
    if isinstance(loaded, (Dataset, IterableDataset)):
        return {load_kwargs.get("split", "train"): loaded}
    return dict(loaded)


def _label_names(dataset: Dataset | IterableDataset, column: str, level: str) -> ClassLabel | None:
    feature = dataset.features[column]
    return _names_of(feature if level == "sentence" else getattr(feature, "feature", None))


def _distinct_labels(dataset: Dataset, column: str, level: str) -> list[str]:
    """The distinct labels (or tags) of a column, as strings, over the rows the dataset shows (after `filter`,
    `select`, `shuffle`), by Arrow compute rather than a loop over rows; negative ids and missing values (no label)
    left out."""
    array = dataset.with_format("arrow")[column]
    if level == "token":
        array = pc.list_flatten(array)
    values = [value for value in pc.unique(array).to_pylist() if value is not None]
    values = [value for value in values if not (isinstance(value, int) and value < 0)]
    names = _label_names(dataset, column, level)
    return [names.int2str(value) if names is not None else str(value) for value in values]


def _train_vocabulary(
    train: Dataset | IterableDataset,
    tasks: Mapping[str, tuple[str, str]],
    out_of_scope: Mapping[str, str],
    source: str,
) -> dict[str, list[str]]:
    """Per task its labels as `label_lists_from_train` makes them, from the distinct values of the train split's
    columns; a streamed split has only its `ClassLabel` names to give."""
    vocabulary = {}
    for column, (task, level) in tasks.items():
        names = _label_names(train, column, level)
        if isinstance(train, IterableDataset):
            if names is None:
                raise ValueError(
                    f"{source}: streamed data cannot be read for its {task} labels before training; pass "
                    f"`label_lists` (e.g. a trained model's) or make {column!r} a `ClassLabel` column."
                )
            values = list(names.names)
        else:
            values = _distinct_labels(train, column, level)
        if level == "sentence" and UNK in values:
            raise ValueError(
                f"{source}, train split: the {task} label {UNK!r} (column {column!r}) is reserved for labels unseen in "
                "training; rename it."
            )
        if level == "sentence":
            vocabulary[task] = sorted(set(values) - {out_of_scope.get(task)}) + [UNK]
        else:
            vocabulary[task] = bio_tag_names(list({value[2:] for value in values if value != "O"}))
    return vocabulary


def _check_out_of_scope_present(
    splits: Mapping[str, Dataset], tasks: Mapping[str, tuple[str, str]], out_of_scope: Mapping[str, str], source: str
) -> None:
    """Raise a `ValueError` unless some example has each out-of-scope label (against misspellings)."""
    columns = {task: column for column, (task, _) in tasks.items()}
    for task, label in out_of_scope.items():
        found = set()
        for dataset in splits.values() if task in columns else ():
            found.update(_distinct_labels(dataset, columns[task], "sentence"))
        if label not in found:
            raise ValueError(
                f"{source}: no example has the out-of-scope {task} label {label!r} (checked {', '.join(splits)}); "
                "check its spelling: out-of-scope examples may be missing from train, but the label must be the data's."
            )


class _RowConverter:
    """The batched `map` function from a split's columns to this layout's (`data_features`); it counts BIO repairs
    and labels outside the vocabulary (mapped to `UNK`) for one warning each (`report`)."""

    def __init__(
        self,
        dataset: Dataset | IterableDataset,
        tasks: Mapping[str, tuple[str, str]],
        tokens_column: str | None,
        text_column: str | None,
        features,
        out_of_scope: Mapping[str, str],
        tokenizer: PreTrainedTokenizerBase | None,
        where: str,
    ):
        self.tasks, self.tokens_column, self.text_column = tasks, tokens_column, text_column
        self.features, self.out_of_scope, self.tokenizer, self.where = features, out_of_scope, tokenizer, where
        self.names = {column: _label_names(dataset, column, level) for column, (_, level) in tasks.items()}
        self.repairs = BioRepairs(where)
        self.unseen: set[str] = set()

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        columns: dict[str, list] = {column: [] for column in self.features}
        for position, row_index in enumerate(indices):
            where = f"{self.where}, row {row_index}"
            text = batch[self.text_column][position] if self.text_column else None
            tokens = list(batch[self.tokens_column][position]) if self.tokens_column else None
            if tokens is None:
                tokens = [word for word, _ in split_words(text or "", self.tokenizer)]
            if not tokens:
                raise ValueError(f"{where}: empty utterance.")
            columns["text"].append(text if text is not None else " ".join(tokens))
            columns["tokens"].append(tokens)
            for column, (task, level) in self.tasks.items():
                value = batch[column][position]
                if level == "sentence":
                    self._add_label(columns, task, column, value, where)
                else:
                    self._add_tags(columns, task, column, value, tokens, where)
        for column, values in columns.items():  # tasks without a column of this dataset: not annotated
            if not values and indices:
                empty = (
                    [] if column.endswith(TAGS_SUFFIX) else False if column.endswith(OUT_OF_SCOPE_SUFFIX) else NO_LABEL
                )
                values.extend([empty] * len(indices))
        return columns

    def _add_label(self, columns: dict, task: str, column: str, value, where: str) -> None:
        if isinstance(value, int) and value < 0:  # `datasets`' "no label"
            value = None
        elif value is not None and self.names[column] is not None:
            value = self.names[column].int2str(value)
        label = None if value is None else str(value)
        if label == UNK:
            raise ValueError(f"{where}: the {task} label {UNK!r} is reserved for labels unseen in training; rename it.")
        if task in self.out_of_scope:
            columns[out_of_scope_column(task)].append(label == self.out_of_scope[task])
            label = None if label == self.out_of_scope[task] else label
        classes = self.features[task]
        if label is not None and label not in classes.names:
            self.unseen.add(f"{task} {label}")
            label = UNK
        columns[task].append(NO_LABEL if label is None else classes.str2int(label))

    def _add_tags(self, columns: dict, task: str, column: str, value, tokens: list[str], where: str) -> None:
        tags = list(value or [])
        if self.names[column] is not None:
            tags = [self.names[column].int2str(tag) for tag in tags]
        if tags and len(tags) != len(tokens):
            raise ValueError(f"{where}: {len(tags)} tags for {len(tokens)} words in {column!r}.")
        tags = self.repairs.check([str(tag) for tag in tags], lambda position: f"{where}, word {position + 1}")
        classes = self.features[tags_column(task)].feature
        self.unseen.update(f"{task} tag {tag}" for tag in tags if tag not in classes.names)
        columns[tags_column(task)].append([classes.str2int(tag if tag in classes.names else UNK) for tag in tags])

    def report(self) -> None:
        """One warning for the BIO repairs and one for the labels mapped to `UNK` (after a non-streamed `map`)."""
        self.repairs.report()
        if self.unseen:
            logger.warning(
                "%s: %d labels are not in the vocabulary and map to UNK: %s.",
                self.where,
                len(self.unseen),
                ", ".join(sorted(self.unseen)),
            )
