"""The `multitask_metrics` evaluate module (against seqeval called directly, the UNK rule, offline loading) and the
`compute_metrics` glue that turns Trainer ids into its inputs."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from transformers import EvalPrediction

from conftest import run_without_project, tiny_model
from multitask_bert import build_compute_metrics
from multitask_bert.training.metric import METRICS_PATH

TAGS = ["O", "B-TIME", "I-TIME", "B-PERSON", "I-PERSON"]


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(str(METRICS_PATH), keep_in_memory=True)


def examples(intents, tag_lists):
    """Examples of the default tasks (`intent`, `ner`)."""
    return [{"labels": [intent], "tags": [tags]} for intent, tags in zip(intents, tag_lists, strict=True)]


tag_sequences = st.lists(st.lists(st.sampled_from(TAGS), min_size=1, max_size=8), min_size=1, max_size=6)


# seqeval's own classification_report averages over no entity types when there are none; that warning is its own.
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_entity_scores_equal_seqeval(metric, data):
    gold = data.draw(tag_sequences)
    predicted = [data.draw(st.lists(st.sampled_from(TAGS), min_size=len(row), max_size=len(row))) for row in gold]
    result = metric.compute(
        predictions=examples(["a"] * len(gold), predicted), references=examples(["a"] * len(gold), gold)
    )
    assert result["entity_precision"] == pytest.approx(precision_score(gold, predicted, zero_division=0))
    assert result["entity_recall"] == pytest.approx(recall_score(gold, predicted, zero_division=0))
    assert result["entity_f1"] == pytest.approx(f1_score(gold, predicted, zero_division=0))
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    for entity_type in ("TIME", "PERSON"):
        if entity_type in report:
            assert result[f"entity_{entity_type}_f1"] == pytest.approx(report[entity_type]["f1-score"])
            assert result[f"entity_{entity_type}_support"] == report[entity_type]["support"]
        else:
            assert f"entity_{entity_type}_f1" not in result
    exact = [p == g for p, g in zip(predicted, gold, strict=True)]
    assert result["sentence_accuracy"] == pytest.approx(np.mean(exact))


def test_intent_and_sentence_accuracy(metric):
    result = metric.compute(
        predictions=examples(["alarm", "timer", "alarm"], [["O", "B-TIME"], ["O"], ["B-TIME"]]),
        references=examples(["alarm", "timer", "timer"], [["O", "B-TIME"], ["B-TIME"], ["B-TIME"]]),
    )
    assert result["intent_accuracy"] == pytest.approx(2 / 3)
    assert result["sentence_accuracy"] == pytest.approx(1 / 3)
    assert result["entity_TIME_support"] == 3


def test_per_type_scores_can_be_left_out(metric):
    result = metric.compute(
        predictions=examples(["alarm"], [["O", "B-TIME"]]),
        references=examples(["alarm"], [["B-PERSON", "B-TIME"]]),
        per_type=False,
    )
    assert set(result) == {
        "intent_accuracy",
        "intent_macro_f1",
        "entity_precision",
        "entity_recall",
        "entity_f1",
        "sentence_accuracy",
    }
    assert (result["entity_precision"], result["entity_recall"]) == (1.0, 0.5)


def test_sentence_macro_f1_averages_the_real_labels_and_never_credits_unk(metric):
    gold = ["alarm", "alarm", "alarm", "timer", "rare", "UNK", "timer"]
    predicted = ["alarm", "alarm", "timer", "timer", "alarm", "alarm", "UNK"]
    result = metric.compute(predictions=examples(predicted, [["O"]] * 7), references=examples(gold, [["O"]] * 7))
    # alarm: 2 right of 4 predicted, 3 gold (F1 4/7); timer: 1 of 2 predicted, 2 gold (the UNK is a miss: F1 1/2);
    # rare: missed (0). The gold UNK counts only as alarm's false positive; UNK itself is no label to average.
    assert result["intent_macro_f1"] == pytest.approx((4 / 7 + 1 / 2 + 0) / 3)
    perfect = metric.compute(predictions=examples(gold[:5], [["O"]] * 5), references=examples(gold[:5], [["O"]] * 5))
    assert perfect["intent_macro_f1"] == 1.0
    only_unknown = metric.compute(predictions=examples(["UNK"], [["O"]]), references=examples(["UNK"], [["O"]]))
    assert only_unknown["intent_accuracy"] == 0.0 and "intent_macro_f1" not in only_unknown


def test_a_gold_unk_is_never_right(metric):
    result = metric.compute(
        predictions=examples(["UNK", "alarm"], [["UNK", "UNK", "O"], ["B-TIME", "UNK"]]),
        references=examples(["UNK", "alarm"], [["UNK", "UNK", "O"], ["B-TIME", "O"]]),
    )
    assert result["intent_accuracy"] == 0.5  # the gold UNK intent is wrong although predicted UNK
    # The run of gold UNK tags is one entity nobody can match, not even the predicted UNK run at the same place.
    assert result["entity_UNK_support"] == 1 and result["entity_UNK_recall"] == 0.0
    # Predicted: that UNK run, TIME (right) and the UNK on a gold O: 1 of 3 right; gold: UNK (missed) and TIME.
    assert (result["entity_precision"], result["entity_recall"]) == (1 / 3, 0.5)
    assert result["sentence_accuracy"] == 0.0  # example 1's predicted UNK on a gold O is a wrong tag


def test_a_predicted_unk_is_never_right(metric):
    """A model that predicts UNK where the gold tag is O, or UNK as the intent, gets nothing right for it."""
    result = metric.compute(
        predictions=examples(["alarm", "UNK"], [["O", "UNK", "B-TIME"], ["O", "B-TIME"]]),
        references=examples(["alarm", "timer"], [["O", "O", "B-TIME"], ["O", "B-TIME"]]),
    )
    assert result["intent_accuracy"] == 0.5
    assert result["sentence_accuracy"] == 0.0
    assert (result["entity_precision"], result["entity_recall"]) == (2 / 3, 1.0)
    assert not any(key.startswith("entity_UNK_predicted") for key in result)  # not an entity type of the data


def test_unannotated_parts_are_left_out(metric):
    result = metric.compute(
        predictions=examples(["alarm", "timer", "alarm"], [["O"], ["B-TIME"], ["O", "B-TIME"]]),
        references=examples(["alarm", "", "timer"], [[], ["B-TIME"], []]),
    )
    assert result["intent_accuracy"] == 0.5  # examples 0 and 2
    assert result["entity_f1"] == 1.0  # example 1 only
    assert "sentence_accuracy" not in result  # no example has both annotations


def test_tag_count_mismatch_is_named(metric):
    with pytest.raises(ValueError, match="Tagged example 0 has 1 predicted tags but 2 reference tags"):
        metric.compute(predictions=examples(["a"], [["O"]]), references=examples(["a"], [["O", "O"]]))


def test_module_loads_offline_without_the_project(tmp_path):
    result = run_without_project(
        f"""
        import evaluate
        metric = evaluate.load({str(METRICS_PATH)!r})
        print(metric.compute(
            predictions=[{{"labels": ["a"], "tags": [["B-X", "O"]]}}],
            references=[{{"labels": ["a"], "tags": [["B-X", "O"]]}}],
        )["sentence_accuracy"])
        """,
        tmp_path,
        env={"HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.stdout.strip() == "1.0"


def test_compute_metrics_names_ids_and_honours_unk_and_ignored_positions():
    intents = ["set_alarm", "set_timer", "UNK"]
    tags = ["O", "B-TIME", "I-TIME", "UNK"]
    model = tiny_model(
        tasks={"intent": {"level": "sentence", "labels": intents}, "ner": {"level": "token", "labels": tags}}
    )
    compute_metrics = build_compute_metrics(model.config)
    predicted_tags = np.array([[-100, 1, 2, 0, -100], [-100, 3, 0, -100, -100], [-100, 0, 0, 0, -100]])
    gold_tags = np.array([[-100, 1, -100, 0, -100], [-100, 3, 0, -100, -100], [-100, -100, -100, -100, -100]])
    result = compute_metrics(
        EvalPrediction(
            predictions={"intent": np.array([0, 2, 1]), "ner": predicted_tags},
            label_ids={"intent": np.array([0, 2, -100]), "ner": gold_tags},
        )
    )
    assert result["intent_accuracy"] == 0.5  # example 1's gold UNK is wrong; example 2 has no intent
    # Example 0 is right at its labelled positions; example 1's gold UNK entity is missed and its predicted UNK is
    # a false positive.
    assert (result["entity_precision"], result["entity_recall"]) == (0.5, 0.5)
    assert result["entity_UNK_support"] == 1
    assert result["sentence_accuracy"] == 0.5  # examples 0 and 1 carry both annotations; 1 is wrong


def test_any_number_of_tasks_are_scored_by_name(metric):
    """Two sentence tasks and two token tasks: `ner` keeps the `entity_` names, others are named after the task;
    sentence accuracy needs every task annotated and right."""
    predicted = [
        {"labels": ["alarm", "calm"], "tags": [["B-TIME", "O"], ["B-ASK", "I-ASK"]]},
        {"labels": ["timer", "calm"], "tags": [["O", "O"], ["B-ASK", "O"]]},
        {"labels": ["timer", "angry"], "tags": [["O", "B-TIME"], ["O", "O"]]},
    ]
    gold = [
        {"labels": ["alarm", "calm"], "tags": [["B-TIME", "O"], ["B-ASK", "I-ASK"]]},
        {"labels": ["timer", "angry"], "tags": [["O", "O"], ["B-ASK", "O"]]},
        {"labels": ["timer", ""], "tags": [["O", "B-TIME"], []]},
    ]
    result = metric.compute(
        predictions=predicted,
        references=gold,
        sentence_tasks=["intent", "mood"],
        token_tasks=["ner", "acts"],
        per_type=False,
    )
    assert result == {
        "intent_accuracy": 1.0,
        "intent_macro_f1": 1.0,
        "mood_accuracy": 0.5,
        "mood_macro_f1": pytest.approx(1 / 3),  # calm: 1 right of 2 predicted, 1 gold (F1 2/3); angry: 0
        "entity_precision": 1.0,
        "entity_recall": 1.0,
        "entity_f1": 1.0,
        "acts_precision": 1.0,
        "acts_recall": 1.0,
        "acts_f1": 1.0,
        "sentence_accuracy": 0.5,  # example 2 lacks a mood and acts; example 1's mood is wrong
    }
