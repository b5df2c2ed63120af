"""Deprecated: `train` and `evaluate` moved to the command-line package (`multitask_bert.training.cli.train`,
`.evaluate`, `.arguments`, `.report`); this module re-exports them for one release."""

from __future__ import annotations

import warnings

from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from .cli.arguments import (
    NEW_MODEL_DEFAULTS,
    OUT_OF_SCOPE_DEFAULTS,
    DataArguments,
    EvaluateArguments,
    ModelArguments,
    OutOfScopeArguments,
    OutputArguments,
    TrainDataArguments,
    check_subtoken_labels,
)
from .cli.evaluate import main as evaluate_model
from .cli.parsing import command_parser, parse_dataclasses
from .cli.report import answer_text, metrics_table, show_examples, strip_prefix
from .cli.train import (
    EVAL_RESULTS_FILE,
    TRAIN_DEFAULTS,
    dataset_and_model,
    precision_defaults,
    starting_model_sts,
    write_card,
)
from .cli.train import main as train
from .tasks import unknown_train_labels

warnings.warn(
    "multitask_bert.training.commands is deprecated and will be removed in 0.3: use multitask_bert.training.cli.train "
    "and multitask_bert.training.cli.evaluate (their `main`), or the public API in `multitask_bert`.",
    DeprecationWarning,
    stacklevel=2,
)


def load_dataset_for(
    data_args: DataArguments,
    tokenizer: PreTrainedTokenizerBase,
    label_lists: dict[str, list[str]] | None = None,
    out_of_scope: dict[str, str] | None = None,
) -> DatasetDict:
    """Deprecated: `data_args.load(tokenizer, label_lists, out_of_scope)`."""
    return data_args.load(tokenizer, label_lists, out_of_scope)


__all__ = [
    "EVAL_RESULTS_FILE",
    "NEW_MODEL_DEFAULTS",
    "OUT_OF_SCOPE_DEFAULTS",
    "TRAIN_DEFAULTS",
    "DataArguments",
    "EvaluateArguments",
    "ModelArguments",
    "OutOfScopeArguments",
    "OutputArguments",
    "TrainDataArguments",
    "answer_text",
    "check_subtoken_labels",
    "command_parser",
    "dataset_and_model",
    "evaluate_model",
    "load_dataset_for",
    "metrics_table",
    "parse_dataclasses",
    "precision_defaults",
    "show_examples",
    "starting_model_sts",
    "strip_prefix",
    "train",
    "unknown_train_labels",
    "write_card",
]
