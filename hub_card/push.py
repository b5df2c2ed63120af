"""Publish a saved multi-task model folder to the Hugging Face Hub (the library side of `multitask-bert push`).

The token comes only from huggingface_hub's usual sources (`HF_TOKEN`, or the login stored by `hf auth login`);
it is never passed around, printed, or written into the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, get_token

from . import moved_command_entry
from .model_card import CARD_FILE, CARD_INPUTS_FILE, load_card_inputs, write_model_card

# Trainer checkpoints and TensorBoard runs stay local (the runs go with `include_logs`), and pickles are never
# published: weights go as safetensors.
LOGS_PATTERN = "runs/*"
IGNORE_PATTERNS = ["checkpoints/*", "checkpoint-*", LOGS_PATTERN, "*.bin", "*.pt", "*.pth", "*.pkl"]
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")


def check_model_folder(model_dir: str | Path) -> None:
    """Raise a `ValueError` naming what is missing if the folder would not load from the Hub by repo id."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ValueError(f"{model_dir} is not a folder.")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{model_dir} has no config.json: save the model there with `model.save_pretrained`.")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from error
    if not any((model_dir / name).is_file() for name in WEIGHTS_FILES):
        raise ValueError(f"{model_dir} has no {' or '.join(WEIGHTS_FILES)}: only safetensors weights are published.")
    references = list((config.get("auto_map") or {}).values())
    references += [spec.get("impl", "") for spec in (config.get("custom_pipelines") or {}).values()]
    for reference in references:
        if "--" in reference:  # code that lives in another repo
            continue
        module_file = reference.rsplit(".", 1)[0] + ".py"
        if not (model_dir / module_file).is_file():
            raise ValueError(
                f"{config_path} points to {reference} but {module_file} is not in {model_dir}; without it the model "
                "cannot load as remote code. Save the model again with `save_pretrained`."
            )
    if not (model_dir / "tokenizer_config.json").is_file():
        raise ValueError(f"{model_dir} has no tokenizer: save it there with `tokenizer.save_pretrained`.")


def check_token() -> None:
    """Raise a `ValueError` saying how to log in if huggingface_hub finds no token."""
    if get_token() is None:
        raise ValueError("No Hugging Face token found: run `hf auth login` or set the HF_TOKEN environment variable.")


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    include_logs: bool = False,
) -> CommitInfo:
    """
    Create the repo if needed and upload the folder: safetensors weights, config, remote-code files, tokenizer,
    model card and loss plot, and with `include_logs` the TensorBoard logs (`runs/`, which the Hub shows as training
    metrics). The card is (re)written for `repo_id` first unless the folder holds a README.md that
    `write_model_card` did not write.
    """
    model_dir = Path(model_dir)
    check_model_folder(model_dir)
    check_token()
    ignore_patterns = [pattern for pattern in IGNORE_PATTERNS if not include_logs or pattern != LOGS_PATTERN]
    api = HfApi()
    repo_id = api.create_repo(repo_id, private=private or None, exist_ok=True).repo_id
    if (model_dir / CARD_INPUTS_FILE).is_file() or not (model_dir / CARD_FILE).is_file():
        write_model_card(model_dir, **{**load_card_inputs(model_dir), "repo_id": repo_id})
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=model_dir,
        revision=revision,
        commit_message=commit_message or f"Upload {repo_id.split('/')[-1]} with multitask-bert",
        ignore_patterns=ignore_patterns,
    )


# `main` moved to the command line (`multitask_bert.training.cli.push`).
__getattr__ = moved_command_entry(__name__, "push")
