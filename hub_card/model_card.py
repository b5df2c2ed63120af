"""Model cards for multi-task models: Hub metadata with eval results, and a body written from a training run.

`write_model_card(model_dir, ...)` after training writes README.md, the loss curve (`loss_plot`) and
`model_card_inputs.json` (what it was given, so `multitask-bert card MODEL_DIR` can write the card again from the
folder alone); `dataset_summary` counts what the data holds.
"""

from __future__ import annotations

import datetime
import json
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.modelcard import make_markdown_table, parse_log_history

from ..modeling import MultiTaskBertConfig, default_backbone_path
from ..modeling.configuration_multitask_bert import (
    DEFAULT_SENTENCE_TASK,
    DEFAULT_TASK_NAMING,
    DEFAULT_TASKS,
    DEFAULT_TOKEN_TASK,
)
from ..modeling.modeling_multitask_bert import standard_head_task
from . import moved_command_entry
from .card_validation import validate_model_card

# Where these lived before the card's parts had modules of their own.
from .dataset_summary import count_entities as count_entities
from .dataset_summary import count_labels as count_labels
from .dataset_summary import summarize_dataset as summarize_dataset
from .loss_plot import save_loss_plot

TEMPLATE_PATH = Path(__file__).with_name("model_card_template.md")
CARD_FILE = "README.md"
CARD_INPUTS_FILE = "model_card_inputs.json"
LOSS_PLOT_FILE = "training_loss.png"
TRAINER_STATE_FILE = "trainer_state.json"
PACKAGED_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# One pipeline tag per repo on the Hub. The model works in transformers' token-classification pipeline (the `ner`
# head, `MultiTaskBertForTokenClassification`), and the joint pipeline returns entity spans (plus the intent), what the
# Hub's token-classification search filter stands for (slot-filling / NER models are listed there); the other
# abilities go into `tags`; a model without token-level tasks is tagged text-classification. No `widget`: the Hub's
# inference widgets do not run remote code.
PIPELINE_TAG = "token-classification"
TAGS = [
    "multitask",
    "token-classification",
    "text-classification",
    "sentence-similarity",
    "intent-classification",
    "slot-filling",
    "custom_code",
]
DEFAULT_EXAMPLES = ["remind me to call Anna at 5pm tomorrow", "wake me up at 7 am on monday"]
NOT_A_CLASS = ("UNK", "PAD")  # placeholder outputs of a head, never listed as real classes
BIO_PREFIXES = ("B", "I", "E", "S", "L", "U")

# Metric key of the default tasks (as training/metrics/multitask_metrics names them: `intent_accuracy`, `entity_f1`)
# -> (task type, task name, metric type, metric name) in the model-index. Per-entity-type scores, `entity_<TYPE>_f1`
# etc., go into the card body only.
_ENTITY = DEFAULT_TASK_NAMING[DEFAULT_TOKEN_TASK]["metric_prefix"]
METRICS = {
    f"{DEFAULT_SENTENCE_TASK}_accuracy": (
        "text-classification",
        "Intent classification",
        "accuracy",
        "Intent accuracy",
    ),
    f"{_ENTITY}_precision": ("token-classification", "Entity recognition", "precision", "Entity precision"),
    f"{_ENTITY}_recall": ("token-classification", "Entity recognition", "recall", "Entity recall"),
    f"{_ENTITY}_f1": ("token-classification", "Entity recognition", "f1", "Entity F1"),
    "sentence_accuracy": (
        "token-classification",
        "Entity recognition",
        "accuracy",
        "Sentence accuracy (intent and all entities right)",
    ),
}
# The model-index entry of the sentence embedding's STS Benchmark score (`embedding_similarity` of the card inputs).
STS_RESULT = {
    "task_type": "sentence-similarity",
    "task_name": "Semantic textual similarity",
    "dataset_type": "sentence-transformers/stsb",
    "dataset_name": "STS Benchmark",
    "metric_type": "spearman_cosine",
    "metric_name": "Spearman correlation of cosine similarities",
}
# Tasks other than the config's default ones are scored in the card body by `<task>_accuracy` (sentence-level)
# or `<prefix>_precision`/`_recall`/`_f1` (token-level), as training/metrics/multitask_metrics names them.
OTHER_TASK_SCORES = ("accuracy", "precision", "recall", "f1")
# Calibration and out-of-scope scores of a sentence-level task `<task>_<score>` (training/out_of_scope.py), with their
# model-index metric type and name.
OUT_OF_SCOPE_SCORES = {
    "in_scope_accuracy": ("accuracy", "In-scope accuracy (answering out-of-scope is wrong)"),
    "out_of_scope_recall": ("recall", "Out-of-scope recall"),
    "out_of_scope_precision": ("precision", "Out-of-scope precision"),
    "out_of_scope_f1": ("f1", "Out-of-scope F1"),
    "out_of_scope_auroc": ("roc_auc", "Out-of-scope AUROC"),
    "out_of_scope_fpr95": ("fpr95", "Out-of-scope FPR at 95% in-scope recall"),
    "ece": ("ece", "Expected calibration error"),
    "ece_uncalibrated": ("ece", "Expected calibration error before temperature scaling"),
}
FRAMEWORKS = [
    "multitask-bert",
    "transformers",
    "torch",
    "tokenizers",
    "datasets",
    "huggingface_hub",
    "sentence-transformers",
]


def hub_base_model(name_or_path: str | None) -> str | None:
    """The Hub id of a backbone: the packaged default maps to its Hub id, other local folders to None."""
    if name_or_path is None or Path(name_or_path).resolve() == Path(default_backbone_path()).resolve():
        return PACKAGED_BASE_MODEL
    return None if Path(name_or_path).exists() else str(name_or_path)


def build_model_card(
    model_dir: str | Path,
    *,
    eval_results: dict[str, dict[str, float]] | None = None,
    log_history: list[dict] | None = None,
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    dataset_summary: dict[str, dict] | None = None,
    synthetic_data: bool = False,
    hyperparameters: dict[str, Any] | None = None,
    base_model: str | None = None,
    language: str = "en",
    license: str = "apache-2.0",
    repo_id: str | None = None,
    snippet_examples: list[str] | None = None,
    embedding_preservation_weight: float | None = None,
    embedding_similarity: dict[str, Any] | None = None,
) -> ModelCard:
    """
    The model card of a saved model folder (config.json must be there; the loss plot is linked if present).

    Args:
        eval_results: `{split: metrics}`; metrics as `Trainer.evaluate` returns them (`eval_`/`<split>_` prefixes
            are dropped): `intent_accuracy`, `entity_precision`, `entity_recall`, `entity_f1`, `sentence_accuracy`,
            `entity_<TYPE>_f1` per entity type, all in [0, 1]; other keys (loss, runtime) are ignored.
        log_history: `trainer.state.log_history` (or `log_history` of trainer_state.json).
        dataset_name: readable name of the training data; `dataset_id`: its Hub id, if it has one.
        dataset_summary: `{split: {"examples": n, <task>: {label or entity type: count}}}`, counts from
            `count_labels` (sentence tasks) and `count_entities` (token tasks).
        synthetic_data: trained on the embedded synthetic default data (said in the card).
        hyperparameters: `{name: value}`, e.g. `transformers.modelcard.extract_hyperparameters_from_trainer(trainer)`.
        base_model: Hub id of the backbone (see `hub_base_model`).
        repo_id: Hub repo the card is for; usage snippets load it (else the folder path).
        snippet_examples: example inputs for the usage snippets.
        embedding_preservation_weight: weight of the embedding-preservation term the model trained with (0: none).
        embedding_similarity: the sentence embedding's STS Benchmark score, `{"split": "test", "spearman_cosine": x,
            "base_spearman_cosine": y}` (`y`: the model training started from, if measured).
    """
    model_dir = Path(model_dir)
    config = _load_config(model_dir)
    other_tasks = [task for task in config.tasks if task not in DEFAULT_TASKS]
    eval_results = {
        split: _split_metrics(split, metrics, other_tasks, config) for split, metrics in (eval_results or {}).items()
    }
    if embedding_similarity:
        embedding_similarity = {"split": "test", "base_spearman_cosine": None, **embedding_similarity}
    dataset_summary = dataset_summary or {}
    _check_dataset_summary(dataset_summary, config)
    examples = list(snippet_examples or DEFAULT_EXAMPLES)
    model_name = (repo_id or model_dir.resolve().name).split("/")[-1]

    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG if config.token_tasks else "text-classification",
        tags=TAGS,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        metrics=sorted({METRICS[key][2] for metrics in eval_results.values() for key in metrics if key in METRICS})
        or None,
        model_name=model_name,
        eval_results=(
            _eval_results(eval_results, dataset_name or dataset_id or "unnamed data", dataset_id)
            + _out_of_scope_eval_results(
                eval_results, config.sentence_tasks, dataset_name or dataset_id or "unnamed data", dataset_id
            )
            + _sts_eval_results(embedding_similarity)
        )
        or None,
    )
    tasks = [_task_view(name, config, dataset_summary) for name in config.tasks]
    _, training_lines, _ = parse_log_history(log_history or [])
    entity_types = [
        (config.task_metric_prefix(task["name"]), entity)
        for task in tasks
        if task["level"] == "token"
        for entity in task["classes"]
    ]
    per_type_metric = _per_type_metric(config)
    entity_type_splits = [
        split for split, metrics in eval_results.items() if any(per_type_metric.fullmatch(key) for key in metrics)
    ]
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=model_name,
        # Python string literals for the usage snippets.
        model_id=_literal(repo_id or str(model_dir)),
        example=_literal(examples[0]),
        second_example=_literal(examples[1] if len(examples) > 1 else DEFAULT_EXAMPLES[1]),
        hidden_size=config.encoder.hidden_size,
        num_layers=config.encoder.num_hidden_layers,
        max_positions=config.encoder.max_position_embeddings,
        model_max_length=_tokenizer_max_length(model_dir),
        encoder_type=type(config.encoder).__name__.removesuffix("Config"),
        pooling=config.pooling,
        sentence_head_pooling=config.sentence_head_pooling,
        sentence_aware_token_heads=config.sentence_aware_token_heads,
        subword_pooling=config.subword_pooling,
        normalize=config.normalize_embeddings,
        use_crf=config.use_crf,
        tasks=tasks,
        sentence_tasks=[task for task in tasks if task["level"] == "sentence"],
        token_tasks=[task for task in tasks if task["level"] == "token"],
        pipeline_task=next(iter(getattr(config, "custom_pipelines", None) or {}), None),
        text_classification_task=standard_head_task(config, "sentence") if config.sentence_tasks else None,
        token_classification_task=standard_head_task(config, "token") if config.token_tasks else None,
        dataset_name=dataset_name,
        dataset_id=dataset_id,
        synthetic_data=synthetic_data,
        split_sizes=[
            (split, summary["examples"]) for split, summary in dataset_summary.items() if "examples" in summary
        ],
        hyperparameters=hyperparameters or {},
        training_results=make_markdown_table(training_lines),
        loss_plot=LOSS_PLOT_FILE if (model_dir / LOSS_PLOT_FILE).is_file() else None,
        eval_rows=[
            {"split": split, **{key: _format(metrics.get(key)) for key in METRICS}}
            for split, metrics in eval_results.items()
        ],
        other_task_rows=[
            {
                "split": split,
                "task": task,
                **{
                    score: _format(metrics.get(f"{config.task_metric_prefix(task)}_{score}"))
                    for score in OTHER_TASK_SCORES
                },
            }
            for split, metrics in eval_results.items()
            for task in other_tasks
        ],
        detectors=[
            {
                "task": task,
                "temperature": config.task_temperature(task),
                "calibrated": "temperature" in config.tasks[task],
                **(config.task_out_of_scope(task) or {}),
            }
            for task in config.sentence_tasks
        ],
        calibration_rows=[
            {
                "split": split,
                "task": task,
                **{score: _format(metrics.get(f"{task}_{score}")) for score in OUT_OF_SCOPE_SCORES},
            }
            for split, metrics in eval_results.items()
            for task in config.sentence_tasks
            if f"{task}_ece" in metrics or f"{task}_in_scope_accuracy" in metrics
        ],
        entity_type_splits=entity_type_splits,
        entity_type_rows=[
            {
                "label": entity,
                "scores": [_format(eval_results[split].get(f"{prefix}_{entity}_f1")) for split in entity_type_splits],
            }
            for prefix, entity in entity_types
        ]
        if entity_type_splits
        else [],
        embedding_preservation_weight=embedding_preservation_weight,
        embedding_similarity=embedding_similarity,
        framework_versions=_framework_versions(),
        year=datetime.date.today().year,
    )


def write_model_card(model_dir: str | Path, **inputs) -> ModelCard:
    """
    Write README.md (validated offline), the loss plot and `model_card_inputs.json` into `model_dir`.

    Takes the keyword arguments of `build_model_card`; call it after `trainer.save_model(model_dir)`.
    """
    model_dir = Path(model_dir)
    if not save_loss_plot(inputs.get("log_history") or [], model_dir / LOSS_PLOT_FILE):
        (model_dir / LOSS_PLOT_FILE).unlink(missing_ok=True)
    card = build_model_card(model_dir, **inputs)
    validate_model_card(card)
    (model_dir / CARD_INPUTS_FILE).write_text(json.dumps(inputs, indent=2, default=str) + "\n")
    card.save(model_dir / CARD_FILE)
    return card


def load_card_inputs(model_dir: str | Path) -> dict[str, Any]:
    """What `write_model_card` was given, read back from the folder (log history from trainer_state.json if absent)."""
    model_dir = Path(model_dir)
    inputs = {}
    if (model_dir / CARD_INPUTS_FILE).is_file():
        inputs = _read_json(model_dir / CARD_INPUTS_FILE)
    if "log_history" not in inputs and (model_dir / TRAINER_STATE_FILE).is_file():
        inputs["log_history"] = _read_json(model_dir / TRAINER_STATE_FILE).get("log_history", [])
    return inputs


def _load_config(model_dir: Path) -> MultiTaskBertConfig:
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json: is it a folder saved with `save_pretrained`?")
    return MultiTaskBertConfig.from_pretrained(model_dir)


def _tokenizer_max_length(model_dir: Path) -> int | None:
    """`model_max_length` of the tokenizer saved in the folder (the pipeline's window size), if recorded."""
    path = model_dir / "tokenizer_config.json"
    return _read_json(path).get("model_max_length") if path.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def _per_type_metric(config: MultiTaskBertConfig) -> re.Pattern:
    """Per-entity-type score keys of the config's token-level tasks (`entity_<TYPE>_f1` for `ner`)."""
    prefixes = "|".join(re.escape(config.task_metric_prefix(task)) for task in config.token_tasks) or "$^"
    return re.compile(rf"({prefixes})_.+_(precision|recall|f1|support)")


def _split_metrics(
    split: str, metrics: dict[str, float], other_tasks: list[str], config: MultiTaskBertConfig
) -> dict[str, float]:
    if not isinstance(metrics, dict):
        raise ValueError(f"eval_results[{split!r}] must be a dict of metrics, got {type(metrics).__name__}.")
    stripped = {re.sub(rf"^(eval|{re.escape(split)})_", "", key): value for key, value in metrics.items()}
    other_keys = {f"{config.task_metric_prefix(task)}_{score}" for task in other_tasks for score in OTHER_TASK_SCORES}
    other_keys |= {f"{task}_{score}" for task in config.sentence_tasks for score in OUT_OF_SCOPE_SCORES}
    per_type_metric = _per_type_metric(config)
    known = {
        key: value
        for key, value in stripped.items()
        if key in METRICS or per_type_metric.fullmatch(key) or key in other_keys
    }
    if not known:
        raise ValueError(
            f"eval_results[{split!r}] has none of the metrics {', '.join(METRICS)}; its keys: {sorted(metrics)}."
        )
    return known


def _check_dataset_summary(dataset_summary: dict[str, dict], config: MultiTaskBertConfig) -> None:
    for split, summary in dataset_summary.items():
        unknown = sorted(set(summary) - {"examples", *config.tasks})
        if unknown:
            raise ValueError(
                f"dataset_summary[{split!r}] has keys {unknown} that are neither 'examples' nor a task of this "
                f"model ({list(config.tasks)})."
            )


def _eval_results(eval_results: dict[str, dict], dataset_name: str, dataset_id: str | None) -> list[EvalResult]:
    dataset_type = dataset_id or re.sub(r"[^\w.-]+", "-", dataset_name.lower()).strip("-")
    return [
        EvalResult(
            task_type=task_type,
            task_name=task_name,
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=metric_type,
            metric_name=metric_name,
            metric_value=float(metrics[key]),
        )
        for split, metrics in eval_results.items()
        for key, (task_type, task_name, metric_type, metric_name) in METRICS.items()
        if key in metrics
    ]


def _out_of_scope_eval_results(
    eval_results: dict[str, dict], sentence_tasks: list[str], dataset_name: str, dataset_id: str | None
) -> list[EvalResult]:
    """model-index entries of the calibration and out-of-scope scores of each sentence-level task."""
    dataset_type = dataset_id or re.sub(r"[^\w.-]+", "-", dataset_name.lower()).strip("-")
    return [
        EvalResult(
            task_type="text-classification",
            task_name=f"Out-of-scope detection ({task})",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=metric_type,
            metric_name=metric_name,
            metric_value=float(metrics[f"{task}_{score}"]),
        )
        for split, metrics in eval_results.items()
        for task in sentence_tasks
        for score, (metric_type, metric_name) in OUT_OF_SCOPE_SCORES.items()
        if f"{task}_{score}" in metrics
    ]


def _sts_eval_results(embedding_similarity: dict[str, Any] | None) -> list[EvalResult]:
    if not embedding_similarity:
        return []
    return [
        EvalResult(
            **STS_RESULT,
            dataset_split=embedding_similarity.get("split", "test"),
            metric_value=float(embedding_similarity["spearman_cosine"]),
        )
    ]


def _task_view(name: str, config: MultiTaskBertConfig, dataset_summary: dict[str, dict]) -> dict:
    """What the card says about one head: its real classes and their counts per split."""
    level = config.tasks[name]["level"]
    labels = config.task_labels(name)
    if level == "token":
        classes = list(dict.fromkeys(kind for kind in map(_entity_type, labels) if kind is not None))
        title = f"Entity types (`{name}`)"
    else:
        classes = [label for label in labels if label not in NOT_A_CLASS]
        title = f"Labels (`{name}`)"
    counts = {split: summary[name] for split, summary in dataset_summary.items() if name in summary}
    return {
        "name": name,
        "level": level,
        "title": title,
        "classes": classes,
        "has_unk": "UNK" in labels,
        "tag_count": len([label for label in labels if label not in NOT_A_CLASS]),
        "count_splits": list(counts),
        "rows": [{"label": label, "counts": [counts[split].get(label, 0) for split in counts]} for label in classes],
        **_examples_view(config.tasks[name].get("examples"), labels),
    }


def _examples_view(examples: dict | None, head_labels: list[str]) -> dict:
    """The labels a task answers from stored examples, with their counts and whether the head has them."""
    if not examples:
        return {"examples": []}
    labels = examples["labels"]
    return {
        "example_metric": "Mahalanobis" if examples["metric"] == "mahalanobis" else "cosine",
        "examples": [
            {"label": label, "count": labels.count(label), "in_head": label in head_labels}
            for label in dict.fromkeys(labels)
        ],
    }


def _entity_type(tag: str) -> str | None:
    if tag == "O" or tag in NOT_A_CLASS:
        return None
    prefix, _, kind = tag.partition("-")
    return kind if prefix in BIO_PREFIXES and kind else tag


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _format(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _framework_versions() -> dict[str, str]:
    versions = {"Python": platform.python_version()}
    for package in FRAMEWORKS:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


# `main` moved to the command line (`multitask_bert.training.cli.card`).
__getattr__ = moved_command_entry(__name__, "card")
