"""Tokenization of loaded data with word-aligned targets: a word's tag on its first sub-token."""

from __future__ import annotations

import logging

from datasets import DatasetDict, IterableDataset, IterableDatasetDict
from transformers import PreTrainedTokenizerBase

from ...modeling.modeling_multitask_bert import IGNORE_INDEX
from .labels import NO_LABEL, label_names, tags_column, task_label_lists, task_levels

logger = logging.getLogger(__name__)


def _continuation_ids(ner_names: list[str]) -> list[int]:
    """For each tag id, the id its word's later sub-tokens get: I-X for B-X, itself otherwise."""
    ids = {name: index for index, name in enumerate(ner_names)}
    continuation = []
    for name in ner_names:
        if name.startswith("B-"):
            if "I-" + name[2:] not in ids:
                raise ValueError(f"label_all_subtokens needs I-{name[2:]} in the NER labels, which only have {name}.")
            continuation.append(ids["I-" + name[2:]])
        else:
            continuation.append(ids[name])
    return continuation


def _aligned_labels(word_ids: list[int | None], tags: list[int], continuation: list[int] | None) -> list[int]:
    """One label per token: the word's tag on its first sub-token; on later ones `-100`, or with `continuation` the
    continuation of the word's tag; `-100` on special tokens, and everywhere when the example has no tags."""
    labels = []
    previous = None
    for word_id in word_ids:
        if word_id is None or not tags:
            labels.append(IGNORE_INDEX)
        elif word_id != previous:
            labels.append(tags[word_id])
        else:
            labels.append(continuation[tags[word_id]] if continuation else IGNORE_INDEX)
        previous = word_id
    return labels


def tokenize_dataset(
    dataset_dict: DatasetDict | IterableDatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int | None = None,
    label_all_subtokens: bool = False,
) -> DatasetDict | IterableDatasetDict:
    """
    Add model inputs and targets to every split: `input_ids`, `attention_mask` (and `token_type_ids` if the tokenizer
    makes them), `<task>_labels` per sentence-level task (e.g. `intent_labels`; `-100` without a label), per
    token-level task (e.g. `ner_labels`) one per token: the word's tag on its first sub-token, `-100` on later
    sub-tokens, special tokens, and everywhere when the example has no tags; and `length` (for `group_by_length`).
    With `label_all_subtokens=True` later sub-tokens get the word's tag too (`I-X` after `B-X`). Words cut by
    truncation (`max_length`, default the tokenizer's) are counted in a warning.

    A task that `task_label_lists` leaves out (no annotation in train) gets no `<task>_labels` column, so a model
    built from `task_label_lists` (without that head) accepts every batch.
    """
    if not tokenizer.is_fast:
        raise ValueError("tokenize_dataset needs a fast tokenizer (it aligns tags through `word_ids()`).")
    effective_max = max_length or tokenizer.model_max_length
    reference = next(iter(dataset_dict.values())).features
    levels = task_levels(reference)
    tasks = list(task_label_lists(dataset_dict))
    sentence_tasks = [task for task in tasks if levels[task] == "sentence"]
    token_tasks = [task for task in tasks if levels[task] == "token"]
    helper_columns = ["truncated_words", "untokenizable_words"]

    def encode(batch: dict[str, list], continuations: dict[str, list[int]]) -> dict[str, list]:
        encoding = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        word_ids = [encoding.word_ids(index) for index in range(len(batch["tokens"]))]
        truncated, untokenizable = [], []
        for tokens, ids in zip(batch["tokens"], word_ids, strict=True):
            seen = {word_id for word_id in ids if word_id is not None}
            cut = len(tokens) - 1 - max(seen, default=-1) if len(ids) >= effective_max else 0
            truncated.append(cut)
            untokenizable.append(len(tokens) - len(seen) - cut)
        columns = {**encoding, "length": [len(input_ids) for input_ids in encoding["input_ids"]]}
        for task in sentence_tasks:
            columns[f"{task}_labels"] = [label if label != NO_LABEL else IGNORE_INDEX for label in batch[task]]
        for task in token_tasks:
            columns[f"{task}_labels"] = [
                _aligned_labels(ids, tags, continuations.get(task))
                for ids, tags in zip(word_ids, batch[tags_column(task)], strict=True)
            ]
        return {**columns, helper_columns[0]: truncated, helper_columns[1]: untokenizable}

    continuations = {}
    if label_all_subtokens:
        continuations = {task: _continuation_ids(label_names(reference, task)) for task in token_tasks}
    result = {}
    for split, dataset in dataset_dict.items():
        if isinstance(dataset, IterableDataset):  # tokenized lazily as training reads it: no counts to warn about
            result[split] = dataset.map(encode, batched=True, fn_kwargs={"continuations": continuations})
            result[split] = result[split].remove_columns(helper_columns)
            continue
        encoded = dataset.map(
            encode, batched=True, fn_kwargs={"continuations": continuations}, desc=f"Tokenizing {split}"
        )
        cut = encoded["truncated_words"]
        if any(cut):
            logger.warning(
                "%s split: truncation to %d tokens cut %d words from %d examples; their tags are neither trained "
                "nor evaluated. Raise max_length to keep them.",
                split,
                effective_max,
                sum(cut),
                sum(count > 0 for count in cut),
            )
        lost = sum(encoded["untokenizable_words"])
        if lost:
            logger.warning(
                "%s split: %d words give no tokens with this tokenizer; their tags are dropped.", split, lost
            )
        result[split] = encoded.remove_columns(helper_columns)
    return IterableDatasetDict(result) if isinstance(dataset_dict, IterableDatasetDict) else DatasetDict(result)
