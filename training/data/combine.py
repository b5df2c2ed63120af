"""Combining loaded sets (e.g. an intent-only and an NER-only set) split by split under one vocabulary per task."""

from __future__ import annotations

import datasets
from datasets import Dataset, DatasetDict

from .labels import NO_LABEL, UNK, bio_tag_names, data_features, label_names, tags_column, task_levels


def _ordered_union(label_lists: list[list[str]], level: str) -> list[str]:
    names = {name for names in label_lists for name in names if name not in (UNK, "O")}
    if level == "sentence":
        return sorted(names) + [UNK]
    return bio_tag_names(list({name[2:] for name in names}))


def combine_datasets(*dataset_dicts: DatasetDict) -> DatasetDict:
    """
    Concatenate loaded sets split by split under one vocabulary per task (the union of theirs), e.g. an intent-only
    set and an NER-only set to train one model on both; a task that a set lacks is unannotated in its examples. Ids
    are remapped by name; `UNK` stays `UNK`. (Not with `Dataset.align_labels_with_mapping`: it matches names
    case-insensitively and cannot keep `NO_LABEL`.)
    """
    if not dataset_dicts:
        raise ValueError("Give at least one DatasetDict.")
    feature_sets = [next(iter(dataset_dict.values())).features for dataset_dict in dataset_dicts]
    levels: dict[str, str] = {}
    for features in feature_sets:
        for task, level in task_levels(features).items():
            if levels.setdefault(task, level) != level:
                raise ValueError(f"Task {task!r} is sentence-level in one set and token-level in another.")
    names = {
        task: _ordered_union(
            [label_names(features, task) for features in feature_sets if task in task_levels(features)], level
        )
        for task, level in levels.items()
    }
    features = data_features(
        {task: names[task] for task, level in levels.items() if level == "sentence"},
        {task: names[task] for task, level in levels.items() if level == "token"},
    )

    remapped: dict[str, list[Dataset]] = {}
    for dataset_dict, old in zip(dataset_dicts, feature_sets, strict=True):
        old_levels = task_levels(old)
        maps = {task: [names[task].index(name) for name in label_names(old, task)] for task in old_levels}

        def remap(batch, maps=maps, old_levels=old_levels):
            size = len(batch["text"])
            columns = {}
            for task, level in levels.items():
                column = task if level == "sentence" else tags_column(task)
                if task not in old_levels:
                    columns[column] = [NO_LABEL if level == "sentence" else []] * size
                elif level == "sentence":
                    columns[column] = [maps[task][label] if label != NO_LABEL else NO_LABEL for label in batch[task]]
                else:
                    columns[column] = [[maps[task][tag] for tag in tags] for tags in batch[column]]
            return columns

        for split, dataset in dataset_dict.items():
            kept = [column for column in dataset.column_names if column in ("text", "tokens")]
            dataset = dataset.map(
                remap,
                batched=True,
                features=features,
                remove_columns=[column for column in dataset.column_names if column not in kept],
            )
            remapped.setdefault(split, []).append(dataset.select_columns(list(features)))
    return DatasetDict({split: datasets.concatenate_datasets(parts) for split, parts in remapped.items()})
