"""ONNX: the export with its parity check (`export`), the onnxruntime model the pipeline runs (`runtime`), int8
quantization and its comparison with fp32 (`quantization`)."""

from .export import ExportReport, export_onnx, onnx_input_names
from .quantization import compare_models, quantize_int8, score_against_gold
from .runtime import CRF_FILE, EMBEDDING_OUTPUT, INT8_FILE, ONNX_FILE, OnnxMultiTaskModel, onnx_output_names

__all__ = [
    "CRF_FILE",
    "EMBEDDING_OUTPUT",
    "INT8_FILE",
    "ONNX_FILE",
    "ExportReport",
    "OnnxMultiTaskModel",
    "compare_models",
    "export_onnx",
    "onnx_input_names",
    "onnx_output_names",
    "quantize_int8",
    "score_against_gold",
]
