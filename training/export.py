"""Deprecated: the ONNX export, runtime model and quantization moved to `multitask_bert.training.onnx` (and
`multitask_bert`), the `export` command to `multitask_bert.training.cli.export`; this module re-exports them for one
release."""

from __future__ import annotations

import warnings

from ..modeling.configuration_multitask_bert import DEFAULT_TASK_NAMING
from .cli.export import build_parser, main, read_eval_examples, read_lines
from .onnx import (
    CRF_FILE,
    EMBEDDING_OUTPUT,
    INT8_FILE,
    ONNX_FILE,
    ExportReport,
    OnnxMultiTaskModel,
    compare_models,
    export_onnx,
    onnx_input_names,
    onnx_output_names,
    quantize_int8,
    score_against_gold,
)
from .onnx.export import MAX_ABS_DIFF, PARITY_TEXTS, check_parity
from .onnx.logs import quiet_export
from .onnx.runtime import out_of_scope_tasks

warnings.warn(
    "multitask_bert.training.export is deprecated and will be removed in 0.3: use multitask_bert.training.onnx (or "
    "`multitask_bert.export_onnx`, `multitask_bert.OnnxMultiTaskModel`) and multitask_bert.training.cli.export.",
    DeprecationWarning,
    stacklevel=2,
)


def score_prefix(token_task: str) -> str:
    """Deprecated: `config.task_metric_prefix(task)` (`entity` for the default `ner` task)."""
    return DEFAULT_TASK_NAMING.get(token_task, {}).get("metric_prefix", token_task)


def entity_f1(reference: list[list[dict]], predicted: list[list[dict]]) -> float:
    """Deprecated: micro F1 of entities matched exactly by (text, type, start, end); the export now scores through
    the `multitask_metrics` module (`training.onnx.quantization.score_results`)."""

    def spans(results: list[list[dict]]) -> set[tuple]:
        return {
            (index, entity["entity_group"], entity["start"], entity["end"])
            for index, entities in enumerate(results)
            for entity in entities
        }

    expected, found = spans(reference), spans(predicted)
    if not expected and not found:
        return 1.0
    return 2 * len(expected & found) / (len(expected) + len(found))


__all__ = [
    "CRF_FILE",
    "EMBEDDING_OUTPUT",
    "INT8_FILE",
    "MAX_ABS_DIFF",
    "ONNX_FILE",
    "PARITY_TEXTS",
    "ExportReport",
    "OnnxMultiTaskModel",
    "build_parser",
    "check_parity",
    "compare_models",
    "entity_f1",
    "export_onnx",
    "main",
    "onnx_input_names",
    "onnx_output_names",
    "out_of_scope_tasks",
    "quantize_int8",
    "quiet_export",
    "read_eval_examples",
    "read_lines",
    "score_against_gold",
    "score_prefix",
]
