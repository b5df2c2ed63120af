"""Embedding preservation: the sentence embedding of the model a run starts from is the teacher of the trained one.

The teacher's vectors are computed once per training example before training (the model in eval mode, no dropout)
and kept as a dataset column, so each step costs no second forward pass; the joint loss then adds
`weight * (1 - cosine(student embedding, teacher vector))`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from datasets import Dataset, Sequence, Value
from torch import nn
from torch.utils.data import DataLoader

TEACHER_EMBEDDING = "teacher_embedding"


def embedding_preservation_loss(embedding: torch.Tensor, teacher_embedding: torch.Tensor) -> torch.Tensor:
    """Mean `1 - cosine` between each sentence embedding and its teacher vector (0 when they point the same way)."""
    teacher_embedding = teacher_embedding.to(device=embedding.device, dtype=embedding.dtype)
    return (1 - nn.functional.cosine_similarity(embedding, teacher_embedding, dim=-1)).mean()


@torch.no_grad()
def add_teacher_embeddings(
    model: nn.Module,
    dataset: Dataset,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> Dataset:
    """
    `dataset` with a `teacher_embedding` column: `model`'s `sentence_embedding` of each example, computed in eval mode
    (no dropout) in float32. The model's training mode and torch's random state are as before (iterating a
    `DataLoader` draws a seed), so training afterwards sees the same data order and dropout as without this pass.
    """
    if TEACHER_EMBEDDING in dataset.column_names:
        raise ValueError(f"The dataset already has a {TEACHER_EMBEDDING!r} column.")
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    # Shortest first, so each batch is padded little; the vectors go back to the dataset's order below.
    lengths = [len(ids) for ids in dataset["input_ids"]]
    order = sorted(range(len(dataset)), key=lengths.__getitem__)
    computed = []
    with torch.random.fork_rng(devices=[]):
        try:
            batches = DataLoader(dataset.select(order), batch_size=batch_size, collate_fn=collate, shuffle=False)
            for batch in batches:
                inputs = {key: value.to(device) for key, value in batch.items() if not key.endswith("_labels")}
                computed.append(model(**inputs).sentence_embedding.float().cpu())
        finally:
            model.train(was_training)
    vectors = torch.empty(len(dataset), computed[0].shape[-1] if computed else 0)
    if computed:
        vectors[torch.tensor(order)] = torch.cat(computed)
    return dataset.add_column(TEACHER_EMBEDDING, vectors.tolist(), feature=Sequence(Value("float32")))
