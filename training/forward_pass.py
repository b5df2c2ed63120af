"""One no-dropout pass of a model over a tokenized dataset, collecting what its sentence-level outputs hold."""

from __future__ import annotations

from collections.abc import Callable

import torch
from datasets import Dataset
from torch import nn
from torch.utils.data import DataLoader
from transformers.utils import logging as transformers_logging

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def sentence_outputs(
    model: nn.Module,
    dataset: Dataset,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    batch_size: int = 64,
    description: str | None = None,
) -> dict[str, torch.Tensor]:
    """
    `model`'s `sentence_embedding`, `sentence_features`, `<task>_logits` of each sentence-level task and
    `<task>_out_of_scope_score` of each task with a detector, for every example of `dataset` (rows as `collate`
    takes them; only `input_ids`, `attention_mask` and `token_type_ids` go into the forward pass), in eval mode (no
    dropout), returned as float32 on the CPU in the dataset's order. The model's training mode and torch's random
    state are as before (iterating a `DataLoader` draws a seed), so training afterwards sees the same data order
    and dropout as without this pass. With a `description`, a progress bar shows it (silenced as transformers' own
    bars are).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # Shortest first, so each batch is padded little; the rows go back to the dataset's order below.
    lengths = [len(ids) for ids in dataset["input_ids"]]
    order = sorted(range(len(dataset)), key=lengths.__getitem__)
    computed: dict[str, list[torch.Tensor]] = {}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            batches = DataLoader(dataset.select(order), batch_size=batch_size, collate_fn=collate, shuffle=False)
            if description is not None:
                batches = transformers_logging.tqdm(
                    batches, desc=description, disable=not transformers_logging.is_progress_bar_enabled()
                )
            for batch in batches:
                inputs = {key: batch[key].to(device) for key in MODEL_INPUTS if key in batch}
                output = model(**inputs, output_sentence_features=True)
                found = {"sentence_embedding": output.sentence_embedding, "sentence_features": output.sentence_features}
                found.update({f"{task}_logits": output.logits[task] for task in model.config.sentence_tasks})
                for task, scores in (output.out_of_scope_scores or {}).items():
                    found[f"{task}_out_of_scope_score"] = scores
                for key, value in found.items():
                    computed.setdefault(key, []).append(value.float().cpu())
        finally:
            model.train(was_training)
    positions = torch.tensor(order, dtype=torch.long)
    results = {}
    for key, parts in computed.items():
        stacked = torch.cat(parts)
        results[key] = torch.empty_like(stacked)
        results[key][positions] = stacked
    return results
