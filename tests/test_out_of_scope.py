"""Out-of-scope detection and calibration: data, the fitted detector inside the saved model (remote code, ONNX), the
threshold rules, temperature scaling, the metrics, and bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import evaluate
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import pipeline

from conftest import run_without_project, tiny_model
from multitask_bert import MultiTaskBertModel, OnnxMultiTaskModel, export_onnx
from multitask_bert.training import cli
from multitask_bert.training.cli import report as cli_report
from multitask_bert.training.data import UNK, load_hf_dataset, load_jointbert, load_jsonl, tokenize_dataset
from multitask_bert.training.metric import METRICS_PATH
from multitask_bert.training.out_of_scope import choose_threshold, fit_temperature

FAST = ["--max_steps", "30", "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--save_strategy", "no"]
INTENT_WORDS = {
    "alarm": ["wake me at seven", "set an alarm for six", "alarm at noon please", "wake me up early"],
    "weather": ["is it raining today", "weather in paris", "will it snow tomorrow", "how hot is it outside"],
    "music": ["play some jazz", "put on my playlist", "play the next song", "turn the music up"],
}
OUT_OF_SCOPE = ["what is the capital of peru", "how are my sports teams doing", "who wrote hamlet", "tell me a joke"]
TEXTS = ["wake me at five", "play some rock", "who is the president of chile", "is it sunny in rome", "hi there"]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def oos_data(tmp_path_factory) -> Path:
    """Three intents; two out-of-scope examples in train, four in validation and test (label `oos`)."""
    folder = tmp_path_factory.mktemp("oos_data")
    in_scope = [{"text": text, "intent": intent} for intent, texts in INTENT_WORDS.items() for text in texts]
    outside = [{"text": text, "intent": "oos"} for text in OUT_OF_SCOPE]
    # 48 different in-scope validation utterances, so that a share of 95% keeps 46 of them, not all.
    varied = [{**row, "text": f"{row['text']} {word}"} for row in in_scope for word in ("now", "please", "ok", "today")]
    write_jsonl(folder / "train.jsonl", in_scope * 3 + outside[:2])
    write_jsonl(folder / "validation.jsonl", varied + outside)
    write_jsonl(folder / "test.jsonl", in_scope + outside)
    return folder


@pytest.fixture(scope="module")
def oos_model(tmp_path_factory, tiny_backbone_dir, oos_data) -> Path:
    output_dir = tmp_path_factory.mktemp("oos_run") / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(oos_data), "--output-dir", str(output_dir)]
    assert cli.main([*argv, "--out-of-scope-label", "oos", *FAST]) == 0
    return output_dir


def test_out_of_scope_examples_are_never_a_class_of_the_head(oos_data, tokenizer, tmp_path):
    dataset = load_jsonl(oos_data, tokenizer, out_of_scope={"intent": "oos"})
    names = dataset["train"].features["intent"].names
    assert "oos" not in names and names[-1] == UNK
    for split in dataset.values():
        marked = split["intent_out_of_scope"]
        assert sum(marked) == sum(text in OUT_OF_SCOPE for text in split["text"]) > 0
        assert all(label == -1 for label, out in zip(split["intent"], marked, strict=True) if out)
    features = tokenize_dataset(dataset, tokenizer)
    train = features["train"]
    assert all(
        label == -100 for label, out in zip(train["intent_labels"], train["intent_out_of_scope"], strict=True) if out
    )
    # JointBERT folders alike.
    for split, rows in (("train", ["wake me", "hello world"]), ("dev", ["wake up", "what now"])):
        (tmp_path / split).mkdir()
        (tmp_path / split / "seq.in").write_text("\n".join(rows) + "\n")
        (tmp_path / split / "seq.out").write_text("\n".join(" ".join("O" for _ in row.split()) for row in rows) + "\n")
        (tmp_path / split / "label").write_text("alarm\noos\n")
    jointbert = load_jointbert(tmp_path, out_of_scope={"intent": "oos"})
    assert jointbert["train"].features["intent"].names == ["alarm", UNK]
    assert jointbert["validation"]["intent_out_of_scope"] == [False, True]
    # And `datasets` data, with a ClassLabel intent column that has the out-of-scope label among its names.
    rows = Dataset.from_dict(
        {"text": ["wake me", "hello world", "play jazz"], "intent": [0, 1, 2]},
        features=Features({"text": Value("string"), "intent": ClassLabel(names=["alarm", "oos", "music"])}),
    )
    hf = load_hf_dataset(
        DatasetDict({"train": rows, "test": rows}), tokenizer=tokenizer, out_of_scope={"intent": "oos"}
    )
    assert hf["train"].features["intent"].names == ["alarm", "music", UNK]
    assert hf["test"]["intent_out_of_scope"] == [False, True, False] and hf["test"]["intent"][1] == -1


def test_train_fits_a_detector_and_scores_it(oos_model):
    config = json.loads((oos_model / "config.json").read_text())
    intent = config["tasks"]["intent"]
    assert "oos" not in intent["labels"]
    assert intent["out_of_scope"]["label"] == "oos" and intent["out_of_scope"]["method"] == "mahalanobis"
    assert intent["out_of_scope"]["size"] == len(INTENT_WORDS) and intent["temperature"] > 0
    results = json.loads((oos_model / "eval_results.json").read_text())
    for split in ("validation", "test"):
        for key in ("in_scope_accuracy", "out_of_scope_recall", "out_of_scope_auroc", "out_of_scope_fpr95", "ece"):
            assert 0.0 <= results[split][f"intent_{key}"] <= 1.0, key
    card = (oos_model / "README.md").read_text()
    assert "Out-of-scope AUROC" in card and "### Calibration and out-of-scope detection" in card


def test_threshold_rule_keeps_the_share_of_in_scope_validation_utterances(oos_model, oos_data, tokenizer):
    model = MultiTaskBertModel.from_pretrained(oos_model).eval()
    texts = [row["text"] for row in map(json.loads, (oos_data / "validation.jsonl").read_text().splitlines())]
    in_scope = [text for text in texts if text not in OUT_OF_SCOPE]
    assert len(set(in_scope)) == len(in_scope)
    nlu = pipeline("joint-intent-ner", model=model, tokenizer=tokenizer)
    scores = torch.tensor([result["intent"]["out_of_scope_score"] for result in nlu(in_scope)])
    threshold = model.config.task_out_of_scope("intent")["threshold"]
    assert len(scores) == 48 and int((scores <= threshold).sum()) == 46  # ceil(0.95 * 48)


def test_threshold_rules():
    scores = torch.arange(1.0, 101.0)
    assert choose_threshold(scores, in_scope_share=0.95) == 95.5  # keeps 95 of 100, halfway to the 96th
    assert choose_threshold(scores, in_scope_share=1.0) == pytest.approx(100.0, abs=1e-3)
    assert (
        choose_threshold(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.5, 8.0, 9.0]), rule="youden") == 2.25
    )  # a tie: the lower, halfway to 2.5
    assert choose_threshold(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.5, 8.0]), rule="youden") == 3.25
    with pytest.raises(ValueError, match="needs out-of-scope examples"):
        choose_threshold(scores, None, rule="youden")
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        choose_threshold(scores, in_scope_share=0.0)


def saved_decisions(model_dir: Path) -> dict:
    """The saved threshold set to the median score of TEXTS, so that some are decided out of scope and some not."""
    model = MultiTaskBertModel.from_pretrained(model_dir).eval()
    nlu = pipeline("joint-intent-ner", model=model, tokenizer=str(model_dir))
    scores = sorted(result["intent"]["out_of_scope_score"] for result in nlu(TEXTS))
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["tasks"]["intent"]["out_of_scope"]["threshold"] = (scores[2] + scores[3]) / 2
    config_path.write_text(json.dumps(config))
    model = MultiTaskBertModel.from_pretrained(model_dir).eval()
    return pipeline("joint-intent-ner", model=model, tokenizer=str(model_dir))(TEXTS)


def test_the_decision_survives_remote_code_and_onnx(oos_model, tmp_path):
    oos_model = Path(shutil.copytree(oos_model, tmp_path / "model"))
    expected = saved_decisions(oos_model)
    labels = [result["intent"]["label"] for result in expected]
    assert labels.count("oos") == 2, labels
    result = run_without_project(
        f"""
        import json
        from transformers import pipeline
        nlu = pipeline(model={str(oos_model)!r}, trust_remote_code=True)
        print(json.dumps([result["intent"] for result in nlu({TEXTS!r})]))
        """,
        tmp_path,
    )
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    export_onnx(oos_model, tmp_path / "onnx")
    onnx_model = OnnxMultiTaskModel.from_pretrained(tmp_path / "onnx")
    onnx = [
        result["intent"] for result in pipeline("joint-intent-ner", model=onnx_model, tokenizer=str(oos_model))(TEXTS)
    ]
    for found in (remote, onnx):
        assert [answer["label"] for answer in found] == labels
        for answer, want in zip(found, expected, strict=True):
            assert answer["out_of_scope_score"] == pytest.approx(want["intent"]["out_of_scope_score"], rel=1e-4)
            assert answer["score"] == pytest.approx(want["intent"]["score"], abs=1e-4)


def test_out_of_scope_answer_keeps_entities_and_top_k(tokenizer):
    model = tiny_model(
        tasks={
            "intent": {"level": "sentence", "labels": ["a", "b", "c", UNK]},
            "ner": {"level": "token", "labels": ["O", "B-X", "I-X"]},
        }
    )
    model.set_out_of_scope("intent", "none", "msp", 0.0)
    with torch.no_grad():
        model.heads["ner"].bias[1] = 50.0  # every word an X entity
    nlu = pipeline("joint-intent-ner", model=model, tokenizer=tokenizer)
    result = nlu("call anna", top_k=2)
    assert [answer["label"] for answer in result["intent"]][0] == "none" and len(result["intent"]) == 2
    assert result["intent"][0]["score"] == pytest.approx(1 - result["intent"][1]["score"])
    assert [entity["word"] for entity in result["entities"]] == ["call", "anna"]
    assert nlu("call anna", out_of_scope_threshold=1.0)["intent"]["label"] in ("a", "b", "c")
    with pytest.raises(ValueError, match=r"in \[0.0, 1.0\]"):
        nlu("call anna", out_of_scope_threshold=2.0)


def test_unk_is_never_an_answer(tokenizer):
    model = tiny_model(tasks={"intent": {"level": "sentence", "labels": ["a", "b", UNK]}})
    with torch.no_grad():
        model.heads["intent"].bias[2] = 100.0  # UNK would win every argmax
    nlu = pipeline("joint-intent-ner", model=model, tokenizer=tokenizer)
    assert nlu("hello")["intent"]["label"] != UNK
    ranked = nlu("hello", top_k=3)["intent"]
    assert [answer["label"] for answer in ranked] in (["a", "b"], ["b", "a"])
    assert sum(answer["score"] for answer in ranked) == pytest.approx(1.0)


def test_temperature_scaling_lowers_ece_on_an_overconfident_head():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(5, (4000,), generator=generator)
    predicted = torch.where(torch.rand(4000, generator=generator) < 0.7, labels, (labels + 1) % 5)
    logits = 8.0 * torch.nn.functional.one_hot(predicted, 5).float() + torch.randn(4000, 5, generator=generator)
    temperature = fit_temperature(logits, labels)
    assert temperature > 2.0
    metric = evaluate.load(str(METRICS_PATH), keep_in_memory=True)

    def ece(scale: float) -> float:
        confidence = (logits / scale).softmax(dim=-1).max(dim=-1).values.tolist()
        gold = [str(label) for label in labels.tolist()]
        best = [str(label) for label in predicted.tolist()]
        return metric.compute(
            predictions=[{"labels": [label], "tags": []} for label in best],
            references=[{"labels": [label], "tags": []} for label in gold],
            sentence_tasks=["intent"],
            token_tasks=[],
            confidences={"intent": confidence},
        )["intent_ece"]

    assert ece(1.0) > 0.25 and ece(temperature) < 0.05


def test_out_of_scope_metrics_count_what_is_right():
    metric = evaluate.load(str(METRICS_PATH), keep_in_memory=True)
    gold = ["a", "a", "oos", "oos", "b"]

    def scores(predicted: list[str]) -> dict:
        return metric.compute(
            predictions=[{"labels": [label], "tags": []} for label in predicted],
            references=[{"labels": [label], "tags": []} for label in gold],
            sentence_tasks=["intent"],
            token_tasks=[],
            out_of_scope_labels={"intent": "oos"},
            out_of_scope_scores={"intent": [0.1, 0.9, 0.8, 0.3, 0.2]},
        )

    found = scores(["a", "oos", "oos", "b", "b"])
    assert found["intent_in_scope_accuracy"] == pytest.approx(2 / 3)
    assert found["intent_out_of_scope_recall"] == found["intent_out_of_scope_precision"] == 0.5
    assert found["intent_out_of_scope_f1"] == 0.5
    assert found["intent_out_of_scope_auroc"] == pytest.approx(4 / 6)
    assert found["intent_out_of_scope_fpr95"] == 1.0  # accepting all in-scope ones (0.9) accepts both
    with_out_of_scope = metric.compute(
        predictions=[{"labels": [label], "tags": []} for label in ["a", "oos", "oos", "b", "b"]],
        references=[{"labels": [label], "tags": []} for label in gold],
        sentence_tasks=["intent"],
        token_tasks=[],
        out_of_scope_labels={"intent": "oos"},
        confidences={"intent": [0.9, 0.8, 0.7, 0.6, 0.5]},
        in_scope_predictions={"intent": ["a", "a", "b", "b", "b"]},
    )
    in_scope_only = metric.compute(
        predictions=[{"labels": [label], "tags": []} for label in ["a", "a", "b"]],
        references=[{"labels": [label], "tags": []} for label in ["a", "a", "b"]],
        sentence_tasks=["intent"],
        token_tasks=[],
        confidences={"intent": [0.9, 0.8, 0.5]},
    )
    assert with_out_of_scope["intent_ece"] == pytest.approx(in_scope_only["intent_ece"])  # (0.1 + 0.2 + 0.5) / 3
    assert in_scope_only["intent_ece"] == pytest.approx(0.8 / 3)
    everything_out = scores(["oos"] * 5)
    assert everything_out["intent_in_scope_accuracy"] == 0.0 and everything_out["intent_out_of_scope_recall"] == 1.0


def test_evaluate_reports_and_overrides_the_threshold(oos_model, oos_data, capsys):
    def evaluated(*options: str) -> dict:
        assert cli.main(["evaluate", str(oos_model), "--data", str(oos_data), "--json", *options]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    saved = evaluated()
    expected = json.loads((oos_model / "eval_results.json").read_text())["test"]
    for key in ("intent_in_scope_accuracy", "intent_out_of_scope_recall", "intent_out_of_scope_auroc", "intent_ece"):
        assert saved[key] == pytest.approx(expected[key], abs=1e-6)
    everything_out = evaluated("--out-of-scope-threshold", "0")
    assert everything_out["intent_out_of_scope_recall"] == 1.0 and everything_out["intent_in_scope_accuracy"] == 0.0
    assert everything_out["intent_out_of_scope_auroc"] == saved["intent_out_of_scope_auroc"]


BAD_OPTIONS = {
    "a label no example has": (
        ["--out-of-scope-label", "nope"],
        r"no example has the out-of-scope intent label 'nope'",
    ),
    "UNK": (["--out-of-scope-label", "UNK"], r"cannot be 'UNK'"),
    "a token task": (["--out-of-scope-label", "ner=oos"], r"not a sentence-level task"),
    "a threshold out of range": (
        ["--out-of-scope-label", "oos", "--out-of-scope-method", "msp", "--out-of-scope-threshold", "1.5"],
        r"must be a number in \[0.0, 1.0\]",
    ),
    "a share out of range": (["--out-of-scope-label", "oos", "--out-of-scope-in-scope-share", "0"], r"in \(0, 1\]"),
    "an unknown method": (["--out-of-scope-label", "oos", "--out-of-scope-method", "knn5"], r"choose one of msp"),
    "a method without a label": (
        ["--out-of-scope-method", "knn"],
        r"--out-of-scope-method: .*needs --out-of-scope-label",
    ),
    "youden without out-of-scope validation examples": (
        ["--out-of-scope-label", "oos", "--out-of-scope-threshold-rule", "youden", "--data", "NO_OOS_VALIDATION"],
        r"youden threshold rule needs out-of-scope intent examples in the validation split",
    ),
    "no validation split": (
        ["--out-of-scope-label", "oos", "--data", "NO_VALIDATION"],
        r"needs a validation split; give one, or --out-of-scope-threshold",
    ),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_out_of_scope_options_are_one_error_line(case, oos_data, tiny_backbone_dir, tmp_path, capsys):
    options, message = BAD_OPTIONS[case]
    rows = [json.loads(line) for line in (oos_data / "validation.jsonl").read_text().splitlines()]
    shutil.copy(oos_data / "train.jsonl", tmp_path / "train.jsonl")
    if "NO_OOS_VALIDATION" in options:
        write_jsonl(tmp_path / "validation.jsonl", [row for row in rows if row["intent"] != "oos"])
    data = {"NO_OOS_VALIDATION": str(tmp_path), "NO_VALIDATION": str(tmp_path / "train.jsonl")}
    options = [data.get(option, option) for option in options]
    output_dir = tmp_path / "out"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(oos_data), "--output-dir", str(output_dir)]
    assert cli.main([*argv, *options, *FAST]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # some are found once the data is read
    assert re.fullmatch(f"multitask-bert train: error: .*{message}.*", error), error
    assert not output_dir.exists()


def test_threshold_for_a_model_without_detector_is_an_error(tmp_path, tokenizer, oos_data, capsys):
    model = tiny_model(tasks={"intent": {"level": "sentence", "labels": ["alarm", "music", "weather", UNK]}})
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="no task of this model has an out-of-scope detector"):
        pipeline("joint-intent-ner", model=model, tokenizer=tokenizer)("hi", out_of_scope_threshold=1.0)
    argv = ["evaluate", str(tmp_path / "model"), "--data", str(oos_data), "--out-of-scope-threshold", "1"]
    assert cli.main(argv) == 2
    assert "has no out-of-scope detector" in capsys.readouterr().err


def test_predict_answers_out_of_scope_and_takes_a_threshold(oos_model, capsys):
    def predicted(*options: str) -> list[dict]:
        assert cli.main(["predict", str(oos_model), *TEXTS, *options]) == 0
        return [json.loads(line)["intent"] for line in capsys.readouterr().out.strip().splitlines()]

    saved = predicted()
    threshold = json.loads((oos_model / "config.json").read_text())["tasks"]["intent"]["out_of_scope"]["threshold"]
    assert [answer["label"] == "oos" for answer in saved] == [
        answer["out_of_scope_score"] > threshold for answer in saved
    ]
    assert {answer["label"] for answer in predicted("--out-of-scope-threshold", "0")} == {"oos"}
    assert "oos" not in {answer["label"] for answer in predicted("--out-of-scope-threshold", "1e9")}
    assert cli.main(["predict", str(oos_model), "hi", "--out-of-scope-threshold", "-1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the weights' loading bar
    assert re.fullmatch(r"multitask-bert predict: error: .*must be a number in \[0.0, inf\].*", error), error


@pytest.mark.parametrize("method", ["knn", "energy"])
def test_other_methods_decide_the_same_in_pytorch_and_onnx(method, oos_data, tiny_backbone_dir, tmp_path):
    output_dir = tmp_path / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(oos_data), "--output-dir", str(output_dir)]
    assert cli.main([*argv, "--out-of-scope-label", "oos", "--out-of-scope-method", method, *FAST]) == 0
    detector = json.loads((output_dir / "config.json").read_text())["tasks"]["intent"]["out_of_scope"]
    assert detector["method"] == method and (detector.get("size") == 36 if method == "knn" else "size" not in detector)
    expected = saved_decisions(output_dir)
    export_onnx(output_dir, tmp_path / "onnx")
    onnx_model = OnnxMultiTaskModel.from_pretrained(tmp_path / "onnx")
    found = pipeline("joint-intent-ner", model=onnx_model, tokenizer=str(output_dir))(TEXTS)
    assert [result["intent"]["label"] for result in found] == [result["intent"]["label"] for result in expected]
    assert [result["intent"]["label"] for result in expected].count("oos") == 2


def test_another_sentence_task_has_its_own_out_of_scope_scores(tmp_path, tiny_backbone_dir):
    rows = [
        {"text": text, "intent": intent, "mood": mood}
        for intent, texts in INTENT_WORDS.items()
        for text, mood in zip(texts, ["calm", "angry", "calm", "unknown"], strict=True)
    ]
    for split in ("train", "validation"):
        write_jsonl(tmp_path / f"{split}.jsonl", rows * (3 if split == "train" else 1))
    output_dir = tmp_path / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(tmp_path), "--output-dir", str(output_dir)]
    assert cli.main([*argv, "--out-of-scope-label", "mood=unknown", *FAST]) == 0
    tasks = json.loads((output_dir / "config.json").read_text())["tasks"]
    assert tasks["mood"]["labels"] == ["angry", "calm", UNK] and tasks["mood"]["out_of_scope"]["label"] == "unknown"
    assert "out_of_scope" not in tasks["intent"] and tasks["intent"]["temperature"] > 0
    validation = json.loads((output_dir / "eval_results.json").read_text())["validation"]
    assert {"mood_in_scope_accuracy", "mood_out_of_scope_recall", "mood_out_of_scope_auroc", "intent_ece"} <= set(
        validation
    )
    assert not any(key.startswith("intent_out_of_scope") for key in validation)


def test_the_main_job_shows_why_an_answer_is_out_of_scope():
    model = tiny_model(tasks={"intent": {"level": "sentence", "labels": ["a", "b", UNK]}})
    model.set_out_of_scope("intent", "oos", "msp", 0.25)
    answer = {"label": "oos", "score": 0.6, "out_of_scope_score": 0.6}
    assert cli_report.answer_text("intent", answer, model.config) == "intent oos (out-of-scope score 0.6 > 0.25)"
    assert cli_report.answer_text("intent", {"label": "a", "score": 0.7}, model.config) == "intent a (0.70)"
