"""The recipe `multitask-bert train` applies to the options its command line leaves unset: what the benchmarks found
best for data of that kind and size (docs/training.md#the-default-recipe)."""

from __future__ import annotations

import math

from transformers import TrainingArguments

from ..modeling import MultiTaskBertConfig

# ATIS (140 steps an epoch at batch 32) scored best on validation with 20 epochs, 2800 optimizer steps; SNIPS (409
# steps an epoch) no better with 20 epochs than with 10, and worse with 5.
RECIPE_STEPS = 2800
MIN_EPOCHS = 10
MAX_EPOCHS = 20
# The embedded demo data is learnt in 3 epochs (about a minute on 2 CPU cores): the main job stays quick.
DEMO_EPOCHS = 3


# Continuing a trained model whose train split lacks some of its labels: distil towards its old answers with this
# weight unless `--distill-old-labels` is given (benchmarks/grow.py: old CLINC150 intents 80.7% -> 84.6% of their
# queries answered right, the new ones unchanged).
GROWTH_DISTILLATION = 1.0


def recipe_epochs(train_examples: int, batch_size: int, demo_data: bool = False) -> int:
    """Epochs for a train split of `train_examples` at `batch_size` examples a step: enough epochs for
    `RECIPE_STEPS` steps, within [`MIN_EPOCHS`, `MAX_EPOCHS`]; `DEMO_EPOCHS` for the embedded demo data."""
    if demo_data:
        return DEMO_EPOCHS
    steps_per_epoch = max(1, math.ceil(train_examples / batch_size))
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(RECIPE_STEPS / steps_per_epoch)))


def selection_metric(config: MultiTaskBertConfig, scored_tasks: list[str]) -> str:
    """The validation metric that picks the checkpoint: sentence accuracy (every task right) when several tasks are
    scored, else the one task's accuracy or entity F1."""
    if len(scored_tasks) > 1:
        return "sentence_accuracy"
    (task,) = scored_tasks
    return f"{config.task_metric_prefix(task)}_{'accuracy' if task in config.sentence_tasks else 'f1'}"


def checkpoints_can_be_compared(args: TrainingArguments) -> bool:
    """Whether every saved checkpoint was evaluated first, as `load_best_model_at_end` needs."""
    evaluation, saving = (getattr(strategy, "value", strategy) for strategy in (args.eval_strategy, args.save_strategy))
    if evaluation == "no" or saving != evaluation:
        return False
    return saving != "steps" or args.save_steps % args.eval_steps == 0


def apply_training_recipe(
    args: TrainingArguments, given: set[str], train_examples: int, demo_data: bool, metric: str | None
) -> list[str]:
    """Set the training length by `recipe_epochs` and keep the checkpoint with the best validation `metric` (None: no
    validation split), each unless the command line (`given`: its destinations) chose; returns what was set."""
    chosen = []
    if not given & {"num_train_epochs", "max_steps"}:
        batch_size = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        args.num_train_epochs = recipe_epochs(train_examples, batch_size, demo_data)
        chosen.append(f"{args.num_train_epochs:g} epochs for {train_examples} train examples")
    if metric and "load_best_model_at_end" not in given and checkpoints_can_be_compared(args):
        args.load_best_model_at_end = True
        if "metric_for_best_model" not in given:
            args.metric_for_best_model, args.greater_is_better = metric, True
        chosen.append(f"the checkpoint with the best validation {args.metric_for_best_model}")
    return chosen


def recipe_model_options(token_tasks: list[str], given: set[str]) -> dict[str, bool]:
    """Options of a new model the command line left unset: a CRF on the token tasks."""
    return {"use_crf": True} if token_tasks and "use_crf" not in given else {}
