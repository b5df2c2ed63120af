"""ONNX export of a saved model (every head, the embedding and the out-of-scope scores as outputs), checked against
PyTorch, optionally quantized to int8."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import PreTrainedTokenizerBase

from ...modeling import MultiTaskBertModel
from ..loading import check_model_location, load_tokenizer
from .logs import quiet_export
from .quantization import compare_models, quantize_int8
from .runtime import (
    CRF_FILE,
    EMBEDDING_OUTPUT,
    INT8_FILE,
    ONNX_FILE,
    OnnxMultiTaskModel,
    example_tasks,
    onnx_output_names,
    out_of_scope_tasks,
)

MAX_ABS_DIFF = 1e-4
# Varied lengths and a batch of three, unlike the two-text example the graph is traced with.
PARITY_TEXTS = [
    "wake me up at 7 tomorrow",
    "cancel the meeting with Anna and Bob on friday afternoon, then remind me to call Carol at 5pm",
    "hi",
]


def onnx_input_names(model: MultiTaskBertModel, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """`input_ids`, `attention_mask`, and `token_type_ids` when the tokenizer makes them and the encoder reads them."""
    names = ["input_ids", "attention_mask"]
    if (
        "token_type_ids" in tokenizer.model_input_names
        and "token_type_ids" in inspect.signature(model.backbone.forward).parameters
    ):
        names.append("token_type_ids")
    return names


class _FlatOutputs(nn.Module):
    """The model with a flat tuple of outputs, as the ONNX graph has them."""

    def __init__(self, model: MultiTaskBertModel):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        config = self.model.config
        scores = [output.out_of_scope_scores[task] for task in out_of_scope_tasks(config)]
        distances = [output.example_distances[task] for task in example_tasks(config)]
        return (*(output.logits[task] for task in config.tasks), output.sentence_embedding, *scores, *distances)


@dataclass
class ExportReport:
    onnx_path: Path
    max_abs_diff: dict[str, float]
    int8_path: Path | None = None
    int8_metrics: dict[str, float] = field(default_factory=dict)


def export_onnx(
    model_dir: str | Path,
    output_dir: str | Path,
    quantize: str | None = None,
    eval_texts: list[str] | None = None,
    opset: int | None = None,
    batch_size: int = 32,
    eval_gold: list[dict] | None = None,
) -> ExportReport:
    """Export, verify against PyTorch (raises if any output differs by more than 1e-4), optionally quantize."""
    output_dir = Path(output_dir)
    check_model_location(model_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model = MultiTaskBertModel.from_pretrained(model_dir).eval()
    tokenizer = load_tokenizer(model_dir)
    input_names = onnx_input_names(model, tokenizer)
    output_names = onnx_output_names(model.config)

    example = tokenizer(["set a timer for ten minutes", "call Anna"], padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    onnx_path = output_dir / ONNX_FILE
    with quiet_export():
        torch.onnx.export(
            _FlatOutputs(model).eval(),
            (),
            str(onnx_path),
            kwargs={name: example[name] for name in input_names},
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    model.config.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if model.config.use_crf:
        save_file(
            {name: tensor.contiguous() for name, tensor in model.crfs.state_dict().items()}, output_dir / CRF_FILE
        )

    max_abs_diff = check_parity(model, tokenizer, OnnxMultiTaskModel.from_pretrained(output_dir))
    report = ExportReport(onnx_path=onnx_path, max_abs_diff=max_abs_diff)
    if quantize is not None:
        if quantize != "int8":
            raise ValueError(f"Unknown quantization {quantize!r}; supported: int8.")
        report.int8_path = quantize_int8(onnx_path, output_dir / INT8_FILE)
        if eval_texts:
            reference = OnnxMultiTaskModel.from_pretrained(output_dir)
            quantized = OnnxMultiTaskModel.from_pretrained(output_dir, file_name=INT8_FILE)
            report.int8_metrics = compare_models(reference, quantized, tokenizer, eval_texts, batch_size, eval_gold)
    return report


def check_parity(
    model: MultiTaskBertModel, tokenizer: PreTrainedTokenizerBase, onnx_model: OnnxMultiTaskModel
) -> dict[str, float]:
    """Largest absolute difference of every output between PyTorch and onnxruntime (relative to the value, at least 1,
    for out-of-scope scores); raises above 1e-4."""
    batch = tokenizer(PARITY_TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch)
    found = onnx_model(**batch)
    differences = {
        f"{task}_logits": float((expected.logits[task] - found.logits[task]).abs().max()) for task in model.config.tasks
    }
    differences[EMBEDDING_OUTPUT] = float((expected.sentence_embedding - found.sentence_embedding).abs().max())
    # Out-of-scope scores (a distance can be in the hundreds) are compared relative to their size.
    for task in out_of_scope_tasks(model.config):
        want, got = expected.out_of_scope_scores[task], found.out_of_scope_scores[task]
        differences[f"{task}_out_of_scope_score"] = float(((want - got).abs() / want.abs().clamp(min=1.0)).max())
    for task in example_tasks(model.config):
        want, got = expected.example_distances[task], found.example_distances[task]
        differences[f"{task}_example_distances"] = float(((want - got).abs() / want.abs().clamp(min=1.0)).max())
    too_far = {name: diff for name, diff in differences.items() if diff > MAX_ABS_DIFF}
    if too_far:
        raise RuntimeError(f"onnxruntime and PyTorch disagree by more than {MAX_ABS_DIFF}: {too_far}")
    return differences
