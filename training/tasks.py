"""Which heads a new model gets from its data, how a trained model's heads grow with new labels, which heads train,
and which label columns each split keeps."""

from __future__ import annotations

from collections.abc import Iterable

from datasets import Dataset, DatasetDict

from ..modeling import MultiTaskBertConfig, MultiTaskBertModel
from .data import UNK, task_label_lists, task_levels
from .data.labels import label_names, tags_column


def head_specs(dataset: DatasetDict, requested: list[str] | None = None) -> dict[str, dict]:
    """`MultiTaskBertConfig.tasks` for a new model: every task the train split labels (or those `requested`)."""
    levels = task_levels(next(iter(dataset.values())).features)
    tasks = {
        task: {"level": levels[task], "labels": names}
        for task, names in task_label_lists(dataset).items()
        if requested is None or task in requested
    }
    if not tasks:
        raise ValueError(f"None of the tasks {requested or list(levels)} has labels in the train split.")
    return tasks


def trained_tasks(config: MultiTaskBertConfig, data_tasks: list[str], requested: list[str] | None = None) -> list[str]:
    """The tasks whose losses train: `requested` (each must be a head of the model), else every head and data task."""
    if requested and (missing := [task for task in requested if task not in config.tasks]):
        raise ValueError(
            f"--tasks {' '.join(missing)}: the model has no such head; its heads are {list(config.tasks)} "
            f"(the data's tasks: {data_tasks})."
        )
    return requested or [*config.tasks, *data_tasks]


def select_label_columns(features: DatasetDict, config: MultiTaskBertConfig, trained: list[str]) -> DatasetDict:
    """
    Keep the `<task>_labels` targets that training and evaluation use: those of tasks the model lacks go from every
    split; those of its heads left out of `trained` go from train only, so evaluation still scores every head. Raises
    a `ValueError` when the train split keeps none.
    """
    features = DatasetDict(features)
    for task in task_levels(next(iter(features.values())).features):
        column = f"{task}_labels"
        if task not in config.tasks:
            drop_from = list(features)
        elif task not in trained:
            drop_from = ["train"]
        else:
            drop_from = []
        for split in drop_from:
            if split in features and column in features[split].column_names:
                features[split] = features[split].remove_columns(column)
    if "train" in features and not any(f"{task}_labels" in features["train"].column_names for task in config.tasks):
        raise ValueError(f"None of the tasks {trained} has labels in the train split.")
    return features


def unknown_train_labels(train: Dataset, tasks: Iterable[str]) -> dict[str, int]:
    """Per task among `tasks`, how many labels of `train` the vocabulary lacks (they were mapped to `UNK`)."""
    unknown = {}
    for task, level in task_levels(train.features).items():
        if task not in tasks:
            continue
        unk = label_names(train.features, task).index(UNK)
        if level == "sentence":
            unknown[task] = sum(label == unk for label in train[task])
        else:
            unknown[task] = sum(tag == unk for tags in train[tags_column(task)] for tag in tags)
    return {task: count for task, count in unknown.items() if count}


def grow_heads(model: MultiTaskBertModel, dataset: DatasetDict) -> dict[str, list[str]]:
    """Add to each head of `model` the labels that `dataset` (read with its own vocabularies) has in train and the
    head lacks (`MultiTaskBertModel.grow_labels`: old rows and ids kept); returns the labels added per task."""
    grown = {}
    for task, labels in task_label_lists(dataset).items():
        if task not in model.config.tasks:
            continue
        known = set(model.config.task_labels(task))
        new = [label for label in labels if label not in known and label != UNK]
        if new:
            model.grow_labels(task, new)
            grown[task] = new
    return grown


def labels_missing_from_train(labels: dict[str, list[str]], train: Dataset) -> dict[str, list[str]]:
    """Per sentence-level task of `labels` (`{task: a model's labels}`), those that no example of `train` has (`UNK`
    aside): the labels that training on `train` alone forgets."""
    levels = task_levels(train.features)
    missing = {}
    for task, names in labels.items():
        if levels.get(task) != "sentence":
            continue
        column_names = label_names(train.features, task)
        seen = {column_names[index] for index in train.unique(task) if index >= 0}
        if absent := [label for label in names if label not in seen and label != UNK]:
            missing[task] = absent
    return missing
