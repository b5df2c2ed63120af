"""Embedding preservation: the sentence embedding of the model a run starts from is the teacher of the trained one.

The teacher's vectors are computed once per training example before training (the model in eval mode, no dropout)
and kept as a dataset column, so each step costs no second forward pass; the joint loss then adds
`weight * (1 - cosine(student embedding, teacher vector))`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from datasets import Dataset, List, Value
from torch import nn

from .forward_pass import sentence_outputs

TEACHER_EMBEDDING = "teacher_embedding"


def embedding_preservation_loss(embedding: torch.Tensor, teacher_embedding: torch.Tensor) -> torch.Tensor:
    """Mean `1 - cosine` between each sentence embedding and its teacher vector, in float32 (any model dtype)."""
    teacher_embedding = teacher_embedding.to(device=embedding.device, dtype=torch.float32)
    return (1 - nn.functional.cosine_similarity(embedding.float(), teacher_embedding, dim=-1)).mean()


@torch.no_grad()
def teacher_embeddings(
    model: nn.Module,
    dataset: Dataset,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    batch_size: int = 64,
) -> torch.Tensor:
    """
    `model`'s `sentence_embedding` of every example of `dataset` (rows as `collate` takes them; `<task>_labels` and
    `teacher_embedding` stay out of the forward pass), in eval mode (no dropout), on the model's device, returned as
    float32 on the CPU in the dataset's order. The model's training mode and torch's random state are as before
    (iterating a `DataLoader` draws a seed), so training afterwards sees the same data order and dropout as without
    this pass.
    """
    if not len(dataset):
        return torch.empty(0, 0)
    return sentence_outputs(model, dataset, collate, batch_size, "Teacher embeddings")["sentence_embedding"]


def with_teacher_column(dataset: Dataset, vectors: torch.Tensor) -> Dataset:
    """`dataset` (without a `teacher_embedding` column) with `vectors` (one row each) as that column."""
    return dataset.add_column(TEACHER_EMBEDDING, list(vectors.numpy()), feature=List(Value("float32")))


def add_teacher_embeddings(
    model: nn.Module,
    dataset: Dataset,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    batch_size: int = 64,
) -> Dataset:
    """`dataset` with `model`'s embeddings of its examples (`teacher_embeddings`) as a `teacher_embedding` column."""
    if TEACHER_EMBEDDING in dataset.column_names:
        raise ValueError(f"The dataset already has a {TEACHER_EMBEDDING!r} column.")
    return with_teacher_column(dataset, teacher_embeddings(model, dataset, collate, batch_size))
