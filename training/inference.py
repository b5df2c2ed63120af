"""The `joint-intent-ner` pipeline over a saved model folder or its ONNX export."""

from __future__ import annotations

from pathlib import Path

from transformers import Pipeline, pipeline

from ..modeling import MultiTaskBertModel
from ..modeling.pipeline_multitask_bert import PIPELINE_TASK
from .loading import check_model_location, load_tokenizer
from .onnx import ONNX_FILE, OnnxMultiTaskModel


def load_pipeline(model_dir: str | Path, onnx_file: str | None = None, device: str | None = None) -> Pipeline:
    """The `joint-intent-ner` pipeline over a saved model, or over an ONNX export (`onnx_file`, or a folder that holds
    `model.onnx` and no PyTorch weights)."""
    check_model_location(model_dir)
    model_path = Path(model_dir)
    if onnx_file is None and (model_path / ONNX_FILE).is_file() and not (model_path / "model.safetensors").is_file():
        onnx_file = ONNX_FILE
    if onnx_file is not None:
        model = OnnxMultiTaskModel.from_pretrained(model_path, file_name=onnx_file)
    else:
        model = MultiTaskBertModel.from_pretrained(str(model_dir)).eval()
    tokenizer = load_tokenizer(model_dir)
    return pipeline(PIPELINE_TASK, model=model, tokenizer=tokenizer, device=device)
