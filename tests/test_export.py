"""ONNX export: dynamic axes, parity with PyTorch, the onnxruntime model inside the pipeline, int8 agreement, CLI."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import INTENTS, TAGS, long_text, make_pipeline, mixed_tags_model, tiny_encoder_config, tiny_model
from multitask_bert import MultiTaskBertConfig, MultiTaskBertModel, OnnxMultiTaskModel, export_onnx
from multitask_bert.training import cli
from multitask_bert.training.onnx import CRF_FILE
from multitask_bert.training.onnx.export import MAX_ABS_DIFF
from multitask_bert.training.onnx.quantization import as_reference, score_results

BIN = Path(sys.executable).parent


@pytest.fixture
def one_thread():
    """Tiny models train and run much faster on one thread than on two contended cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def crf_model_dir(tmp_path_factory, tokenizer):
    model = tiny_model(
        encoder=tiny_encoder_config(max_position_embeddings=32),
        tasks={"intent": {"level": "sentence", "labels": INTENTS}, "ner": {"level": "token", "labels": TAGS}},
        use_crf=True,
        sentence_head_pooling="attention",  # the heads' own pooling and intent-aware tags export too
        sentence_aware_token_heads=True,
        subword_pooling="mean",  # and tags from whole words
    )
    model.mark_word_continuations(tokenizer)
    with torch.no_grad():
        model.head_pooling.scorer.weight.normal_(std=1.0)
        model.heads["ner"].weight.mul_(100)
        model.crfs["ner"].transitions.normal_(std=2.0)
    model_dir = tmp_path_factory.mktemp("crf") / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def exported(crf_model_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("onnx")
    return export_onnx(crf_model_dir, output_dir), output_dir


def test_graph_has_dynamic_batch_and_sequence_and_every_head(exported):
    import onnx  # here, not at module level: a missing install fails these tests instead of their collection

    report, output_dir = exported
    graph = onnx.load(str(report.onnx_path)).graph
    assert [node.name for node in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [node.name for node in graph.output] == ["intent_logits", "ner_logits", "sentence_embedding"]
    for node in graph.input:
        dims = node.type.tensor_type.shape.dim
        assert len(dims) == 2 and all(dim.dim_param and not dim.dim_value for dim in dims), node
    assert set(report.max_abs_diff) == {"intent_logits", "ner_logits", "sentence_embedding"}
    assert all(diff <= MAX_ABS_DIFF for diff in report.max_abs_diff.values())
    assert (output_dir / CRF_FILE).is_file() and (output_dir / "tokenizer.json").is_file()


def test_onnxruntime_matches_pytorch_on_other_shapes(exported, crf_model_dir, tokenizer):
    _, output_dir = exported
    model = MultiTaskBertModel.from_pretrained(crf_model_dir).eval()
    onnx_model = OnnxMultiTaskModel.from_pretrained(output_dir)
    texts = ["a", "call Anna at 5pm", "wake me up tomorrow at seven", "x y", "cancel the dentist on friday please"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch)
    found = onnx_model(**batch)
    for task in ("intent", "ner"):
        torch.testing.assert_close(found.logits[task], expected.logits[task], atol=MAX_ABS_DIFF, rtol=0)
    torch.testing.assert_close(found.sentence_embedding, expected.sentence_embedding, atol=MAX_ABS_DIFF, rtol=0)


def test_onnx_model_in_the_pipeline_gives_the_same_results(exported, crf_model_dir, tokenizer):
    _, output_dir = exported
    texts = ["call Anna at 5pm tomorrow", "Zürich  café 🎉 東京", "", long_text(40)]
    expected = make_pipeline(MultiTaskBertModel.from_pretrained(crf_model_dir), tokenizer)(texts, batch_size=2)
    found = make_pipeline(OnnxMultiTaskModel.from_pretrained(output_dir), tokenizer)(texts, batch_size=2)
    assert sum(len(result["entities"]) for result in expected) >= 5
    for left, right in zip(expected, found, strict=True):
        assert left["intent"]["label"] == right["intent"]["label"]
        assert [{**entity, "score": 0} for entity in left["entities"]] == [
            {**entity, "score": 0} for entity in right["entities"]
        ]
        scores = [(a["score"], b["score"]) for a, b in zip(left["entities"], right["entities"], strict=True)]
        assert all(a == pytest.approx(b, abs=1e-4) for a, b in scores)


def test_a_crf_export_without_its_transitions_is_refused(exported, tmp_path):
    _, output_dir = exported
    for path in output_dir.iterdir():
        if path.name != CRF_FILE:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match=CRF_FILE):
        OnnxMultiTaskModel.from_pretrained(tmp_path)


def test_export_and_predict_commands(tmp_path, tokenizer, capsys):
    """Export (no warnings about our own calls) and predict with texts after the options, as README shows."""
    model = mixed_tags_model()
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    export = [str(BIN / "multitask-bert"), "export", str(model_dir), "--onnx", str(tmp_path / "onnx")]
    exported = subprocess.run(
        [*export, "--quantize", "int8", "--eval-limit", "8"], capture_output=True, text=True, timeout=300
    )
    assert exported.returncode == 0, exported.stderr
    for noise in ("torchvision", "axis name", "LeafSpec", "pre-processing before quantization"):
        assert noise not in exported.stderr, exported.stderr
    printed = exported.stdout
    parity = printed.split("max abs diff")[1].split("wrote")[0]
    diffs = dict(re.findall(r"^\s+(\w+)\s+([0-9.e+-]+)$", parity, flags=re.MULTILINE))
    assert set(diffs) == {"intent_logits", "ner_logits", "sentence_embedding"}
    assert all(float(diff) <= MAX_ABS_DIFF for diff in diffs.values())

    texts = ["call Anna at 5pm tomorrow", "set a timer"]
    assert cli.main(["predict", str(tmp_path / "onnx"), *texts]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = make_pipeline(model, tokenizer)(texts)
    assert [result["intent"]["label"] for result in found] == [result["intent"]["label"] for result in expected]
    assert [[entity["word"] for entity in result["entities"]] for result in found] == [
        [entity["word"] for entity in result["entities"]] for result in expected
    ]

    # README's line, texts after the options, through the console script.
    command = [str(BIN / "multitask-bert"), "predict", str(tmp_path / "onnx"), "--onnx-file", "model_int8.onnx", *texts]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    quantized = [json.loads(line) for line in result.stdout.splitlines()]
    assert [result["text"] for result in quantized] == texts


def test_entity_spans_are_scored_exactly_through_the_metric_module():
    """int8-vs-fp32 agreement and gold scores go through `multitask_metrics`: an entity counts only when its type,
    start and end all match, and two results without any entity agree fully."""
    config = MultiTaskBertConfig(
        tasks={
            "intent": {"level": "sentence", "labels": ["greet", "call"]},
            "ner": {"level": "token", "labels": ["O", "B-TIME", "I-TIME", "B-PERSON", "I-PERSON"]},
        }
    )
    texts = ["now then", "call Annabel"]

    def results(entities, labels=("greet", "call")):
        return [
            {"text": text, "intent": {"label": label}, "entities": found}
            for text, label, found in zip(texts, labels, entities, strict=True)
        ]

    gold = [[{"entity_group": "TIME", "start": 0, "end": 3}], [{"entity_group": "PERSON", "start": 5, "end": 9}]]
    shifted = [gold[0], [{"entity_group": "PERSON", "start": 5, "end": 12}]]
    retyped = [gold[0], [{"entity_group": "TIME", "start": 5, "end": 9}]]
    references = [as_reference(result, config) for result in results(gold)]
    assert score_results(results(gold), references, config)["entity_f1"] == 1.0
    assert score_results(results(shifted), references, config)["entity_f1"] == 0.5
    assert score_results(results(retyped), references, config)["entity_f1"] == 0.5
    assert score_results(results(gold, ("greet", "greet")), references, config)["intent_accuracy"] == 0.5
    nothing = results([[], []])
    assert score_results(nothing, [as_reference(result, config) for result in nothing], config)["entity_f1"] == 1.0


# int8: a briefly trained tiny model, so that agreement with fp32 means something.

TEMPLATES = {
    "set_alarm": ["wake me up at {time}", "set an alarm for {time}", "alarm at {time} please"],
    "set_timer": ["set a timer for {time}", "start a {time} timer", "count down {time}"],
    "cancel_event": ["cancel lunch with {person}", "call off the meeting with {person}", "cancel {person} at {time}"],
}
TIMES = ["7 am", "noon", "ten minutes", "half past six", "midnight", "5 pm", "quarter to nine", "two hours"]
PEOPLE = ["Anna", "Bob Smith", "Carol", "Dr Lee", "Maria Garcia", "Tom", "Jean Paul Sartre"]


def synthetic_examples(seed: int, count: int) -> list[tuple[list[str], list[str], str]]:
    """(words, BIO tags, intent) from the templates above."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        intent = rng.choice(INTENTS)
        words, tags = [], []
        for piece in rng.choice(TEMPLATES[intent]).split():
            slot = {"{time}": ("TIME", TIMES), "{person}": ("PERSON", PEOPLE)}.get(piece)
            if slot is None:
                words.append(piece)
                tags.append("O")
                continue
            value = rng.choice(slot[1]).split()
            words += value
            tags += [f"B-{slot[0]}"] + [f"I-{slot[0]}"] * (len(value) - 1)
        examples.append((words, tags, intent))
    return examples


def train_tiny_model(tokenizer, steps: int = 300) -> MultiTaskBertModel:
    model = tiny_model(
        tasks={"intent": {"level": "sentence", "labels": INTENTS}, "ner": {"level": "token", "labels": TAGS}}
    )
    model.train()
    examples = synthetic_examples(seed=0, count=400)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = itertools.cycle(range(0, len(examples), 16))
    for _ in range(steps):
        start = next(batches)
        chunk = examples[start : start + 16]
        batch = tokenizer([words for words, _, _ in chunk], is_split_into_words=True, padding=True, return_tensors="pt")
        ner_labels = torch.full_like(batch["input_ids"], -100)
        for row, (_, tags, _) in enumerate(chunk):
            previous = None
            for position, word_id in enumerate(batch.word_ids(row)):
                if word_id is not None and word_id != previous:
                    ner_labels[row, position] = TAGS.index(tags[word_id])
                previous = word_id
        intent_labels = torch.tensor([INTENTS.index(intent) for _, _, intent in chunk])
        loss = model(**batch, intent_labels=intent_labels, ner_labels=ner_labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def test_int8_agrees_with_fp32_on_a_trained_model(tmp_path, tokenizer, one_thread):
    model = train_tiny_model(tokenizer)
    held_out = synthetic_examples(seed=1, count=120)
    texts = [" ".join(words) for words, _, _ in held_out]
    fp32 = make_pipeline(model, tokenizer)(texts, batch_size=32)
    accuracy = sum(result["intent"]["label"] == intent for result, (_, _, intent) in zip(fp32, held_out, strict=True))
    assert accuracy / len(texts) >= 0.9, "the tiny model did not learn the templates; agreement would mean little"

    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    gold = [gold_annotation(words, tags, intent) for words, tags, intent in held_out]
    report = export_onnx(tmp_path / "model", tmp_path / "onnx", quantize="int8", eval_texts=texts, eval_gold=gold)
    assert report.int8_path.stat().st_size < 0.5 * report.onnx_path.stat().st_size
    metrics = report.int8_metrics
    assert metrics["intent_agreement"] >= 0.95, metrics
    assert metrics["entity_agreement_f1"] >= 0.9, metrics
    assert metrics["embedding_cosine"] >= 0.98, metrics
    # Against the gold labels: the fp32 scores are the pipeline's own, and int8 loses little of them.
    assert metrics["fp32_intent_accuracy"] == accuracy / len(texts)
    assert metrics["fp32_entity_f1"] >= 0.8, metrics
    assert abs(metrics["entity_f1_drop"]) <= 0.02, metrics
    assert metrics["int8_intent_accuracy"] >= metrics["fp32_intent_accuracy"] - 0.02, metrics


def gold_annotation(words: list[str], tags: list[str], intent: str) -> dict:
    """Character-span gold of a space-joined utterance, as the embedded JSONL data stores it."""
    entities, offset = [], 0
    for word, tag in zip(words, tags, strict=True):
        if tag.startswith("B-"):
            entities.append({"start": offset, "end": offset + len(word), "label": tag[2:]})
        elif tag.startswith("I-"):
            entities[-1]["end"] = offset + len(word)
        offset += len(word) + 1
    return {"intent": intent, "entities": entities}


def test_every_task_goes_through_export_quantization_and_predict(tmp_path, tokenizer, one_thread, capsys):
    """A four-task model: every head in the graph, every task compared between int8 and fp32 and against the gold
    labels of the JSONL, and `predict` on the ONNX folder answers every task as the PyTorch pipeline does."""
    from multitask_bert.training.data import load_jsonl, task_label_lists, task_levels

    data = Path(__file__).parent / "fixtures" / "four_tasks"
    dataset = load_jsonl(data, tokenizer)
    levels = task_levels(dataset["train"].features)
    tasks = {task: {"level": levels[task], "labels": labels} for task, labels in task_label_lists(dataset).items()}
    model = tiny_model(tasks=tasks)
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    gold = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    texts = [example["text"] for example in gold]

    report = export_onnx(model_dir, tmp_path / "onnx", "int8", texts, None, 4, gold)
    assert set(report.max_abs_diff) == {f"{task}_logits" for task in tasks} | {"sentence_embedding"}
    assert {"intent_agreement", "mood_agreement", "entity_agreement_f1", "acts_agreement_f1"} <= set(
        report.int8_metrics
    )
    scored = {"intent_accuracy", "mood_accuracy", "entity_f1", "acts_f1"}
    assert {f"fp32_{key}" for key in scored} <= set(report.int8_metrics)

    assert cli.main(["predict", str(tmp_path / "onnx"), *texts[:2]]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = make_pipeline(model, tokenizer)(texts[:2])
    for left, right in zip(expected, found, strict=True):
        assert set(right) == {"intent", "mood", "entities", "acts", "text"}
        assert {task: left[task]["label"] for task in ("intent", "mood")} == {
            task: right[task]["label"] for task in ("intent", "mood")
        }
        for key in ("entities", "acts"):
            assert [entity["word"] for entity in left[key]] == [entity["word"] for entity in right[key]]
