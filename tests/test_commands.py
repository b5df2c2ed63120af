"""`multitask-bert train` and `evaluate` end to end on a tiny backbone and a small slice of the embedded data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoTokenizer

from multitask_bert import MultiTaskBertModel, MultiTaskTrainer
from multitask_bert.training import cli
from multitask_bert.training.cli import train as cli_train
from multitask_bert.training.data import default_data_dir
from multitask_bert.training.training_args import cpu_has_native_bf16

SPLIT_SIZES = {"train": 48, "validation": 24, "test": 24}
FAST = ["--max_steps", "4", "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--save_strategy", "no"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small_data")
    for split, size in SPLIT_SIZES.items():
        lines = (default_data_dir() / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / f"{split}.jsonl").write_text("".join(lines[:size]), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone_dir, small_data) -> tuple[Path, str]:
    output_dir = tmp_path_factory.mktemp("run") / "model"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(small_data), "--output-dir", str(output_dir)]
    with pytest.MonkeyPatch.context() as patch:
        printed = []
        patch.setattr("builtins.print", lambda *args, **kwargs: printed.append(" ".join(map(str, args))))
        assert cli.main([*argv, *FAST]) == 0
    return output_dir, "\n".join(printed)


def cpu_flags_have_native_bf16() -> bool | None:
    """Read from /proc/cpuinfo, apart from torch: whether the CPU has AVX512-BF16 or AMX (None without x86 flags)."""
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), None)
    return None if flags is None else bool({"avx512_bf16", "amx_tile"} & set(flags.split(":", 1)[1].split()))


x86_linux_cpu_only = pytest.mark.skipif(
    not Path("/proc/cpuinfo").exists() or cpu_flags_have_native_bf16() is None or torch.accelerator.is_available(),
    reason="reads the x86 CPU flags of /proc/cpuinfo (Linux), and the choice concerns machines without accelerator",
)


@x86_linux_cpu_only
def test_native_bf16_probe_agrees_with_the_cpu_flags():
    assert cpu_has_native_bf16() == cpu_flags_have_native_bf16()


@x86_linux_cpu_only
def test_train_uses_bf16_autocast_by_default_exactly_on_cpus_with_native_bf16(trained):
    output_dir, _ = trained
    assert ("- Precision: mixed, bfloat16" in (output_dir / "README.md").read_text()) == cpu_flags_have_native_bf16()


@pytest.mark.parametrize("pays_off", [True, False])
def test_bf16_default_follows_the_machine_and_gives_way_to_fp16(monkeypatch, pays_off):
    """The machine probe is replaced to see both machines: the default follows it, and `--fp16` turns it off."""
    monkeypatch.setattr(cli_train, "cpu_bf16_pays_off", lambda: pays_off)
    assert cli_train.precision_defaults(["--data", "my_data"]) == {"bf16": pays_off}
    for fp16 in (["--fp16", "true"], ["--fp16=true"], ["--fp16", "false"]):
        assert cli_train.precision_defaults(fp16) == {"bf16": False}


@pytest.mark.parametrize(("option", "precision"), [(["--bf16", "false"], None), (["--fp16", "true"], "float16")])
def test_precision_options_override_the_bf16_default(tmp_path, tiny_backbone_dir, small_data, option, precision):
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(small_data), "--output-dir", str(tmp_path)]
    assert cli.main([*argv, *FAST, *option]) == 0
    card = (tmp_path / "README.md").read_text()
    assert ("- Precision:" in card) == (precision is not None) and (precision is None or f"mixed, {precision}" in card)


def test_final_scores_are_those_of_the_saved_fp32_model(tmp_path, tiny_backbone_dir, small_data, monkeypatch):
    head_output_dtypes = []
    evaluate = MultiTaskTrainer.evaluate

    def recording_evaluate(trainer, *args, **kwargs):
        hook = trainer.model.heads["intent"].register_forward_hook(
            lambda module, inputs, output: head_output_dtypes.append(output.dtype)
        )
        try:
            return evaluate(trainer, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(MultiTaskTrainer, "evaluate", recording_evaluate)
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(small_data), "--output-dir", str(tmp_path)]
    assert cli.main([*argv, "--bf16", "true", "--eval-strategy", "no", *FAST]) == 0  # trained under bf16 autocast
    assert head_output_dtypes and set(head_output_dtypes) == {torch.float32}


def test_train_writes_a_publishable_folder_and_reports(trained):
    output_dir, printed = trained
    names = {path.name for path in output_dir.iterdir()}
    assert {"model.safetensors", "config.json", "modeling_multitask_bert.py", "pipeline_multitask_bert.py"} <= names
    assert {"tokenizer.json", "eval_results.json", "README.md", "training_loss.png"} <= names
    config = json.loads((output_dir / "config.json").read_text())
    assert "AutoModel" in config["auto_map"] and "joint-intent-ner" in config["custom_pipelines"]
    assert json.loads((output_dir / "tokenizer_config.json").read_text())["model_max_length"] == 128

    results = json.loads((output_dir / "eval_results.json").read_text())
    assert set(results) == {"validation", "test"}
    for metrics in results.values():
        for key in ("intent_accuracy", "entity_f1", "sentence_accuracy"):
            assert 0.0 <= metrics[key] <= 1.0
    assert re.search(rf"\nsentence_accuracy +{results['test']['sentence_accuracy']:.4f}\n", printed)
    assert re.search(rf"\nintent_ece +{results['test']['intent_ece']:.4f}\n", printed)
    assert "Example predictions:" in printed and printed.count("    intent ") == 3


def test_evaluate_json_matches_the_training_run(trained, small_data, capsys, tmp_path, monkeypatch):
    output_dir, _ = trained
    monkeypatch.chdir(tmp_path)
    assert cli.main(["evaluate", str(output_dir), "--data", str(small_data), "--split", "test", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = json.loads((output_dir / "eval_results.json").read_text())["test"]
    for key in ("intent_accuracy", "entity_f1", "sentence_accuracy"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-9)
    per_type = {key for key in scores if key.startswith("entity_") and key.endswith("_f1") and key != "entity_f1"}
    assert per_type == {key for key in expected if key in per_type} and per_type
    assert list(tmp_path.iterdir()) == []  # evaluation writes nothing (no stray trainer_output/)


def test_evaluate_rejects_a_missing_split(trained, small_data, capsys):
    output_dir, _ = trained
    assert cli.main(["evaluate", str(output_dir), "--data", str(small_data), "--split", "dev"]) == 2
    assert "multitask-bert evaluate: error: No split 'dev'" in capsys.readouterr().err


def test_tasks_option_trains_a_single_task_model(tmp_path, tiny_backbone_dir, small_data):
    from multitask_bert import MultiTaskBertConfig

    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(small_data), "--output-dir", str(tmp_path)]
    assert cli.main([*argv, *FAST, "--tasks", "intent"]) == 0
    assert list(MultiTaskBertConfig.from_pretrained(tmp_path).tasks) == ["intent"]
    assert "entity_f1" not in json.loads((tmp_path / "eval_results.json").read_text())["test"]


def test_tasks_option_selects_among_the_tasks_of_the_data(tmp_path, tiny_backbone_dir, capsys):
    from multitask_bert import MultiTaskBertConfig

    data = Path(__file__).parent / "fixtures" / "four_tasks"
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(data), "--output-dir", str(tmp_path / "m")]
    assert cli.main([*argv, *FAST, "--tasks", "mood", "atcs"]) == 2  # a misspelt task is named, not skipped
    assert "--tasks atcs: the model has no such head" in capsys.readouterr().err
    assert cli.main([*argv, *FAST, "--tasks", "mood", "acts"]) == 0
    assert set(MultiTaskBertConfig.from_pretrained(tmp_path / "m").tasks) == {"mood", "acts"}
    assert cli.main(["evaluate", str(tmp_path / "m"), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"mood_accuracy", "acts_f1", "sentence_accuracy"} <= set(metrics)
    assert not {"intent_accuracy", "entity_f1"} & set(metrics)


def test_task_columns_of_a_datasets_folder(tmp_path, tiny_backbone_dir, capsys):
    from datasets import Dataset, DatasetDict

    from multitask_bert import MultiTaskBertConfig

    rows = {"tokens": [["good", "tea"], ["cold", "soup"]] * 4, "label": ["pos", "neg"] * 4}
    DatasetDict({"train": Dataset.from_dict(rows)}).save_to_disk(tmp_path / "saved")
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(tmp_path / "saved"), *FAST]
    argv += ["--output-dir", str(tmp_path / "m"), "--task-columns"]
    assert cli.main([*argv, '{"label": {"task": "sentiment", "level": "sentence"}}']) == 0
    assert MultiTaskBertConfig.from_pretrained(tmp_path / "m").tasks["sentiment"]["labels"] == ["neg", "pos", "UNK"]
    assert cli.main([*argv, '{"label": "sentence"}', "--overwrite-output-dir"]) == 2
    assert "task_columns['label'] must be" in capsys.readouterr().err


def changed_heads(before_dir: Path, after_dir: Path) -> dict[str, bool]:
    """For each task head: did any of its weights change between the two saved models?"""
    from safetensors.torch import load_file

    before, after = load_file(before_dir / "model.safetensors"), load_file(after_dir / "model.safetensors")
    changed = {}
    for name, tensor in before.items():
        if name.startswith("heads."):
            task = name.split(".")[1]
            changed[task] = changed.get(task, False) or not tensor.equal(after[name])
    return changed


def test_subword_pooling_option_builds_a_model_that_tags_whole_words(tmp_path, tiny_backbone_dir, small_data, capsys):
    argv = ["train", "--backbone", str(tiny_backbone_dir), "--data", str(small_data), "--output-dir", str(tmp_path)]
    assert cli.main([*argv, "--subword-pooling", "mean", *FAST]) == 0
    model = MultiTaskBertModel.from_pretrained(tmp_path)
    assert model.config.subword_pooling == "mean"
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    continuations = {index for token, index in tokenizer.get_vocab().items() if token.startswith("##")}
    assert set(model.word_continuations.nonzero().flatten().tolist()) == continuations
    assert "tagged from the mean of their states" in ModelCard.load(tmp_path / "README.md").text
    train_again = [*argv[:-1], str(tmp_path / "again"), "--subword-pooling", "mean", *FAST]
    for command in (train_again, ["evaluate", str(tmp_path), "--data", str(small_data)]):
        assert cli.main([*command, "--label-all-subtokens", "true"]) == 2
        assert "--label_all_subtokens: a model with subword_pooling 'mean'" in capsys.readouterr().err


def test_continue_training_with_one_head_frozen(trained, small_data, tmp_path):
    first_dir, _ = trained
    argv = ["train", "--model-name-or-path", str(first_dir), "--data", str(small_data), *FAST]
    assert cli.main([*argv, "--output-dir", str(tmp_path / "frozen"), "--freeze-heads", "intent"]) == 0
    assert changed_heads(first_dir, tmp_path / "frozen") == {"intent": False, "ner": True}

    # Training NER only keeps the intent head, and the evaluation still scores it.
    assert cli.main([*argv, "--output-dir", str(tmp_path / "ner"), "--tasks", "ner"]) == 0
    assert changed_heads(first_dir, tmp_path / "ner") == {"intent": False, "ner": True}
    test_scores = json.loads((tmp_path / "ner" / "eval_results.json").read_text())["test"]
    assert {"intent_accuracy", "entity_f1", "sentence_accuracy"} <= set(test_scores)


@pytest.mark.parametrize(
    "option",
    [
        ["--backbone", "bert-base-uncased"],
        ["--use-crf", "true"],
        ["--pooling", "cls"],
        ["--sentence-head-pooling", "attention"],
        ["--sentence-aware-token-heads", "true"],
        ["--subword-pooling", "mean"],
    ],
)
def test_new_model_options_with_model_name_or_path_are_refused(trained, small_data, tmp_path, option, capsys):
    first_dir, _ = trained
    argv = ["train", "--model-name-or-path", str(first_dir), "--data", str(small_data), *option]
    assert cli.main([*argv, "--output-dir", str(tmp_path), *FAST]) == 2
    assert f"--{option[0][2:].replace('-', '_')}: options of a new model" in capsys.readouterr().err


def test_continuing_refuses_a_missing_head_and_grows_with_labels_the_model_lacks(trained, small_data, tmp_path, capsys):
    first_dir, _ = trained
    argv = ["train", "--model-name-or-path", str(first_dir), "--output-dir", str(tmp_path / "out"), *FAST]
    assert cli.main([*argv, "--data", str(small_data), "--tasks", "slots"]) == 2
    assert "--tasks slots: the model has no such head; its heads are ['intent', 'ner']" in capsys.readouterr().err

    new_data = tmp_path / "new_data"
    new_data.mkdir()
    for split in SPLIT_SIZES:
        lines = (small_data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        if split == "train":
            first = json.loads(lines[0])
            lines[0] = json.dumps({**first, "intent": "book_flight"})
        (new_data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # A label the model does not know grows its head (tests/test_grow.py checks the old rows stay).
    assert cli.main([*argv, "--data", str(new_data)]) == 0
    grown = json.loads((tmp_path / "out" / "config.json").read_text())["tasks"]["intent"]["labels"]
    assert (
        grown[-1] == "book_flight"
        and "book_flight" not in json.loads((first_dir / "config.json").read_text())["tasks"]["intent"]["labels"]
    )

    # Tasks of the data that the model lacks are no unknown labels: the model trains its own heads on such data.
    more_tasks = tmp_path / "more_tasks"
    more_tasks.mkdir()
    for split in SPLIT_SIZES:
        records = [
            json.loads(line) for line in (small_data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        lines = [
            json.dumps({**record, "mood": "calm" if number % 2 else "urgent"}) for number, record in enumerate(records)
        ]
        (more_tasks / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main([*argv, "--data", str(more_tasks), "--overwrite-output-dir"]) == 0
    assert set(json.loads((tmp_path / "out" / "config.json").read_text())["tasks"]) == {"intent", "ner"}


def test_model_card_states_the_run_in_words_and_its_numbers_match_eval_results(trained):
    output_dir, _ = trained
    card = ModelCard.load(output_dir / "README.md")
    results = json.loads((output_dir / "eval_results.json").read_text())
    # Metadata: every model-index value is the run's, for each split and metric.
    index = {
        (result.dataset_split, result.metric_type, result.metric_name): result.metric_value
        for result in card.data.eval_results
    }
    keys = {
        "Intent accuracy": "intent_accuracy",
        "Entity F1": "entity_f1",
        "Entity precision": "entity_precision",
        "Entity recall": "entity_recall",
        "Sentence accuracy (intent and all entities right)": "sentence_accuracy",
        # Every sentence head is calibrated on validation.
        "Expected calibration error": "intent_ece",
        "Expected calibration error before temperature scaling": "intent_ece_uncalibrated",
    }
    assert {split for split, _, _ in index} == set(results)
    assert {name for _, _, name in index} == set(keys)
    for (split, _, name), value in index.items():
        assert value == pytest.approx(results[split][keys[name]], abs=1e-12)
    # Body: the evaluation table row of each split, to 4 decimals.
    for split, metrics in results.items():
        row = " | ".join(
            f"{metrics[key]:.4f}"
            for key in ("intent_accuracy", "entity_precision", "entity_recall", "entity_f1", "sentence_accuracy")
        )
        assert f"| {split} | {row} |" in card.text
    # Hyperparameters in words: the recipe's 10% warmup, no enum names or raw argument names.
    assert re.search(r"- Learning-rate schedule: linear, warmup: 10% of the training steps \(\d+ steps\)", card.text)
    assert "- Learning rate: 0.0001 for the encoder" in card.text and "0.001 for the task heads" in card.text
    for raw in ("OptimizerNames", "lr_scheduler_warmup_steps", "must be truncated"):
        assert raw not in card.text
