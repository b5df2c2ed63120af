"""An exported model run by onnxruntime behind the PyTorch model's interface, so the `joint-intent-ner` pipeline
takes it unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from ...modeling import MultiTaskBertConfig, MultiTaskBertOutput
from ...modeling.modeling_multitask_bert import build_crfs, decode_tags

if TYPE_CHECKING:
    import onnxruntime

ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
CRF_FILE = "crf.safetensors"
EMBEDDING_OUTPUT = "sentence_embedding"


def out_of_scope_tasks(config: MultiTaskBertConfig) -> list[str]:
    """The sentence-level tasks with an out-of-scope detector, in config order."""
    return [task for task in config.sentence_tasks if config.task_out_of_scope(task) is not None]


def example_tasks(config: MultiTaskBertConfig) -> list[str]:
    """The sentence-level tasks with stored examples, in config order."""
    return [task for task in config.sentence_tasks if config.task_examples(task) is not None]


def onnx_output_names(config: MultiTaskBertConfig) -> list[str]:
    """`<task>_logits` for every head, in config order, then `sentence_embedding`, then `<task>_out_of_scope_score`
    for every task with an out-of-scope detector, then `<task>_example_distances` for every task with examples."""
    scores = [f"{task}_out_of_scope_score" for task in out_of_scope_tasks(config)]
    distances = [f"{task}_example_distances" for task in example_tasks(config)]
    return [f"{task}_logits" for task in config.tasks] + [EMBEDDING_OUTPUT] + scores + distances


class OnnxMultiTaskModel(nn.Module):
    """
    An exported model run by onnxruntime behind the PyTorch model's interface (`config`, `forward` returning a
    [`MultiTaskBertOutput`], `decode_tags`), so the `joint-intent-ner` pipeline takes it unchanged:

        model = OnnxMultiTaskModel.from_pretrained("onnx_dir", file_name="model_int8.onnx")
        ner = pipeline("joint-intent-ner", model=model, tokenizer=AutoTokenizer.from_pretrained("onnx_dir"))
    """

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        config: MultiTaskBertConfig,
        crf_state: dict[str, torch.Tensor] | None = None,
    ):
        super().__init__()
        self.session = session
        self.config = config
        self.input_names = [node.name for node in session.get_inputs()]
        expected = onnx_output_names(config)
        found = [node.name for node in session.get_outputs()]
        if found != expected:
            raise ValueError(f"The ONNX graph's outputs {found} do not match the config's heads {expected}.")
        # The CRF's Viterbi runs in PyTorch with the exported transitions, as in `MultiTaskBertModel`.
        self.crfs = build_crfs(config)
        if config.use_crf:
            self.crfs.load_state_dict(crf_state or {})

    @classmethod
    def from_pretrained(
        cls,
        onnx_dir: str | Path,
        file_name: str = ONNX_FILE,
        providers: list[str] | None = None,
        session_options: onnxruntime.SessionOptions | None = None,
    ) -> OnnxMultiTaskModel:
        """Load `file_name` (e.g. `model_int8.onnx`) of a folder written by `export_onnx`; `providers` and
        `session_options` go to `onnxruntime.InferenceSession` (default: CPU, onnxruntime's thread settings)."""
        import onnxruntime

        onnx_dir = Path(onnx_dir)
        path = onnx_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(
                f"No ONNX model at {path}; write one with `multitask-bert export MODEL --onnx DIR`."
            )
        session = onnxruntime.InferenceSession(
            str(path), sess_options=session_options, providers=providers or ["CPUExecutionProvider"]
        )
        config = MultiTaskBertConfig.from_pretrained(onnx_dir)
        crf_path = onnx_dir / CRF_FILE
        crf_state = load_file(str(crf_path)) if config.use_crf and crf_path.is_file() else None
        if config.use_crf and crf_state is None:
            raise FileNotFoundError(f"{onnx_dir} holds a CRF model but no {CRF_FILE} with its transitions.")
        return cls(session, config, crf_state)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **other_inputs: torch.Tensor
    ) -> MultiTaskBertOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        given = {"input_ids": input_ids, "attention_mask": attention_mask, **other_inputs}
        if "token_type_ids" in self.input_names and "token_type_ids" not in given:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        feed = {name: given[name].detach().cpu().numpy().astype(np.int64) for name in self.input_names}
        outputs = [torch.from_numpy(array).to(input_ids.device) for array in self.session.run(None, feed)]
        num_tasks, num_scores = len(self.config.tasks), len(out_of_scope_tasks(self.config))
        logits = dict(zip(self.config.tasks, outputs[:num_tasks], strict=True))
        scores = dict(
            zip(out_of_scope_tasks(self.config), outputs[num_tasks + 1 : num_tasks + 1 + num_scores], strict=True)
        )
        distances = dict(zip(example_tasks(self.config), outputs[num_tasks + 1 + num_scores :], strict=True))
        return MultiTaskBertOutput(
            logits=logits,
            sentence_embedding=outputs[num_tasks],
            out_of_scope_scores=scores or None,
            example_distances=distances or None,
        )

    def decode_tags(self, task: str, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids at the `mask` positions (Viterbi with a CRF), `-100` elsewhere: as `MultiTaskBertModel`."""
        return decode_tags(self.crfs, task, logits, mask)
