"""`multitask-bert train`: fine-tune a multi-task model, evaluate it, write a model folder ready to publish."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import datasets
import torch
from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase, set_seed
from transformers.utils import logging as transformers_logging

from ...hub_card.dataset_summary import summarize_dataset
from ...hub_card.hyperparameters import describe_training
from ...hub_card.model_card import hub_base_model, write_model_card
from ...modeling import MultiTaskBertConfig, MultiTaskBertModel, default_backbone_path
from ..data import MultiTaskDataCollator, task_levels, tokenize_dataset
from ..loading import check_model_location, is_multitask_bert_model, load_tokenizer
from ..out_of_scope import check_out_of_scope_fit, fit_out_of_scope, sentence_task_scores
from ..output_folder import apply_umask, check_output_dir, checkpoints_dir, remove_checkpoints
from ..recipe import GROWTH_DISTILLATION, apply_training_recipe, recipe_model_options, selection_metric
from ..sts_benchmark import StsPairs, read_sts_benchmark, sts_benchmark_spearman
from ..tasks import (
    grow_heads,
    head_specs,
    labels_missing_from_train,
    select_label_columns,
    trained_tasks,
    unknown_train_labels,
)
from ..trainer import MultiTaskTrainer, build_compute_metrics, set_loss_weighting
from ..training_args import MultiTaskTrainingArguments, cpu_bf16_pays_off
from .arguments import (
    LOSS_WEIGHTING_OPTIONS,
    NEW_MODEL_DEFAULTS,
    NEW_MODEL_OPTIONS,
    ModelArguments,
    OutOfScopeArguments,
    OutputArguments,
    TrainDataArguments,
    check_subtoken_labels,
    encoder_as_backbone,
)
from .parsing import command_parser, given_options, parse_dataclasses, set_help
from .report import metrics_table, show_examples, strip_prefix
from .script_flags import (
    SCRIPT_DEFAULTS,
    SCRIPT_HELP,
    keep_tensorboard_logs,
    push_trained_model,
    scored_splits,
    take_over_hub_push,
)

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILE = "eval_results.json"

# The recipe's fixed part (the training length, the CRF and the checkpoint choice depend on the data: `..recipe`).
# Every value can be overridden on the command line.
TRAIN_DEFAULTS = dict(
    output_dir="multitask-bert-model",
    learning_rate=1e-4,
    head_learning_rate=1e-3,
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


RECIPE_HELP = {
    "num_train_epochs": "Default: set by the size of the train split, enough epochs for 2800 optimizer steps within "
    "10 to 20 (3 for the embedded demo data); see docs/training.md#the-default-recipe.",
    "use_crf": "Whether token-level heads decode with a CRF. Default: true for a new model when the data has a "
    "token-level task (a continued model keeps its own).",
    "load_best_model_at_end": "Keep the checkpoint with the best validation --metric_for_best_model. Default: true "
    "when there is a validation split and every saved checkpoint is evaluated.",
    "metric_for_best_model": "Default: validation sentence accuracy (every task right) for several tasks, else the "
    "task's accuracy or entity F1.",
    "distill_old_labels": "Continuing a trained model (--model_name_or_path): weight of the loss term that keeps its "
    "answers on its old labels (KL from the starting model's softmax over them, per sentence-level task and batch). "
    "Default: 1 when the train split lacks some of the model's labels, else 0 (docs/growing.md).",
}


def dataset_and_model(
    model_args: ModelArguments,
    data_args: TrainDataArguments,
    out_of_scope_args: OutOfScopeArguments,
    given: set[str],
) -> tuple[DatasetDict, MultiTaskBertModel, PreTrainedTokenizerBase]:
    """The data and a new model on a backbone (with the recipe's options the command line did not `given`), or a
    trained model (`--model_name_or_path`) and the data in its ids."""
    if model_args.model_name_or_path and not is_multitask_bert_model(model_args.model_name_or_path):
        model_args = encoder_as_backbone(model_args)
    if model_args.model_name_or_path:
        new_model_options = [
            f"--{name}"
            for name, value in vars(model_args).items()
            if name not in ("model_name_or_path", *LOSS_WEIGHTING_OPTIONS) and value != NEW_MODEL_DEFAULTS[name]
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
        out_of_scope = out_of_scope_args.labels(model)
        dataset = data_args.load(tokenizer, label_lists, out_of_scope)
        if "train" in dataset and unknown_train_labels(dataset["train"], model.config.tasks):
            old_labels = {task: model.config.task_labels(task) for task in model.config.sentence_tasks}
            grown = grow_heads(model, data_args.load(tokenizer, None, out_of_scope))
            for task, labels in grown.items():
                logger.info(f"New labels of {task} in the train split, added to its head (old ids kept): {labels}")
            label_lists = {task: model.config.task_labels(task) for task in model.config.tasks}
            dataset = data_args.load(tokenizer, label_lists, out_of_scope)
            for task, absent in labels_missing_from_train(old_labels, dataset["train"]).items():
                logger.warning(FORGETTING_WARNING.format(task=task, count=len(absent), total=len(old_labels[task])))
    else:
        backbone = model_args.backbone or default_backbone_path()
        check_model_location(backbone)
        tokenizer = load_tokenizer(backbone)
        dataset = data_args.load(tokenizer, out_of_scope=out_of_scope_args.labels())
        tasks = head_specs(dataset, data_args.tasks)
        options = {name: getattr(model_args, name) for name in NEW_MODEL_OPTIONS}
        token_tasks = [task for task, spec in tasks.items() if spec["level"] == "token"]
        options.update(recipe_model_options(token_tasks, given))
        model = MultiTaskBertModel.from_backbone(backbone, tasks=tasks, tokenizer=tokenizer, **options)
    if "train" not in dataset:
        raise ValueError(f"The data has no train split (it has {list(dataset)}).")
    set_loss_weighting(model, model_args.task_weights, model_args.uncertainty_weighting)
    return dataset, model, tokenizer


# What continuing on the new labels' data alone costs, from benchmarks/grow.py (CLINC150, 3 seeds, the pipeline's
# answers on the old intents' test queries).
FORGETTING_WARNING = (
    "{task}: the train split has no example of {count} of the {total} labels the model had: training on the new "
    "labels alone forgets them (on CLINC150 the old intents' queries answered right fell from 93.1% to 80.7%; "
    "benchmarks/README.md#growpy). Train on the old and the new data together (one epoch kept 93.0% there) or with a "
    "replay sample of the old data (92.1%). Unless --distill-old-labels is given, training distils towards the old "
    "answers (weight 1), which kept 84.6% there (docs/growing.md)."
)


def forgets_old_labels(model_args: ModelArguments, train) -> bool:
    """Whether training continues a multitask-bert model on a train split that lacks some of its sentence labels."""
    location = model_args.model_name_or_path
    if not location or not is_multitask_bert_model(location):
        return False
    config = MultiTaskBertConfig.from_pretrained(location)
    return bool(labels_missing_from_train({task: config.task_labels(task) for task in config.sentence_tasks}, train))


def old_model_to_distill(model_args: ModelArguments, weight: float) -> MultiTaskBertModel | None:
    """With `--distill_old_labels` (`weight > 0`), the trained model that training continues from, loaded apart as it
    is before its heads grow: the distillation teacher on its old labels."""
    if not weight:
        return None
    location = model_args.model_name_or_path
    if not location or not is_multitask_bert_model(location):
        not_an_encoder = f", not the encoder {location}" if location else ""
        raise ValueError(
            f"--distill_old_labels {weight} distils towards the trained model that training continues from: it "
            f"needs --model_name_or_path of a multitask-bert model{not_an_encoder}."
        )
    return MultiTaskBertModel.from_pretrained(location)


def main(argv: list[str]) -> int:
    """Fine-tune a multi-task model, evaluate it, write a model folder ready to publish."""
    parser = command_parser(
        [ModelArguments, TrainDataArguments, OutOfScopeArguments, OutputArguments, MultiTaskTrainingArguments],
        "multitask-bert train",
    )
    parser.set_defaults(**TRAIN_DEFAULTS, **SCRIPT_DEFAULTS, **precision_defaults(argv))
    set_help(parser, {**SCRIPT_HELP, **RECIPE_HELP})
    given = given_options(parser, argv)
    model_args, data_args, out_of_scope_args, output_args, training_args = parse_dataclasses(parser, argv)
    splits = scored_splits(parser, argv)
    out_of_scope_args.check()
    old_model = old_model_to_distill(model_args, training_args.distill_old_labels)
    output_dir = Path(training_args.output_dir)
    check_output_dir(output_dir, output_args.overwrite_output_dir, bool(training_args.resume_from_checkpoint))
    repo_id = take_over_hub_push(training_args, output_dir)
    training_args.output_dir = str(checkpoints_dir(output_dir))
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if training_args.disable_tqdm:  # the Trainer's switch silences the bars of every other step of the run too
        transformers_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    if training_args.bf16 and training_args.use_cpu:
        logging.getLogger(__name__).info("Training on the CPU under bf16 autocast (`--bf16 false` trains in fp32).")

    set_seed(training_args.seed)  # the heads' initialisation too: the Trainer seeds only once the model exists
    dataset, model, tokenizer = dataset_and_model(model_args, data_args, out_of_scope_args, given)
    if "distill_old_labels" not in given and forgets_old_labels(model_args, dataset["train"]):
        training_args.distill_old_labels = GROWTH_DISTILLATION
        old_model = old_model_to_distill(model_args, GROWTH_DISTILLATION)
    if old_model is not None:
        tasks = ", ".join(old_model.config.sentence_tasks)
        weight = training_args.distill_old_labels
        logger.info(f"Distillation towards the starting model on the old labels of {tasks} (weight {weight}).")
    data_tasks = list(task_levels(dataset["train"].features))
    trained = trained_tasks(model.config, data_tasks, data_args.tasks)
    # Saved with the model: the pipeline reads long texts in windows of the trained length (sentence-transformers keeps
    # the backbone's own `max_seq_length`, from the config, so embeddings of long texts match the backbone's).
    tokenizer.model_max_length = data_args.max_length
    check_subtoken_labels(model.config, data_args)
    features = tokenize_dataset(dataset, tokenizer, data_args.max_length, data_args.label_all_subtokens)
    features = select_label_columns(features, model.config, trained)
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
    eval_split = "validation" if "validation" in features and "validation" in splits else None
    if eval_split is None:
        training_args.eval_strategy = "no"
    eval_columns = features[eval_split].column_names if eval_split else []
    scored = [task for task in model.config.tasks if f"{task}_labels" in eval_columns]
    chosen = apply_training_recipe(
        training_args,
        given,
        len(features["train"]),
        demo_data=data_args.data is None,
        metric=selection_metric(model.config, scored) if scored else None,
    )
    if chosen:
        logger.info("Recipe (the options not given): %s.", "; ".join(chosen))
    trainer = MultiTaskTrainer(
        model=model,
        args=training_args,
        train_dataset=features["train"],
        eval_dataset=features[eval_split] if eval_split else None,
        data_collator=MultiTaskDataCollator(tokenizer),
        processing_class=tokenizer,
        compute_metrics=build_compute_metrics(model.config, per_type=False),
        old_model=old_model,
    )
    keep_tensorboard_logs(trainer, output_dir)
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
    # Stored examples are embedded again by the trained encoder (and the refitted detector's whitening).
    model.refresh_examples(tokenizer, batch_size=training_args.per_device_eval_batch_size)
    trainer.save_model(str(output_dir))

    trainer.compute_metrics = build_compute_metrics(model.config)  # the final tables also score each entity type
    results = {
        split: {
            **strip_prefix(trainer.evaluate(features[split], metric_key_prefix=split), split),
            **sentence_task_scores(
                model, features[split], trainer.data_collator, batch_size=training_args.per_device_eval_batch_size
            ),
        }
        for split in splits
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
                "spearman_cosine": sts_benchmark_spearman(
                    output_dir, sts_pairs, show_progress=not training_args.disable_tqdm
                ),
                "base_spearman_cosine": base_sts,
            }
        write_card(output_dir, results, trainer, dataset, data_args, model_args, embedding_similarity)
        for split, metrics in results.items():
            print(f"\n{split} split:\n{metrics_table(metrics, model.config)}")
        apply_umask(output_dir)
        show_examples(output_dir, dataset)
        if repo_id is not None:
            push_trained_model(output_dir, repo_id, training_args)
    return 0


def starting_model_sts(trainer: MultiTaskTrainer, sts_pairs: StsPairs) -> float | None:
    """STS Benchmark score of the model before training (the embedding-preservation teacher); main process only."""
    if not trainer.is_world_process_zero():
        return None
    with tempfile.TemporaryDirectory() as folder:
        trainer.model.save_pretrained(folder)
        trainer.processing_class.save_pretrained(folder)
        return sts_benchmark_spearman(folder, sts_pairs, show_progress=not trainer.args.disable_tqdm)


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
        hyperparameters=describe_training(
            trainer.args, trainer.state.global_step, trainer.model.config, trainer.state.best_global_step
        ),
        base_model=hub_base_model(model_args.model_name_or_path or model_args.backbone),
        snippet_examples=list(dataset["test"]["text"][:2]) if "test" in dataset else None,
        embedding_preservation_weight=trainer.args.embedding_preservation_weight,
        embedding_similarity=embedding_similarity,
    )
