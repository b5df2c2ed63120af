"""`multitask-bert evaluate`: score a trained model folder on a data split."""

from __future__ import annotations

import json
import tempfile

from datasets import DatasetDict
from transformers import AutoModel

from ...modeling.configuration_multitask_bert import check_out_of_scope_threshold
from ..data import MultiTaskDataCollator, tokenize_dataset
from ..loading import check_model_location, load_tokenizer
from ..out_of_scope import detected_labels, sentence_task_scores
from ..sts_benchmark import sts_benchmark_spearman
from ..tasks import select_label_columns
from ..trainer import MultiTaskTrainer, build_compute_metrics
from ..training_args import MultiTaskTrainingArguments
from .arguments import DataArguments, EvaluateArguments, check_subtoken_labels
from .parsing import command_parser, parse_dataclasses
from .report import metrics_table, strip_prefix
from .train import TRAIN_DEFAULTS


def main(argv: list[str]) -> int:
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
    dataset = data_args.load(tokenizer, label_lists, out_of_scope)
    if options.split not in dataset:
        raise ValueError(f"No split {options.split!r} in the data; it has {list(dataset)}.")
    check_subtoken_labels(model.config, data_args)
    features = tokenize_dataset(
        DatasetDict({options.split: dataset[options.split]}),
        tokenizer,
        data_args.max_length,
        data_args.label_all_subtokens,
    )
    features = select_label_columns(features, model.config, list(model.config.tasks))
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
    print(json.dumps(metrics) if options.json else metrics_table(metrics, model.config))
    return 0
