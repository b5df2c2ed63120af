"""Offline checks of a model card's metadata: what the Hub would reject or misread."""

from __future__ import annotations

import re

from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers.pipelines import SUPPORTED_TASKS


def validate_model_card(card: ModelCard | str) -> None:
    """
    Offline stand-in for `ModelCard.validate` (which asks the Hub): raise a `ValueError` naming the problems.

    Parses the text as huggingface_hub does (YAML block, `ModelCardData`, model-index -> eval results and back) and
    checks the fields the Hub would reject or misread.
    """
    try:
        metadata = ModelCard(str(card)).data.to_dict()  # the model-index goes through eval results and back
        _, eval_results = (
            model_index_to_eval_results(metadata["model-index"]) if "model-index" in metadata else ("", [])
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Invalid model card metadata: {error}") from error
    problems = []
    if metadata.get("pipeline_tag") not in _builtin_pipeline_tasks():
        problems.append(f"pipeline_tag {metadata.get('pipeline_tag')!r} is not one of transformers' own pipeline tasks")
    for language in _as_list(metadata.get("language")):
        if not re.fullmatch(r"[a-z]{2,3}|multilingual|code", str(language)):
            problems.append(f"language {language!r} is not an ISO 639 code")
    for key in ("base_model", "datasets"):
        for hub_id in _as_list(metadata.get(key)):
            if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(hub_id)):
                problems.append(f"{key} {hub_id!r} is not a Hub id")
    if not metadata.get("license") or not metadata.get("library_name"):
        problems.append("license and library_name must be set")
    for widget in metadata.get("widget") or []:
        if not isinstance(widget, dict) or not isinstance(widget.get("text"), str):
            problems.append(f"widget example {widget!r} needs a `text` string")
    for result in eval_results:
        if not isinstance(result.metric_value, (int, float)) or not 0 <= result.metric_value <= 1:
            problems.append(f"{result.metric_name} on {result.dataset_split} is {result.metric_value!r}, not in [0, 1]")
    if problems:
        raise ValueError("Invalid model card metadata: " + "; ".join(problems))


def _builtin_pipeline_tasks() -> set[str]:
    """transformers' own tasks (all valid Hub pipeline tags), not the custom ones registered at run time."""
    return {
        task
        for task, spec in SUPPORTED_TASKS.items()
        if (spec["impl"] if isinstance(spec["impl"], str) else spec["impl"].__module__).startswith("transformers.")
    }


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
