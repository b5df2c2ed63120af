"""Label vocabularies (`UNK` for labels unseen in train), the `datasets.Features` of loaded data, and the encoding of
read examples into a `DatasetDict` under one vocabulary per task."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, DatasetDict, Features, IterableDataset, Sequence, Value

logger = logging.getLogger(__name__)

UNK = "UNK"
NO_LABEL = -1
TAGS_SUFFIX = "_tags"
OUT_OF_SCOPE_SUFFIX = "_out_of_scope"


@dataclass
class RawExample:
    """
    One utterance before label encoding: `labels` has a label (or `None`: not annotated) per sentence-level task,
    `tags` one BIO tag per word (or `[]`: not annotated) per token-level task; `where` (e.g. `"train.conll, line
    12"`) goes into error messages.
    """

    text: str
    tokens: list[str]
    labels: dict[str, str | None]
    tags: dict[str, list[str]]
    where: str


TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names that columns, pipeline results or metric names already use.
RESERVED_TASK_NAMES = ("text", "tokens", "entities", "entity", "sentence", "sentence_embedding")
DEFAULT_TASK_LEVELS = {"intent": "sentence", "ner": "token"}


def check_task_name(task: str, level: str, where: str) -> None:
    """Raise a `ValueError` (at `where`) unless `task` can name a task of this level in columns, results and metrics."""
    default_level = DEFAULT_TASK_LEVELS.get(task, level)
    if not TASK_NAME.fullmatch(task) or task.endswith(TAGS_SUFFIX) or task in RESERVED_TASK_NAMES:
        raise ValueError(
            f"{where}: {task!r} cannot name a task: use letters, digits and _ (not first), not ending in "
            f"{TAGS_SUFFIX!r}, and none of {list(RESERVED_TASK_NAMES)}."
        )
    if default_level != level:
        raise ValueError(f"{where}: {task!r} is the default {default_level}-level task; it cannot be {level}-level.")


def tags_column(task: str) -> str:
    """The column of a token-level task's tags: `ner_tags` for `ner`."""
    return task + TAGS_SUFFIX


def out_of_scope_column(task: str) -> str:
    """The boolean column that marks a sentence-level task's out-of-scope examples: `intent_out_of_scope`."""
    return task + OUT_OF_SCOPE_SUFFIX


def data_features(
    sentence_labels: Mapping[str, list[str]],
    token_labels: Mapping[str, list[str]],
    out_of_scope_tasks: Iterable[str] = (),
) -> Features:
    """`text`, `tokens`, a `ClassLabel` column per sentence-level task, a `Sequence(ClassLabel)` `<task>_tags` column
    per token-level task, and a boolean `<task>_out_of_scope` column per task with an out-of-scope label."""
    features = {"text": Value("string"), "tokens": Sequence(Value("string"))}
    features.update({task: ClassLabel(names=names) for task, names in sentence_labels.items()})
    features.update({tags_column(task): Sequence(ClassLabel(names=names)) for task, names in token_labels.items()})
    features.update({out_of_scope_column(task): Value("bool") for task in out_of_scope_tasks})
    return Features(features)


def check_out_of_scope(
    splits: Mapping[str, list[RawExample]],
    out_of_scope: Mapping[str, str],
    sentence_tasks: list[str],
    label_lists: Mapping[str, list[str]] | None,
    source: str,
) -> None:
    """Raise a `ValueError` unless each out-of-scope label can be one (`check_out_of_scope_labels`) and (without a
    given vocabulary) is the label of at least one example."""
    check_out_of_scope_labels(out_of_scope, sentence_tasks, label_lists, source)
    for task, label in out_of_scope.items():
        counts = {name: sum(example.labels.get(task) == label for example in rows) for name, rows in splits.items()}
        # Against misspellings when the label is declared for new data (a trained model's data may have none).
        if label_lists is None and not any(counts.values()):
            raise ValueError(
                f"{source}: no example has the out-of-scope {task} label {label!r} (checked {', '.join(counts)}); "
                "check its spelling: out-of-scope examples may be missing from train, but the label must be the data's."
            )


def check_out_of_scope_labels(
    out_of_scope: Mapping[str, str],
    sentence_tasks: list[str],
    label_lists: Mapping[str, list[str]] | None,
    source: str,
) -> None:
    """Raise a `ValueError` unless each out-of-scope label belongs to a sentence-level task and is not `UNK` nor a
    label of the given vocabulary."""
    for task, label in out_of_scope.items():
        if task not in sentence_tasks:
            raise ValueError(
                f"{source}: an out-of-scope label for {task!r}, which is not a sentence-level task of the data "
                f"(those are {sentence_tasks})."
            )
        if label == UNK:
            raise ValueError(
                f"{source}: the out-of-scope label cannot be {UNK!r} (it marks labels unseen in training)."
            )
        if label_lists is not None and label in label_lists.get(task, []):
            raise ValueError(
                f"{source}: {label!r} is one of the model's {task} labels, so it cannot be the out-of-scope label."
            )


def task_levels(features: Features) -> dict[str, str]:
    """Task name -> `"sentence"` or `"token"`, in column order, read from the features."""
    levels = {}
    for column, feature in features.items():
        if isinstance(feature, ClassLabel):
            levels[column] = "sentence"
        elif column.endswith(TAGS_SUFFIX) and isinstance(getattr(feature, "feature", None), ClassLabel):
            levels[column.removesuffix(TAGS_SUFFIX)] = "token"
    return levels


def label_names(features: Features, task: str) -> list[str]:
    """A task's label names, in id order."""
    feature = features[task] if task in features else features[tags_column(task)].feature
    return list(feature.names)


def bio_tag_names(entity_types: list[str]) -> list[str]:
    """`O`, then `B-`/`I-` for every entity type in sorted order, then `UNK`."""
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in sorted(entity_types) for prefix in "BI"] + [UNK]


def label_lists_from_train(
    train: list[RawExample],
    sentence_tasks: list[str],
    token_tasks: list[str],
    out_of_scope: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Per sentence-level task its sorted labels (not the out-of-scope one) then `UNK`; per token-level task
    `bio_tag_names` of its types."""
    label_lists = {}
    for task in sentence_tasks:
        labels = {example.labels.get(task) for example in train} - {None, (out_of_scope or {}).get(task)}
        label_lists[task] = sorted(labels) + [UNK]
    for task in token_tasks:
        types = {tag[2:] for example in train for tag in example.tags.get(task, []) if tag != "O"}
        label_lists[task] = bio_tag_names(list(types))
    return label_lists


def checked_label_lists(label_lists: Mapping[str, list[str]], token_tasks: list[str]) -> dict[str, list[str]]:
    """Given vocabularies (e.g. a model's); `UNK` is appended where missing, a token task's must start with `O`."""
    checked = {}
    for task, names in label_lists.items():
        names = list(names)
        if task in token_tasks and (not names or names[0] != "O"):
            raise ValueError(f"The {task} label list must start with 'O'; got {names[:3]}...")
        checked[task] = names + [UNK] * (UNK not in names)
    return checked


def build_dataset_dict(
    splits: Mapping[str, list[RawExample]],
    label_lists: Mapping[str, list[str]] | None,
    source: str,
    sentence_tasks: Iterable[str] = ("intent",),
    token_tasks: Iterable[str] = ("ner",),
    out_of_scope: Mapping[str, str] | None = None,
) -> DatasetDict:
    """
    Encode read examples with one vocabulary per task: from train, or `label_lists` (e.g. a model's; a task it
    lacks has only `UNK`). Labels that the vocabulary lacks become `UNK`, with a warning. `out_of_scope` maps a
    sentence-level task to its out-of-scope label: examples with it get no label of the task (never a class of its
    head) and `True` in the task's `<task>_out_of_scope` column.
    """
    sentence_tasks, token_tasks = list(sentence_tasks), list(token_tasks)
    out_of_scope = dict(out_of_scope or {})
    check_out_of_scope(splits, out_of_scope, sentence_tasks, label_lists, source)
    for examples in splits.values():
        for example in examples:
            if unknown := [task for task in sentence_tasks if example.labels.get(task) == UNK]:
                raise ValueError(
                    f"{example.where}: the {unknown[0]} label {UNK!r} is reserved for labels unseen in training; "
                    "rename it."
                )
    if label_lists is None:
        if "train" not in splits:
            raise ValueError(f"{source}: no train split to take the label vocabulary from; pass `label_lists`.")
        given = label_lists_from_train(splits["train"], sentence_tasks, token_tasks, out_of_scope)
    else:
        given = {task: ["O"] if task in token_tasks else [] for task in [*sentence_tasks, *token_tasks]}
        given = checked_label_lists({**given, **label_lists}, token_tasks)
    features = data_features(
        {task: given[task] for task in sentence_tasks}, {task: given[task] for task in token_tasks}, out_of_scope
    )
    result = {}
    for split in ("train", "validation", "test"):
        if split in splits:
            result[split] = _encode_split(
                splits[split], features, sentence_tasks, token_tasks, f"{source}, {split}", out_of_scope
            )
    return DatasetDict(result)


def _encode_split(
    examples: list[RawExample],
    features: Features,
    sentence_tasks: list[str],
    token_tasks: list[str],
    source: str,
    out_of_scope: Mapping[str, str],
) -> Dataset:
    classes = {task: features[task] for task in sentence_tasks}
    classes.update({task: features[tags_column(task)].feature for task in token_tasks})
    known = {task: set(feature.names) for task, feature in classes.items()}
    unseen: set[str] = set()
    columns: dict[str, list] = {column: [] for column in features}
    for example in examples:
        columns["text"].append(example.text)
        columns["tokens"].append(example.tokens)
        for task in sentence_tasks:
            label = example.labels.get(task)
            if task in out_of_scope:
                columns[out_of_scope_column(task)].append(label == out_of_scope[task])
                label = None if label == out_of_scope[task] else label
            if label is not None and label not in known[task]:
                unseen.add(f"{task} {label}")
                label = UNK
            columns[task].append(NO_LABEL if label is None else classes[task].str2int(label))
        for task in token_tasks:
            tags = example.tags.get(task, [])
            unseen.update(f"{task} tag {tag}" for tag in tags if tag not in known[task])
            ids = [classes[task].str2int(tag if tag in known[task] else UNK) for tag in tags]
            columns[tags_column(task)].append(ids)
    if unseen:
        logger.warning(
            "%s split: %d labels are not in the vocabulary and map to UNK: %s.",
            source,
            len(unseen),
            ", ".join(sorted(unseen)),
        )
    return Dataset.from_dict(columns, features=features)


def task_label_lists(dataset_dict: DatasetDict) -> dict[str, list[str]]:
    """
    `{task: labels}` from the features (shared by all splits), in id order with `UNK` last, sentence-level tasks
    first. A task without any annotation in the train split (without one: the first split) is left out; a streamed
    split (`IterableDataset`) cannot be looked through, so every task of its features is kept.
    """
    reference = dataset_dict["train"] if "train" in dataset_dict else next(iter(dataset_dict.values()))
    if isinstance(reference, IterableDataset):
        return {task: label_names(reference.features, task) for task in task_levels(reference.features)}
    label_lists = {}
    for task, level in task_levels(reference.features).items():
        if level == "sentence" and any(label != NO_LABEL for label in reference[task]):
            label_lists[task] = label_names(reference.features, task)
        elif level == "token" and any(len(tags) for tags in reference[tags_column(task)]):
            label_lists[task] = label_names(reference.features, task)
    return label_lists
