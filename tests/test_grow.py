"""Growing a trained model: labels answered from stored examples (no training), and heads that grow with new labels
when training continues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_out_of_scope import FAST, INTENT_WORDS, OUT_OF_SCOPE
from transformers import pipeline

from conftest import make_pipeline, run_without_project, tiny_model
from multitask_bert import MultiTaskBertModel, OnnxMultiTaskModel, export_onnx
from multitask_bert.modeling.configuration_multitask_bert import DEFAULT_EXAMPLE_ERROR_SCALE
from multitask_bert.training import cli

NEW_INTENT = ["book a table for two", "reserve a table tonight", "table for four at eight", "book dinner for six"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def oos_model(tmp_path_factory, tiny_backbone_dir) -> Path:
    """Three intents and a Mahalanobis out-of-scope detector, on the tiny backbone."""
    folder = tmp_path_factory.mktemp("grow_data")
    in_scope = [{"text": text, "intent": intent} for intent, texts in INTENT_WORDS.items() for text in texts]
    in_scope = [{**row, "entities": [last_word(row["text"])]} for row in in_scope]  # a token task too
    outside = [{"text": text, "intent": "oos", "entities": []} for text in OUT_OF_SCOPE]
    varied = [{**row, "text": f"{row['text']} {word}"} for row in in_scope for word in ("now", "please", "ok", "today")]
    write_jsonl(folder / "train.jsonl", in_scope * 3)
    write_jsonl(folder / "validation.jsonl", varied + outside)
    write_jsonl(folder / "test.jsonl", in_scope + outside)
    output_dir = tmp_path_factory.mktemp("grow_run") / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(folder), "--output-dir", str(output_dir)]
    assert cli.main([*argv, "--out-of-scope-label", "oos", *FAST]) == 0
    return output_dir


def last_word(text: str) -> dict:
    return {"start": text.rfind(" ") + 1, "end": len(text), "label": "THING"}


def answers(model_dir: Path, texts: list[str], **options) -> list[dict]:
    model = MultiTaskBertModel.from_pretrained(model_dir).eval()
    nlu = pipeline("joint-intent-ner", model=model, tokenizer=str(model_dir))
    return [result["intent"] for result in nlu(texts, **options)]


def test_a_new_intent_is_answered_from_its_examples_and_removing_them_undoes_it(oos_model, tmp_path, capsys):
    model_dir = Path(shutil.copytree(oos_model, tmp_path / "model"))
    known = [texts[0] for texts in INTENT_WORDS.values()]
    # The tiny backbone's distances are large: a threshold that keeps everything in scope shows the two paths.
    keep_all = {"out_of_scope_threshold": 1e9}
    before = answers(model_dir, [*NEW_INTENT, *known], **keep_all)
    examples = write_jsonl(tmp_path / "new.jsonl", [{"text": text, "intent": "book_table"} for text in NEW_INTENT])
    assert cli.main(["add-examples", str(model_dir), "--data", str(examples)]) == 0
    assert "1 labels (1 not in the head: ['book_table'])" in capsys.readouterr().out
    after = answers(model_dir, [*NEW_INTENT, *known], **keep_all)
    assert [answer["label"] for answer in after[: len(NEW_INTENT)]] == ["book_table"] * len(NEW_INTENT)
    assert {answer["source"] for answer in after[: len(NEW_INTENT)]} == {"examples"}
    # Known intents still come from the head, as before.
    assert [(answer["label"], answer["source"]) for answer in after[len(NEW_INTENT) :]] == [
        (answer["label"], "head") for answer in before[len(NEW_INTENT) :]
    ]
    # The out-of-scope score becomes the distance to the nearest of the head's classes and the examples.
    for found, earlier in zip(after[: len(NEW_INTENT)], before[: len(NEW_INTENT)], strict=True):
        assert found["out_of_scope_score"] < earlier["out_of_scope_score"]
    for found, earlier in zip(after[len(NEW_INTENT) :], before[len(NEW_INTENT) :], strict=True):
        assert found["out_of_scope_score"] == pytest.approx(earlier["out_of_scope_score"])
    card = (model_dir / "README.md").read_text()
    assert "| `book_table` | 4 | no |" in card

    assert cli.main(["add-examples", str(model_dir), "--remove", "book_table"]) == 0
    assert answers(model_dir, [*NEW_INTENT, *known], **keep_all) == [
        {key: value for key, value in answer.items() if key != "source"} for answer in before
    ]
    assert "examples" not in json.loads((model_dir / "config.json").read_text())["tasks"]["intent"]


def test_examples_survive_remote_code_and_onnx(oos_model, tmp_path):
    model_dir = Path(shutil.copytree(oos_model, tmp_path / "model"))
    examples = write_jsonl(tmp_path / "new.jsonl", [{"text": text, "intent": "book_table"} for text in NEW_INTENT])
    assert cli.main(["add-examples", str(model_dir), "--data", str(examples)]) == 0
    texts = [*NEW_INTENT, "wake me at seven", "who wrote hamlet"]
    expected = answers(model_dir, texts, out_of_scope_threshold=1e9)
    result = run_without_project(
        f"""
        import json
        from transformers import pipeline
        nlu = pipeline(model={str(model_dir)!r}, trust_remote_code=True)
        print(json.dumps([result["intent"] for result in nlu({texts!r}, out_of_scope_threshold=1e9)]))
        """,
        tmp_path,
    )
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    export_onnx(model_dir, tmp_path / "onnx")
    onnx_model = OnnxMultiTaskModel.from_pretrained(tmp_path / "onnx")
    onnx_pipeline = pipeline("joint-intent-ner", model=onnx_model, tokenizer=str(model_dir))
    onnx = [result["intent"] for result in onnx_pipeline(texts, out_of_scope_threshold=1e9)]
    for found in (remote, onnx):
        assert [(answer["label"], answer["source"]) for answer in found] == [
            (answer["label"], answer["source"]) for answer in expected
        ]
        for answer, want in zip(found, expected, strict=True):
            assert answer["score"] == pytest.approx(want["score"], abs=1e-4)


def test_examples_without_a_detector_are_compared_by_cosine(tokenizer, tmp_path):
    model = tiny_model()
    counts = model.add_examples("intent", NEW_INTENT, ["book_table"] * len(NEW_INTENT), tokenizer)
    assert counts == {"book_table": 4}
    examples = model.config.task_examples("intent")
    assert examples["metric"] == "cosine" and 0 < examples["threshold"] < 2
    results = make_pipeline(model, tokenizer)(NEW_INTENT)
    assert [(result["intent"]["label"], result["intent"]["source"]) for result in results] == [
        ("book_table", "examples")
    ] * 4
    model.save_pretrained(tmp_path)
    reloaded = MultiTaskBertModel.from_pretrained(tmp_path)
    assert torch.equal(reloaded.example_memories["intent"].prototypes, model.example_memories["intent"].prototypes)
    assert reloaded.config.task_examples("intent") == examples
    # More examples of the same label are added to the ones kept; a known label's examples may correct the head.
    model.add_examples("intent", ["wake me at seven"], ["set_alarm"], tokenizer)
    assert model.example_counts("intent") == {"book_table": 4, "set_alarm": 1}


def test_examples_of_a_known_label_correct_the_head(tokenizer):
    """Texts the head answers with one label, stored as examples of another known label, are answered with that
    label from the examples; the head's answers elsewhere stay."""
    model = tiny_model()
    nlu = make_pipeline(model, tokenizer)
    texts = ["wake me at seven", "set an alarm for six"]
    head = [result["intent"]["label"] for result in nlu(texts)]
    wanted = next(label for label in model.config.task_labels("intent") if label not in head)
    model.add_examples("intent", texts, [wanted] * len(texts), tokenizer)
    corrected = [result["intent"] for result in nlu(texts)]
    assert [(answer["label"], answer["source"]) for answer in corrected] == [(wanted, "examples")] * len(texts)


def test_growing_a_head_keeps_every_old_row_and_transition_bit_for_bit():
    model = tiny_model(use_crf=True, sentence_aware_token_heads=True)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    old_intents, old_tags = model.config.task_labels("intent"), model.config.task_labels("ner")
    model.grow_labels("intent", ["book_table"])
    model.grow_labels("ner", ["B-CITY", "I-CITY"])
    assert model.config.task_labels("intent") == [*old_intents, "book_table"]
    assert model.config.task_labels("ner") == [*old_tags, "B-CITY", "I-CITY"]
    state = model.state_dict()
    count, tags = len(old_intents), len(old_tags)
    assert torch.equal(state["heads.intent.weight"][:count], before["heads.intent.weight"])
    assert torch.equal(state["heads.intent.bias"][:count], before["heads.intent.bias"])
    assert torch.equal(state["heads.ner.weight"][:tags], before["heads.ner.weight"])
    assert torch.equal(state["crfs.ner.transitions"][:tags, :tags], before["crfs.ner.transitions"])
    assert torch.equal(state["crfs.ner.start_transitions"][:tags], before["crfs.ner.start_transitions"])
    assert torch.equal(
        state["sentence_label_embeddings.intent.weight"][:, :count], before["sentence_label_embeddings.intent.weight"]
    )
    assert state["heads.intent.weight"].shape[0] == count + 1 and state["crfs.ner.transitions"].shape == (tags + 2,) * 2
    untouched = [name for name in before if not name.startswith(("heads.", "crfs.", "sentence_label_embeddings."))]
    assert all(torch.equal(state[name], before[name]) for name in untouched)
    with pytest.raises(ValueError, match="must be new"):
        model.grow_labels("intent", ["book_table"])


def test_continued_training_grows_the_heads_with_new_labels(oos_model, tmp_path, caplog):
    data = tmp_path / "more"
    data.mkdir()
    rows = [{"text": text, "intent": "book_table"} for text in NEW_INTENT] * 3
    rows += [{"text": text, "intent": intent} for intent, texts in INTENT_WORDS.items() for text in texts]
    for split in ("train", "validation", "test"):
        write_jsonl(data / f"{split}.jsonl", rows + [{"text": text, "intent": "oos"} for text in OUT_OF_SCOPE])
    old = MultiTaskBertModel.from_pretrained(oos_model).config.task_labels("intent")
    argv = ["train", "--model-name-or-path", str(oos_model), "--data", str(data), "--output-dir", str(tmp_path / "m")]
    with caplog.at_level("INFO"):
        assert cli.main([*argv, *FAST]) == 0
    grown = MultiTaskBertModel.from_pretrained(tmp_path / "m").config
    assert grown.task_labels("intent") == [*old, "book_table"]
    assert "added to its head (old ids kept): ['book_table']" in caplog.text
    assert grown.task_out_of_scope("intent")["label"] == "oos"
    assert "forgets them" not in caplog.text and "Distillation towards" not in caplog.text  # old intents are there


def test_growing_on_the_new_labels_alone_warns_that_the_old_ones_are_forgotten(oos_model, tmp_path, caplog):
    data = tmp_path / "new_only"
    data.mkdir()
    kept = next(iter(INTENT_WORDS))  # one old intent stays in the data
    rows = [{"text": text, "intent": "book_table"} for text in NEW_INTENT] * 3
    rows += [{"text": text, "intent": kept} for text in INTENT_WORDS[kept]]
    rows += [{"text": text, "intent": "oos"} for text in OUT_OF_SCOPE]
    for split in ("train", "validation", "test"):
        write_jsonl(data / f"{split}.jsonl", rows)
    old = [
        label for label in MultiTaskBertModel.from_pretrained(oos_model).config.task_labels("intent") if label != "UNK"
    ]
    argv = ["train", "--model-name-or-path", str(oos_model), "--data", str(data), "--output-dir", str(tmp_path / "m")]
    with caplog.at_level("INFO"):
        assert cli.main([*argv, *FAST]) == 0
    warnings = [record.getMessage() for record in caplog.records if "forgets them" in record.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"intent: the train split has no example of {len(old) - 1} of")
    assert "Distillation towards the starting model on the old labels of intent (weight 1.0)" in caplog.text
    log_history = json.loads((tmp_path / "m" / "model_card_inputs.json").read_text())["log_history"]
    assert any(entry.get("loss_distillation", 0) > 0 for entry in log_history)  # on by default here

    caplog.clear()
    argv = [*argv[:-1], str(tmp_path / "given"), "--distill-old-labels", "0"]
    with caplog.at_level("INFO"):
        assert cli.main([*argv, *FAST]) == 0
    assert "Distillation towards" not in caplog.text  # a given weight wins


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        ([{"text": "book a table", "intent": "book_table"}], ["--task", "ner"], "token-level task"),
        ([], [], "holds no examples"),
        ([{"text": "what is the capital of peru", "intent": "oos"}], [], "'oos' cannot be an example label"),
        ([{"text": "book a table", "intent": "UNK"}], [], "'UNK' cannot be an example label"),
        ([{"text": "book a table"}], [], "line 1: needs the label of 'intent'"),
        ([{"text": "book a table", "intent": "book_table"}], ["--task", "mood"], "no such task"),
    ],
)
def test_bad_examples_are_one_error_line(oos_model, tmp_path, capsys, rows, options, message):
    model_dir = Path(shutil.copytree(oos_model, tmp_path / "model"))
    weights = (model_dir / "model.safetensors").read_bytes()
    examples = write_jsonl(tmp_path / "new.jsonl", rows)
    assert cli.main(["add-examples", str(model_dir), "--data", str(examples), *options]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("multitask-bert add-examples: error:") and message in errors[0]
    assert (model_dir / "model.safetensors").read_bytes() == weights  # nothing written


def test_removing_a_label_without_examples_is_refused(oos_model, tmp_path, capsys):
    assert cli.main(["add-examples", str(oos_model), "--remove", "book_table", "--output-dir", str(tmp_path)]) == 2
    assert "has no examples of ['book_table']" in capsys.readouterr().err


def old_label_kl(old_dir: Path, new_dir: Path, texts: list[str], tokenizer) -> float:
    """Mean KL(old || new) over `texts` between the two models' softmax over the old model's intents (`UNK` out)."""
    old_model, new_model = (MultiTaskBertModel.from_pretrained(folder).eval() for folder in (old_dir, new_dir))
    labels = old_model.config.task_labels("intent")
    old_ids = [index for index, label in enumerate(labels) if label != "UNK"]
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        old, new = (model(**inputs).logits["intent"][:, old_ids].log_softmax(-1) for model in (old_model, new_model))
    return torch.nn.functional.kl_div(new, old, reduction="batchmean", log_target=True).item()


@pytest.fixture(scope="module")
def confident_model(tmp_path_factory, tiny_backbone_dir) -> Path:
    """Three intents learnt well enough (about 0.8 of the probability on the right one) that forgetting shows."""
    data = tmp_path_factory.mktemp("old_intents")
    rows = [{"text": text, "intent": intent} for intent, texts in INTENT_WORDS.items() for text in texts]
    for split in ("train", "validation", "test"):
        write_jsonl(data / f"{split}.jsonl", rows * 3)
    output_dir = tmp_path_factory.mktemp("old_intents_run") / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(data), "--output-dir", str(output_dir)]
    argv += ["--learning-rate", "3e-3", "--head-learning-rate", "3e-3", *FAST, "--max-steps", "60"]
    assert cli.main(argv) == 0
    return output_dir


@pytest.fixture(scope="module")
def continued_on_new_intent(confident_model, tmp_path_factory) -> dict[float, Path]:
    """`confident_model` continued on a new intent's utterances alone, same seed, with distillation weights 0 and 1."""
    data = tmp_path_factory.mktemp("new_intent_only")
    for split in ("train", "validation", "test"):
        write_jsonl(data / f"{split}.jsonl", [{"text": text, "intent": "book_table"} for text in NEW_INTENT] * 3)
    folders = {}
    for weight in (0.0, 1.0):
        folders[weight] = tmp_path_factory.mktemp("continued") / "model"
        argv = ["train", "--model-name-or-path", str(confident_model), "--data", str(data)]
        argv += ["--output-dir", str(folders[weight]), "--distill-old-labels", str(weight), "--logging-steps", "10"]
        assert cli.main([*argv, "--learning-rate", "1e-3", *FAST]) == 0
    return folders


def test_distillation_towards_the_old_model_is_a_logged_loss(continued_on_new_intent):
    for weight, folder in continued_on_new_intent.items():
        log_history = json.loads((folder / "model_card_inputs.json").read_text())["log_history"]
        logged = [entry.get("loss_distillation") for entry in log_history if "loss" in entry]
        assert len(logged) == 3
        card = (folder / "README.md").read_text()
        if weight:
            assert all(loss > 0 for loss in logged), logged
            assert "weight 1 on the KL divergence from the starting model's answers" in card
        else:
            assert logged == [None] * 3
            assert "KL divergence" not in card


def test_distillation_keeps_the_old_intents_answers_closer_to_the_old_model(
    confident_model, continued_on_new_intent, tokenizer
):
    old_texts = [text for texts in INTENT_WORDS.values() for text in texts]
    plain, distilled = (
        old_label_kl(confident_model, continued_on_new_intent[weight], old_texts, tokenizer) for weight in (0.0, 1.0)
    )
    assert distilled < 0.6 * plain, (distilled, plain)
    grown = MultiTaskBertModel.from_pretrained(continued_on_new_intent[1.0]).config.task_labels("intent")
    assert grown[-1] == "book_table"


@pytest.mark.parametrize("continued", [False, True])
def test_distillation_without_a_continued_model_is_one_error_line(tiny_backbone_dir, tmp_path, capsys, continued):
    output_dir = tmp_path / "model"
    location = ["--model_name_or_path" if continued else "--backbone", str(tiny_backbone_dir)]
    argv = ["train", *location, "--output-dir", str(output_dir), "--distill_old_labels", "0.5", *FAST]
    assert cli.main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("multitask-bert train: error: --distill_old_labels 0.5 distils")
    assert ("not the encoder" in errors[0]) == continued
    assert not output_dir.exists()


def test_examples_saved_before_the_scale_was_stored_keep_their_answers(oos_model, tokenizer, tmp_path):
    """A config whose examples lack `error_scale` (saved before it was chosen on validation) keeps the 1.0 of then,
    also when more examples are added; a new task's examples get the default."""
    model = MultiTaskBertModel.from_pretrained(oos_model)
    model.add_examples("intent", NEW_INTENT, ["book_table"] * len(NEW_INTENT), tokenizer)
    assert model.config.task_examples("intent")["error_scale"] == DEFAULT_EXAMPLE_ERROR_SCALE == 3.0
    batch = tokenizer(NEW_INTENT, padding=True, return_tensors="pt")
    model.set_example_error_scale("intent", 1.0)
    with torch.no_grad():
        at_one = model.eval()(**batch).example_distances["intent"]
    model.save_pretrained(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    del config["tasks"]["intent"]["examples"]["error_scale"]  # as the code before it wrote it
    config_file.write_text(json.dumps(config))
    old = MultiTaskBertModel.from_pretrained(tmp_path / "old").eval()
    with torch.no_grad():
        torch.testing.assert_close(old(**batch).example_distances["intent"], at_one)
    old.add_examples("intent", ["reserve a table for two"], ["book_table"], tokenizer)
    assert old.config.task_examples("intent")["error_scale"] == 1.0
