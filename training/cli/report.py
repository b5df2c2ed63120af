"""What `train` and `evaluate` print: metric tables and example predictions."""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from ...modeling import MultiTaskBertConfig


def strip_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {key.removeprefix(f"{prefix}_"): value for key, value in metrics.items()}


def metrics_table(metrics: dict[str, float], config: MultiTaskBertConfig | None = None) -> str:
    """Each task's headline score (`<task>_accuracy`, `<prefix>_f1`: `entity_f1` for `ner`), sentence accuracy, the STS
    score and the F1 per entity type of every token-level task of `config` (default: the default tasks), as an aligned
    text table."""
    config = config or MultiTaskBertConfig()
    headline = [key for key in metrics if key.endswith("_accuracy") and key != "sentence_accuracy"]
    task_f1 = [key.removesuffix("_f1") for key in metrics if key.endswith("_f1")]  # per entity type: has a support
    headline += [
        f"{prefix}_f1" for prefix in task_f1 if f"{prefix}_recall" in metrics and f"{prefix}_support" not in metrics
    ]
    headline += [key for key in metrics if "_out_of_scope_" in key or key.endswith(("_ece", "_ece_uncalibrated"))]
    headline += ["sentence_accuracy", "sts_benchmark_spearman_cosine"]
    rows = [(name, metrics[name]) for name in headline if name in metrics]
    for prefix in map(config.task_metric_prefix, config.token_tasks):
        per_type = sorted(
            key
            for key in metrics
            if key.startswith(f"{prefix}_") and key.endswith("_f1") and f"{key.removesuffix('_f1')}_support" in metrics
        )
        rows += [(f"  F1 {key.removeprefix(f'{prefix}_').removesuffix('_f1')}", metrics[key]) for key in per_type]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:.4f}" for name, value in rows)


def answer_text(task: str, answer: dict, config: MultiTaskBertConfig) -> str:
    """`intent set_alarm (0.97)`, or for an out-of-scope answer `intent oos (out-of-scope score 1.2e+03 > 817)`."""
    detector = config.task_out_of_scope(task)
    if detector is not None and answer["label"] == detector["label"]:
        score, threshold = answer["out_of_scope_score"], detector["threshold"]
        return f"{task} {answer['label']} (out-of-scope score {score:.3g} > {threshold:.3g})"
    return f"{task} {answer['label']} ({answer['score']:.2f})"


def show_examples(model_dir: Path, dataset: DatasetDict, count: int = 3) -> None:
    """Print predictions of the saved model, loaded the way users load it, on a few test utterances."""
    from transformers import pipeline

    split = dataset["test"] if "test" in dataset else next(iter(dataset.values()))
    texts = list(split.select(range(min(count, len(split))))["text"])
    nlu = pipeline("joint-intent-ner", model=str(model_dir), trust_remote_code=True)
    print("\nExample predictions:")
    config = nlu.model.config
    for prediction in nlu(texts):
        parts = [answer_text(task, prediction[task], config) for task in config.sentence_tasks]
        for task in config.token_tasks:
            key = config.task_result_key(task)
            found = ", ".join(f"{entity['entity_group']}={entity['word']!r}" for entity in prediction[key])
            parts.append(f"{key}: {found or 'none'}")
        print(f"  {prediction['text']!r}\n    {'; '.join(parts)}")
