"""`MultiTaskTrainer`: the transformers `Trainer` for the joint loss, with per-task logs, LLRD, freezing and metrics."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import torch
from datasets import Dataset, DatasetDict, IterableDatasetDict
from torch import nn
from transformers import EarlyStoppingCallback, EvalPrediction, PreTrainedTokenizerBase, Trainer
from transformers.trainer_optimizer import is_optimizer_factory

from ..modeling import MultiTaskBertConfig, MultiTaskBertModel, default_backbone_path
from ..modeling.modeling_multitask_bert import IGNORE_INDEX
from ..modeling.pipeline_multitask_bert import answerable_logits
from .data import UNK, MultiTaskDataCollator, task_label_lists, tokenize_dataset
from .embedding_preservation import (
    TEACHER_EMBEDDING,
    embedding_preservation_loss,
    teacher_embeddings,
    with_teacher_column,
)
from .forward_pass import MODEL_INPUTS
from .loading import load_tokenizer
from .metric import METRICS_PATH as METRICS_PATH
from .metric import load_metric, task_arguments
from .tasks import head_specs, select_label_columns
from .training_args import MultiTaskTrainingArguments

# The joint loss's embedding-preservation term, logged as `loss_embedding_preservation` beside the task losses.
PRESERVATION_LOSS = "embedding_preservation"
# The distillation term on a continued model's old labels (`distill_old_labels`), logged as `loss_distillation`.
DISTILLATION_LOSS = "distillation"

# `encoder.layer.3.` (BERT, RoBERTa, ELECTRA, MPNet, DeBERTa), `transformer.layer.3.` (DistilBERT), `layers.3.`
# (ModernBERT), `block.3.` (T5 encoders): the first such index in a parameter name is its encoder layer.
LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks)\.(\d+)\.")


class TaskLossTracker:
    """
    Sums each task's loss over the batches that label it (no device sync per step) until the means are read; a loss
    without `<name>_labels` in the inputs (embedding preservation) counts in every batch.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}

    def add(self, losses: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]) -> None:
        for task, loss in losses.items():
            labels = inputs.get(f"{task}_labels")
            labelled = (labels != IGNORE_INDEX).any() if labels is not None else torch.ones((), device=loss.device)
            labelled = labelled.to(loss.dtype)
            self.sums[task] = self.sums.get(task, 0.0) + loss.detach() * labelled
            self.counts[task] = self.counts.get(task, 0.0) + labelled

    def pop_means(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """Mean loss per task across processes (`reduce` sums a tensor over them), then start again."""
        if not self.sums:
            return {}
        tasks = list(self.sums)
        totals = reduce(torch.stack([self.sums[task] for task in tasks] + [self.counts[task] for task in tasks]))
        self.sums, self.counts = {}, {}
        sums, counts = totals[: len(tasks)].tolist(), totals[len(tasks) :].tolist()
        return {f"loss_{task}": total / count for task, total, count in zip(tasks, sums, counts, strict=True) if count}


def old_label_distillation_loss(
    old_logits: dict[str, torch.Tensor], logits: dict[str, torch.Tensor], old_labels: dict[str, list[str]]
) -> torch.Tensor:
    """
    Sum over the tasks of `old_labels` (`{task: the old model's labels}`) of the batch mean of `KL(old || new)`
    between the softmax of `old_logits` and that of `logits` over the old label ids (the first ones of a grown head),
    `UNK` left out of both; in float32.
    """
    total = torch.zeros((), device=next(iter(logits.values())).device)
    for task, labels in old_labels.items():
        answerable = [index for index, label in enumerate(labels) if label != UNK]
        old_log_probs = old_logits[task][:, answerable].float().log_softmax(dim=-1)
        log_probs = logits[task][:, answerable].float().log_softmax(dim=-1)
        total = total + nn.functional.kl_div(log_probs, old_log_probs, reduction="batchmean", log_target=True)
    return total


def check_label_ids(data: DatasetDict | IterableDatasetDict, config: MultiTaskBertConfig) -> None:
    """Raise a `ValueError` unless each task that `data` labels and the model has names its labels in the model's id
    order (a trained model's data must be read with its vocabularies: `load_data(..., label_lists=...)`)."""
    for task, names in task_label_lists(data).items():
        if task in config.tasks and names != config.task_labels(task):
            raise ValueError(
                f"The data's {task} labels {names[:5]}... are not the model's {config.task_labels(task)[:5]}... in "
                "id order: read the data with the model's vocabularies, load_data(..., label_lists={task: "
                "model.config.task_labels(task) for task in model.config.tasks})."
            )


def encoder_layer_depths(backbone: nn.Module) -> tuple[dict[str, int], int]:
    """
    Depth of every backbone parameter and the number of encoder layers: 0 for the embeddings, `i + 1` for layer `i`,
    and the top depth for the rest (parameters shared by all layers or after the last one, like final norms).
    """
    names = [name for name, _ in backbone.named_parameters()]
    layer_of = {name: int(match.group(1)) for name in names if (match := LAYER_INDEX.search(name))}
    num_layers = max(layer_of.values()) + 1 if layer_of else 0
    depths = {}
    for name in names:
        if name in layer_of:
            depths[name] = layer_of[name] + 1
        elif "embed" in name:
            depths[name] = 0
        else:
            depths[name] = num_layers
    return depths, num_layers


def backbone_group_name(name: str) -> str:
    """`layer_<i>` for encoder layer `i`, `embeddings`, or `encoder` for the rest of the backbone."""
    if match := LAYER_INDEX.search(name):
        return f"layer_{match.group(1)}"
    return "embeddings" if "embed" in name else "encoder"


def set_loss_weighting(
    model: MultiTaskBertModel, task_weights: dict | None = None, uncertainty_weighting: bool | None = None
) -> MultiTaskBertModel:
    """Give `model` fixed `task_weights` or learned uncertainty weights (`None` keeps the config's choice): the config
    owns both, so they are saved with the model (in place; applying twice changes nothing)."""
    config = model.config
    if uncertainty_weighting is not None and uncertainty_weighting != config.uncertainty_weighting:
        config.uncertainty_weighting = uncertainty_weighting
        reference = next(model.parameters())
        model.log_task_variances = (
            nn.Parameter(torch.zeros(len(config.tasks), dtype=reference.dtype, device=reference.device))
            if uncertainty_weighting
            else None
        )
    if task_weights is not None:
        if config.uncertainty_weighting:
            raise ValueError(
                "`task_weights` are ignored while the model learns uncertainty weights; pass "
                "`uncertainty_weighting=False` to use fixed weights."
            )
        config.task_weights = dict(task_weights)
        config.validate_tasks()
    return model


def configure_model(model: MultiTaskBertModel, args: MultiTaskTrainingArguments) -> MultiTaskBertModel:
    """Apply the freezing of `args` (and the loss weighting of its deprecated fields) to `model` (in place; applying
    twice changes nothing)."""
    set_loss_weighting(model, **args.deprecated_loss_weighting)
    config = model.config
    unknown_heads = sorted(set(args.freeze_heads) - set(config.tasks))
    if unknown_heads:
        raise ValueError(f"`freeze_heads` names tasks that do not exist: {unknown_heads}; tasks: {list(config.tasks)}.")
    depths, num_layers = encoder_layer_depths(model.backbone)
    if args.freeze_layers and not num_layers:
        raise ValueError(
            f"Cannot find the layers of the {type(model.backbone).__name__} encoder to freeze (no parameter named like "
            "`encoder.layer.N.`); use `freeze_backbone` instead of `freeze_layers`."
        )
    if args.freeze_layers > num_layers:
        raise ValueError(f"`freeze_layers={args.freeze_layers}` but the encoder has only {num_layers} layers.")
    for name, parameter in model.backbone.named_parameters():
        if args.freeze_backbone or (args.freeze_layers and depths[name] <= args.freeze_layers):
            parameter.requires_grad_(False)
    for task in args.freeze_heads:
        frozen = [model.heads[task]] + [
            modules[task] for modules in (model.crfs, model.sentence_label_embeddings) if task in modules
        ]
        for module in frozen:
            module.requires_grad_(False)
    if model.head_pooling is not None and set(model.config.sentence_tasks) <= set(args.freeze_heads):
        model.head_pooling.requires_grad_(False)  # the sentence heads' own pooling serves them alone
    return model


class MultiTaskTrainer(Trainer):
    """
    [`~transformers.Trainer`] for [`MultiTaskBertModel`] with [`MultiTaskTrainingArguments`]:

    - the loss is the model's joint loss plus, with `embedding_preservation_weight > 0`, that weight times
      `1 - cosine` between each training example's sentence embedding and its teacher vector: the embedding that the
      model `train()` starts from gives it, added to the train dataset as a `teacher_embedding` column before the
      first step (a dataset that has the column keeps it, so later `train()` calls reuse it; with `model_init`, each
      run's new model is its teacher); `loss_<task>` and
      `loss_embedding_preservation` (means over the logging interval) join every training log and `eval_loss_<task>`
      the evaluation metrics;
    - with `distill_old_labels > 0`, that weight times [`old_label_distillation_loss`] towards `old_model` (the
      model training continues from, before its heads grew; kept frozen in eval mode on the training device): on
      every training batch, `KL(old || new)` over the old labels of each of its sentence-level tasks, logged as
      `loss_distillation`;
    - the optimizer has layer-wise learning-rate decay over the encoder, its own rate for the heads, no weight decay
      on biases, norms and uncertainty weights, and no state for frozen parameters;
    - evaluation and prediction return ids, not logits: `{task: ids}` for predictions and labels (CRF heads decoded
      by Viterbi, tokens without a label `-100`), ready for [`build_compute_metrics`].

    Evaluation decodes tags where `<task>_labels` is not `-100`; without labels (plain `predict()`), every attended
    token is tagged.
    """

    def __init__(
        self,
        model: MultiTaskBertModel | None = None,
        args: MultiTaskTrainingArguments | None = None,
        old_model: MultiTaskBertModel | None = None,
        **kwargs,
    ):
        if args is not None and not isinstance(args, MultiTaskTrainingArguments):
            raise TypeError(f"MultiTaskTrainer needs MultiTaskTrainingArguments, got {type(args).__name__}.")
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("MultiTaskTrainer trains on the model's joint loss; it takes no `compute_loss_func`.")
        super().__init__(model=model, args=args or MultiTaskTrainingArguments(), **kwargs)
        if self.args.label_smoothing_factor:
            raise ValueError("MultiTaskTrainer does not support `label_smoothing_factor`; the model computes its loss.")
        if self.model_init is None:
            configure_model(self.model, self.args)
        tasks = self.model.config.tasks
        if self.args.label_names is None:
            self.label_names = [f"{task}_labels" for task in tasks]
        unknown = sorted(name for name in self.label_names if name.removesuffix("_labels") not in tasks)
        if unknown:
            raise ValueError(
                f"`label_names` {unknown} match no task; expected `<task>_labels` for tasks {list(tasks)}."
            )
        # The model's `**<task>_labels` are targets, not loss kwargs such as `num_items_in_batch`.
        self.model_accepts_loss_kwargs = False
        self._train_task_losses = TaskLossTracker()
        self._eval_task_losses = TaskLossTracker()
        if self.args.early_stopping_patience:
            if self.args.metric_for_best_model is None or self.args.eval_strategy == "no":
                raise ValueError(
                    "`early_stopping_patience` needs evaluation during training (`eval_strategy`, an eval dataset) "
                    "and `metric_for_best_model`."
                )
            self.add_callback(EarlyStoppingCallback(self.args.early_stopping_patience))
        self.old_model = self._frozen_old_model(old_model)

    def _frozen_old_model(self, old_model: MultiTaskBertModel | None) -> MultiTaskBertModel | None:
        """With `distill_old_labels` on, `old_model` checked against the model's heads, frozen, in eval mode, on the
        training device (in place); else `None`."""
        weight = self.args.distill_old_labels
        if not weight:
            return None
        if old_model is None:
            raise ValueError(
                f"distill_old_labels={weight} needs `old_model`: the model training continues from, before its heads "
                "grew."
            )
        config = self.model.config
        for task in old_model.config.sentence_tasks:
            labels = old_model.config.task_labels(task)
            if task not in config.sentence_tasks or config.task_labels(task)[: len(labels)] != labels:
                raise ValueError(
                    f"The old model's {task!r} labels {labels} are not the first labels of the model's {task!r} head: "
                    "distillation compares the same label ids."
                )
        return old_model.to(self.args.device).eval().requires_grad_(False)

    @classmethod
    def from_data(
        cls,
        data: DatasetDict | IterableDatasetDict,
        args: MultiTaskTrainingArguments | None = None,
        model: MultiTaskBertModel | str | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        **kwargs,
    ) -> MultiTaskTrainer:
        """
        A trainer ready to `train()` from the raw examples that `load_data` (or `load_hf_dataset`) returns, as SetFit
        takes them: `model` is a backbone's name or path (default: the packaged all-MiniLM-L6-v2) that gets one head
        per task the train split labels, or a `MultiTaskBertModel` that has them. The splits are tokenized, the
        validation split (if any) is the eval dataset, the collator and `compute_metrics` are ours, and `tokenizer`
        (default: the backbone's or the model's) is saved with the model; every tokenized split is the trainer's
        `tokenized_data` (to `evaluate` the test split). Streamed data (`load_hf_dataset(..., streaming=True)`) is
        tokenized as it is read, and needs `max_steps`. `kwargs` go to the trainer (`callbacks`, ...)::

            data = load_data("my_data")
            trainer = MultiTaskTrainer.from_data(data, MultiTaskTrainingArguments("my-model"))
            trainer.train()
        """
        if "train" not in data:
            raise ValueError(f"`from_data` needs a train split; the data has {list(data)}.")
        if not isinstance(model, MultiTaskBertModel):
            name_or_path = model or default_backbone_path()
            tokenizer = tokenizer or load_tokenizer(name_or_path)
            model = MultiTaskBertModel.from_backbone(name_or_path, tasks=head_specs(data), tokenizer=tokenizer)
        check_label_ids(data, model.config)
        tokenizer = tokenizer or load_tokenizer(model.name_or_path)
        features = tokenize_dataset(data, tokenizer, model.config.max_seq_length)
        if isinstance(features, DatasetDict):  # a stream's tokenized splits declare no columns to select from
            features = select_label_columns(features, model.config, list(model.config.tasks))
        trainer = cls(
            model=model,
            args=args,
            train_dataset=features["train"],
            eval_dataset=features.get("validation"),
            data_collator=MultiTaskDataCollator(tokenizer),
            processing_class=tokenizer,
            compute_metrics=build_compute_metrics(model.config),
            **kwargs,
        )
        trainer.tokenized_data = features
        return trainer

    def _determine_best_metric(self, metrics: dict[str, float], trial=None) -> bool:
        """transformers' choice of the best checkpoint, with a `metric_for_best_model` the evaluation lacks as a
        `ValueError` naming the metrics there are (one error line on the command line), not a `KeyError`."""
        try:
            return super()._determine_best_metric(metrics, trial)
        except KeyError as error:
            raise ValueError(error.args[0]) from None

    def call_model_init(self, trial=None) -> MultiTaskBertModel:
        model = configure_model(super().call_model_init(trial), self.args)
        if getattr(self, "is_in_train", False):  # `train()` starts from this new model: it teaches this run
            self._add_teacher_embeddings(model, replace=True)
        return model

    def train(self, *args, **kwargs):
        self._train_task_losses = TaskLossTracker()  # nothing left over from an earlier run
        if self.model_init is None:
            self._add_teacher_embeddings(self.accelerator.unwrap_model(self.model), replace=False)
        return super().train(*args, **kwargs)

    def _add_teacher_embeddings(self, model: MultiTaskBertModel, replace: bool) -> None:
        """With embedding preservation on, give a `datasets.Dataset` train split `model`'s embeddings as its teacher
        column (kept if it has one, unless `replace`); any other train dataset (a streamed `IterableDataset`, a torch
        dataset) gets its teacher vectors per batch from a frozen copy of `model`."""
        dataset = self.train_dataset
        self._teacher_model = None
        if not self.args.embedding_preservation_weight or dataset is None:
            return
        if not isinstance(dataset, Dataset):
            self._teacher_model = copy.deepcopy(model).eval().requires_grad_(False)
            return
        if TEACHER_EMBEDDING in dataset.column_names:
            if not replace:
                return
            dataset = dataset.remove_columns(TEACHER_EMBEDDING)
        model_rows = self._remove_unused_columns(dataset, description="teacher")  # as the collator sees them
        vectors = teacher_embeddings(model, model_rows, self.data_collator, self.args.per_device_eval_batch_size)
        self.train_dataset = with_teacher_column(dataset, vectors)

    @torch.no_grad()
    def _teacher_embedding(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The frozen teacher's sentence embedding of a batch without a `teacher_embedding` column: in eval mode and
        float32, as the vectors computed before training are."""
        if getattr(self, "_teacher_model", None) is None:
            raise ValueError(
                f"embedding_preservation_weight={self.args.embedding_preservation_weight} but the batch has no "
                f"`{TEACHER_EMBEDDING}`: the data collator must keep that column (MultiTaskDataCollator does), or set "
                "the weight to 0."
            )
        model_inputs = {key: inputs[key] for key in MODEL_INPUTS if key in inputs}
        device_type = inputs["input_ids"].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._teacher_model(**model_inputs).sentence_embedding

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if TEACHER_EMBEDDING not in self._signature_columns:
            self._signature_columns.append(TEACHER_EMBEDDING)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher_embedding = inputs.pop(TEACHER_EMBEDDING, None)
        outputs = model(**inputs)
        if outputs.loss is None:
            raise ValueError(
                f"The batch has no task labels (inputs: {sorted(inputs)}); give at least one of "
                f"{self.label_names} to train or evaluate a loss."
            )
        loss, losses = outputs.loss, dict(outputs.losses)
        weight = self.args.embedding_preservation_weight
        if model.training and weight:
            if teacher_embedding is None:
                teacher_embedding = self._teacher_embedding(inputs)
            losses[PRESERVATION_LOSS] = embedding_preservation_loss(outputs.sentence_embedding, teacher_embedding)
            loss = loss + weight * losses[PRESERVATION_LOSS]
        if model.training and self.old_model is not None:
            losses[DISTILLATION_LOSS] = self._old_label_distillation(outputs.logits, inputs)
            loss = loss + self.args.distill_old_labels * losses[DISTILLATION_LOSS]
        tracker = self._train_task_losses if model.training else self._eval_task_losses
        tracker.add(losses, inputs)
        return (loss, outputs) if return_outputs else loss

    def _old_label_distillation(self, logits: dict[str, torch.Tensor], inputs: dict) -> torch.Tensor:
        """[`old_label_distillation_loss`] of the batch: the old model's logits of `inputs`, no gradient."""
        with torch.no_grad(), self.accelerator.autocast():
            old_logits = self.old_model(**{key: inputs[key] for key in MODEL_INPUTS if key in inputs}).logits
        config = self.old_model.config
        return old_label_distillation_loss(
            old_logits, logits, {task: config.task_labels(task) for task in config.sentence_tasks}
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            logs.update(self._train_task_losses.pop_means(self._sum_over_processes))
            model = self.accelerator.unwrap_model(self.model)
            if model.log_task_variances is not None:
                weights = torch.exp(-model.log_task_variances.detach()).tolist()
                logs.update(
                    {f"uncertainty_weight_{task}": w for task, w in zip(model.config.tasks, weights, strict=True)}
                )
        super().log(logs, start_time)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        self._eval_task_losses = TaskLossTracker()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        task_losses = self._eval_task_losses.pop_means(self._sum_over_processes)
        output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in task_losses.items()})
        return output

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        labels = {
            name.removesuffix("_labels"): inputs[name] for name in self.label_names if inputs.get(name) is not None
        }
        with torch.no_grad(), self.compute_loss_context_manager():
            if labels:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
                loss = loss.detach().mean()
            else:
                loss, outputs = None, model(**inputs)
        if prediction_loss_only:
            return loss, None, None
        predictions = self._prediction_ids(model, outputs.logits, inputs, labels)
        return loss, predictions, labels or None

    def _prediction_ids(self, model, logits: dict, inputs: dict, labels: dict) -> dict[str, torch.Tensor]:
        unwrapped = self.accelerator.unwrap_model(model)
        predictions = {}
        for task, task_logits in logits.items():
            if task in unwrapped.config.sentence_tasks:
                # `UNK` (unseen in training) is never a prediction, as in the pipeline.
                labels_of_task = unwrapped.config.task_labels(task)
                predictions[task] = answerable_logits(labels_of_task, task_logits).argmax(dim=-1)
                continue
            if task in labels:
                mask = labels[task] != IGNORE_INDEX
            else:
                mask = inputs.get("attention_mask", torch.ones(task_logits.shape[:2], device=task_logits.device))
            predictions[task] = unwrapped.decode_tags(task, task_logits, mask)
        return predictions

    def _sum_over_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(tensor.to(self.args.device), reduction="sum").cpu()

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            if self.optimizer_cls_and_kwargs is not None:
                optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
            else:
                optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            if is_optimizer_factory(optimizer_cls) or {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
                raise ValueError(
                    f"`optim={self.args.optim}` builds its own parameter groups, which MultiTaskTrainer cannot combine "
                    "with layer-wise learning rates and head learning rates; choose e.g. `adamw_torch`."
                )
            self.optimizer = optimizer_cls(self.parameter_groups(opt_model), **optimizer_kwargs)
        return self.optimizer

    def parameter_groups(self, model: nn.Module) -> list[dict]:
        """
        Optimizer groups of the trainable parameters, named `embeddings`, `layer_<i>`, `encoder` (the rest of the
        backbone, at the top layer's rate) and `heads` (task heads, CRFs, uncertainty weights), each split by weight
        decay (`*_no_decay`: biases, norms, uncertainty weights).
        """
        unwrapped = self.accelerator.unwrap_model(model)
        depths, num_layers = encoder_layer_depths(unwrapped.backbone)
        if self.args.layerwise_lr_decay != 1.0 and not num_layers:
            raise ValueError(
                f"Cannot find the layers of the {type(unwrapped.backbone).__name__} encoder (no parameter named like "
                "`encoder.layer.N.`); set `layerwise_lr_decay=1.0`."
            )
        decay_names = set(self.get_decay_parameter_names(unwrapped)) - {"log_task_variances"}
        head_lr = self.args.learning_rate if self.args.head_learning_rate is None else self.args.head_learning_rate
        groups: dict[str, dict] = {}
        order: dict[str, tuple[int, str]] = {}
        for name, parameter in unwrapped.named_parameters():
            if not parameter.requires_grad:
                continue
            if name.startswith("backbone."):
                depth = depths[name.removeprefix("backbone.")]
                group_name = backbone_group_name(name)
                lr = self.args.learning_rate * self.args.layerwise_lr_decay ** (num_layers - depth)
            else:
                group_name, lr, depth = "heads", head_lr, -1
            decays = name in decay_names
            key = group_name if decays else f"{group_name}_no_decay"
            group = groups.setdefault(
                key, {"name": key, "params": [], "lr": lr, "weight_decay": self.args.weight_decay if decays else 0.0}
            )
            group["params"].append(parameter)
            order.setdefault(key, (-depth, key))
        # Top of the encoder first: the Trainer logs the first group's rate as `learning_rate`.
        return [groups[key] for key in sorted(groups, key=order.get)]


def build_compute_metrics(
    config: MultiTaskBertConfig, per_type: bool = True, unknown_label: str = UNK
) -> Callable[[EvalPrediction], dict[str, float]]:
    """
    `compute_metrics` for [`MultiTaskTrainer`]: turns its `{task: ids}` predictions and labels into the
    `multitask_metrics` scores of every task of `config` (accuracy per sentence-level task, seqeval entity P/R/F1
    per token-level task, sentence accuracy), naming labels from `config`. Label `-100` marks what is not annotated;
    a gold `unknown_label` is never right. `per_type=False` leaves out the per-entity-type scores (four per entity
    type) to keep logs short.
    """
    metric = load_metric()
    sentence_tasks, token_tasks = list(config.sentence_tasks), list(config.token_tasks)
    names = {task: config.task_labels(task) for task in config.tasks}

    def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions, references = eval_prediction.predictions, eval_prediction.label_ids
        if not isinstance(predictions, dict) or not isinstance(references, dict):
            raise TypeError("compute_metrics expects `{task: ids}` predictions and labels, as MultiTaskTrainer gives.")
        num_examples = len(next(iter(references.values())))
        predicted = [
            {"labels": [""] * len(sentence_tasks), "tags": [[] for _ in token_tasks]} for _ in range(num_examples)
        ]
        gold = [{"labels": [""] * len(sentence_tasks), "tags": [[] for _ in token_tasks]} for _ in range(num_examples)]
        for position, task in enumerate(sentence_tasks):
            if task not in references:
                continue
            for index, (predicted_id, gold_id) in enumerate(zip(predictions[task], references[task], strict=True)):
                predicted[index]["labels"][position] = names[task][predicted_id]
                if gold_id != IGNORE_INDEX:
                    gold[index]["labels"][position] = names[task][gold_id]
        for position, task in enumerate(token_tasks):
            if task not in references:
                continue
            for index, (predicted_ids, gold_ids) in enumerate(zip(predictions[task], references[task], strict=True)):
                labelled = gold_ids != IGNORE_INDEX
                if (predicted_ids[labelled] < 0).any():
                    raise ValueError(f"Example {index} has no predicted tag at some labelled tokens.")
                predicted[index]["tags"][position] = [names[task][i] for i in predicted_ids[labelled]]
                gold[index]["tags"][position] = [names[task][i] for i in gold_ids[labelled]]
        return metric.compute(
            predictions=predicted,
            references=gold,
            **task_arguments(config),
            unknown_label=unknown_label,
            per_type=per_type,
        )

    return compute_metrics
