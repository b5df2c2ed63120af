"""`MultiTaskDataCollator`: pads inputs and every task's labels into a batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transformers import DataCollatorForTokenClassification

from ..embedding_preservation import TEACHER_EMBEDDING


@dataclass
class MultiTaskDataCollator(DataCollatorForTokenClassification):
    """
    Pads model inputs with the tokenizer and every token-level `<task>_labels` list (e.g. `ner_labels`) with
    `label_pad_token_id` (-100) on the tokenizer's padding side; sentence-level `<task>_labels` become a tensor.
    A `teacher_embedding` column (embedding preservation) becomes a float tensor. Other columns (`text`, `tokens`,
    `length`...) are dropped, so it also works with `remove_unused_columns=False`.
    """

    def __post_init__(self):
        if self.return_tensors != "pt":
            raise ValueError("MultiTaskDataCollator returns PyTorch tensors only (return_tensors='pt').")

    def torch_call(self, features: list[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        keep = set(self.tokenizer.model_input_names)
        teacher = [feature[TEACHER_EMBEDDING] for feature in features] if TEACHER_EMBEDDING in features[0] else None
        features = [
            {key: value for key, value in feature.items() if key in keep or key.endswith("_labels")}
            for feature in features
        ]
        token_tasks = [key for key, value in features[0].items() if key.endswith("_labels") and _is_sequence(value)]
        token_labels = {key: [list(feature.pop(key)) for feature in features] for key in token_tasks}
        batch = super().torch_call(features)
        length = batch["input_ids"].shape[1]
        for key, rows in token_labels.items():
            padding = [[self.label_pad_token_id] * (length - len(row)) for row in rows]
            if self.tokenizer.padding_side == "right":
                padded = [row + pad for row, pad in zip(rows, padding, strict=True)]
            else:
                padded = [pad + row for row, pad in zip(rows, padding, strict=True)]
            batch[key] = torch.tensor(padded, dtype=torch.long)
        if teacher is not None:
            batch[TEACHER_EMBEDDING] = torch.tensor(teacher, dtype=torch.float32)
        return batch


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0
