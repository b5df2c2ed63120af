"""Combining loaded sets (e.g. an intent-only and an NER-only set) split by split under one vocabulary."""

from __future__ import annotations

from collections.abc import Iterable

import datasets
from datasets import Dataset, DatasetDict

from .labels import NO_INTENT, UNK, bio_tag_names, data_features


def _ordered_union(label_lists: Iterable[list[str]], ner: bool) -> list[str]:
    names = {name for names in label_lists for name in names if name not in (UNK, "O")}
    if not ner:
        return sorted(names) + [UNK]
    return bio_tag_names(list({name[2:] for name in names}))


def combine_datasets(*dataset_dicts: DatasetDict) -> DatasetDict:
    """
    Concatenate loaded sets split by split under one vocabulary (the union of theirs), e.g. an intent-only set and
    an NER-only set to train one model on both. Ids are remapped by name; `UNK` stays `UNK`. (Not with
    `Dataset.align_labels_with_mapping`: it matches names case-insensitively and cannot keep `NO_INTENT`.)
    """
    if not dataset_dicts:
        raise ValueError("Give at least one DatasetDict.")
    feature_sets = [next(iter(dataset_dict.values())).features for dataset_dict in dataset_dicts]
    intent_names = _ordered_union((features["intent"].names for features in feature_sets), ner=False)
    ner_names = _ordered_union((features["ner_tags"].feature.names for features in feature_sets), ner=True)
    features = data_features(intent_names, ner_names)
    intent_ids = {name: index for index, name in enumerate(intent_names)}
    ner_ids = {name: index for index, name in enumerate(ner_names)}

    remapped: dict[str, list[Dataset]] = {}
    for dataset_dict, old in zip(dataset_dicts, feature_sets, strict=True):
        intent_map = [intent_ids[name] for name in old["intent"].names]
        ner_map = [ner_ids[name] for name in old["ner_tags"].feature.names]

        def remap(batch, intent_map=intent_map, ner_map=ner_map):
            return {
                "intent": [intent_map[intent] if intent != NO_INTENT else NO_INTENT for intent in batch["intent"]],
                "ner_tags": [[ner_map[tag] for tag in tags] for tags in batch["ner_tags"]],
            }

        for split, dataset in dataset_dict.items():
            dataset = dataset.select_columns(list(features)).map(remap, batched=True, features=features)
            remapped.setdefault(split, []).append(dataset)
    return DatasetDict({split: datasets.concatenate_datasets(parts) for split, parts in remapped.items()})
