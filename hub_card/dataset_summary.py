"""What a dataset holds, for the model card: examples per split, and per task its labels or entity mentions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from datasets import DatasetDict
from seqeval.metrics.sequence_labeling import get_entities

from ..training.data.labels import tags_column, task_levels


def count_labels(labels: Iterable[str]) -> dict[str, int]:
    """Examples per label of a sentence-level task, for `dataset_summary`."""
    return dict(Counter(labels).most_common())


def count_entities(tag_sequences: Iterable[Sequence[str]]) -> dict[str, int]:
    """Entity mentions per type in BIO-tagged sequences (seqeval's chunking), for `dataset_summary`."""
    return dict(Counter(kind for tags in tag_sequences for kind, _, _ in get_entities(list(tags))).most_common())


def summarize_dataset(dataset: DatasetDict) -> dict[str, dict]:
    """
    `dataset_summary` of a `DatasetDict` in the layout of `multitask_bert.training.data` (a `ClassLabel` column per
    sentence-level task, `-1` where missing, and a `<task>_tags` column of `ClassLabel` BIO tags per token-level
    task): examples, and per task its labels or entity mentions.
    """
    summary = {}
    for split, data in dataset.items():
        summary[split] = {"examples": len(data)}
        for task, level in task_levels(data.features).items():
            if level == "sentence":
                names = data.features[task]
                summary[split][task] = count_labels(names.int2str(label) for label in data[task] if label >= 0)
            else:
                names = data.features[tags_column(task)].feature
                tags = ([names.int2str(tag) for tag in sequence] for sequence in data[tags_column(task)])
                summary[split][task] = count_entities(tags)
    return summary
