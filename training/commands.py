"""`multitask-bert train` and `multitask-bert evaluate`: the main job, parsed with HfArgumentParser."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from transformers import AutoModel, HfArgumentParser, PreTrainedTokenizerBase, set_seed

from multitask_bert.hub_card.hyperparameters import describe_training
from multitask_bert.hub_card.model_card import hub_base_model, summarize_dataset, write_model_card
from multitask_bert.modeling import MultiTaskBertConfig, MultiTaskBertModel, default_backbone_path
from multitask_bert.modeling.configuration_multitask_bert import OUT_OF_SCOPE_SCORE_RANGES, check_out_of_scope_threshold
from multitask_bert.modeling.pipeline_multitask_bert import result_key

from .cli import FLAG_STYLE
from .data import (
    UNK,
    MultiTaskDataCollator,
    default_data_dir,
    load_data,
    task_label_lists,
    task_levels,
    tokenize_dataset,
)
from .data.labels import label_names, tags_column
from .loading import check_model_location, load_tokenizer
from .out_of_scope import (
    DEFAULT_IN_SCOPE_SHARE,
    DEFAULT_METHOD,
    THRESHOLD_RULES,
    check_out_of_scope_fit,
    detected_labels,
    fit_out_of_scope,
    sentence_task_scores,
)
from .output_folder import apply_umask, check_output_dir, checkpoints_dir, remove_checkpoints
from .sts_benchmark import StsPairs, read_sts_benchmark, sts_benchmark_spearman
from .trainer import MultiTaskTrainer, build_compute_metrics
from .training_args import MultiTaskTrainingArguments, cpu_bf16_pays_off

EVAL_RESULTS_FILE = "eval_results.json"

# The main job's recipe: `multitask-bert train` with no arguments trains on the embedded data in a few minutes on
# 2 CPU cores. Every value can be overridden on the command line.
TRAIN_DEFAULTS = dict(
    output_dir="multitask-bert-model",
    num_train_epochs=3,
    learning_rate=1e-4,
    head_learning_rate=1e-3,
    layerwise_lr_decay=0.9,
    per_device_train_batch_size=32,
    per_device_eval_batch_size=64,
    warmup_steps=0.1,
    weight_decay=0.01,
    eval_strategy="epoch",
    save_strategy="epoch",
    save_total_limit=1,
    logging_steps=20,
    train_sampling_strategy="group_by_length",
    report_to="none",
    seed=42,
    # Pinned memory only helps copies to an accelerator; on CPU the DataLoader warns about it at every epoch.
    dataloader_pin_memory=torch.accelerator.is_available(),
)


def precision_defaults(argv: list[str]) -> dict[str, bool]:
    """bf16 autocast by default where the CPU multiplies bf16 in hardware and there is no accelerator (`--bf16 false`
    trains in fp32), unless the command line chooses `--fp16`."""
    names_fp16 = any(argument.split("=", 1)[0] == "--fp16" for argument in argv)
    return {"bf16": cpu_bf16_pays_off() and not names_fp16}


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
            task, label = "intent", task
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
class ModelArguments:
    """The model to build: a backbone and the choices of `MultiTaskBertConfig`."""

    backbone: str | None = field(
        default=None,
        metadata={"help": "Encoder name or path. Default: the packaged all-MiniLM-L6-v2 (no download)."},
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue training a trained multitask-bert model (folder or Hub id): its heads, labels and "
            "architecture are kept, so the options of a new model (the backbone, pooling, head and CRF options, "
            "classifier dropout) do not apply."
        },
    )
    pooling: str = field(default="mean", metadata={"help": "The sentence embedding's pooling: mean, cls or max."})
    sentence_head_pooling: str | None = field(
        default=None,
        metadata={
            "help": "The sentence-level heads' own pooling: mean, cls, max or attention (learned token weights). "
            "Default: they read the sentence embedding's pooled vector."
        },
    )
    sentence_aware_token_heads: bool = field(
        default=False,
        metadata={
            "help": "Token heads also read the sentence heads' predicted label distributions (intent-aware tags)."
        },
    )
    subword_pooling: str = field(
        default="first",
        metadata={
            "help": "What token heads read for a word cut into sub-tokens: first (each sub-token's own state; tags "
            "are decided at the first) or mean (the mean of the word's sub-token states; WordPiece tokenizers)."
        },
    )
    use_crf: bool = field(default=False, metadata={"help": "A CRF on the NER head (Viterbi decoding)."})
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout before the task heads."})


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


NEW_MODEL_DEFAULTS = {option.name: option.default for option in fields(ModelArguments)}


def parse_dataclasses(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """`parser.parse_args_into_dataclasses(argv)`, with argparse's usage + error line (exit 2) for an unknown option
    (HfArgumentParser raises a ValueError for those)."""
    *parsed, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(parsed)


def command_parser(dataclass_types: list[type], prog: str) -> HfArgumentParser:
    """An HfArgumentParser for a subcommand: abbreviated options refused, the flag style in the help."""
    return HfArgumentParser(dataclass_types, prog=prog, allow_abbrev=False, epilog=FLAG_STYLE)


def load_dataset_for(
    data_args: DataArguments,
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
    if data_args.task_columns is not None:
        try:
            options["task_columns"] = json.loads(data_args.task_columns)
        except json.JSONDecodeError as error:
            raise ValueError(f"--task-columns is not JSON ({error.msg}): {data_args.task_columns!r}.") from None
    if data_args.data is None:
        return load_data(default_data_dir(), "jsonl", tokenizer, **options)
    return load_data(data_args.data, data_args.format, tokenizer, **options)


def dataset_and_model(
    model_args: ModelArguments, data_args: TrainDataArguments, out_of_scope_args: OutOfScopeArguments
) -> tuple[DatasetDict, MultiTaskBertModel, PreTrainedTokenizerBase]:
    """The data and a new model on a backbone, or a trained model (`--model_name_or_path`) and the data in its ids."""
    if model_args.model_name_or_path:
        new_model_options = [
            f"--{name}"
            for name, value in vars(model_args).items()
            if name != "model_name_or_path" and value != NEW_MODEL_DEFAULTS[name]
        ]
        if new_model_options:
            raise ValueError(
                f"{', '.join(new_model_options)}: options of a new model, but --model_name_or_path continues a "
                "trained one, architecture included. Pass one or the other."
            )
        check_model_location(model_args.model_name_or_path)
        model = MultiTaskBertModel.from_pretrained(model_args.model_name_or_path)
        label_lists = {task: model.config.task_labels(task) for task in model.config.tasks}
        tokenizer = load_tokenizer(model_args.model_name_or_path)
        dataset = load_dataset_for(data_args, tokenizer, label_lists, out_of_scope_args.labels(model))
        if "train" in dataset and (unknown := unknown_train_labels(dataset["train"], model.config.tasks)):
            counts = ", ".join(f"{count} {task}" for task, count in unknown.items())
            raise ValueError(
                f"The train split has labels that {model_args.model_name_or_path} does not know ({counts}; the warning "
                "above lists them): they would train as UNK. Continue on data within the model's labels, or train "
                "a new model."
            )
    else:
        backbone = model_args.backbone or default_backbone_path()
        check_model_location(backbone)
        tokenizer = load_tokenizer(backbone)
        dataset = load_dataset_for(data_args, tokenizer, out_of_scope=out_of_scope_args.labels())
        levels = task_levels(next(iter(dataset.values())).features)
        tasks = {
            task: {"level": levels[task], "labels": names}
            for task, names in task_label_lists(dataset).items()
            if data_args.tasks is None or task in data_args.tasks
        }
        if not tasks:
            raise ValueError(f"None of the tasks {data_args.tasks or list(levels)} has labels in the train split.")
        model = MultiTaskBertModel.from_backbone(
            backbone,
            tasks=tasks,
            pooling=model_args.pooling,
            sentence_head_pooling=model_args.sentence_head_pooling,
            sentence_aware_token_heads=model_args.sentence_aware_token_heads,
            subword_pooling=model_args.subword_pooling,
            tokenizer=tokenizer,
            use_crf=model_args.use_crf,
            classifier_dropout=model_args.classifier_dropout,
        )
    if "train" not in dataset:
        raise ValueError(f"The data has no train split (it has {list(dataset)}).")
    return dataset, model, tokenizer


def check_subtoken_labels(config: MultiTaskBertConfig, data_args: DataArguments) -> None:
    """Refuse tags on every sub-token for a model that gives all sub-tokens of a word the same features."""
    if data_args.label_all_subtokens and config.subword_pooling == "mean":
        raise ValueError(
            "--label_all_subtokens: a model with subword_pooling 'mean' gives every sub-token of a word the same "
            "features, so it cannot tell B- from I- inside one word; tags go on first sub-tokens only."
        )


def unknown_train_labels(train: Dataset, tasks: Iterable[str]) -> dict[str, int]:
    """Per task among `tasks`, how many labels of `train` the vocabulary lacks (they were mapped to `UNK`)."""
    unknown = {}
    for task, level in task_levels(train.features).items():
        if task not in tasks:
            continue
        unk = label_names(train.features, task).index(UNK)
        if level == "sentence":
            unknown[task] = sum(label == unk for label in train[task])
        else:
            unknown[task] = sum(tag == unk for tags in train[tags_column(task)] for tag in tags)
    return {task: count for task, count in unknown.items() if count}


def train(argv: list[str]) -> int:
    """Fine-tune a multi-task model, evaluate it, write a model folder ready to publish."""
    parser = command_parser(
        [ModelArguments, TrainDataArguments, OutOfScopeArguments, OutputArguments, MultiTaskTrainingArguments],
        "multitask-bert train",
    )
    parser.set_defaults(**TRAIN_DEFAULTS, **precision_defaults(argv))
    model_args, data_args, out_of_scope_args, output_args, training_args = parse_dataclasses(parser, argv)
    out_of_scope_args.check()
    output_dir = Path(training_args.output_dir)
    check_output_dir(output_dir, output_args.overwrite_output_dir, bool(training_args.resume_from_checkpoint))
    training_args.output_dir = str(checkpoints_dir(output_dir))
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if training_args.bf16 and training_args.use_cpu:
        logging.getLogger(__name__).info("Training on the CPU under bf16 autocast (`--bf16 false` trains in fp32).")

    set_seed(training_args.seed)  # the heads' initialisation too: the Trainer seeds only once the model exists
    dataset, model, tokenizer = dataset_and_model(model_args, data_args, out_of_scope_args)
    data_tasks = list(task_levels(dataset["train"].features))
    trained_tasks = data_args.tasks or [*model.config.tasks, *data_tasks]
    if data_args.tasks and (missing := [task for task in data_args.tasks if task not in model.config.tasks]):
        raise ValueError(
            f"--tasks {' '.join(missing)}: the model has no such head; its heads are {list(model.config.tasks)} "
            f"(the data's tasks: {data_tasks})."
        )
    # Saved with the model: the pipeline reads long texts in windows of the trained length (sentence-transformers keeps
    # the backbone's own `max_seq_length`, from the config, so embeddings of long texts match the backbone's).
    tokenizer.model_max_length = data_args.max_length
    check_subtoken_labels(model.config, data_args)
    features = tokenize_dataset(dataset, tokenizer, data_args.max_length, data_args.label_all_subtokens)
    # Targets of tasks the model lacks go everywhere; those of its tasks left out by --tasks go from train only, so
    # the evaluation still scores every head (tokenize_dataset makes none for a task without labels in train).
    for task in data_tasks:
        column = f"{task}_labels"
        if task not in model.config.tasks:
            drop_from = list(features)
        elif task not in trained_tasks:
            drop_from = ["train"]
        else:
            drop_from = []
        for split in drop_from:
            if column in features[split].column_names:
                features[split] = features[split].remove_columns(column)
    if not any(f"{task}_labels" in features["train"].column_names for task in model.config.tasks):
        raise ValueError(f"None of the tasks {trained_tasks} has labels in the train split.")
    out_of_scope_labels = out_of_scope_args.labels(model)
    if out_of_scope_args.out_of_scope_label is None:  # a continued model's detectors: refitted where their task trains
        out_of_scope_labels = {
            task: label
            for task, label in out_of_scope_labels.items()
            if f"{task}_labels" in features["train"].column_names
        }
    given_thresholds = (
        dict.fromkeys(out_of_scope_labels, out_of_scope_args.out_of_scope_threshold)
        if out_of_scope_args.out_of_scope_threshold is not None
        else None
    )
    check_out_of_scope_fit(
        features,
        out_of_scope_labels,
        model.config.sentence_tasks,
        out_of_scope_args.out_of_scope_threshold_rule,
        given_thresholds,
    )
    eval_split = "validation" if "validation" in features else None
    if eval_split is None:
        training_args.eval_strategy = "no"
    trainer = MultiTaskTrainer(
        model=model,
        args=training_args,
        train_dataset=features["train"],
        eval_dataset=features[eval_split] if eval_split else None,
        data_collator=MultiTaskDataCollator(tokenizer),
        processing_class=tokenizer,
        compute_metrics=build_compute_metrics(model.config, per_type=False),
    )
    # A bad STS file fails now, not after training.
    sts_pairs = read_sts_benchmark(data_args.sts_benchmark) if data_args.sts_benchmark else None
    base_sts = starting_model_sts(trainer, sts_pairs) if sts_pairs else None
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    # Calibration, out-of-scope detection and the final scores are the saved model's as users load it (fp32): the
    # mixed-precision autocast wrapper goes.
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    fit_out_of_scope(
        model,
        features["train"],
        features.get("validation"),
        trainer.data_collator,
        out_of_scope_labels,
        methods={task: out_of_scope_args.method(model, task) for task in out_of_scope_labels},
        rule=out_of_scope_args.out_of_scope_threshold_rule,
        in_scope_share=out_of_scope_args.out_of_scope_in_scope_share,
        thresholds=given_thresholds,
        batch_size=training_args.per_device_eval_batch_size,
    )
    trainer.save_model(str(output_dir))

    trainer.compute_metrics = build_compute_metrics(model.config)  # the final tables also score each entity type
    results = {
        split: {
            **strip_prefix(trainer.evaluate(features[split], metric_key_prefix=split), split),
            **sentence_task_scores(
                model, features[split], trainer.data_collator, batch_size=training_args.per_device_eval_batch_size
            ),
        }
        for split in ("validation", "test")
        if split in features
    }
    if trainer.is_world_process_zero():
        if not output_args.keep_checkpoints:
            remove_checkpoints(output_dir)
        (output_dir / EVAL_RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
        embedding_similarity = None
        if sts_pairs:
            embedding_similarity = {
                "split": sts_pairs.path.stem,
                "spearman_cosine": sts_benchmark_spearman(output_dir, sts_pairs),
                "base_spearman_cosine": base_sts,
            }
        write_card(output_dir, results, trainer, dataset, data_args, model_args, embedding_similarity)
        for split, metrics in results.items():
            print(f"\n{split} split:\n{metrics_table(metrics)}")
        apply_umask(output_dir)
        show_examples(output_dir, dataset)
    return 0


def starting_model_sts(trainer: MultiTaskTrainer, sts_pairs: StsPairs) -> float | None:
    """STS Benchmark score of the model before training (the embedding-preservation teacher); main process only."""
    if not trainer.is_world_process_zero():
        return None
    with tempfile.TemporaryDirectory() as folder:
        trainer.model.save_pretrained(folder)
        trainer.processing_class.save_pretrained(folder)
        return sts_benchmark_spearman(folder, sts_pairs)


def strip_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {key.removeprefix(f"{prefix}_"): value for key, value in metrics.items()}


def evaluate_model(argv: list[str]) -> int:
    """Score a trained model folder on a data split; prints a table, or JSON with --json."""
    parser = command_parser([DataArguments, EvaluateArguments], "multitask-bert evaluate")
    parser.add_argument("model_dir", help="Folder written by `multitask-bert train` (or a Hub repo id).")
    data_args, options, extra = parse_dataclasses(parser, argv)
    check_model_location(extra.model_dir)
    model = AutoModel.from_pretrained(extra.model_dir, trust_remote_code=True)
    tokenizer = load_tokenizer(extra.model_dir)
    label_lists = {task: model.config.task_labels(task) for task in model.config.tasks}
    out_of_scope = detected_labels(model)
    thresholds = None
    if options.out_of_scope_threshold is not None:
        if not out_of_scope:
            raise ValueError("--out-of-scope-threshold: this model has no out-of-scope detector.")
        thresholds = {
            task: check_out_of_scope_threshold(
                model.config.task_out_of_scope(task)["method"],
                options.out_of_scope_threshold,
                "--out-of-scope-threshold",
            )
            for task in out_of_scope
        }
    dataset = load_dataset_for(data_args, tokenizer, label_lists, out_of_scope)
    if options.split not in dataset:
        raise ValueError(f"No split {options.split!r} in the data; it has {list(dataset)}.")
    check_subtoken_labels(model.config, data_args)
    features = tokenize_dataset(
        DatasetDict({options.split: dataset[options.split]}),
        tokenizer,
        data_args.max_length,
        data_args.label_all_subtokens,
    )
    other_tasks = [
        f"{task}_labels" for task in task_levels(dataset[options.split].features) if task not in model.config.tasks
    ]
    features = features.remove_columns(
        [column for column in other_tasks if column in features[options.split].column_names]
    )
    with tempfile.TemporaryDirectory() as scratch:  # the Trainer creates its output_dir; evaluation writes nothing
        trainer = MultiTaskTrainer(
            model=model,
            args=MultiTaskTrainingArguments(
                output_dir=scratch,
                per_device_eval_batch_size=options.batch_size,
                report_to="none",
                dataloader_pin_memory=TRAIN_DEFAULTS["dataloader_pin_memory"],
            ),
            data_collator=MultiTaskDataCollator(tokenizer),
            processing_class=tokenizer,
            compute_metrics=build_compute_metrics(model.config),
        )
        evaluated = trainer.evaluate(features[options.split], metric_key_prefix=options.split)
    metrics = strip_prefix(evaluated, options.split)
    metrics.update(
        sentence_task_scores(
            model, features[options.split], MultiTaskDataCollator(tokenizer), thresholds, options.batch_size
        )
    )
    if data_args.sts_benchmark:
        metrics["sts_benchmark_spearman_cosine"] = sts_benchmark_spearman(extra.model_dir, data_args.sts_benchmark)
    print(json.dumps(metrics) if options.json else metrics_table(metrics))
    return 0


def metrics_table(metrics: dict[str, float]) -> str:
    """Each task's headline score (`<task>_accuracy`, `entity_f1` / `<task>_f1`), sentence accuracy, the STS score and
    the F1 per entity type of `ner`, as an aligned text table."""
    headline = [key for key in metrics if key.endswith("_accuracy") and key != "sentence_accuracy"]
    task_f1 = [key.removesuffix("_f1") for key in metrics if key.endswith("_f1")]  # per entity type: has a support
    headline += [
        f"{prefix}_f1" for prefix in task_f1 if f"{prefix}_recall" in metrics and f"{prefix}_support" not in metrics
    ]
    headline += [key for key in metrics if "_out_of_scope_" in key or key.endswith(("_ece", "_ece_uncalibrated"))]
    headline += ["sentence_accuracy", "sts_benchmark_spearman_cosine"]
    rows = [(name, metrics[name]) for name in headline if name in metrics]
    per_type = sorted(
        key for key in metrics if key.startswith("entity_") and key.endswith("_f1") and key != "entity_f1"
    )
    rows += [(f"  F1 {key.removeprefix('entity_').removesuffix('_f1')}", metrics[key]) for key in per_type]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:.4f}" for name, value in rows)


def write_card(
    output_dir: Path,
    results: dict[str, dict[str, float]],
    trainer: MultiTaskTrainer,
    dataset: DatasetDict,
    data_args: TrainDataArguments,
    model_args: ModelArguments,
    embedding_similarity: dict[str, float | str | None] | None = None,
) -> None:
    """The model card (README.md), loss plot and card inputs, filled from this run."""
    model_tasks = trainer.model.config.tasks
    write_model_card(
        output_dir,
        eval_results=results,
        log_history=trainer.state.log_history,
        dataset_name=data_args.data or "multitask-bert synthetic scheduler data",
        dataset_summary={
            split: {key: value for key, value in counts.items() if key == "examples" or key in model_tasks}
            for split, counts in summarize_dataset(dataset).items()
        },
        synthetic_data=data_args.data is None,
        hyperparameters=describe_training(trainer.args, trainer.state.global_step),
        base_model=hub_base_model(model_args.model_name_or_path or model_args.backbone),
        widget_examples=list(dataset["test"]["text"][:2]) if "test" in dataset else None,
        embedding_preservation_weight=trainer.args.embedding_preservation_weight,
        embedding_similarity=embedding_similarity,
    )


def answer_text(task: str, answer: dict, config: MultiTaskBertConfig) -> str:
    """`intent set_alarm (0.97)`, or for an out-of-scope answer `intent oos (out-of-scope score 1.2e+03 > 817)`."""
    detector = config.task_out_of_scope(task)
    if detector is not None and answer["label"] == detector["label"]:
        score, threshold = answer["out_of_scope_score"], detector["threshold"]
        return f"{task} {answer['label']} (out-of-scope score {score:.3g} > {threshold:.3g})"
    return f"{task} {answer['label']} ({answer['score']:.2f})"


def show_examples(model_dir: Path, dataset: DatasetDict, count: int = 3) -> None:
    """Print predictions of the saved model, loaded the way users load it, on a few test utterances."""
    from transformers import pipeline

    split = dataset["test"] if "test" in dataset else next(iter(dataset.values()))
    texts = list(split.select(range(min(count, len(split))))["text"])
    nlu = pipeline("joint-intent-ner", model=str(model_dir), trust_remote_code=True)
    print("\nExample predictions:")
    config = nlu.model.config
    for prediction in nlu(texts):
        parts = [answer_text(task, prediction[task], config) for task in config.sentence_tasks]
        for task in config.token_tasks:
            key = result_key(task)
            found = ", ".join(f"{entity['entity_group']}={entity['word']!r}" for entity in prediction[key])
            parts.append(f"{key}: {found or 'none'}")
        print(f"  {prediction['text']!r}\n    {'; '.join(parts)}")


if __name__ == "__main__":
    sys.exit(train(sys.argv[1:]))
