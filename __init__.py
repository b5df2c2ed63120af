"""multitask-bert: one encoder, one forward pass: a sentence embedding, sentence labels (intent) and entities.

The public API; every name here is importable as `from multitask_bert import NAME`:

- the model (`modeling/`, shipped with saved models as remote code): `MultiTaskBertConfig`, `MultiTaskBertModel`,
  `MultiTaskBertOutput`, `JointIntentNerPipeline`, `default_backbone_path`;
- data (`training/data/`): `load_data` and the readers, `combine_datasets`, `tokenize_dataset`,
  `MultiTaskDataCollator`;
- training (`training/`): `MultiTaskTrainer`, `MultiTaskTrainingArguments`, `build_compute_metrics`,
  `set_loss_weighting`, `fit_out_of_scope`;
- inference and deployment: `load_pipeline`, `export_onnx`, `quantize_int8`, `OnnxMultiTaskModel`;
- publishing (`hub_card/`): `write_model_card`, `push_to_hub`.

The command line (`multitask-bert`, `training/cli/`) sits on top of these.

Names load on first use (as transformers' own top level does), so `import multitask_bert.modeling` stays light and
importing this folder under another name (pytest collects the repository root as a package) runs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hub_card.model_card import write_model_card
    from .hub_card.push import push_to_hub
    from .modeling import (
        JointIntentNerPipeline,
        MultiTaskBertConfig,
        MultiTaskBertModel,
        MultiTaskBertOutput,
        default_backbone_path,
    )
    from .training.data import (
        MultiTaskDataCollator,
        combine_datasets,
        load_conll,
        load_data,
        load_hf_dataset,
        load_jointbert,
        load_jsonl,
        tokenize_dataset,
    )
    from .training.inference import load_pipeline
    from .training.onnx import OnnxMultiTaskModel, export_onnx, quantize_int8
    from .training.out_of_scope import fit_out_of_scope
    from .training.trainer import MultiTaskTrainer, build_compute_metrics, set_loss_weighting
    from .training.training_args import MultiTaskTrainingArguments

# Public name -> the module (relative to this package) that defines it.
_EXPORTS = {
    "JointIntentNerPipeline": ".modeling",
    "MultiTaskBertConfig": ".modeling",
    "MultiTaskBertModel": ".modeling",
    "MultiTaskBertOutput": ".modeling",
    "MultiTaskDataCollator": ".training.data",
    "MultiTaskTrainer": ".training.trainer",
    "MultiTaskTrainingArguments": ".training.training_args",
    "OnnxMultiTaskModel": ".training.onnx",
    "build_compute_metrics": ".training.trainer",
    "combine_datasets": ".training.data",
    "default_backbone_path": ".modeling",
    "export_onnx": ".training.onnx",
    "fit_out_of_scope": ".training.out_of_scope",
    "load_conll": ".training.data",
    "load_data": ".training.data",
    "load_hf_dataset": ".training.data",
    "load_jointbert": ".training.data",
    "load_jsonl": ".training.data",
    "load_pipeline": ".training.inference",
    "push_to_hub": ".hub_card.push",
    "quantize_int8": ".training.onnx",
    "set_loss_weighting": ".training.trainer",
    "tokenize_dataset": ".training.data",
    "write_model_card": ".hub_card.model_card",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
