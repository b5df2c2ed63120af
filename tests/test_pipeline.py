"""The `joint-intent-ner` pipeline: output format, exact spans, windows over long texts, CRF decoding, remote code,
and the `multitask-bert predict` command built on it."""

from __future__ import annotations

import io
import json
import re

import pytest
import torch

from conftest import (
    INTENTS,
    TAGS,
    long_text,
    make_pipeline,
    mixed_tags_model,
    run_without_project,
    tagging_model,
    tiny_model,
)
from multitask_bert import JointIntentNerPipeline
from multitask_bert.training import cli


def forced_tag_model(tag: str, max_positions: int = 128):
    """Every token gets `tag`: a zero NER head with a large bias on that tag."""
    model = tagging_model(max_positions)
    with torch.no_grad():
        model.heads["ner"].weight.zero_()
        model.heads["ner"].bias.zero_()
        model.heads["ner"].bias[TAGS.index(tag)] = 10.0
    return model


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]


@pytest.fixture(scope="module")
def mixed_pipe(tokenizer):
    return make_pipeline(mixed_tags_model(), tokenizer)


def test_output_format(mixed_pipe):
    result = mixed_pipe("call Anna at 5pm tomorrow")
    assert set(result) == {"intent", "entities", "text"}
    assert result["text"] == "call Anna at 5pm tomorrow"
    assert result["intent"]["label"] in INTENTS and 0 < result["intent"]["score"] <= 1
    assert result["entities"], "the scaled-up head should tag some words"
    for entity in result["entities"]:
        assert set(entity) == {"entity_group", "word", "start", "end", "score"}
        assert entity["entity_group"] in {"TIME", "PERSON"}
        assert result["text"][entity["start"] : entity["end"]] == entity["word"]
    json.dumps(result)  # plain Python types only


def test_top_k_and_embedding(tokenizer):
    model = mixed_tags_model()
    pipe = make_pipeline(model, tokenizer)
    text = "cancel lunch with Anna"
    result = pipe(text, top_k=2, return_embedding=True)
    scores = [entry["score"] for entry in result["intent"]]
    assert len(result["intent"]) == 2 and scores == sorted(scores, reverse=True)
    assert result["intent"][0] == pipe(text)["intent"]
    assert len(pipe(text, top_k=10)["intent"]) == len(INTENTS)
    with torch.no_grad():
        expected = model(**tokenizer(text, return_tensors="pt")).sentence_embedding[0]
    torch.testing.assert_close(torch.tensor(result["sentence_embedding"]), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("text", ["", "   ", " \t\n "])
def test_empty_text_has_no_entities_and_the_model_prior_intent(mixed_pipe, text):
    result = mixed_pipe(text)
    assert result["entities"] == [] and result["text"] == text
    assert result["intent"] == mixed_pipe("")["intent"]


def test_bad_input_is_named(mixed_pipe):
    with pytest.raises(TypeError, match=r"Input 1 is a int"):
        mixed_pipe(["fine", 3])
    with pytest.raises(TypeError, match="takes strings, got a bytes"):
        mixed_pipe(b"bytes")
    with pytest.raises(ValueError, match="top_k"):
        mixed_pipe("x", top_k=0)
    with pytest.raises(ValueError, match="stride"):
        mixed_pipe("x", max_length=16, stride=14)
    with pytest.raises(ValueError, match="exceeds the encoder's 128 positions"):
        mixed_pipe("x", max_length=256)
    assert mixed_pipe([]) == []


@pytest.mark.parametrize("tag", ["O", "UNK", "PAD"])
def test_outside_tags_give_no_entities(tokenizer, tag):
    assert make_pipeline(forced_tag_model(tag), tokenizer)("call Anna at 5pm tomorrow")["entities"] == []


def test_long_text_keeps_every_word_with_exact_spans(tokenizer):
    text = long_text()
    assert len(tokenizer(text)["input_ids"]) > 4 * 16
    result = make_pipeline(forced_tag_model("B-PERSON", max_positions=16), tokenizer)(text)
    found = [(entity["start"], entity["end"]) for entity in result["entities"]]
    # Every space-separated word is one B- entity; `東` and the emoji are single words too.
    assert found == word_spans(text)
    assert all(
        text[start:end] == entity["word"] for (start, end), entity in zip(found, result["entities"], strict=True)
    )


def test_long_text_inside_tags_make_one_entity_across_windows(tokenizer):
    text = long_text()
    pipe = make_pipeline(forced_tag_model("I-TIME", max_positions=16), tokenizer)
    for stride in (0, 3, 7):
        (entity,) = pipe(text, stride=stride)["entities"]
        assert (entity["start"], entity["end"], entity["entity_group"]) == (0, len(text), "TIME")
        assert entity["word"] == text


def test_long_text_embedding_is_normalised_and_intent_a_distribution(tokenizer):
    result = make_pipeline(mixed_tags_model(max_positions=16), tokenizer)(long_text(), return_embedding=True, top_k=3)
    assert torch.tensor(result["sentence_embedding"]).norm().item() == pytest.approx(1.0, abs=1e-5)
    assert sum(entry["score"] for entry in result["intent"]) == pytest.approx(1.0, abs=1e-5)


def test_crf_model_decodes_with_viterbi(tokenizer):
    """Zero emissions and transitions that only allow B-PERSON I-PERSON I-TIME B-TIME O...: argmax would tag every
    word PAD (no entities); Viterbi gives that path, which also checks how BIO tags join into entities."""
    model = tagging_model(use_crf=True)
    crf = model.crfs["ner"]
    with torch.no_grad():
        model.heads["ner"].weight.zero_()
        model.heads["ner"].bias.zero_()
        crf.start_transitions[TAGS.index("B-PERSON")] = 10.0
        for before, after in [("B-PERSON", "I-PERSON"), ("I-PERSON", "I-TIME"), ("I-TIME", "B-TIME"), ("B-TIME", "O")]:
            crf.transitions[TAGS.index(before), TAGS.index(after)] = 10.0
        crf.transitions[TAGS.index("O"), TAGS.index("O")] = 10.0
    text = "Anna  Smith at seven  tomorrow please"
    entities = make_pipeline(model, tokenizer)(text)["entities"]
    assert [(entity["entity_group"], entity["word"]) for entity in entities] == [
        ("PERSON", "Anna  Smith"),
        ("TIME", "at"),
        ("TIME", "seven"),
    ]
    assert entities[0]["score"] == pytest.approx(1 / len(TAGS))


def test_token_tasks_are_keyed_by_name_and_ner_by_entities(tokenizer):
    tasks = {
        "intent": {"level": "sentence", "labels": INTENTS},
        "ner": {"level": "token", "labels": TAGS},
        "chunks": {"level": "token", "labels": ["O", "B-NP", "I-NP"]},
    }
    result = make_pipeline(tiny_model(tasks=tasks), tokenizer)("book a table")
    assert set(result) == {"intent", "entities", "chunks", "text"}
    assert all(set(entity) == {"entity_group", "word", "start", "end", "score"} for entity in result["chunks"])


def test_saved_pipeline_runs_as_remote_code_with_exact_spans_and_batching(tmp_path, tokenizer):
    """In a process that cannot import this project: `pipeline(model=dir, trust_remote_code=True)`; hypothesis texts
    (accents, emoji, CJK, runs of spaces, arbitrary unicode, many longer than the 32 positions) keep
    `text[start:end] == word`, and batched results equal one-by-one results."""
    model_dir = tmp_path / "model"
    mixed_tags_model(max_positions=32).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["custom_pipelines"]["joint-intent-ner"]["impl"] == "pipeline_multitask_bert.JointIntentNerPipeline"
    assert (model_dir / "pipeline_multitask_bert.py").is_file()

    result = run_without_project(
        f"""
        import json
        from hypothesis import given, settings, strategies as st
        from transformers import pipeline

        pipe = pipeline(model={str(model_dir)!r}, trust_remote_code=True)
        assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
        pieces = ["call", "Anna", "at", "5pm", "Zürich", "café", "naïve", "🎉", "👍🏽", "東京", "中文", "日本語",
                  "O'Neil", "e-mail", "x", "  ", "   ", "\\t", "\\n", ".", ",", "!", "Ωmega", "ﬁ", "İstanbul"]
        texts = st.one_of(
            st.lists(st.sampled_from(pieces), max_size=10).map(" ".join),
            st.lists(st.sampled_from(pieces), min_size=20, max_size=80).map(" ".join),
            st.lists(st.sampled_from(pieces), min_size=5, max_size=60).map("".join),
            st.text(max_size=150),
        )
        seen, stats = [], {{"entities": 0, "long": 0}}

        @settings(max_examples=120, deadline=None, derandomize=True, database=None)
        @given(texts)
        def spans_are_exact(text):
            result = pipe(text)
            assert result["text"] == text
            for entity in result["entities"]:
                assert text[entity["start"] : entity["end"]] == entity["word"], (text, entity)
                assert entity["word"] and entity["word"] == entity["word"].strip(), (text, entity)
            stats["entities"] += len(result["entities"])
            stats["long"] += len(pipe.tokenizer(text)["input_ids"]) > 32
            seen.append((text, result))

        spans_are_exact()
        batched = pipe([text for text, _ in seen], batch_size=8)
        for (text, single), batch in zip(seen, batched):
            assert single["intent"]["label"] == batch["intent"]["label"], text
            assert abs(single["intent"]["score"] - batch["intent"]["score"]) < 1e-4, text
            strip = lambda entities: [(e["entity_group"], e["start"], e["end"], e["word"]) for e in entities]
            assert strip(single["entities"]) == strip(batch["entities"]), text
            assert all(abs(a["score"] - b["score"]) < 1e-4 for a, b in zip(single["entities"], batch["entities"]))
        stats["texts"] = len(seen)
        print("STATS", json.dumps(stats))
        """,
        tmp_path,
        env={"OMP_NUM_THREADS": "1"},  # a 32-wide model runs faster on one thread than on contended cores
    )
    stats = json.loads(result.stdout.split("STATS", 1)[1])
    assert stats["texts"] >= 100 and stats["entities"] >= 200 and stats["long"] >= 20, stats


def test_pipeline_class_is_exported(mixed_pipe):
    assert isinstance(mixed_pipe, JointIntentNerPipeline)


# `multitask-bert predict`


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory, tokenizer):
    model_dir = tmp_path_factory.mktemp("predict") / "model"
    mixed_tags_model().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_predict_texts_file_and_stdin(saved_model_dir, tmp_path, capsys, monkeypatch):
    assert cli.main(["predict", str(saved_model_dir), "call Anna at 5pm", "café 🎉"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["text"] for line in lines] == ["call Anna at 5pm", "café 🎉"]

    utterances = tmp_path / "utterances.txt"
    utterances.write_text("wake me at 7\n\nremind Bob\n", encoding="utf-8")
    assert cli.main(["predict", str(saved_model_dir), "--file", str(utterances), "--top-k", "2"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["text"] for line in lines] == ["wake me at 7", "", "remind Bob"]
    assert all(len(line["intent"]) == 2 for line in lines)

    monkeypatch.setattr("sys.stdin", io.StringIO("one\ntwo three\n"))
    assert cli.main(["predict", str(saved_model_dir), "--embedding"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["text"] for line in lines] == ["one", "two three"]
    assert all(len(line["sentence_embedding"]) == 32 for line in lines)


def test_predict_matches_the_pipeline(saved_model_dir, tokenizer, capsys):
    texts = ["call Anna at 5pm tomorrow", "set a timer for ten minutes"]
    assert cli.main(["predict", str(saved_model_dir), *texts]) == 0
    assert json_lines(capsys.readouterr().out) == make_pipeline(mixed_tags_model(), tokenizer)(texts)


def test_predict_reports_a_missing_file(saved_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(saved_model_dir), "--file", str(tmp_path / "absent.txt")])
    assert exit_info.value.code == 2
    assert "absent.txt" in capsys.readouterr().err
