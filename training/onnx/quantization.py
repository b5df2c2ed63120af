"""int8 dynamic quantization of an exported graph, and how far its pipeline results are from fp32's (and from gold
labels), scored by the `multitask_metrics` module."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from torch import nn
from transformers import PreTrainedTokenizerBase, pipeline
from transformers.utils.logging import tqdm

from ...modeling import MultiTaskBertConfig
from ...modeling.pipeline_multitask_bert import PIPELINE_TASK
from ..metric import load_metric, task_arguments
from .logs import quiet_export
from .runtime import EMBEDDING_OUTPUT, ONNX_FILE


def quantize_int8(onnx_path: Path, int8_path: Path) -> Path:
    """onnxruntime dynamic quantization: int8 weights (one scale per output channel, which keeps entity F1 against
    fp32 at 0.98 instead of 0.94 on the embedded test split), activations quantized on the fly."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(onnx_path))
    # The exporter annotates initializers with shapes that the quantizer's transposed weights then contradict.
    del graph.graph.value_info[:]
    with tempfile.TemporaryDirectory() as scratch:
        plain_path = Path(scratch) / ONNX_FILE
        onnx.save(graph, str(plain_path))
        with quiet_export():
            quantize_dynamic(str(plain_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    return int8_path


def compare_models(
    reference: nn.Module,
    candidate: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int,
    gold: list[dict] | None = None,
) -> dict[str, float]:
    """
    Per task the agreement of `candidate` with `reference`: `<task>_agreement` (same label) or `<prefix>_agreement_f1`
    (exact-span entity F1, `entity_agreement_f1` for `ner`), and the mean embedding cosine; with `gold` (JSONL
    records, e.g. `{"intent", "entities": [{"start", "end", "label"}]}`), also each model's scores against it
    (`fp32_*`, `int8_*`, `score_against_gold`) and the difference of their entity F1 (`<prefix>_f1_drop`).
    """
    expected = pipeline_results(reference, tokenizer, texts, batch_size, "fp32")
    found = pipeline_results(candidate, tokenizer, texts, batch_size, "int8")
    config = reference.config
    scores = score_results(found, [as_reference(result, config) for result in expected], config)
    metrics = {f"{task}_agreement": scores[f"{task}_accuracy"] for task in config.sentence_tasks}
    for task in config.token_tasks:
        prefix = config.task_metric_prefix(task)
        metrics[f"{prefix}_agreement_f1"] = scores[f"{prefix}_f1"]
    cosines = [
        float(np.dot(left[EMBEDDING_OUTPUT], right[EMBEDDING_OUTPUT]))
        / float(np.linalg.norm(left[EMBEDDING_OUTPUT]) * np.linalg.norm(right[EMBEDDING_OUTPUT]))
        for left, right in zip(expected, found, strict=True)
    ]
    metrics["embedding_cosine"] = float(np.mean(cosines))
    if gold is not None:
        for name, results in (("fp32", expected), ("int8", found)):
            metrics.update({f"{name}_{key}": value for key, value in score_against_gold(results, gold, config).items()})
        for prefix in map(config.task_metric_prefix, config.token_tasks):
            if f"fp32_{prefix}_f1" in metrics:
                metrics[f"{prefix}_f1_drop"] = metrics[f"fp32_{prefix}_f1"] - metrics[f"int8_{prefix}_f1"]
    return metrics


def pipeline_results(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, texts: list[str], batch_size: int, name: str
) -> list[dict]:
    """The pipeline's results (with embeddings) of `model` on `texts`, with a progress bar named `name` (transformers'
    tqdm, which its usual switches silence)."""
    predictor = pipeline(PIPELINE_TASK, model=model, tokenizer=tokenizer)
    results = predictor((text for text in texts), batch_size=batch_size, return_embedding=True)
    return list(tqdm(results, total=len(texts), desc=name, unit="text"))


def score_against_gold(results: list[dict], gold: list[dict], config: MultiTaskBertConfig) -> dict[str, float]:
    """
    Per task, over the gold examples that label it (JSONL fields: a sentence task's name, a token task's result key,
    `entities` for `ner`), the accuracy of pipeline results (`<task>_accuracy`) or their exact-span entity F1
    (`<prefix>_f1`, `entity_f1` for `ner`) against the gold character spans.
    """
    references = [
        {
            **{task: example.get(task) for task in config.sentence_tasks},
            **{
                config.task_result_key(task): [
                    {"entity_group": span["label"], "start": span["start"], "end": span["end"]} for span in spans
                ]
                for task in config.token_tasks
                if (spans := example.get(config.task_result_key(task))) is not None
            },
            "text": result["text"],  # the pipeline's copy: gold records need not repeat it
        }
        for example, result in zip(gold, results, strict=True)
    ]
    scores = score_results(results, references, config)
    names = [f"{task}_accuracy" for task in config.sentence_tasks]
    names += [f"{config.task_metric_prefix(task)}_f1" for task in config.token_tasks]
    return {name: scores[name] for name in names if name in scores}


def as_reference(result: dict, config: MultiTaskBertConfig) -> dict:
    """A pipeline result as a reference for `score_results`: its label per sentence task, its entities."""
    return {
        "text": result["text"],
        **{task: result[task]["label"] for task in config.sentence_tasks},
        **{config.task_result_key(task): result[config.task_result_key(task)] for task in config.token_tasks},
    }


def score_results(results: list[dict], references: list[dict], config: MultiTaskBertConfig) -> dict[str, float]:
    """`multitask_metrics` scores of pipeline `results` against `references` (`{task: label}` and `{result key:
    entities}`; a missing or empty label leaves that task of the example out). Entities are compared as
    character-level BIO tags, so seqeval's entity F1 counts exact (type, start, end) matches; where neither side has an
    entity, the F1 is 1."""
    predictions, golds = [], []
    for result, reference in zip(results, references, strict=True):
        length = len(reference["text"])
        predictions.append(
            {
                "labels": [result[task]["label"] for task in config.sentence_tasks],
                "tags": [character_tags(result[config.task_result_key(task)], length) for task in config.token_tasks],
            }
        )
        golds.append(
            {
                "labels": [reference.get(task) or "" for task in config.sentence_tasks],
                "tags": [
                    character_tags(reference[key], length) if (key := config.task_result_key(task)) in reference else []
                    for task in config.token_tasks
                ],
            }
        )
    scores = load_metric().compute(predictions=predictions, references=golds, per_type=False, **task_arguments(config))
    for position, task in enumerate(config.token_tasks):
        tagged = [(p["tags"][position], g["tags"][position]) for p, g in zip(predictions, golds, strict=True)]
        tagged = [pair for pair in tagged if pair[1]]
        if tagged and all(tag == "O" for pair in tagged for tags in pair for tag in tags):
            scores[f"{config.task_metric_prefix(task)}_f1"] = 1.0
    return scores


def character_tags(entities: list[dict], length: int) -> list[str]:
    """BIO tags, one per character of a text of `length`, of pipeline-style entities (`entity_group`, `start`,
    `end`)."""
    tags = ["O"] * length
    for entity in entities:
        tags[entity["start"]] = f"B-{entity['entity_group']}"
        for position in range(entity["start"] + 1, entity["end"]):
            tags[position] = f"I-{entity['entity_group']}"
    return tags
