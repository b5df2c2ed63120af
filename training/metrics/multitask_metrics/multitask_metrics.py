"""Joint intent + entity metrics: intent accuracy, seqeval entity precision/recall/F1 and sentence accuracy."""

import datasets
import evaluate
from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support

_DESCRIPTION = """
Scores one forward pass of a joint intent + entity model, as in JointBERT-style evaluations:

- `intent_accuracy`: share of examples with a reference intent whose predicted intent is right;
- `entity_precision`, `entity_recall`, `entity_f1`: entity-level micro scores from seqeval (conlleval rules);
- `entity_<TYPE>_precision`, `_recall`, `_f1`, `_support`: the same per entity type;
- `sentence_accuracy`: share of examples annotated with both an intent and tags whose intent and every tag are right.

`unknown_label` (default `"UNK"`, a label unseen in training) never counts as right, on either side: a reference
intent `UNK` is wrong whatever the prediction, a run of reference tags `UNK` is one entity of type `UNK` that no
prediction can match, a predicted intent `UNK` is wrong, and a run of predicted tags `UNK` is one entity of type
`UNK_predicted`, which no reference has (a false positive, and a wrong tag for sentence accuracy; it has no
per-type scores). An empty
reference (intent `""`, tags `[]`) means that part of the example is not annotated: it is left out of the scores.
Scores with nothing to count are left out of the result.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one `{"intent": str, "tags": list[str]}` per example (tags in BIO, one per word).
    references: the same for the gold annotation; `intent` `""` or `tags` `[]` where that part is not annotated.
    unknown_label: the label that marks references unseen in training (default `"UNK"`).
    per_type: whether to add the `entity_<TYPE>_*` scores (default `True`).
Returns:
    a flat dict of floats (and integer `entity_<TYPE>_support` counts).
Examples:
    >>> metric = evaluate.load("training/metrics/multitask_metrics")
    >>> metric.compute(
    ...     predictions=[{"intent": "set_alarm", "tags": ["O", "B-TIME"]}],
    ...     references=[{"intent": "set_alarm", "tags": ["O", "B-TIME"]}],
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

_EXAMPLE = {"intent": datasets.Value("string"), "tags": datasets.Sequence(datasets.Value("string"))}


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

    def _compute(self, predictions, references, unknown_label="UNK", per_type=True):
        results = {}
        intent_pairs = [(p["intent"], r["intent"]) for p, r in zip(predictions, references, strict=True) if r["intent"]]
        if intent_pairs:
            results["intent_accuracy"] = sum(
                intent_is_right(predicted, gold, unknown_label) for predicted, gold in intent_pairs
            ) / len(intent_pairs)

        tagged = [(p["tags"], r["tags"]) for p, r in zip(predictions, references, strict=True) if r["tags"]]
        for index, (predicted, gold) in enumerate(tagged):
            if len(predicted) != len(gold):
                raise ValueError(
                    f"Tagged example {index} has {len(predicted)} predicted tags but {len(gold)} reference tags."
                )
        if tagged:
            results.update(
                entity_scores(
                    [unknown_as_entity(predicted, unknown_label, PREDICTED_UNKNOWN_TYPE) for predicted, _ in tagged],
                    [unknown_as_entity(gold, unknown_label, unknown_label) for _, gold in tagged],
                    per_type,
                )
            )

        both = [(p, r) for p, r in zip(predictions, references, strict=True) if r["intent"] and r["tags"]]
        if both:
            results["sentence_accuracy"] = sum(
                intent_is_right(p["intent"], r["intent"], unknown_label)
                and tags_are_right(p["tags"], r["tags"], unknown_label)
                for p, r in both
            ) / len(both)
        return results


PREDICTED_UNKNOWN_TYPE = "UNK_predicted"


def intent_is_right(predicted, gold, unknown_label):
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


def entity_scores(predicted_tags, gold_tags, per_type):
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold_tags, predicted_tags, average="micro", zero_division=0
    )
    scores = {"entity_precision": float(precision), "entity_recall": float(recall), "entity_f1": float(f1)}
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
        scores[f"entity_{entity_type}_precision"] = float(precision)
        scores[f"entity_{entity_type}_recall"] = float(recall)
        scores[f"entity_{entity_type}_f1"] = float(f1)
        scores[f"entity_{entity_type}_support"] = int(support)
    return scores
