"""What a training run did, in words for the model card: learning rates, batch, optimizer, schedule, freezing."""

from __future__ import annotations

from transformers import TrainingArguments

from ..modeling import MultiTaskBertConfig

OPTIMIZER_NAMES = {
    "adamw_torch": "AdamW (PyTorch)",
    "adamw_torch_fused": "AdamW (PyTorch, fused kernel)",
    "adamw_torch_xla": "AdamW (PyTorch XLA)",
    "adamw_apex_fused": "AdamW (Apex, fused kernel)",
    "adafactor": "Adafactor",
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
}


def _number(value: float) -> str:
    return f"{value:g}"


def _warmup(args: TrainingArguments, total_steps: int | None) -> str:
    """`warmup_steps` below 1 is a share of the training steps, else a step count."""
    if not args.warmup_steps:
        return "none"
    if args.warmup_steps < 1:
        share = f"{args.warmup_steps:.0%} of the training steps"
        return f"{share} ({args.get_warmup_steps(total_steps)} steps)" if total_steps else share
    return f"{int(args.warmup_steps)} steps"


def describe_training(
    args: TrainingArguments,
    total_steps: int | None = None,
    config: MultiTaskBertConfig | None = None,
    best_step: int | None = None,
) -> dict[str, str]:
    """`{what: how}` lines for the card from `TrainingArguments` (the `MultiTaskTrainingArguments` fields too, when
    present), the number of optimizer steps taken, the trained model's `config` (its loss weighting) and the step of
    the checkpoint kept by `load_best_model_at_end`."""
    optimizer_key = getattr(args.optim, "value", str(args.optim))
    optimizer = OPTIMIZER_NAMES.get(optimizer_key, optimizer_key)
    if "adam" in optimizer_key:
        optimizer += f", betas ({_number(args.adam_beta1)}, {_number(args.adam_beta2)}), epsilon {args.adam_epsilon:g}"
    optimizer += f", weight decay {_number(args.weight_decay)} (not on biases and norms)"
    if args.optim_args:
        optimizer += f", options {args.optim_args}"

    learning_rate = f"{args.learning_rate:g} for the encoder"
    decay = getattr(args, "layerwise_lr_decay", 1.0)
    if decay != 1.0:
        learning_rate += f" (its top layer; each layer below learns at {_number(decay)} times the rate above it)"
    head_learning_rate = getattr(args, "head_learning_rate", None)
    learning_rate += f", {head_learning_rate:g} for the task heads" if head_learning_rate is not None else " and heads"

    per_step = args.train_batch_size * args.world_size * args.gradient_accumulation_steps
    batch = f"{per_step} examples per optimizer step"
    if per_step != args.per_device_train_batch_size:
        batch += (
            f" ({args.per_device_train_batch_size} per device x {args.world_size} processes x "
            f"{args.gradient_accumulation_steps} accumulation steps)"
        )

    scheduler = getattr(args.lr_scheduler_type, "value", str(args.lr_scheduler_type)).replace("_", " ")
    length = f"{args.max_steps} steps" if args.max_steps > 0 else f"{_number(args.num_train_epochs)} epochs"
    if total_steps and args.max_steps <= 0:
        length += f" ({total_steps} optimizer steps)"
    lines = {
        "Learning rate": learning_rate,
        "Learning-rate schedule": f"{scheduler}, warmup: {_warmup(args, total_steps)}",
        "Optimizer": optimizer,
        "Batch size": batch,
        "Training length": length,
        "Seed": str(args.seed),
    }
    if args.load_best_model_at_end and args.metric_for_best_model:
        lines["Checkpoint"] = f"the one with the best validation {args.metric_for_best_model.removeprefix('eval_')}"
        if best_step is not None:
            lines["Checkpoint"] += f" (step {best_step})"
    if args.bf16 or args.fp16:
        lines["Precision"] = "mixed, bfloat16" if args.bf16 else "mixed, float16"
    frozen = []
    if getattr(args, "freeze_backbone", False):
        frozen.append("the whole encoder")
    elif getattr(args, "freeze_layers", 0):
        frozen.append(f"the embeddings and the lowest {args.freeze_layers} encoder layers")
    frozen += [f"the `{task}` head" for task in getattr(args, "freeze_heads", [])]
    if frozen:
        lines["Frozen during training"] = ", ".join(frozen)
    if config is not None and config.uncertainty_weighting:
        lines["Task weights"] = "learned (homoscedastic uncertainty, Kendall et al. 2018)"
    elif config is not None and config.task_weights:
        lines["Task weights"] = ", ".join(f"{task} {_number(weight)}" for task, weight in config.task_weights.items())
    preservation = getattr(args, "embedding_preservation_weight", None)
    if preservation is not None:
        lines["Embedding preservation"] = (
            f"weight {_number(preservation)} on 1 - cosine to the starting model's embedding of each training sentence"
            if preservation
            else "off (weight 0)"
        )
    distillation = getattr(args, "distill_old_labels", 0.0)
    if distillation:
        lines["Distillation"] = (
            f"weight {_number(distillation)} on the KL divergence from the starting model's answers on its own "
            "sentence labels"
        )
    return lines
