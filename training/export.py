"""Deprecated: the ONNX export, runtime model and quantization moved to `multitask_bert.training.onnx` (and
`multitask_bert`), the `export` command to `multitask_bert.training.cli.export`; this module re-exports them for one
release."""

from __future__ import annotations

import warnings

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
]
