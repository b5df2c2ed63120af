"""Calibration and out-of-scope detection of sentence-level heads, fitted after training.

- Temperature scaling (Guo et al., 2017): each sentence-level head's logits are divided by the temperature that gives
  the lowest negative log-likelihood on the validation split's in-scope labels, so its probabilities mean what they
  say. Saved in the config (`tasks[task]["temperature"]`).
- An out-of-scope detector per task with an out-of-scope label: a score fitted on the train split's in-scope examples
  (`OUT_OF_SCOPE_METHODS`), whose threshold is chosen on validation; saved in the config and the weights, so a model
  loaded from the Hub with `trust_remote_code` (and its ONNX export) decides the same.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from sklearn.covariance import LedoitWolf

from ..modeling import MultiTaskBertModel
from ..modeling.configuration_multitask_bert import check_out_of_scope_threshold
from ..modeling.modeling_multitask_bert import IGNORE_INDEX
from ..modeling.pipeline_multitask_bert import answerable_logits
from .data.labels import out_of_scope_column
from .forward_pass import sentence_outputs
from .metric import load_metric

logger = logging.getLogger(__name__)

# Chosen on CLINC150's validation split (benchmarks/out_of_scope.py, README "Out-of-scope detection").
DEFAULT_METHOD = "mahalanobis"
# The threshold keeps this share of the validation split's in-scope utterances in scope (it needs no out-of-scope
# data); chosen on CLINC150's validation split.
DEFAULT_IN_SCOPE_SHARE = 0.95
THRESHOLD_RULES = ("in_scope_share", "youden")
TEMPERATURES = torch.exp(torch.linspace(math.log(0.05), math.log(20.0), 400))


@dataclass
class SplitOutputs:
    """A split's sentence-level outputs (`sentence_outputs`), its labels per task (`-100`: none) and out-of-scope
    marks per task."""

    outputs: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    out_of_scope: dict[str, torch.Tensor]


def detected_labels(model: MultiTaskBertModel) -> dict[str, str]:
    """`{task: out-of-scope label}` of the model's tasks with a detector."""
    return {
        task: detector["label"]
        for task in model.config.sentence_tasks
        if (detector := model.config.task_out_of_scope(task)) is not None
    }


def split_outputs(
    model: MultiTaskBertModel,
    dataset: Dataset,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    batch_size: int,
    description: str,
) -> SplitOutputs:
    """The model's outputs on a tokenized split, with the split's sentence labels and out-of-scope marks."""
    outputs = sentence_outputs(model, dataset, collate, batch_size, description)
    labels, marks = {}, {}
    for task in model.config.sentence_tasks:
        column = f"{task}_labels"
        labels[task] = (
            torch.tensor(dataset[column]) if column in dataset.column_names else torch.full((len(dataset),), -100)
        )
        marked = out_of_scope_column(task)
        marks[task] = (
            torch.tensor(dataset[marked]) if marked in dataset.column_names else torch.zeros(len(dataset), dtype=bool)
        )
    return SplitOutputs(outputs, labels, marks)


def in_scope_rows(split: SplitOutputs, task: str, labels: list[str]) -> torch.Tensor:
    """Rows with a real in-scope label of `task` (not `UNK`, not out of scope)."""
    gold = split.labels[task]
    known = gold != IGNORE_INDEX
    if "UNK" in labels:
        known &= gold != labels.index("UNK")
    return known & ~split.out_of_scope[task]


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature (a grid from 0.05 to 20) with the lowest negative log-likelihood of `labels`."""
    losses = [torch.nn.functional.cross_entropy(logits / temperature, labels) for temperature in TEMPERATURES]
    return float(TEMPERATURES[int(torch.stack(losses).argmin())])


def fit_vectors(method: str, features: torch.Tensor, embeddings: torch.Tensor, labels: torch.Tensor) -> dict:
    """The buffers of an out-of-scope scorer, from in-scope train examples (`OutOfScopeScorer`)."""
    if method == "knn":
        return {"train_embeddings": torch.nn.functional.normalize(embeddings, dim=-1)}
    if method != "mahalanobis":
        return {}
    features = features.double()
    classes = labels.unique()
    means = torch.stack([features[labels == label].mean(dim=0) for label in classes])
    centered = features - means[torch.searchsorted(classes, labels)]
    # Ledoit-Wolf shrinkage keeps the shared covariance invertible with fewer examples than dimensions.
    precision = torch.from_numpy(LedoitWolf(assume_centered=True).fit(centered.numpy()).precision_)
    whitening = torch.linalg.cholesky((precision + precision.T) / 2)
    return {"whitening": whitening.float(), "class_means": (means @ whitening).float()}


def choose_threshold(
    in_scope_scores: torch.Tensor,
    out_of_scope_scores: torch.Tensor | None = None,
    rule: str = "in_scope_share",
    in_scope_share: float = DEFAULT_IN_SCOPE_SHARE,
) -> float:
    """
    The out-of-scope threshold (scores above it are out of scope). `"in_scope_share"`: a threshold that keeps
    `in_scope_share` of the in-scope scores in scope, halfway between the last score it keeps and the next one (no
    out-of-scope data needed). `"youden"`: the threshold
    with the highest in-scope share kept plus out-of-scope share caught (needs out-of-scope scores).
    """
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"Unknown threshold rule {rule!r}; choose one of {', '.join(THRESHOLD_RULES)}.")
    if not 0 < in_scope_share <= 1:
        raise ValueError(f"The in-scope share must be in (0, 1], got {in_scope_share!r}.")
    if not len(in_scope_scores):
        raise ValueError("No in-scope scores to choose an out-of-scope threshold from.")
    if rule == "in_scope_share":
        scores = np.sort(in_scope_scores.double().numpy())
        kept = float(scores[math.ceil(round(in_scope_share * len(scores), 9)) - 1])
        # Halfway to the next score, so that recomputing a kept score (another batch's padding) keeps it.
        above = scores[scores > kept]
        return (kept + float(above.min())) / 2 if len(above) else kept + 1e-6 * max(1.0, abs(kept))
    if out_of_scope_scores is None or not len(out_of_scope_scores):
        raise ValueError("The youden threshold rule needs out-of-scope examples in the validation split.")
    candidates = torch.cat([in_scope_scores, out_of_scope_scores]).double().unique()
    kept = (in_scope_scores.double().unsqueeze(0) <= candidates.unsqueeze(1)).double().mean(dim=1)
    caught = (out_of_scope_scores.double().unsqueeze(0) > candidates.unsqueeze(1)).double().mean(dim=1)
    best = int((kept + caught).argmax())
    # Halfway to the next candidate, as for the in-scope share.
    if best + 1 < len(candidates):
        return float((candidates[best] + candidates[best + 1]) / 2)
    return float(candidates[best]) + 1e-6 * max(1.0, abs(float(candidates[best])))


def check_out_of_scope_fit(
    features: Mapping[str, Dataset],
    out_of_scope_labels: Mapping[str, str],
    sentence_heads: list[str],
    rule: str,
    thresholds: Mapping[str, float] | None,
) -> None:
    """Before training: raise a `ValueError` naming what `fit_out_of_scope` could not do with this data."""
    for task in out_of_scope_labels:
        if task not in sentence_heads:
            raise ValueError(
                f"An out-of-scope label for {task!r}, which is not a sentence-level head of the model "
                f"({sentence_heads})."
            )
        if task in (thresholds or {}):
            continue
        validation = features.get("validation")
        if validation is None:
            raise ValueError(
                f"Choosing the {task} out-of-scope threshold needs a validation split; give one, or "
                "--out-of-scope-threshold."
            )
        if rule == "youden" and not any(validation[out_of_scope_column(task)]):
            raise ValueError(f"The youden threshold rule needs out-of-scope {task} examples in the validation split.")
    train = features["train"]
    for task in out_of_scope_labels:
        column = f"{task}_labels"  # out-of-scope examples have none
        if column not in train.column_names or all(label == IGNORE_INDEX for label in train[column]):
            raise ValueError(f"The train split has no in-scope {task} example to fit an out-of-scope score on.")


def calibrate(model: MultiTaskBertModel, validation: SplitOutputs) -> dict[str, float]:
    """Set each sentence-level head's temperature from the validation split; returns `{task: temperature}`."""
    temperatures = {}
    for task in model.config.sentence_tasks:
        labels = model.config.task_labels(task)
        rows = in_scope_rows(validation, task, labels)
        if not rows.any():
            continue
        logits = answerable_logits(labels, validation.outputs[f"{task}_logits"][rows])
        temperatures[task] = fit_temperature(logits, validation.labels[task][rows])
        model.set_temperature(task, temperatures[task])
    return temperatures


def fit_out_of_scope(
    model: MultiTaskBertModel,
    train: Dataset,
    validation: Dataset | None,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    out_of_scope_labels: Mapping[str, str],
    methods: Mapping[str, str] | None = None,
    rule: str = "in_scope_share",
    in_scope_share: float = DEFAULT_IN_SCOPE_SHARE,
    thresholds: Mapping[str, float] | None = None,
    batch_size: int = 64,
) -> dict[str, dict]:
    """
    Calibrate every sentence-level head on `validation` (tokenized), then give each task of `out_of_scope_labels` a
    detector: its method's score (`methods`, default `DEFAULT_METHOD`) fitted on `train`'s in-scope examples, its
    threshold given in `thresholds` or chosen by `rule` on validation (`check_out_of_scope_fit` says beforehand what
    cannot be fitted). Returns what was fitted, per task.
    """
    if not model.config.sentence_tasks:
        return {}
    thresholds = dict(thresholds or {})
    validation_outputs = (
        split_outputs(model, validation, collate, batch_size, "Calibrating on validation") if validation else None
    )
    temperatures = calibrate(model, validation_outputs) if validation_outputs else {}
    report = {task: {"temperature": temperature} for task, temperature in temperatures.items()}
    if not out_of_scope_labels:
        return report
    train_outputs = split_outputs(model, train, collate, batch_size, "Fitting out-of-scope scores on train")
    for task, label in out_of_scope_labels.items():
        method = (methods or {}).get(task, DEFAULT_METHOD)
        labels = model.config.task_labels(task)
        rows = in_scope_rows(train_outputs, task, labels)
        if not rows.any():
            raise ValueError(f"The train split has no in-scope {task} example to fit an out-of-scope score on.")
        vectors = fit_vectors(
            method,
            train_outputs.outputs["sentence_features"][rows],
            train_outputs.outputs["sentence_embedding"][rows],
            train_outputs.labels[task][rows],
        )
        model.set_out_of_scope(task, label, method, None, vectors)
        report.setdefault(task, {}).update({"method": method})
        if task in thresholds:
            threshold = check_out_of_scope_threshold(method, thresholds[task], task)
            report[task]["threshold_rule"] = "given"
        else:
            reference = validation_outputs
            if reference is None:
                # Scores of the examples a detector was fitted on are biased low (a kNN one's are 0).
                raise ValueError(
                    f"Choosing the {task} out-of-scope threshold needs a validation split (or a threshold)."
                )
            scores = out_of_scope_scores(model, task, reference)
            in_scope = scores[in_scope_rows(reference, task, labels)]
            threshold = choose_threshold(in_scope, scores[reference.out_of_scope[task]], rule, in_scope_share)
            report[task]["threshold_rule"] = rule if rule == "youden" else f"in_scope_share {in_scope_share}"
        model.set_out_of_scope(task, label, method, threshold, vectors)
        report[task]["threshold"] = threshold
        logger.info("%s: out-of-scope label %r, %s score, threshold %.4g.", task, label, method, threshold)
    return report


def out_of_scope_scores(model: MultiTaskBertModel, task: str, split: SplitOutputs) -> torch.Tensor:
    """`task`'s out-of-scope scores of a split's stored outputs, by the model's own scorer (as its forward pass)."""
    temperature = model.config.task_temperature(task)
    logits = answerable_logits(model.config.task_labels(task), split.outputs[f"{task}_logits"], temperature)
    scorer = model.out_of_scope_scorers[task]
    device = next(iter(scorer.buffers()), logits).device  # the model's device (msp and energy keep no buffers)
    features, embeddings = split.outputs["sentence_features"], split.outputs["sentence_embedding"]
    with torch.no_grad():
        return scorer(logits.to(device), features.to(device), embeddings.to(device), temperature).cpu()


def sentence_task_scores(
    model: MultiTaskBertModel,
    dataset: Dataset,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    thresholds: Mapping[str, float] | None = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """
    The calibration and out-of-scope scores of a tokenized split, as the pipeline decides (`multitask_metrics`):
    per sentence-level task `<task>_ece` (calibrated) and `<task>_ece_uncalibrated`, and per task with a detector
    `<task>_in_scope_accuracy` and `<task>_out_of_scope_{recall,precision,f1,auroc,fpr95}` (`thresholds` override the
    saved ones).
    """
    if not model.config.sentence_tasks:
        return {}
    metric = load_metric()
    split = split_outputs(model, dataset, collate, batch_size, "Scoring calibration and out-of-scope detection")
    config = model.config
    results: dict[str, float] = {}
    for task in config.sentence_tasks:
        labels = config.task_labels(task)
        detector = config.task_out_of_scope(task)
        gold_ids = split.labels[task].tolist()
        gold = [labels[index] if index != IGNORE_INDEX else "" for index in gold_ids]
        if detector is not None:
            gold = [
                detector["label"] if out else label for label, out in zip(gold, split.out_of_scope[task], strict=True)
            ]
        logits = split.outputs[f"{task}_logits"]
        best = answerable_logits(labels, logits).argmax(dim=-1)
        in_scope_predictions = [labels[index] for index in best.tolist()]
        predicted = list(in_scope_predictions)
        options: dict = {}
        if detector is not None:
            scores = split.outputs[f"{task}_out_of_scope_score"]
            threshold = (thresholds or {}).get(task, detector["threshold"])
            if threshold is not None:
                rejected = (scores > threshold).tolist()
                predicted = [
                    detector["label"] if out else label for label, out in zip(predicted, rejected, strict=True)
                ]
            options = {"out_of_scope_labels": {task: detector["label"]}, "out_of_scope_scores": {task: scores.tolist()}}
        for suffix, temperature in (("", config.task_temperature(task)), ("_uncalibrated", 1.0)):
            confidence = answerable_logits(labels, logits, temperature).softmax(dim=-1).max(dim=-1).values
            computed = metric.compute(
                predictions=[{"labels": [label], "tags": []} for label in predicted],
                references=[{"labels": [label], "tags": []} for label in gold],
                sentence_tasks=[task],
                token_tasks=[],
                confidences={task: confidence.tolist()},
                in_scope_predictions={task: in_scope_predictions},
                **(options if not suffix else {key: options[key] for key in options if key == "out_of_scope_labels"}),
            )
            if f"{task}_ece" in computed:
                results[f"{task}_ece{suffix}"] = computed[f"{task}_ece"]
            if not suffix:
                results.update(
                    {key: value for key, value in computed.items() if key.startswith(f"{task}_out_of_scope")}
                )
                if f"{task}_in_scope_accuracy" in computed:
                    results[f"{task}_in_scope_accuracy"] = computed[f"{task}_in_scope_accuracy"]
    return results
