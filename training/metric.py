"""The `multitask_metrics` evaluate module (`training/metrics/`) and the task arguments a model's config gives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evaluate

from ..modeling import MultiTaskBertConfig

METRICS_PATH = Path(__file__).parent / "metrics" / "multitask_metrics"


def load_metric() -> evaluate.EvaluationModule:
    """The local `multitask_metrics` module (nothing is downloaded)."""
    return evaluate.load(str(METRICS_PATH), keep_in_memory=True)


def task_arguments(config: MultiTaskBertConfig) -> dict[str, Any]:
    """`sentence_tasks`, `token_tasks` and `metric_prefixes` of `multitask_metrics.compute` for `config`'s heads."""
    return {
        "sentence_tasks": list(config.sentence_tasks),
        "token_tasks": list(config.token_tasks),
        "metric_prefixes": {task: config.task_metric_prefix(task) for task in config.token_tasks},
    }
