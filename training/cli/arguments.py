"""The options of `train` and `evaluate`, as dataclasses for HfArgumentParser. The model options are the config's
own fields (`MultiTaskBertConfig`), with its defaults and its docstring as their help."""

from __future__ import annotations

import json
import logging
import re
import typing
from dataclasses import dataclass, field, fields, make_dataclass, replace

from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from ...modeling import MultiTaskBertConfig, MultiTaskBertModel
from ...modeling.configuration_multitask_bert import (
    DEFAULT_SENTENCE_TASK,
    OUT_OF_SCOPE_SCORE_RANGES,
    check_out_of_scope_threshold,
)
from ..data import default_data_dir, load_data
from ..out_of_scope import DEFAULT_IN_SCOPE_SHARE, DEFAULT_METHOD, THRESHOLD_RULES, detected_labels

logger = logging.getLogger(__name__)

# Config fields that only a new model takes (a continued model keeps its architecture), and the loss weighting, which
# a continued model may change (`None`: keep the config's).
NEW_MODEL_OPTIONS = (
    "pooling",
    "sentence_head_pooling",
    "sentence_aware_token_heads",
    "subword_pooling",
    "use_crf",
    "classifier_dropout",
)
LOSS_WEIGHTING_OPTIONS = ("task_weights", "uncertainty_weighting")


@dataclass
class DataArguments:
    """Where the data comes from and how it is tokenized."""

    data: str | None = field(
        default=None,
        metadata={"help": "Data folder, file or `datasets` id. Default: the embedded synthetic scheduler data."},
    )
    format: str | None = field(
        default=None, metadata={"help": "jointbert, conll, jsonl or hf. Default: detected from --data."}
    )
    task_columns: str | None = field(
        default=None,
        metadata={
            "help": 'For `datasets` data (--format hf): which column is which task, as JSON: \'{"label": {"task": '
            '"sentiment", "level": "sentence"}, "pos_tags": {"task": "pos", "level": "token"}}\'.'
        },
    )
    max_length: int = field(
        default=128, metadata={"help": "Longest tokenized utterance; longer ones are cut, with a warning."}
    )
    label_all_subtokens: bool = field(
        default=False, metadata={"help": "Label every sub-token with its word's tag, not only the first sub-token."}
    )
    sts_benchmark: str | None = field(
        default=None,
        metadata={
            "help": "STS Benchmark file (or folder with test.tsv): also score the sentence embedding (Spearman of "
            "cosines; `train` scores it before and after training and puts both in the model card)."
        },
    )

    def load(
        self,
        tokenizer: PreTrainedTokenizerBase,
        label_lists: dict[str, list[str]] | None = None,
        out_of_scope: dict[str, str] | None = None,
    ) -> DatasetDict:
        """The user's data, or the embedded default, with texts split into the words of the model's `tokenizer`;
        `label_lists` (a trained model's) fix the label ids, `out_of_scope` (`{task: label}`) marks out-of-scope
        examples."""
        options = {"label_lists": label_lists}
        if out_of_scope:
            options["out_of_scope"] = out_of_scope
        if self.task_columns is not None:
            try:
                options["task_columns"] = json.loads(self.task_columns)
            except json.JSONDecodeError as error:
                raise ValueError(f"--task-columns is not JSON ({error.msg}): {self.task_columns!r}.") from None
        if self.data is None:
            return load_data(default_data_dir(), "jsonl", tokenizer, **options)
        return load_data(self.data, self.format, tokenizer, **options)


@dataclass
class TrainDataArguments(DataArguments):
    """The data options of `train`, plus which tasks' losses train."""

    tasks: list[str] | None = field(
        default=None,
        metadata={
            "help": "Tasks to train, e.g. `--tasks intent` for an intent-only model. Default: every task the data "
            "labels (and, with --model-name-or-path, every head of the model)."
        },
    )


@dataclass
class OutOfScopeArguments:
    """Out-of-scope detection and calibration, fitted after training (temperature scaling of every sentence head)."""

    out_of_scope_label: str | None = field(
        default=None,
        metadata={
            "help": "The sentence label that means out of scope ('oos' in CLINC150), as LABEL (task intent) or "
            "TASK=LABEL. Its examples are never a class of the head; the model then answers it for inputs whose "
            "out-of-scope score is above a threshold chosen on validation. Train needs no such example."
        },
    )
    out_of_scope_method: str | None = field(
        default=None,
        metadata={
            "help": f"Out-of-scope score: msp, energy, mahalanobis (pooled vector) or knn (sentence embedding). "
            f"Default: {DEFAULT_METHOD}, or the continued model's."
        },
    )
    out_of_scope_threshold: float | None = field(
        default=None, metadata={"help": "Use this threshold instead of choosing one on validation."}
    )
    out_of_scope_threshold_rule: str = field(
        default="in_scope_share",
        metadata={
            "help": "How validation chooses the threshold: in_scope_share (keep --out-of-scope-in-scope-share of "
            "its in-scope utterances in scope; needs no out-of-scope data) or youden (most in-scope kept plus "
            "out-of-scope caught; needs out-of-scope validation examples)."
        },
    )
    out_of_scope_in_scope_share: float = field(
        default=DEFAULT_IN_SCOPE_SHARE,
        metadata={"help": "Share of in-scope validation utterances the in_scope_share rule keeps in scope."},
    )

    def labels(self, model: MultiTaskBertModel | None = None) -> dict[str, str]:
        """`{task: label}` from --out-of-scope-label, else the continued `model`'s detectors (or none)."""
        if self.out_of_scope_label is None:
            return detected_labels(model) if model is not None else {}
        task, separator, label = self.out_of_scope_label.partition("=")
        if not separator:
            task, label = DEFAULT_SENTENCE_TASK, task
        if not task or not label:
            raise ValueError(f"--out-of-scope-label {self.out_of_scope_label!r}: give LABEL or TASK=LABEL.")
        return {task: label}

    def method(self, model: MultiTaskBertModel, task: str) -> str:
        """--out-of-scope-method, else the continued model's method for `task`, else the default."""
        detector = model.config.task_out_of_scope(task) if task in model.config.sentence_tasks else None
        return self.out_of_scope_method or (detector or {}).get("method") or DEFAULT_METHOD

    def check(self) -> None:
        """Raise a `ValueError` naming the option that is out of range or that needs --out-of-scope-label."""
        given = [
            f"--{name.replace('_', '-')}"
            for name, value in vars(self).items()
            if name != "out_of_scope_label" and value != OUT_OF_SCOPE_DEFAULTS[name]
        ]
        if given and self.out_of_scope_label is None:
            raise ValueError(
                f"{', '.join(given)}: options of out-of-scope detection, which needs --out-of-scope-label."
            )
        if self.out_of_scope_method is not None and self.out_of_scope_method not in OUT_OF_SCOPE_SCORE_RANGES:
            raise ValueError(
                f"--out-of-scope-method {self.out_of_scope_method!r}: choose one of "
                f"{', '.join(OUT_OF_SCOPE_SCORE_RANGES)}."
            )
        if self.out_of_scope_threshold_rule not in THRESHOLD_RULES:
            raise ValueError(
                f"--out-of-scope-threshold-rule {self.out_of_scope_threshold_rule!r}: choose one of "
                f"{', '.join(THRESHOLD_RULES)}."
            )
        if not 0 < self.out_of_scope_in_scope_share <= 1:
            raise ValueError(f"--out-of-scope-in-scope-share {self.out_of_scope_in_scope_share}: must be in (0, 1].")
        if self.out_of_scope_threshold is not None:
            check_out_of_scope_threshold(
                self.out_of_scope_method or DEFAULT_METHOD, self.out_of_scope_threshold, "--out-of-scope-threshold"
            )


OUT_OF_SCOPE_DEFAULTS = {option.name: option.default for option in fields(OutOfScopeArguments)}


@dataclass
class OutputArguments:
    """What `train` may do with its output folder (`--output-dir`)."""

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into --output-dir even when it already holds files."}
    )
    keep_checkpoints: bool = field(
        default=False,
        metadata={
            "help": "Keep OUTPUT_DIR/checkpoints/ after a finished run (it is always there while training, so an "
            "interrupted run resumes with --resume-from-checkpoint); by default it is removed at the end."
        },
    )


@dataclass
class EvaluateArguments:
    """What `evaluate` scores and prints."""

    split: str = field(default="test", metadata={"help": "Split of the data to score."})
    out_of_scope_threshold: float | None = field(
        default=None, metadata={"help": "Score out-of-scope decisions at this threshold instead of the saved one."}
    )
    batch_size: int = field(default=64, metadata={"help": "Examples per forward pass."})
    json: bool = field(default=False, metadata={"help": "Print one JSON object instead of a table."})


def config_help(name: str) -> str:
    """The `Args:` entry of `name` in `MultiTaskBertConfig`'s docstring, as one line."""
    match = re.search(rf"^ {{8}}{name} \(`[^\n]*\):\n((?: {{12}}.*\n)+)", MultiTaskBertConfig.__doc__, re.MULTILINE)
    if match is None:
        raise LookupError(f"MultiTaskBertConfig documents no field {name!r}.")
    return " ".join(match.group(1).split())


def _config_option(name: str) -> tuple[str, type, typing.Any]:
    """A dataclass field for the config field `name`: its type, default and documented help."""
    config_field = {option.name: option for option in fields(MultiTaskBertConfig)}[name]
    # The config module's annotations are strings (`from __future__ import annotations`) of builtin types.
    kind = eval(config_field.type, {}) if isinstance(config_field.type, str) else config_field.type
    return name, kind, field(default=config_field.default, metadata={"help": config_help(name)})


def _check_model_arguments(self) -> None:
    """Parse `--task-weights` JSON; refuse both loss weightings at once."""
    if isinstance(self.task_weights, str):
        try:
            self.task_weights = json.loads(self.task_weights)
        except json.JSONDecodeError as error:
            raise ValueError(f"--task-weights is not JSON ({error.msg}): {self.task_weights!r}.") from None
    if self.task_weights is not None and not isinstance(self.task_weights, dict):
        raise ValueError(f"`task_weights` must be a JSON object of task -> weight, got {self.task_weights!r}.")
    if self.task_weights and self.uncertainty_weighting:
        raise ValueError("Give either `task_weights` or `uncertainty_weighting`, not both.")


ModelArguments = make_dataclass(
    "ModelArguments",
    [
        (
            "backbone",
            str | None,
            field(
                default=None,
                metadata={"help": "Encoder name or path. Default: the packaged all-MiniLM-L6-v2 (no download)."},
            ),
        ),
        (
            "model_name_or_path",
            str | None,
            field(
                default=None,
                metadata={
                    "help": "Continue training a trained multitask-bert model (folder or Hub id): its heads, labels "
                    "and architecture are kept, so the options of a new model (the backbone, "
                    + ", ".join(f"--{name}" for name in NEW_MODEL_OPTIONS)
                    + ") do not apply. A plain encoder (e.g. bert-base-uncased, as in transformers' run_ner.py) is "
                    "taken as --backbone instead."
                },
            ),
        ),
        *map(_config_option, NEW_MODEL_OPTIONS),
        (
            "task_weights",
            str | None,
            field(
                default=None,
                metadata={
                    "help": f'{config_help("task_weights")} As JSON: \'{{"intent": 1.0, "ner": 0.5}}\'. '
                    "Default: the config's (a continued model's)."
                },
            ),
        ),
        (
            "uncertainty_weighting",
            bool | None,
            field(
                default=None,
                metadata={
                    "help": f"{config_help('uncertainty_weighting')} (true/false). Default: the config's (a "
                    "continued model's)."
                },
            ),
        ),
    ],
    namespace={
        "__doc__": "The model to build: a backbone and the fields of `MultiTaskBertConfig`, or a model to continue.",
        "__post_init__": _check_model_arguments,
        "__module__": __name__,
    },
)
NEW_MODEL_DEFAULTS = {option.name: option.default for option in fields(ModelArguments)}


def encoder_as_backbone(model_args: ModelArguments) -> ModelArguments:
    """`model_args` with the plain encoder given to --model_name_or_path as --backbone (a new model on it)."""
    encoder = model_args.model_name_or_path
    if model_args.backbone is not None:
        raise ValueError(
            f"--model_name_or_path {encoder} is a plain encoder, not a multitask-bert model to continue, and "
            f"--backbone {model_args.backbone} is another: give the encoder once."
        )
    logger.info("%s is not a multitask-bert model: training a new model on it as the backbone (--backbone).", encoder)
    return replace(model_args, backbone=encoder, model_name_or_path=None)


def check_subtoken_labels(config: MultiTaskBertConfig, data_args: DataArguments) -> None:
    """Refuse tags on every sub-token for a model that gives all sub-tokens of a word the same features."""
    if data_args.label_all_subtokens and config.subword_pooling == "mean":
        raise ValueError(
            "--label_all_subtokens: a model with subword_pooling 'mean' gives every sub-token of a word the same "
            "features, so it cannot tell B- from I- inside one word; tags go on first sub-tokens only."
        )
