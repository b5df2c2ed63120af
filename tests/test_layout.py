"""The package's layout holds: a public API at the top, the command line above the library, relative imports inside,
old import paths as deprecated aliases, tasks named by their config, model options derived from the config."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import warnings

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

import multitask_bert
from conftest import INTENTS, REPO_ROOT, make_pipeline, tiny_encoder_config, tiny_model
from multitask_bert import MultiTaskBertConfig, build_compute_metrics
from multitask_bert.training.cli import arguments

PACKAGE_FOLDERS = ("modeling", "training", "hub_card")
# Deprecated aliases of command-line modules, kept at their old library paths for one release.
OLD_CLI_PATHS = {"training/commands.py", "training/export.py", "training/predict.py"}


def package_modules() -> list:
    return sorted(path for folder in PACKAGE_FOLDERS for path in (REPO_ROOT / folder).rglob("*.py"))


def imported_modules(path) -> list[tuple[int, str]]:
    """`(level, module)` of every `from ... import` and `import` statement of a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
        elif isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
    return found


def test_public_api_names_import_from_the_top():
    for name in multitask_bert.__all__:
        assert getattr(multitask_bert, name) is not None, name
    assert multitask_bert.MultiTaskTrainer.__module__ == "multitask_bert.training.trainer"


def test_package_modules_import_each_other_relatively():
    """Inside the package, imports are relative, so a reader following paths finds every arrow."""
    absolute = [
        (path.relative_to(REPO_ROOT).as_posix(), module)
        for path in package_modules()
        for level, module in imported_modules(path)
        if level == 0 and module.split(".")[0] == "multitask_bert"
    ]
    assert absolute == []


def test_no_library_module_imports_the_command_line():
    importers = []
    for path in package_modules():
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative.startswith("training/cli/") or relative in OLD_CLI_PATHS:
            continue
        package = ["multitask_bert", *path.relative_to(REPO_ROOT).parent.parts]
        for level, module in imported_modules(path):
            target = ".".join([*package[: len(package) - level + 1], module] if level else [module])
            if target.startswith("multitask_bert.training.cli") or target.endswith(".cli"):
                importers.append(relative)
    assert importers == []


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("multitask_bert.training.commands", "train", "multitask_bert.training.cli.train:main"),
        ("multitask_bert.training.commands", "evaluate_model", "multitask_bert.training.cli.evaluate:main"),
        ("multitask_bert.training.export", "OnnxMultiTaskModel", "multitask_bert.training.onnx:OnnxMultiTaskModel"),
        ("multitask_bert.training.export", "main", "multitask_bert.training.cli.export:main"),
        ("multitask_bert.training.predict", "load_pipeline", "multitask_bert.training.inference:load_pipeline"),
    ],
)
def test_old_import_paths_still_work_and_say_where_things_went(old, name, new):
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        module = importlib.import_module(old)
    new_module, new_name = new.split(":")
    assert getattr(module, name) is getattr(importlib.import_module(new_module), new_name)


def test_the_old_export_helpers_still_answer_as_before():
    with pytest.warns(DeprecationWarning):
        import sys

        sys.modules.pop("multitask_bert.training.export", None)
        old = importlib.import_module("multitask_bert.training.export")
    gold = [[{"entity_group": "TIME", "start": 0, "end": 3}], [{"entity_group": "PERSON", "start": 4, "end": 8}]]
    shifted = [gold[0], [{"entity_group": "PERSON", "start": 4, "end": 9}]]
    assert (old.entity_f1(gold, gold), old.entity_f1(gold, shifted), old.entity_f1([[]], [[]])) == (1.0, 0.5, 1.0)
    assert (old.score_prefix("ner"), old.score_prefix("slots")) == ("entity", "slots")


@pytest.mark.parametrize(("old", "new"), [("model_card", "card"), ("push", "push")])
def test_old_command_entry_points_are_deprecated_aliases(old, new):
    module = importlib.import_module(f"multitask_bert.hub_card.{old}")
    with pytest.warns(DeprecationWarning, match=f"cli.{new}.main"):
        entry = module.main
    assert entry is importlib.import_module(f"multitask_bert.training.cli.{new}").main
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_new_paths_import_without_deprecation_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for module in ("multitask_bert.training.cli", "multitask_bert.training.onnx", "multitask_bert.training.tasks"):
            importlib.import_module(module)


def test_model_options_are_the_config_fields():
    """`ModelArguments` restates nothing: each new-model option has the config field's default and documented help."""
    options = {option.name: option for option in dataclasses.fields(arguments.ModelArguments)}
    config_fields = {option.name: option for option in dataclasses.fields(MultiTaskBertConfig)}
    for name in arguments.NEW_MODEL_OPTIONS:
        assert options[name].default == config_fields[name].default, name
        assert options[name].metadata["help"] == arguments.config_help(name)
        assert options[name].metadata["help"].split()[0] in MultiTaskBertConfig.__doc__
    assert set(arguments.LOSS_WEIGHTING_OPTIONS) <= set(options) and set(arguments.LOSS_WEIGHTING_OPTIONS) <= set(
        config_fields
    )
    assert not {"task_weights", "uncertainty_weighting"} & {
        option.name for option in dataclasses.fields(multitask_bert.MultiTaskTrainingArguments)
    }


SLOT_TAGS = ["O", "B-CITY", "I-CITY"]


def named_tasks_model():
    return tiny_model(
        encoder=tiny_encoder_config(),
        tasks={
            "intent": {"level": "sentence", "labels": INTENTS},
            "ner": {"level": "token", "labels": SLOT_TAGS, "result_key": "slots", "metric_prefix": "slot"},
        },
    )


def test_a_task_names_its_results_and_scores_from_the_config(tokenizer):
    model = named_tasks_model()
    assert (model.config.task_result_key("ner"), model.config.task_metric_prefix("ner")) == ("slots", "slot")
    assert model.config.task_result_key("intent") == "intent"
    result = make_pipeline(model, tokenizer)("fly to paris")
    assert "slots" in result and "entities" not in result
    references = {"intent": np.array([0]), "ner": np.array([[-100, 1, 0, -100]])}
    predictions = {"intent": np.array([0]), "ner": np.array([[0, 1, 0, 0]])}
    metrics = build_compute_metrics(model.config)(EvalPrediction(predictions=predictions, label_ids=references))
    assert metrics["slot_f1"] == 1.0 and "slot_CITY_f1" in metrics and "entity_f1" not in metrics
    # The defaults: `entities` and `entity_*` for `ner`.
    default = tiny_model()
    assert (default.config.task_result_key("ner"), default.config.task_metric_prefix("ner")) == ("entities", "entity")


@pytest.mark.parametrize("value", ["", "two words", 3])
def test_a_task_name_that_is_no_identifier_is_refused(value):
    tasks = {"ner": {"level": "token", "labels": SLOT_TAGS, "result_key": value}}
    with pytest.raises(ValueError, match="result_key"):
        MultiTaskBertConfig(encoder=tiny_encoder_config(), tasks=tasks)


def test_the_onnx_runtime_decodes_tags_with_the_models_function():
    from multitask_bert.modeling.modeling_multitask_bert import build_crfs, decode_tags

    config = tiny_model(use_crf=True).config
    crfs = build_crfs(config)
    logits, mask = torch.randn(2, 5, len(config.task_labels("ner"))), torch.ones(2, 5, dtype=torch.bool)
    assert torch.equal(decode_tags(crfs, "ner", logits, mask), crfs["ner"].decode(logits, mask))
    assert torch.equal(decode_tags(build_crfs(tiny_model().config), "ner", logits, mask), logits.argmax(-1))
