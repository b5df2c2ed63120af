"""Joint intent + entity metrics: intent accuracy, seqeval entity precision/recall/F1 and sentence accuracy."""

import datasets
import evaluate
import numpy as np
from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support
from sklearn.metrics import f1_score, roc_auc_score, roc_curve

_DESCRIPTION = """
Scores one forward pass of a multi-task model (sentence-level labels and token-level BIO tags), as in JointBERT-style
evaluations of intent + entities, for any number of tasks:

- `<task>_accuracy` per sentence-level task (`intent_accuracy`): share of examples with a reference label whose
  predicted label is right;
- `<task>_macro_f1` per sentence-level task: the unweighted mean of the per-label F1 scores (scikit-learn), over every
  real label that the references or the predictions hold (not `unknown_label`: a reference `UNK` still counts as a
  false positive of whatever was predicted, a predicted `UNK` as a miss of the reference label), so rare labels count
  as much as frequent ones;
- `<prefix>_precision`, `<prefix>_recall`, `<prefix>_f1` per token-level task: entity-level micro scores from seqeval
  (conlleval rules); the prefix is the task's in `metric_prefixes`, else `entity` for the default task `ner`
  (`entity_f1`), else the task's name;
- `<prefix>_<TYPE>_precision`, `_recall`, `_f1`, `_support`: the same per entity type;
- `sentence_accuracy` (with two tasks or more): share of examples annotated for every task whose labels and tags are
  all right.

With `out_of_scope_labels` (`{task: label}`: a prediction or reference with that label is out of scope), per such
sentence-level task:

- `<task>_in_scope_accuracy`: share of in-scope references whose prediction is right (answering out-of-scope is wrong);
- `<task>_out_of_scope_recall`, `_precision`, `_f1`: of the out-of-scope decision, out-of-scope being the positive
  class (a reference `unknown_label` takes no part in these and the two below);
- with `out_of_scope_scores` (`{task: [score per example]}`, higher: further out of scope), `<task>_out_of_scope_auroc`
  (out-of-scope references against in-scope ones) and `<task>_out_of_scope_fpr95`: the share of out-of-scope
  references accepted at the highest threshold that accepts 95% of the in-scope ones.

With `confidences` (`{task: [the probability of the best in-scope label per example]}`), `<task>_ece`: the expected
calibration error of those probabilities over the in-scope references (15 equal-width bins; a prediction is right when
the best in-scope label is the reference), in the order of the predictions' `in_scope_labels` when given, else of
their `labels`.

`unknown_label` (default `"UNK"`, a label unseen in training) never counts as right, on either side: a reference
label `UNK` is wrong whatever the prediction, a run of reference tags `UNK` is one entity of type `UNK` that no
prediction can match, a predicted label `UNK` is wrong, and a run of predicted tags `UNK` is one entity of type
`UNK_predicted`, which no reference has (a false positive, and a wrong tag for sentence accuracy; it has no
per-type scores). An empty reference (label `""`, tags `[]`) means that task of the example is not annotated: it is
left out of the scores. Scores with nothing to count are left out of the result.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one `{"labels": list[str], "tags": list[list[str]]}` per example: a label per sentence-level task
        and a list of tags (BIO, one per word) per token-level task, in the order of `sentence_tasks`/`token_tasks`.
    references: the same for the gold annotation; a label `""` or tags `[]` where that task is not annotated.
    sentence_tasks: names of the sentence-level tasks (default `["intent"]`).
    token_tasks: names of the token-level tasks (default `["ner"]`).
    metric_prefixes: `{task: prefix}` naming a token-level task's scores (default: `entity` for `ner`, else the
        task's name).
    unknown_label: the label that marks references unseen in training (default `"UNK"`).
    per_type: whether to add the per-entity-type scores (default `True`).
    out_of_scope_labels: `{task: label}` of the sentence-level tasks with an out-of-scope label (default none).
    out_of_scope_scores: `{task: [float]}`, one out-of-scope score per example (optional).
    confidences: `{task: [float]}`, the best in-scope label's probability per example (optional).
    in_scope_predictions: `{task: [str]}`, the best in-scope label per example, for `confidences` (default: the
        predicted labels).
Returns:
    a flat dict of floats (and integer `<prefix>_<TYPE>_support` counts).
Examples:
    >>> metric = evaluate.load("training/metrics/multitask_metrics")
    >>> metric.compute(
    ...     predictions=[{"labels": ["set_alarm"], "tags": [["O", "B-TIME"]]}],
    ...     references=[{"labels": ["set_alarm"], "tags": [["O", "B-TIME"]]}],
    ... )["sentence_accuracy"]
    1.0
"""

_CITATION = """
@inproceedings{ramshaw-marcus-1995-text,
    title = "Text Chunking using Transformation-Based Learning",
    author = "Ramshaw, Lance and Marcus, Mitch",
    booktitle = "Third Workshop on Very Large Corpora",
    year = "1995",
}
@misc{seqeval,
    title = {seqeval: A Python framework for sequence labeling evaluation},
    author = {Hiroki Nakayama},
    year = {2018},
    url = {https://github.com/chakki-works/seqeval},
}
"""

# The default tasks' names in the scores, as the model config names them (`DEFAULT_TASK_NAMING`).
DEFAULT_METRIC_PREFIXES = {"ner": "entity"}

_EXAMPLE = {
    "labels": datasets.Sequence(datasets.Value("string")),
    "tags": datasets.Sequence(datasets.Sequence(datasets.Value("string"))),
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultitaskMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _EXAMPLE, "references": _EXAMPLE}),
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(
        self,
        predictions,
        references,
        sentence_tasks=("intent",),
        token_tasks=("ner",),
        metric_prefixes=None,
        unknown_label="UNK",
        per_type=True,
        out_of_scope_labels=None,
        out_of_scope_scores=None,
        confidences=None,
        in_scope_predictions=None,
    ):
        results = {}
        for position, task in enumerate(sentence_tasks):
            predicted = [p["labels"][position] for p in predictions]
            gold = [r["labels"][position] for r in references]
            if task in (out_of_scope_labels or {}):
                scores = (out_of_scope_scores or {}).get(task)
                results.update(
                    out_of_scope_scores_of(task, predicted, gold, out_of_scope_labels[task], scores, unknown_label)
                )
            if task in (confidences or {}):
                best = (in_scope_predictions or {}).get(task, predicted)
                rejected = (out_of_scope_labels or {}).get(task)
                kept = [index for index, label in enumerate(gold) if label and label != rejected]
                if kept:
                    results[f"{task}_ece"] = expected_calibration_error(
                        [confidences[task][index] for index in kept],
                        [label_is_right(best[index], gold[index], unknown_label) for index in kept],
                    )
        for position, task in enumerate(sentence_tasks):
            pairs = [
                (p["labels"][position], r["labels"][position]) for p, r in zip(predictions, references, strict=True)
            ]
            pairs = [(predicted, gold) for predicted, gold in pairs if gold]
            if pairs:
                right = sum(label_is_right(predicted, gold, unknown_label) for predicted, gold in pairs)
                results[f"{task}_accuracy"] = right / len(pairs)
                predicted, gold = [label for label, _ in pairs], [label for _, label in pairs]
                real_labels = sorted((set(predicted) | set(gold)) - {unknown_label})
                if real_labels:
                    results[f"{task}_macro_f1"] = float(
                        f1_score(gold, predicted, labels=real_labels, average="macro", zero_division=0)
                    )

        for position, task in enumerate(token_tasks):
            pairs = [(p["tags"][position], r["tags"][position]) for p, r in zip(predictions, references, strict=True)]
            tagged = [(predicted, gold) for predicted, gold in pairs if gold]
            for index, (predicted, gold) in enumerate(tagged):
                if len(predicted) != len(gold):
                    raise ValueError(
                        f"Tagged example {index} has {len(predicted)} predicted tags but {len(gold)} reference tags."
                    )
            if tagged:
                results.update(
                    entity_scores(
                        [
                            unknown_as_entity(predicted, unknown_label, PREDICTED_UNKNOWN_TYPE)
                            for predicted, _ in tagged
                        ],
                        [unknown_as_entity(gold, unknown_label, unknown_label) for _, gold in tagged],
                        per_type,
                        {**DEFAULT_METRIC_PREFIXES, **(metric_prefixes or {})}.get(task, task),
                    )
                )

        pairs = zip(predictions, references, strict=True)
        complete = [(p, r) for p, r in pairs if all(r["labels"]) and all(r["tags"])]
        if complete and len(sentence_tasks) + len(token_tasks) > 1:
            results["sentence_accuracy"] = sum(
                all(label_is_right(*pair, unknown_label) for pair in zip(p["labels"], r["labels"], strict=True))
                and all(tags_are_right(*pair, unknown_label) for pair in zip(p["tags"], r["tags"], strict=True))
                for p, r in complete
            ) / len(complete)
        return results


def out_of_scope_scores_of(task, predicted, gold, out_of_scope_label, scores, unknown_label):
    """In-scope accuracy and the out-of-scope decision's recall, precision, F1 (and AUROC, FPR at 95% in-scope
    recall from `scores`) over the examples with a reference."""
    annotated = [index for index, label in enumerate(gold) if label]
    results = {}
    in_scope = [index for index in annotated if gold[index] != out_of_scope_label]
    # A reference `UNK` (a label unseen in training) is neither in scope nor out of scope for the detection scores.
    annotated = [index for index in annotated if gold[index] != unknown_label]
    is_out = np.array([gold[index] == out_of_scope_label for index in annotated], dtype=bool)
    said_out = np.array([predicted[index] == out_of_scope_label for index in annotated], dtype=bool)
    if in_scope:
        right = sum(label_is_right(predicted[index], gold[index], unknown_label) for index in in_scope)
        results[f"{task}_in_scope_accuracy"] = right / len(in_scope)
    if is_out.any():
        caught = float((is_out & said_out).sum())
        recall = caught / is_out.sum()
        precision = caught / said_out.sum() if said_out.any() else 0.0
        results[f"{task}_out_of_scope_recall"] = float(recall)
        results[f"{task}_out_of_scope_precision"] = float(precision)
        results[f"{task}_out_of_scope_f1"] = float(2 * precision * recall / (precision + recall) if caught else 0.0)
    if scores is not None and is_out.any() and not is_out.all():
        values = np.array([scores[index] for index in annotated], dtype=np.float64)
        results[f"{task}_out_of_scope_auroc"] = float(roc_auc_score(is_out, values))
        results[f"{task}_out_of_scope_fpr95"] = false_positive_rate_at(values[~is_out], values[is_out], 0.95)
    return results


def false_positive_rate_at(in_scope_scores, out_of_scope_scores, in_scope_recall):
    """Share of out-of-scope scores accepted (at or below the threshold) at the lowest threshold that accepts
    `in_scope_recall` of the in-scope scores."""
    labels = np.r_[np.ones(len(in_scope_scores)), np.zeros(len(out_of_scope_scores))]
    # In-scope is the positive class of the acceptance decision: a lower score is more in scope.
    false_positive, true_positive, _ = roc_curve(
        labels, -np.r_[in_scope_scores, out_of_scope_scores], drop_intermediate=False
    )
    return float(false_positive[np.searchsorted(true_positive, in_scope_recall, side="left")])


def expected_calibration_error(confidences, right, bins=15):
    """Expected calibration error: the mean |accuracy - confidence| over equal-width confidence bins, weighted by
    their share of examples (Guo et al., 2017)."""
    confidences, right = np.asarray(confidences, dtype=np.float64), np.asarray(right, dtype=np.float64)
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    error = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            error += members.mean() * abs(right[members].mean() - confidences[members].mean())
    return float(error)


PREDICTED_UNKNOWN_TYPE = "UNK_predicted"


def label_is_right(predicted, gold, unknown_label):
    return gold != unknown_label and predicted == gold


def tags_are_right(predicted, gold, unknown_label):
    return all(
        tag != unknown_label and tag == predicted_tag for predicted_tag, tag in zip(predicted, gold, strict=True)
    )


def unknown_as_entity(tags, unknown_label, entity_type):
    """Each run of `unknown_label` tags becomes one entity of `entity_type` (`UNK` for references, `UNK_predicted`
    for predictions, so that the two never match)."""
    converted = []
    for position, tag in enumerate(tags):
        if tag != unknown_label:
            converted.append(tag)
        elif position > 0 and tags[position - 1] == unknown_label:
            converted.append(f"I-{entity_type}")
        else:
            converted.append(f"B-{entity_type}")
    return converted


def entity_scores(predicted_tags, gold_tags, per_type, prefix):
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold_tags, predicted_tags, average="micro", zero_division=0
    )
    scores = {f"{prefix}_precision": float(precision), f"{prefix}_recall": float(recall), f"{prefix}_f1": float(f1)}
    if not per_type:
        return scores
    # Per type, in seqeval's order (as in its classification_report).
    entity_types = sorted(
        {entity_type for tags in (gold_tags, predicted_tags) for entity_type, _, _ in get_entities(tags)}
    )
    type_scores = precision_recall_fscore_support(gold_tags, predicted_tags, average=None, zero_division=0)
    for entity_type, precision, recall, f1, support in zip(entity_types, *type_scores, strict=True):
        if entity_type == PREDICTED_UNKNOWN_TYPE:  # not a type of the data: counted in the overall scores only
            continue
        scores[f"{prefix}_{entity_type}_precision"] = float(precision)
        scores[f"{prefix}_{entity_type}_recall"] = float(recall)
        scores[f"{prefix}_{entity_type}_f1"] = float(f1)
        scores[f"{prefix}_{entity_type}_support"] = int(support)
    return scores
