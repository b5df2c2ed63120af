"""`TrainingArguments` plus what joint training needs: task weighting, layer-wise learning rates and freezing."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments
from transformers.integrations import integration_utils
from transformers.utils import is_torch_xla_available, logging

logger = logging.get_logger(__name__)

# `report_to` integrations whose package has the integration's name (transformers checks it is importable).
LOGGER_PACKAGES = (
    "tensorboard",
    "wandb",
    "mlflow",
    "comet_ml",
    "neptune",
    "clearml",
    "codecarbon",
    "dvclive",
    "swanlab",
    "trackio",
)
# Extras of this package that install a logger.
LOGGER_EXTRAS = ("tensorboard",)


def has_accelerator() -> bool:
    """Whether torch sees a GPU or another accelerator (XLA included)."""
    return torch.accelerator.is_available() or is_torch_xla_available()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): torch's own (private) CPU probes."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def check_loggers(report_to: list[str]) -> None:
    """Raise a `ValueError` naming what to install for an integration of `report_to` whose package is missing (the
    Trainer would fail on it later, in its own words or by a traceback)."""
    available = integration_utils.get_available_reporting_integrations()
    for name in report_to:
        if name in LOGGER_PACKAGES and name not in available:
            extra = f" (or `pip install 'multitask-bert[{name}]'`)" if name in LOGGER_EXTRAS else ""
            raise ValueError(f"`report_to` {name} needs the {name} package: `pip install {name}`{extra}.")


def cpu_bf16_pays_off() -> bool:
    """bf16 autocast is the faster choice: no accelerator, and a CPU with native bf16."""
    return not has_accelerator() and cpu_has_native_bf16()


@dataclass
class MultiTaskTrainingArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] for [`MultiTaskTrainer`]; every extra field also parses with
    [`~transformers.HfArgumentParser`] (`--freeze_heads ner`, `--layerwise_lr_decay 0.9`). The loss weighting is
    the model config's (`task_weights`, `uncertainty_weighting`); passing it here is deprecated.

    Args:
        layerwise_lr_decay (`float`, defaults to 1.0):
            The top encoder layer learns at `learning_rate`, each layer below at the rate above times this factor,
            the embeddings lowest. 1.0 turns it off.
        head_learning_rate (`float`, *optional*):
            Learning rate of the task heads, CRFs and uncertainty weights; defaults to `learning_rate`.
        freeze_backbone (`bool`, defaults to `False`):
            Train only the heads (the encoder's weights get no gradient and no optimizer state).
        freeze_layers (`int`, defaults to 0):
            Freeze the embeddings and the lowest `freeze_layers` encoder layers.
        freeze_heads (`list[str]`, defaults to `[]`):
            Task heads (and their CRFs) to keep as they are, e.g. `["ner"]` to train only the intent side.
        embedding_preservation_weight (`float`, defaults to 1.0):
            Weight of the embedding-preservation term in the joint loss: `1 - cosine` between each training
            example's sentence embedding and the embedding the model gave it before training (computed once, before
            the first step), so the embedding stays a general-purpose one. 0 turns it off.
        distill_old_labels (`float`, defaults to 0.0):
            Weight of a distillation term that keeps a continued model's answers on its old labels, so that training
            on new labels' data alone forgets less: per sentence-level task, `KL(old || new)` between the old
            model's softmax over its labels (the model training continues from, before its heads grew, frozen) and
            the trained model's softmax over the same label ids, on every training batch. Token-level tasks are
            not distilled. [`MultiTaskTrainer`] needs the old model (`old_model`); 0 turns it off.
        early_stopping_patience (`int`, *optional*):
            Stop when `metric_for_best_model` has not improved for this many evaluations (transformers'
            [`~transformers.EarlyStoppingCallback`]; it needs `load_best_model_at_end`).

    `bf16=True` on a machine without any accelerator trains on the CPU under bf16 autocast (transformers alone would
    ask for `use_cpu=True` as well); it pays off on CPUs with native bf16 (AVX512-BF16 or AMX). With an accelerator
    that lacks bf16, transformers' error stands.
    """

    layerwise_lr_decay: float = field(
        default=1.0,
        metadata={
            "help": "Each encoder layer learns at the rate of the layer above times this factor (embeddings lowest); "
            "1.0 turns it off."
        },
    )
    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the task heads, CRFs and uncertainty weights. Default: learning_rate."},
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "Train only the task heads."})
    freeze_layers: int = field(
        default=0, metadata={"help": "Freeze the embeddings and this many of the lowest encoder layers."}
    )
    freeze_heads: list[str] = field(
        default_factory=list, metadata={"help": "Task heads (with their CRFs) to keep frozen, e.g. ner."}
    )

    embedding_preservation_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the loss term that keeps each sentence embedding close to the one the model gave "
            "before training (1 - cosine); 0 turns it off."
        },
    )

    distill_old_labels: float = field(
        default=0.0,
        metadata={
            "help": "Continuing a trained model (--model_name_or_path): weight of the loss term that keeps its "
            "answers on its old labels, KL(old model || trained model) over the old labels of each sentence-level "
            "task on every training batch, so new labels' data alone forgets less; 0 turns it off."
        },
    )

    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop training when --metric_for_best_model has not improved for this many evaluations "
            "(transformers' EarlyStoppingCallback, with --load_best_model_at_end)."
        },
    )

    def __post_init__(self):
        if (self.bf16 or self.bf16_full_eval) and not self.use_cpu and not has_accelerator():
            logger.info("bf16 without an accelerator: training on the CPU under bf16 autocast.")
            self.use_cpu = True
        super().__post_init__()
        check_loggers(self.report_to)
        if not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise ValueError(f"`layerwise_lr_decay` must be in (0, 1], got {self.layerwise_lr_decay}.")
        if self.head_learning_rate is not None and self.head_learning_rate < 0:
            raise ValueError(f"`head_learning_rate` must be >= 0, got {self.head_learning_rate}.")
        if self.embedding_preservation_weight < 0:
            raise ValueError(f"`embedding_preservation_weight` must be >= 0, got {self.embedding_preservation_weight}.")
        if self.distill_old_labels < 0:
            raise ValueError(f"`distill_old_labels` must be >= 0, got {self.distill_old_labels}.")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(f"`early_stopping_patience` must be >= 1, got {self.early_stopping_patience}.")
        if self.freeze_layers < 0:
            raise ValueError(f"`freeze_layers` must be >= 0, got {self.freeze_layers}.")


_dataclass_init = MultiTaskTrainingArguments.__init__


@functools.wraps(_dataclass_init)
def _init_with_deprecated_loss_weighting(
    self: MultiTaskTrainingArguments,
    *args,
    task_weights: dict | None = None,
    uncertainty_weighting: bool | None = None,
    **kwargs,
) -> None:
    """The dataclass `__init__`, also taking the loss weighting that moved to the model config (for one release)."""
    if task_weights is not None or uncertainty_weighting is not None:
        warnings.warn(
            "MultiTaskTrainingArguments(task_weights=..., uncertainty_weighting=...) is deprecated and will be removed "
            "in 0.3: the model config owns the loss weighting (`MultiTaskBertModel.from_backbone(..., "
            "task_weights=...)` or `multitask_bert.training.trainer.set_loss_weighting(model, ...)`). MultiTaskTrainer "
            "applies them to the model for now.",
            FutureWarning,
            stacklevel=2,
        )
    self.deprecated_loss_weighting = {"task_weights": task_weights, "uncertainty_weighting": uncertainty_weighting}
    _dataclass_init(self, *args, **kwargs)


MultiTaskTrainingArguments.__init__ = _init_with_deprecated_loss_weighting
