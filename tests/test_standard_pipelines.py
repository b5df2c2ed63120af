"""A saved model works in transformers' own pipelines, as remote code where this project is not installed:
`feature-extraction` gives the encoder's token states (as for the backbone), `text-classification` and
`token-classification` give one head each through `AutoModelFor*Classification`, as the joint pipeline does."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, pipeline

from conftest import make_pipeline, mixed_tags_model, run_without_project
from multitask_bert import MultiTaskBertModel

TEXTS = ["wake me at 7 tomorrow", "cancel lunch with Anna on friday", "Zürich café meeting tomorrow"]


@pytest.fixture
def saved_model(tmp_path, tokenizer):
    """A tiny model whose NER head gives a confident mix of every tag (placeholders too), saved with its tokenizer,
    and the joint pipeline's answers for `TEXTS` (as JSON)."""
    model = mixed_tags_model()
    model.set_temperature("intent", 2.0)
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    expected = make_pipeline(model, tokenizer)(TEXTS, top_k=len(model.config.task_labels("intent")))
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    return model_dir


def test_config_maps_the_standard_auto_classes(saved_model):
    auto_map = json.loads((saved_model / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_multitask_bert.MultiTaskBertConfig",
        "AutoModel": "modeling_multitask_bert.MultiTaskBertModel",
        "AutoModelForSequenceClassification": "modeling_multitask_bert.MultiTaskBertForSequenceClassification",
        "AutoModelForTokenClassification": "modeling_multitask_bert.MultiTaskBertForTokenClassification",
    }


def test_feature_extraction_gives_the_backbones_token_states(tmp_path, tokenizer, tiny_backbone_dir):
    model = MultiTaskBertModel.from_backbone(str(tiny_backbone_dir), intent_labels=["a", "b"], ner_labels=["O"])
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    result = run_without_project(
        f"""
        import json
        from transformers import pipeline
        ours = pipeline("feature-extraction", model={str(model_dir)!r}, trust_remote_code=True)
        backbone = pipeline("feature-extraction", model={str(tiny_backbone_dir)!r})
        print(json.dumps([ours({TEXTS!r}), backbone({TEXTS!r})]))
        """,
        tmp_path,
    )
    ours, backbone = json.loads(result.stdout.splitlines()[-1])
    for text, mine, theirs in zip(TEXTS, ours, backbone, strict=True):
        states = torch.tensor(mine)
        assert states.shape == (1, len(tokenizer(text)["input_ids"]), 32)
        torch.testing.assert_close(states, torch.tensor(theirs), atol=1e-5, rtol=0)


def test_text_classification_gives_the_intent_heads_calibrated_scores(tmp_path, saved_model):
    result = run_without_project(
        f"""
        import json
        from transformers import pipeline
        classify = pipeline("text-classification", model={str(saved_model)!r}, trust_remote_code=True)
        print(type(classify.model).__name__)
        print(json.dumps(classify({TEXTS!r}, top_k=None)))
        """,
        tmp_path,
    )
    class_name, answers = result.stdout.splitlines()[-2:]
    assert class_name == "MultiTaskBertForSequenceClassification"
    expected = json.loads((tmp_path / "expected.json").read_text())
    for answer, joint in zip(json.loads(answers), expected, strict=True):
        assert [item["label"] for item in answer] == [item["label"] for item in joint["intent"]]
        for item, joint_item in zip(answer, joint["intent"], strict=True):
            assert item["score"] == pytest.approx(joint_item["score"], abs=1e-5)


def test_token_classification_gives_the_joint_pipelines_entities(tmp_path, saved_model):
    result = run_without_project(
        f"""
        import json
        from transformers import pipeline
        tag = pipeline("token-classification", model={str(saved_model)!r}, trust_remote_code=True,
                       aggregation_strategy="first")
        print(json.dumps(tag({TEXTS!r}), default=float))
        """,
        tmp_path,
    )
    expected = json.loads((tmp_path / "expected.json").read_text())
    answers = json.loads(result.stdout.splitlines()[-1])
    assert any(joint["entities"] for joint in expected), "the fixture model must tag some entities"
    for answer, joint in zip(answers, expected, strict=True):
        spans = [(entity["entity_group"], entity["start"], entity["end"]) for entity in answer]
        assert spans == [(entity["entity_group"], entity["start"], entity["end"]) for entity in joint["entities"]]
        assert {entity["entity_group"] for entity in answer} <= {"TIME", "PERSON"}  # no placeholder tag


def test_a_chosen_task_and_an_unknown_one(tmp_path, saved_model):
    model = AutoModelForSequenceClassification.from_pretrained(saved_model, task="intent")
    assert model.config.id2label == dict(enumerate(model.config.task_labels("intent")))
    with pytest.raises(ValueError, match=r"No sentence-level task 'ner'.*\['intent'\]"):
        AutoModelForSequenceClassification.from_pretrained(saved_model, task="ner")


def test_the_task_less_pipeline_is_still_the_joint_one(saved_model):
    nlu = pipeline(model=str(saved_model), trust_remote_code=True)
    assert set(nlu("wake me at 7")) == {"intent", "entities", "text"}
