"""Label vocabularies (`UNK` for labels unseen in train), the `datasets.Features` of loaded data, and the encoding of
read examples into a `DatasetDict` under one vocabulary."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

logger = logging.getLogger(__name__)

UNK = "UNK"
NO_INTENT = -1


@dataclass
class RawExample:
    """One utterance before label encoding; `where` (e.g. `"train.conll, line 12"`) goes into error messages."""

    text: str
    tokens: list[str]
    intent: str | None
    ner_tags: list[str]
    where: str


def data_features(intent_names: list[str], ner_names: list[str]) -> Features:
    """`text`, `tokens`, `intent` (`ClassLabel`) and `ner_tags` (`Sequence(ClassLabel)`)."""
    return Features(
        {
            "text": Value("string"),
            "tokens": Sequence(Value("string")),
            "intent": ClassLabel(names=intent_names),
            "ner_tags": Sequence(ClassLabel(names=ner_names)),
        }
    )


def bio_tag_names(entity_types: list[str]) -> list[str]:
    """`O`, then `B-`/`I-` for every entity type in sorted order, then `UNK`."""
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in sorted(entity_types) for prefix in "BI"] + [UNK]


def label_lists_from_train(train: list[RawExample]) -> dict[str, list[str]]:
    """Sorted intents then `UNK`; `bio_tag_names` of the entity types."""
    intents = sorted({example.intent for example in train if example.intent is not None})
    entity_types = {tag[2:] for example in train for tag in example.ner_tags if tag != "O"}
    return {"intent": intents + [UNK], "ner": bio_tag_names(list(entity_types))}


def checked_label_lists(label_lists: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Given vocabularies (e.g. a model's); `UNK` is appended where missing, NER must start with `O`."""
    intent = list(label_lists.get("intent", []))
    ner = list(label_lists.get("ner", ["O"]))
    if not ner or ner[0] != "O":
        raise ValueError(f"The NER label list must start with 'O'; got {ner[:3]}...")
    return {"intent": intent + [UNK] * (UNK not in intent), "ner": ner + [UNK] * (UNK not in ner)}


def build_dataset_dict(
    splits: Mapping[str, list[RawExample]], label_lists: Mapping[str, list[str]] | None, source: str
) -> DatasetDict:
    """Encode read examples with one vocabulary (from train, or `label_lists`); unseen labels become `UNK`."""
    if label_lists is None:
        if "train" not in splits:
            raise ValueError(f"{source}: no train split to take the label vocabulary from; pass `label_lists`.")
        label_lists = label_lists_from_train(splits["train"])
    else:
        label_lists = checked_label_lists(label_lists)
    features = data_features(label_lists["intent"], label_lists["ner"])
    intents, tags = features["intent"], features["ner_tags"].feature
    known_intents, known_tags = set(intents.names), set(tags.names)
    result = {}
    for split in ("train", "validation", "test"):
        if split not in splits:
            continue
        unseen: set[str] = set()
        columns: dict[str, list] = {"text": [], "tokens": [], "intent": [], "ner_tags": []}
        for example in splits[split]:
            if example.intent is None:
                intent = NO_INTENT
            elif example.intent in known_intents:
                intent = intents.str2int(example.intent)
            else:
                intent = intents.str2int(UNK)
                unseen.add(f"intent {example.intent}")
            unseen.update(f"tag {tag}" for tag in example.ner_tags if tag not in known_tags)
            columns["text"].append(example.text)
            columns["tokens"].append(example.tokens)
            columns["intent"].append(intent)
            columns["ner_tags"].append([tags.str2int(tag if tag in known_tags else UNK) for tag in example.ner_tags])
        if unseen:
            logger.warning(
                "%s, %s split: %d labels are not in the vocabulary and map to UNK: %s.",
                source,
                split,
                len(unseen),
                ", ".join(sorted(unseen)),
            )
        result[split] = Dataset.from_dict(columns, features=features)
    return DatasetDict(result)


def task_label_lists(dataset_dict: DatasetDict) -> dict[str, list[str]]:
    """
    `{"intent": [...], "ner": [...]}` from the features (shared by all splits), in id order with `UNK` last. A task
    without any annotation in the train split (without one: the first split) is left out.
    """
    reference = dataset_dict["train"] if "train" in dataset_dict else next(iter(dataset_dict.values()))
    features = reference.features
    label_lists = {}
    if any(intent != NO_INTENT for intent in reference["intent"]):
        label_lists["intent"] = list(features["intent"].names)
    if any(len(tags) for tags in reference["ner_tags"]):
        label_lists["ner"] = list(features["ner_tags"].feature.names)
    return label_lists
